import math

import pytest
import torch

from ftlib.engine.hardware import seed_everything
from ftlib.engine.models import TinyConfig, tiny_llama
from ftlib.engine.train import TrainConfig, lr_at, param_groups, train

CFG = TinyConfig(vocab_size=64, hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                 intermediate_size=64, max_seq_len=32)


def make_model(seed=0):
    seed_everything(seed)
    return tiny_llama(CFG)


def pattern_batches(batch_size=8, seq_len=16):
    """A learnable stream: token t+1 = (token t + 3) mod 64, random starts, fixed per step."""
    def get_batch(step, micro):
        g = torch.Generator().manual_seed(1000 * step + micro)
        start = torch.randint(0, 64, (batch_size, 1), generator=g)
        x = (start + 3 * torch.arange(seq_len)) % 64
        return {"input_ids": x, "labels": x}
    return get_batch


def test_schedule_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))           # never rises after warmup
    assert lrs[55] == pytest.approx(0.55) and lrs[100] == pytest.approx(0.1)
    assert min(lrs) == pytest.approx(0.1)


def test_weight_decay_only_on_matrices():
    decay, no_decay = param_groups(make_model(), 0.1)
    assert all(p.dim() >= 2 for p in decay["params"]) and decay["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    assert len(no_decay["params"]) == 2 * CFG.n_layers + 1             # the RMSNorm weights


def test_accumulating_4x8_gives_the_gradient_of_one_batch_of_32():
    full = pattern_batches(batch_size=32)(0, 0)
    model_a, model_b = make_model(), make_model()
    model_a.train()
    model_a(**full).loss.backward()

    def micro_batch(step, micro):   # the same 32 rows, in four slices of 8
        return {k: v[8 * micro: 8 * (micro + 1)] for k, v in full.items()}

    train(model_b, micro_batch, TrainConfig(steps=1, grad_accum=4, max_grad_norm=0, warmup_steps=1),
          progress=False)
    grads_a = [p.grad for p in model_a.parameters()]
    grads_b = [p.grad for p in model_b.parameters()]
    assert sum(g.abs().sum() for g in grads_a) > 0                      # there is a gradient
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(gb, ga, rtol=1e-4, atol=1e-6)
    # a single micro-batch of 8 alone would be a different gradient: the test can fail
    model_c = make_model()
    model_c(**micro_batch(0, 0)).loss.backward()
    assert not torch.allclose(next(model_c.parameters()).grad, grads_a[0], atol=1e-6)


def test_training_lowers_the_loss_and_changes_the_weights():
    model = make_model()
    before = [p.detach().clone() for p in model.parameters()]
    history = train(model, pattern_batches(), TrainConfig(steps=40, lr=3e-3, warmup_steps=4),
                    evaluate=lambda m: 0.0, progress=False)
    assert len(history["loss"]) == 40 and history["tokens"] == 40 * 8 * 16
    assert history["loss"][0] > math.log(64) - 0.5                      # starts near a uniform guess
    assert sum(history["loss"][-5:]) / 5 < 0.7 * history["loss"][0]
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert max(history["grad_norm"]) > 0


def test_resume_continues_exactly_where_the_interrupted_run_stopped(tmp_path):
    cfg = lambda d: TrainConfig(steps=12, lr=3e-3, warmup_steps=2, ckpt_every=4, ckpt_dir=str(d))
    straight = make_model()
    h_straight = train(straight, pattern_batches(), cfg(tmp_path / "a"), progress=False)

    first = make_model()
    h_first = train(first, pattern_batches(), cfg(tmp_path / "b"), stop_after=6, progress=False)
    assert h_first["step"] == list(range(6))
    resumed = make_model(seed=123)        # a different init: everything must come from the checkpoint
    h_resumed = train(resumed, pattern_batches(), cfg(tmp_path / "b"), progress=False)

    assert h_resumed["step"] == list(range(12))
    assert h_resumed["loss"] == pytest.approx(h_straight["loss"], rel=1e-5)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
