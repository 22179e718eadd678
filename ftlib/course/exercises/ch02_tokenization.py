"""Chapter 02 (tokenization): the exercises' checkers. Each returns ``(ok, hint)``; :func:`ftlib.course.exercises.check`
prints the verdict."""
from __future__ import annotations

from typing import Callable

from ftlib.course.exercises.core import off


def _merge_once(answer, *, ids, new_id) -> tuple[bool, str]:
    """02.merge: ``answer`` is ``ids`` after merging its most frequent adjacent pair into ``new_id``."""
    from ftlib.cores.bpe import get_stats, merge
    stats = get_stats(list(ids))
    best = max(stats.values())
    top = [p for p, c in stats.items() if c == best]
    if len(top) > 1:
        return False, f"this exercise needs one most frequent pair, but {top} tie with {best} each"
    expected = merge(list(ids), top[0], new_id)
    answer = list(answer)
    if answer == expected:
        return True, f"pair {top[0]} occurs {best} times; merging it shortens {len(ids)} ids to {len(expected)}"
    if new_id not in answer:
        return False, f"the merged pair should become the new id {new_id}, which your list never contains"
    if answer.count(new_id) != expected.count(new_id):
        return False, (f"your list has {answer.count(new_id)} × {new_id}: merge the most frequent pair (count pairs "
                       "with get_stats), every place it occurs, left to right")
    i = next((i for i, (a, b) in enumerate(zip(answer, expected)) if a != b), min(len(answer), len(expected)))
    return False, f"right count of {new_id}, but your list goes wrong at position {i}: keep every other id in order"


def _bytes_per_token(answer, *, text, ids) -> tuple[bool, str]:
    """02.bytes_per_token: UTF-8 bytes of ``text`` divided by the number of token ``ids``."""
    expected = len(text.encode("utf-8")) / len(ids)
    if abs(float(answer) - expected) <= 0.01:
        return True, f"{len(text.encode('utf-8'))} bytes / {len(ids)} tokens = {expected:.2f} bytes per token"
    if abs(float(answer) - len(text) / len(ids)) <= 0.01 and len(text) != len(text.encode("utf-8")):
        return False, ("you divided characters, not bytes: use len(text.encode('utf-8')) — "
                       "a Chinese character is 3 bytes")
    if abs(float(answer) - len(ids) / len(text.encode("utf-8"))) <= 0.01:
        return False, "upside down: bytes divided by tokens, so a bigger number means more compression"
    return False, f"{float(answer):.2f} is {off(float(answer), expected)}: UTF-8 bytes of the text divided by the number of token ids"


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "02.merge": _merge_once,
    "02.bytes_per_token": _bytes_per_token,
}
