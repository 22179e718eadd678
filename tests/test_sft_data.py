"""ftlib.engine.sft_data: the training template renders SmolLM2's own text, labels cover only what the assistant
writes, and packing keeps examples apart (block-diagonal attention) without changing the loss."""
import copy

import pytest
import torch
import torch.nn.functional as F

from ftlib.data import load_tasks
from ftlib.engine.models import TinyConfig, tiny_llama
from ftlib.products.registry import load_tokenizer
from ftlib.engine.sft_data import (IGNORE, SMOLLM2_SYSTEM, Encoded, block_diagonal_mask, chatml_template,
                                   collate, encode_chat, pack_examples, padding_waste, task_messages)

CHATS = [
    [{"role": "user", "content": "What is 7 + 5?"}, {"role": "assistant", "content": "12"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Sort 3, 1"},
     {"role": "assistant", "content": "1, 3"}],
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("smollm2-135m")


@pytest.mark.parametrize("chat", CHATS)
@pytest.mark.parametrize("generation_prompt", [False, True])
def test_training_template_renders_smollm2s_own_text(tokenizer, chat, generation_prompt):
    chat = chat[:-1] if generation_prompt else chat
    ours = tokenizer.apply_chat_template(chat, chat_template=chatml_template(SMOLLM2_SYSTEM), tokenize=False,
                                         add_generation_prompt=generation_prompt)
    theirs = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=generation_prompt)
    assert ours == theirs


def test_labels_are_exactly_the_assistant_turns(tokenizer):
    enc = encode_chat(tokenizer, CHATS[1], template=chatml_template(SMOLLM2_SYSTEM), max_length=512)
    assert len(enc.input_ids) == len(enc.labels) and not enc.truncated
    labelled = [t for t in enc.labels if t != IGNORE]
    assert tokenizer.decode(labelled) == "Hello.<|im_end|>1, 3<|im_end|>"
    assert sum(t == IGNORE for t in enc.labels) > len(labelled)          # the prompt is not trained on
    cut = encode_chat(tokenizer, CHATS[1], template=chatml_template(), max_length=10)
    assert cut.truncated and len(cut.input_ids) == 10


def test_a_template_without_generation_markers_is_refused(tokenizer):
    with pytest.raises(ValueError, match="generation"):
        encode_chat(tokenizer, CHATS[0], template=tokenizer.chat_template, max_length=64)


def test_collate_pads_right_and_masks_padding():
    batch = collate([Encoded([5, 6, 7], [IGNORE, 6, 7], False), Encoded([8], [8], False)], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert padding_waste([Encoded([1] * 3, [1] * 3, False), Encoded([1], [1], False)], batch_size=2) == pytest.approx(2 / 6)


def _toy():
    torch.manual_seed(0)
    return tiny_llama(TinyConfig(vocab_size=64, hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                                 intermediate_size=48, max_seq_len=64)).eval()


def _examples(seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (7, 5, 9):
        ids = torch.randint(3, 64, (n,), generator=g).tolist()
        out.append(Encoded(ids, [IGNORE] * 3 + ids[3:], False))
    return out


def _token_loss(logits, labels):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=IGNORE,
                           reduction="sum")


def test_packed_examples_do_not_see_each_other():
    model, examples = _toy(), _examples()
    packed = pack_examples(examples, max_length=24, pad_token_id=0)
    assert packed["input_ids"].shape == (1, 24)
    changed = [Encoded([(t + 1) % 64 for t in examples[0].input_ids], examples[0].labels, False)] + examples[1:]
    packed2 = pack_examples(changed, max_length=24, pad_token_id=0)
    with torch.no_grad():
        a = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits
        b = model(input_ids=packed2["input_ids"], position_ids=packed2["position_ids"], use_cache=False).logits
        plain = model(input_ids=packed["input_ids"], use_cache=False).logits   # one long sequence
    assert (a[0, :7] - b[0, :7]).abs().max() > 1e-3                      # example 1 itself changed
    torch.testing.assert_close(a[0, 7:21], b[0, 7:21], atol=1e-5, rtol=0)  # examples 2 and 3 did not
    assert (plain[0, 7:21] - a[0, 7:21]).abs().max() > 1e-3               # without packing they would


def test_packed_loss_equals_unpacked_loss_and_the_mask_by_hand_matches():
    model, examples = _toy(), _examples(1)
    packed = pack_examples(examples, max_length=24, pad_token_id=0)
    with torch.no_grad():
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits
        by_hand = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                        attention_mask=block_diagonal_mask(packed["position_ids"])).logits
        padded = collate(examples, pad_token_id=0)
        logits_padded = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
    n_tokens = (packed["labels"][:, 1:] != IGNORE).sum()
    assert n_tokens == (padded["labels"][:, 1:] != IGNORE).sum()
    torch.testing.assert_close(_token_loss(logits, packed["labels"]) / n_tokens,
                               _token_loss(logits_padded, padded["labels"]) / n_tokens, atol=1e-5, rtol=0)
    torch.testing.assert_close(by_hand, logits, atol=1e-5, rtol=0)


def test_pitfall_with_a_cache_transformers_ignores_packed_positions():
    """transformers 5.23 builds the block-diagonal mask from position_ids only when no cache is
    passed or created; with the default use_cache=True (even in train mode) packed examples see
    each other. Hence use_cache=False (or block_diagonal_mask) with packed batches."""
    model, examples = _toy().train(), _examples()
    packed = pack_examples(examples, max_length=24, pad_token_id=0)
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([examples[1].input_ids])).logits[0]
        leaky = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"]).logits[0, 7:12]
        safe = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits[0, 7:12]
    assert (leaky - alone).abs().max() > 1e-3
    torch.testing.assert_close(safe, alone, atol=1e-5, rtol=0)


