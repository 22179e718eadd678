import pytest

from ftlib.cores.memory import zero_memory_gb, zero_table


def test_zero_stages_match_the_zero_paper_example():
    # ZeRO paper, Figure 1: Ψ = 7.5B parameters, N = 64 GPUs, K = 12 bytes of optimizer state.
    assert zero_memory_gb(7.5e9, 64, 0) == pytest.approx(120.0)
    assert zero_memory_gb(7.5e9, 64, 1) == pytest.approx(31.4, abs=0.05)
    assert zero_memory_gb(7.5e9, 64, 2) == pytest.approx(16.6, abs=0.05)
    assert zero_memory_gb(7.5e9, 64, 3) == pytest.approx(1.875)


def test_one_gpu_gets_no_saving_and_more_gpus_only_help_sharded_stages():
    for stage in range(4):
        assert zero_memory_gb(7e9, 1, stage) == pytest.approx(7e9 * 16 / 1e9)  # 112 GB
    assert zero_memory_gb(7e9, 8, 0) == zero_memory_gb(7e9, 64, 0)
    per_stage = [zero_memory_gb(7e9, 8, s) for s in range(4)]
    assert per_stage == sorted(per_stage, reverse=True) and per_stage[0] > per_stage[3]
    assert zero_memory_gb(7e9, 8, 3, optim_bytes=8) < per_stage[3]  # the byte counts are parameters


def test_table_and_bad_arguments():
    rows = zero_table(7e9, gpu_counts=(1, 8))
    assert [r["stage"] for r in rows] == [0, 1, 2, 3] and rows[3]["8 GPUs"] == 14.0
    with pytest.raises(ValueError):
        zero_memory_gb(7e9, 8, 4)
    with pytest.raises(ValueError):
        zero_memory_gb(7e9, 0, 1)
