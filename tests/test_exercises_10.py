"""Chapter 10's exercise checkers: they accept the right answer and name the usual mistakes."""
from ftlib.cores.memory import zero_state_bytes
from ftlib.course.exercises import check
from ftlib.course.exercises.ch10_scaling_out import COLLECTIVE_STEPS, COLLECTIVES


def test_zero_bytes_checker(capsys):
    assert check("10.zero_bytes", zero_state_bytes)
    assert not check("10.zero_bytes", lambda psi, n, stage: {k: v / 1e9 for k, v in zero_state_bytes(psi, n, stage).items()})
    assert "bytes, not GB" in capsys.readouterr().out
    # everything sharded at every stage (ZeRO-3 for all): wrong from stage 0 on
    assert not check("10.zero_bytes", lambda psi, n, stage: zero_state_bytes(psi, n, 3))
    assert "does not shard this state yet" in capsys.readouterr().out
    # nothing sharded at any stage (DDP for all)
    assert not check("10.zero_bytes", lambda psi, n, stage: zero_state_bytes(psi, n, 0))
    assert "sharded: each rank keeps 1/8" in capsys.readouterr().out
    assert not check("10.zero_bytes", lambda psi, n, stage: [1, 2, 3])
    assert "return a dict" in capsys.readouterr().out


def test_collectives_checker(capsys):
    right = {"ddp gradients": "all-reduce", "zero2 gradients": "reduce-scatter",
             "zero3 weights before a layer runs": "all-gather", "zero3 gradients": "reduce-scatter",
             "zero1 updated weights": "all-gather"}
    assert set(right) == set(COLLECTIVE_STEPS) and set(right.values()) <= set(COLLECTIVES)
    assert check("10.collectives", right)
    capsys.readouterr()
    assert not check("10.collectives", dict(right, **{"zero2 gradients": "all-reduce"}))
    out = capsys.readouterr().out
    assert "1 of 5 wrong" in out and "'zero2 gradients'" in out and "reduce-scatter" not in out
    assert not check("10.collectives", {s: "allreduce" for s in COLLECTIVE_STEPS})
    assert "not one of" in capsys.readouterr().out
    assert not check("10.collectives", {})
    assert "missing" in capsys.readouterr().out
