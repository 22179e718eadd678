"""ftlib.engine.sft_train: the pieces of the course-sft recipe (batches, replay, losses) and its trainer wrapper."""
import pytest
import torch

from ftlib.data import load_tasks
from ftlib.engine.models import TinyConfig, tiny_llama
from ftlib.engine.sft_data import IGNORE, Encoded
from ftlib.engine.sft_train import (corpus_examples, examples_loss, mixed_batches, packed_loss, sft_trainer,
                                    task_examples)


def tiny(tok):
    torch.manual_seed(0)
    return tiny_llama(TinyConfig(vocab_size=len(tok), hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                                 intermediate_size=48, max_seq_len=128), pad_token_id=tok.pad_token_id,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)


def test_corpus_examples_label_every_token_and_respect_the_length(tok):
    examples = corpus_examples(tok, ["the river runs past the mill " * 30], max_length=16)
    assert len(examples) > 1 and all(len(e.input_ids) <= 16 for e in examples)
    assert all(e.labels == e.input_ids for e in examples)
    assert examples[0].input_ids[0] == tok.bos_token_id and examples[-1].input_ids[-1] == tok.eos_token_id


def test_mixed_batches_are_a_function_of_the_step_and_replay_the_asked_share(tok):
    tasks = [Encoded([5] * 10, [IGNORE] * 5 + [5] * 5, False)] * 50
    general = [Encoded([7] * 10, [7] * 10, False)] * 50
    get = mixed_batches(tasks, general, replay=0.3, rows=8, row_len=100, pad_token_id=0, seed=0)
    assert torch.equal(get(3, 0)["input_ids"], get(3, 0)["input_ids"])
    assert not torch.equal(get(3, 0)["input_ids"], get(4, 0)["input_ids"])
    share = sum(float((get(s, 0)["input_ids"] == 7).sum()) for s in range(30)) / \
        sum(float((get(s, 0)["input_ids"] != 0).sum()) for s in range(30))
    assert 0.2 < share < 0.4
    none = mixed_batches(tasks, general, replay=0.0, rows=2, row_len=100, pad_token_id=0)
    assert not (none(0, 0)["input_ids"] == 7).any()


def test_packed_loss_equals_the_mean_loss_of_the_examples_one_by_one(tok):
    model = tiny(tok).eval()
    examples = task_examples(tok, load_tasks("train", ["arithmetic"])[:3], template=tok.chat_template, max_length=128)
    from ftlib.engine.sft_data import pack_examples
    batch = pack_examples(examples, 128, tok.pad_token_id)
    with torch.no_grad():
        packed = packed_loss(model, batch).item()
    assert packed == pytest.approx(examples_loss(model, examples, tok.pad_token_id), abs=1e-5)


@pytest.mark.parametrize("assistant_only", [True, False])
def test_sft_trainer_masks_the_prompt_only_when_asked(tok, tmp_path, assistant_only):
    rows = load_tasks("train", ["format_list"])[:4]
    trainer = sft_trainer(tiny(tok), tok, rows, tmp_path, steps=2, batch_size=4, lr=1e-3,
                          assistant_only=assistant_only)
    batch = next(iter(trainer.get_train_dataloader()))
    labelled = (batch["labels"] != IGNORE).sum().item()
    real = batch["attention_mask"].sum().item()
    if assistant_only:
        assert 0 < labelled < real / 2
    else:
        assert labelled >= real - 1
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert trainer.state.log_history and "loss" in trainer.state.log_history[0]


def test_early_stopping_puts_back_the_weights_of_the_best_tracked_step(tok, tmp_path):
    from ftlib.engine.sft_train import train_with_early_stopping
    rows = load_tasks("train", ["format_list"])[:8]
    trainer = sft_trainer(tiny(tok), tok, rows, tmp_path, steps=6, batch_size=2, lr=1e-2)
    snapshots, scores = {}, {2: 0.9, 4: 0.5, 6: 0.7}           # step 2 is the best one

    def track(model):
        step = trainer.state.global_step
        snapshots[step] = {n: p.detach().clone() for n, p in model.named_parameters()}
        assert not model.training                               # scored in eval mode
        return {"format_list": scores[step], "arithmetic": scores[step]}
    history = train_with_early_stopping(trainer, track, eval_every=2)
    assert history["step"] == [2, 4, 6] and history["best_step"] == 2
    assert trainer.model.training                               # handed back in training mode
    final = dict(trainer.model.named_parameters())
    assert all(torch.equal(final[n], p) for n, p in snapshots[2].items())
    assert any(not torch.equal(final[n], p) for n, p in snapshots[6].items())


def test_course_sft_keeps_the_weights_of_its_best_tracked_evaluation(tok):
    import dataclasses

    from ftlib.engine.sft_train import SFT_RECIPES, train_course_sft
    model = tiny(tok)
    examples = task_examples(tok, load_tasks("train", ["arithmetic"])[:16], template=tok.chat_template, max_length=128)
    recipe = dataclasses.replace(SFT_RECIPES["smoke"], steps=6, eval_every=2, rows=2, row_len=128, replay=0.0)
    seen, scores = [], iter([0.2, 0.8, 0.4])                   # the second evaluation (step 4) is the best

    def track(m):
        seen.append({n: p.detach().clone() for n, p in m.state_dict().items()})
        return {"arithmetic": next(scores)}
    history = train_course_sft(model, tok, "smoke", recipe=recipe, track=track,
                               data={"train": examples, "val": examples[:4], "general": []})
    assert history["eval_step"] == [2, 4, 6] and history["best_step"] == 4
    assert all(torch.equal(model.state_dict()[n], p) for n, p in seen[1].items())
