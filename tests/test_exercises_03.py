"""Chapter 03's exercise checkers: they accept the right answer and give a useful hint otherwise."""
from ftlib.course.exercises import check

SHAPES = [(576, 576), (192, 576)] * 3        # q_proj and v_proj of SmolLM2, three layers


def test_delta_weight_checker(capsys):
    assert check("03.delta_weight", lambda A, B, alpha, r: (alpha / r) * B @ A)
    assert not check("03.delta_weight", lambda A, B, alpha, r: B @ A)
    assert "forgot the scaling" in capsys.readouterr().out
    assert not check("03.delta_weight", lambda A, B, alpha, r: (r / alpha) * B @ A)
    assert "upside down" in capsys.readouterr().out
    assert not check("03.delta_weight", lambda A, B, alpha, r: (alpha / r) * (B @ A).T)
    assert "shape" in capsys.readouterr().out
    assert not check("03.delta_weight", lambda A, B, alpha, r: None)
    assert "returns None" in capsys.readouterr().out
    assert not check("03.delta_weight", None)
    assert not check("03.delta_weight", "B @ A")            # not callable: a hint, no crash


def test_trainable_count_checker(capsys):
    want = 3 * (4 * 1152 + 4 * 768)
    assert check("03.trainable_count", want, shapes=SHAPES, r=4)
    assert not check("03.trainable_count", 3 * (576 * 576 + 192 * 576), shapes=SHAPES, r=4)
    assert "full-fine-tuning" in capsys.readouterr().out
    assert not check("03.trainable_count", 3 * (4 * 576 + 4 * 576), shapes=SHAPES, r=4)   # only A
    assert "only one of" in capsys.readouterr().out
    assert not check("03.trainable_count", 4 * 1152 + 4 * 768, shapes=SHAPES, r=4)
    assert "one layer" in capsys.readouterr().out
    assert not check("03.trainable_count", 3 * 4 * 4 * 576, shapes=SHAPES, r=4)             # all square
    assert "not every projection is square" in capsys.readouterr().out
    assert not check("03.trainable_count", "lots", shapes=SHAPES, r=4)
