"""Perplexity done right: token-weighted over a corpus, with a sliding window for long texts.

    result = perplexity(model, tokenizer, texts, window=128, stride=64)
    print(result)                       # perplexity 2.213 over 11,338 tokens in 145 texts

- :func:`token_nlls`: the NLL of every token of one text, each scored exactly once.
- :class:`Perplexity`: exp(total NLL / total tokens); also the naive mean of per-text
  perplexities, shown only to say why it is wrong.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


def token_nlls(model, ids: Sequence[int], *, window: int, stride: int) -> list[float]:
    """Negative log-likelihood (nats) of tokens 1..L-1 of one text ``ids``, each predicted from at
    most ``window - 1`` tokens before it (token 0 has no context and is not scored).

    Texts longer than the window are read with a sliding window: the first window scores its
    tokens; each next window moves ``stride`` tokens further and scores only those ``stride`` new
    tokens, which keep at least ``window - stride`` tokens of context. Every token is scored
    exactly once. ``stride = window - 1`` is the cheap, pessimistic way (chunks that restart from
    one token of context); a smaller stride costs more forward passes and gives each token more
    context.
    """
    import torch

    if not 0 < stride < window:
        raise ValueError(f"token_nlls: need 0 < stride ({stride}) < window ({window})")
    nlls: list[float] = []
    scored = 1                                            # tokens before this index are scored
    with torch.no_grad():
        while scored < len(ids):
            end = min(len(ids), window if scored == 1 else scored + stride)
            start = max(0, end - window)
            chunk = torch.tensor([list(ids[start:end])], device=model.device)
            logp = torch.log_softmax(model(input_ids=chunk).logits[0, :-1].float(), dim=-1)
            nll = -logp.gather(1, chunk[0, 1:, None])[:, 0]               # nll[j]: token start + j + 1
            nlls += nll[scored - start - 1:].tolist()
            scored = end
    return nlls


@dataclass
class Perplexity:
    """Summed NLL and token counts per text; the corpus perplexity weights every token equally."""
    nll: list[float]          # per text, nats, summed over its scored tokens
    tokens: list[int]         # per text, scored tokens

    @property
    def value(self) -> float:
        """exp(total NLL / total tokens): the corpus perplexity, each token weighing the same."""
        return math.exp(sum(self.nll) / sum(self.tokens))

    @property
    def mean_of_texts(self) -> float:
        """The naive number: the mean of per-text perplexities (short texts weigh as much as long
        ones, and one hard short text can dominate). Shown only to say why it is wrong."""
        per_text = [math.exp(s / t) for s, t in zip(self.nll, self.tokens) if t]
        return sum(per_text) / len(per_text)

    def __str__(self) -> str:
        return f"perplexity {self.value:.3f} over {sum(self.tokens):,} tokens in {len(self.tokens)} texts"


def perplexity(model, tokenizer, texts: Sequence[str], *, window: int | None = None,
               stride: int | None = None) -> Perplexity:
    """Token-weighted perplexity of ``model`` on ``texts`` (a sliding window for long texts).

    ``window`` defaults to the model's context length (``max_position_embeddings``), ``stride``
    to half the window. Texts are tokenized without special tokens; see :func:`token_nlls`.
    """
    window = window or model.config.max_position_embeddings
    stride = stride or window // 2
    was_training = model.training
    model.eval()
    try:
        nll, tokens = [], []
        for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
            values = token_nlls(model, ids, window=window, stride=stride)
            nll.append(sum(values))
            tokens.append(len(values))
    finally:
        model.train(was_training)
    return Perplexity(nll, tokens)


def answer_perplexity(model, tokenizer, rows: Sequence[dict], render=None) -> Perplexity:
    """Perplexity of the reference answers only: each row's ``answer`` scored after its ``prompt``
    rendered by the model's chat template (:func:`ftlib.engine.sft_data.chat_prompt`), so only the
    answer's tokens count, as the model would be asked in use. ``render(prompt)`` replaces the
    rendering (the capstone passes prompts it has already rendered with its own template)."""
    import torch

    from ftlib.engine.sft_data import chat_prompt
    nll, tokens = [], []
    was_training = model.training
    model.eval()
    try:
        for row in rows:
            text = render(row["prompt"]) if render else chat_prompt(tokenizer, row["prompt"])
            prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
            answer = tokenizer(str(row["answer"]), add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + answer], device=model.device)
            with torch.no_grad():
                logits = model(ids).logits[0, len(prompt) - 1:-1].float()
            target = torch.tensor(answer, device=logits.device)
            nll.append(torch.nn.functional.cross_entropy(logits, target, reduction="sum").item())
            tokens.append(len(answer))
    finally:
        model.train(was_training)
    return Perplexity(nll, tokens)
