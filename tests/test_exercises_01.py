import math

from ftlib.course.exercises import check


def warmup_cosine(step, steps, lr, warmup_steps, min_lr_ratio):
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, steps - warmup_steps))
    return min_lr_ratio * lr + (1 - min_lr_ratio) * lr * 0.5 * (1 + math.cos(math.pi * progress))


def test_warmup_cosine_checker_accepts_a_correct_schedule_and_rejects_near_misses(capsys):
    assert check("01.warmup_cosine", warmup_cosine)
    no_floor = lambda s, n, lr, w, f: warmup_cosine(s, n, lr, w, 0.0)  # noqa: E731  decays to zero
    assert not check("01.warmup_cosine", no_floor)
    assert "cosine decay" in capsys.readouterr().out
    from_zero = lambda s, n, lr, w, f: lr * s / w if s < w else warmup_cosine(s, n, lr, w, f)  # noqa: E731
    assert not check("01.warmup_cosine", from_zero)
    assert "(warmup)" in capsys.readouterr().out
    assert not check("01.warmup_cosine", None)
    assert not check("01.warmup_cosine", "not a function")  # a hint, not a traceback


def test_repeated_line_ratio_checker(capsys):
    def mine(text):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return (len(lines) - len(set(lines))) / max(1, len(lines))

    assert check("01.repeated_line_ratio", mine)

    def counts_blank_lines(text):
        lines = [line.strip() for line in text.splitlines()]
        return (len(lines) - len(set(lines))) / max(1, len(lines))

    assert not check("01.repeated_line_ratio", counts_blank_lines)
    assert "too low" in capsys.readouterr().out
    assert not check("01.repeated_line_ratio", lambda text: 1 / 0)
