"""Scaling out (chapter 10): every method runs on two CPU processes, learns what one process learns,
and holds the bytes the ZeRO formulas say; the GPU configs load with the libraries' own loaders."""
from pathlib import Path

import pytest
import torch

from ftlib.cores.memory import zero_state_bytes
from ftlib.engine.scaling import (CONFIG_DIR, METHODS, Spec, accelerate_settings, launch, make_model, micro_rows,
                                  saved_activation_bytes)

STAGE = {"ddp": 0, "zero1": 1, "zero2": 2, "zero3": 3, "fsdp2": 3}
SPEC = dict(steps=5, global_batch=8, micro_batch=2, lr=1e-2)   # gradient norms pass 1 by step 2 (DeepSpeed would clip)
# The same sums in another order: float32 rounding, which Adam's first steps (update ~ lr * sign(g)) can
# amplify slightly over a few steps; a wrong gradient moves the loss by far more
# (test_the_tolerance_catches_a_missing_rank).
LOSS_TOL = 1e-4


@pytest.fixture(scope="module")
def single():
    return launch(Spec(method="single", **SPEC), nproc=1)[0]


def test_micro_batches_cover_each_global_batch_once():
    spec = Spec(global_batch=8, micro_batch=2)
    taken = sorted(i for micro in range(2) for rank in range(2) for i in micro_rows(spec, 3, micro, rank, 2).tolist())
    assert taken == list(range(24, 32))


def test_spec_rejects_what_cannot_run():
    with pytest.raises(ValueError, match="method must be one of"):
        Spec(method="zero4")
    with pytest.raises(ValueError, match="multiple of ranks x micro_batch"):
        Spec(global_batch=6, micro_batch=4).accumulation(2)
    with pytest.raises(ValueError, match="exactly one"):
        launch(Spec(method="single"), nproc=2)


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in METHODS if m != "single"])
def test_two_processes_learn_what_one_does_and_hold_the_formula_bytes(method, single):
    ranks = launch(Spec(method=method, **SPEC), nproc=2)
    assert [r["rank"] for r in ranks] == [0, 1] and ranks[0]["accumulation"] == 2
    for r in ranks:
        assert r["losses"] == pytest.approx(single["losses"], abs=LOSS_TOL), method
    assert single["val_after"] < single["val_before"] - 0.02           # it learns, on rows it never saw
    for r in ranks:
        assert r["val_after"] == pytest.approx(single["val_after"], abs=LOSS_TOL), method
    psi = single["n_params"]
    want = zero_state_bytes(psi, 2, STAGE[method], weight_bytes=4, grad_bytes=4, optim_bytes=8)
    for r in ranks:
        held = r["bytes"]
        for kind in ("params", "grads", "optimizer"):
            # sharded states: a rank's shard is padded to equal sizes (at most a few rows per tensor)
            assert held[kind] == pytest.approx(want[kind], rel=0.02), (method, kind, held, want)


@pytest.mark.slow
def test_the_tolerance_catches_a_missing_rank(single):
    """One rank's rows left out of every step (half the global batch): the losses leave the tolerance."""
    half = launch(Spec(method="single", **dict(SPEC, global_batch=4)), nproc=1)[0]
    assert max(abs(a - b) for a, b in zip(half["losses"], single["losses"])) > 10 * LOSS_TOL


@pytest.mark.slow
def test_accumulation_equals_the_larger_batch():
    whole = launch(Spec(method="single", steps=3, global_batch=8, micro_batch=8), nproc=1)[0]
    parts = launch(Spec(method="single", steps=3, global_batch=8, micro_batch=2), nproc=1)[0]
    assert parts["accumulation"] == 4 and whole["accumulation"] == 1
    assert parts["losses"] == pytest.approx(whole["losses"], abs=LOSS_TOL)


def test_checkpointing_keeps_fewer_activations():
    ids = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(0))
    plain = saved_activation_bytes(make_model(Spec()), ids)
    checkpointed = saved_activation_bytes(make_model(Spec(checkpointing=True)), ids)
    assert 0 < checkpointed < plain / 2


def test_gpu_configs_load_with_the_libraries_loaders(monkeypatch):
    from accelerate.utils import FullyShardedDataParallelPlugin
    from deepspeed.runtime.config import DeepSpeedConfig

    files = sorted(CONFIG_DIR.glob("*.yaml"))
    assert len(files) == 3
    for path in files:
        settings = accelerate_settings(path)                  # accelerate's launcher: unknown keys raise
        assert int(settings["processes"]) == 8 * int(settings["machines"]), path.name
        if "FSDP_VERSION" in settings:
            for key, value in settings.items():
                monkeypatch.setenv(key, value)
            plugin = FullyShardedDataParallelPlugin()          # reads the FSDP_* variables, as in a launched job
            assert plugin.fsdp_version == 2 and plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]
            assert settings["ACCELERATE_MIXED_PRECISION"] == "bf16"
        else:
            ds = DeepSpeedConfig(str(CONFIG_DIR.parents[1] / settings["deepspeed_config_file"]))
            assert ds.zero_optimization_stage == 3 and ds.bfloat16_config.enabled


def test_a_config_with_an_unknown_key_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((CONFIG_DIR / "fsdp2_1node_8gpu.yaml").read_text() + "num_gpus_per_node: 8\n")
    with pytest.raises(ValueError, match="unknown keys"):
        accelerate_settings(bad)