def test_pack_starts_a_new_row_when_full_and_refuses_giants():
    examples = _examples()
    packed = pack_examples(examples, max_length=14, pad_token_id=0)
    assert packed["input_ids"].shape == (2, 14)                           # 7+5 | 9
    assert packed["position_ids"][0].tolist()[:13] == list(range(7)) + list(range(5)) + [0]
    with pytest.raises(ValueError, match="cannot fit"):
        pack_examples(examples, max_length=8, pad_token_id=0)


def test_task_rows_become_two_turn_chats():
    row = load_tasks("test", ["arithmetic"])[0]
    assert task_messages(row) == [{"role": "user", "content": row["prompt"]},
                                  {"role": "assistant", "content": row["answer"]}]


@pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")  # TRL's own config
def test_trl_sft_trainer_builds_the_same_batch_and_loss(tokenizer, tmp_path):
    """TRL's SFTTrainer with assistant_only_loss on the same chats: the same token rows and labels
    as encode_chat + collate, and its loss equals ftlib.cores.losses.causal_lm_loss on them."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer
    from ftlib.cores.losses import causal_lm_loss

    tok = copy.deepcopy(tokenizer)   # the fixture keeps SmolLM2's own template for the other tests
    tok.chat_template = chatml_template(SMOLLM2_SYSTEM)
    torch.manual_seed(0)
    model = tiny_llama(TinyConfig(vocab_size=len(tok), hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                                  intermediate_size=48, max_seq_len=128),
                       pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    rows = load_tasks("train", ["arithmetic", "format_list"])[:4]
    cfg = SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, max_length=128, per_device_train_batch_size=4,
                    use_cpu=True, report_to=[], max_steps=1, save_strategy="no", disable_tqdm=True)
    trainer = SFTTrainer(model=model, args=cfg, processing_class=tok,
                         train_dataset=Dataset.from_list([{"messages": task_messages(r)} for r in rows]))
    theirs = next(iter(trainer.get_train_dataloader()))
    ours = collate([encode_chat(tok, task_messages(r), template=tok.chat_template, max_length=128) for r in rows],
                   tok.pad_token_id)
    # the trainer's sampler shuffles rows: compare them as sets of (ids, labels)
    as_rows = lambda b: sorted(zip(map(tuple, b["input_ids"].tolist()), map(tuple, b["labels"].tolist())))
    assert as_rows(theirs) == as_rows(ours)
    assert (ours["labels"] == IGNORE).sum() > (ours["labels"] != IGNORE).sum() > 0   # the prompt is masked
    model.train()
    with torch.no_grad():
        trl_loss = trainer.compute_loss(model, theirs)
        our_loss = causal_lm_loss(model(input_ids=ours["input_ids"], attention_mask=ours["attention_mask"]).logits,
                                  ours["labels"])
    torch.testing.assert_close(our_loss, trl_loss, atol=1e-5, rtol=0)


def test_ewc_fisher_is_the_mean_per_example_squared_gradient_and_the_penalty_pulls_back():
    from ftlib.engine.sft_train import ewc_penalty, fisher_diagonal
    model = _toy().train()
    g = torch.Generator().manual_seed(0)
    batches = [{"input_ids": (ids := torch.randint(3, 64, (1, 8), generator=g)), "labels": ids} for _ in range(3)]
    fisher = fisher_diagonal(model, batches)
    name, p = "model.layers.0.mlp.up_proj.weight", dict(model.named_parameters())["model.layers.0.mlp.up_proj.weight"]
    grads = []
    for b in batches:
        model.zero_grad()
        model(**b).loss.backward()
        grads.append(p.grad.detach().clone() ** 2)
    torch.testing.assert_close(fisher[name], sum(grads) / 3)
    anchor = {n: q.detach().clone() for n, q in model.named_parameters()}
    assert ewc_penalty(model, anchor, fisher, strength=10.0).item() == 0.0          # at the anchor
    with torch.no_grad():
        p.add_(0.1)
    penalty = ewc_penalty(model, anchor, fisher, strength=10.0)
    assert penalty.item() == pytest.approx(5.0 * (fisher[name] * 0.01).sum().item(), rel=1e-4)
    model.zero_grad()
    penalty.backward()                                                                # gradient points back
    assert torch.allclose(p.grad, 10.0 * fisher[name] * 0.1, atol=1e-6)


def test_ewc_fisher_refuses_a_batch_mean_which_underestimates_it():
    from ftlib.engine.sft_train import fisher_diagonal
    model = _toy().train()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 64, (8, 8), generator=g)
    with pytest.raises(ValueError, match="example 0 is a batch of 8 rows"):
        fisher_diagonal(model, [{"input_ids": ids, "labels": ids}])
    per_example = fisher_diagonal(model, [{"input_ids": ids[i:i + 1], "labels": ids[i:i + 1]} for i in range(8)])
    model.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()                    # the squared gradient of the batch mean
    batch_mean = {n: q.grad ** 2 for n, q in model.named_parameters() if q.grad is not None}
    total = lambda f: sum(v.sum().item() for v in f.values())             # noqa: E731
    assert total(per_example) > 3 * total(batch_mean)
