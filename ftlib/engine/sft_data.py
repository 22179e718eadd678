"""Supervised fine-tuning data: chat templates for training, assistant-only labels, padding, packing.

One version of what every fine-tuning chapter needs (03, 04, 05 and later):

- :func:`chatml_template`: ChatML as a Jinja template with ``{% generation %}`` markers around what
  the assistant writes, so ``apply_chat_template(..., return_assistant_tokens_mask=True)`` (and TRL's
  ``assistant_only_loss=True``) know which tokens to train on. With SmolLM2's default system turn it
  renders exactly SmolLM2's own template, so training and inference see the same text.
- :func:`encode_chat`: token ids and labels for one conversation, -100 on every token the model
  should not learn to write (system, user, the role headers).
- :func:`collate`: right-padded batches. :func:`pack_examples`: several examples per row, each with its own
  positions, so that attention stays inside each example (transformers turns restarting
  ``position_ids`` into a block-diagonal mask; :func:`block_diagonal_mask` builds it by hand).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ftlib.cores.losses import IGNORE  # -100: the label cross-entropy skips (one definition, shared)

SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml_template(default_system: str | None = None) -> str:
    """ChatML with generation markers; ``default_system`` is added when a chat has no system turn.

    ``chatml_template(SMOLLM2_SYSTEM)`` renders the same text as SmolLM2's own template.
    """
    system = ""
    if default_system:
        system = ("{% if loop.first and messages[0]['role'] != 'system' %}"
                  "{{ '<|im_start|>system\\n" + default_system.replace("'", "\\'") + "<|im_end|>\\n' }}{% endif %}")
    return ("{% for message in messages %}" + system +
            "{% if message['role'] == 'assistant' %}"
            "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
            "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}"
            "{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def task_messages(row: dict) -> list[dict]:
    """A task row (prompt, answer) as a two-turn chat."""
    return [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["answer"]}]


def chat_prompt(tokenizer, prompt: str, system: str | None = None) -> str:
    """The prompt as the model's chat template renders it, ending with the assistant's turn.

    With ``system=None`` the template's own default applies (SmolLM2 adds its system turn).
    """
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def stop_ids(tokenizer) -> list[int]:
    """Token ids that end an answer: the tokenizer's eos and ChatML's end of turn ``<|im_end|>``.

    A model trained on ChatML ends its turn with ``<|im_end|>``; if generation stopped only at
    ``</s>`` it would run on into a new turn, and decoding without special tokens would glue that
    text onto the answer.
    """
    ids = [tokenizer.eos_token_id]
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id and end_of_turn not in ids:
        ids.append(end_of_turn)
    return ids


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]          # IGNORE except on the assistant's tokens
    truncated: bool            # True if max_length cut the conversation


def encode_chat(tokenizer, messages: list[dict], *, template: str, max_length: int) -> Encoded:
    """Token ids of ``messages`` rendered with ``template``, and labels only on assistant tokens.

    Longer conversations are cut at ``max_length`` from the right (the prompt is kept; the end of
    the answer is lost), and ``truncated`` says so.
    """
    enc = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
    if not any(mask):
        raise ValueError("no assistant tokens: the template needs {% generation %} markers and the chat an "
                         "assistant turn")
    labels = [t if m else IGNORE for t, m in zip(ids, mask)]
    return Encoded(ids[:max_length], labels[:max_length], len(ids) > max_length)


def collate(examples: list[Encoded], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example: input_ids, attention_mask and labels, each (B, T)."""
    width = max(len(e.input_ids) for e in examples)
    batch = {"input_ids": torch.full((len(examples), width), pad_token_id),
             "attention_mask": torch.zeros((len(examples), width), dtype=torch.long),
             "labels": torch.full((len(examples), width), IGNORE)}
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        batch["input_ids"][i, :n] = torch.tensor(e.input_ids)
        batch["attention_mask"][i, :n] = 1
        batch["labels"][i, :n] = torch.tensor(e.labels)
    return batch


def pack_examples(examples: list[Encoded], max_length: int, pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pack examples into rows of ``max_length`` tokens (in order, a new row when one is full).

    Returns input_ids, labels and position_ids, each (rows, max_length). Positions restart at 0
    for every example, which tells the model where one example ends; there is no attention_mask,
    so transformers builds the block-diagonal causal mask from the positions, **but only when no
    KV cache exists**: call the model with ``use_cache=False`` (transformers 5.23 creates a cache
    by default, even in train mode, and then lets packed examples attend to each other), or pass
    ``attention_mask=block_diagonal_mask(position_ids)``. The padding at the end of a row is a
    block of its own, with labels IGNORE.
    """
    rows, row = [], []
    for e in examples:
        if len(e.input_ids) > max_length:
            raise ValueError(f"an example of {len(e.input_ids)} tokens cannot fit a row of {max_length}")
        if sum(len(x.input_ids) for x in row) + len(e.input_ids) > max_length:
            rows.append(row)
            row = []
        row.append(e)
    rows.append(row)
    batch = {"input_ids": torch.full((len(rows), max_length), pad_token_id),
             "labels": torch.full((len(rows), max_length), IGNORE),
             "position_ids": torch.zeros((len(rows), max_length), dtype=torch.long)}
    for i, row in enumerate(rows):
        start = 0
        for e in row:
            n = len(e.input_ids)
            batch["input_ids"][i, start:start + n] = torch.tensor(e.input_ids)
            batch["labels"][i, start:start + n] = torch.tensor(e.labels)
            batch["position_ids"][i, start:start + n] = torch.arange(n)
            start += n
        batch["position_ids"][i, start:] = torch.arange(max_length - start)
    return batch


def block_diagonal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """The attention mask packing needs, from scratch: (B, T) positions -> (B, 1, T, T) booleans.

    Token q may attend to token k iff both belong to the same example (a new example starts
    wherever the position does not follow the previous one) and k <= q.
    """
    starts = torch.ones_like(position_ids, dtype=torch.bool)
    starts[:, 1:] = position_ids[:, 1:] != position_ids[:, :-1] + 1
    example = starts.cumsum(-1)                                         # (B, T) example index
    same = example[:, :, None] == example[:, None, :]                   # (B, T, T)
    T = position_ids.shape[1]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool, device=position_ids.device))
    return (same & causal)[:, None]


def padding_waste(examples: list[Encoded], batch_size: int) -> float:
    """Share of the tokens in right-padded batches of ``batch_size`` (in order) that are padding."""
    real = padded = 0
    for i in range(0, len(examples), batch_size):
        lengths = [len(e.input_ids) for e in examples[i:i + batch_size]]
        real += sum(lengths)
        padded += max(lengths) * len(lengths)
    return 1 - real / padded
