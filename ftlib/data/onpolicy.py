"""Preference pairs built on-policy: the policy's own right answer against its own wrong one.

Pairs written from the reference answers (``preferences.py``) teach a policy little once it already
gives the chosen answer: DPO can then only push the rejected one down. On-policy pairs come from
what the policy really says on prompts it has not trained on: sample ``k`` answers per prompt,
check each with the task's verifier, and pair a right sample with a wrong one. Prompts where every
sample is right carry no such pair; a share of them get a written rejected answer of another kind
(``off_format`` or ``verbose``, as in ``preferences.py``) beside the policy's right answer, so a
reward model still sees those kinds. Prompts where every sample is wrong carry no pair (the policy
has nothing of its own to prefer); they are counted.

``reason`` is ``wrong`` (both sides sampled from the policy), ``off_format`` or ``verbose`` (the
chosen side sampled, the rejected side written).
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from .preferences import off_format_answer, verbose_answer
from .tasks import verify
from .world import rng_for


@dataclass
class PairReport:
    """What happened to each prompt: how many gave a sampled pair, a written one, or none."""
    prompts: int = 0
    sampled: int = 0          # a right and a wrong sample: a "wrong" pair
    written: int = 0          # all right, and chosen for a written off_format / verbose rejected
    all_right: int = 0        # all right (written pairs included)
    all_wrong: int = 0        # no right sample: no pair
    by_family: dict = field(default_factory=dict)   # family -> {"prompts", "pairs"}


def _grouped(rows: Sequence[dict], answers: Sequence[str], k: int) -> list[tuple[dict, list[str]]]:
    """Consecutive runs of ``k`` (row, answer) into (row, its k answers), checking each run is one row."""
    if len(rows) != len(answers) or len(rows) % k:
        raise ValueError(f"expected k={k} answers per row: got {len(rows)} rows and {len(answers)} answers")
    groups = []
    for start in range(0, len(rows), k):
        ids = {r["id"] for r in rows[start:start + k]}
        if len(ids) != 1:
            raise ValueError(f"rows {start}..{start + k - 1} should be one task sampled {k} times, got {sorted(ids)}")
        groups.append((rows[start], [a.strip() for a in answers[start:start + k]]))
    return groups


def _most_common(answers: list[str]) -> str:
    """The answer given most often (the first given among ties)."""
    counts = Counter(answers)
    return max(answers, key=lambda a: (counts[a], -answers.index(a)))


def onpolicy_pairs(rows: Sequence[dict], answers: Sequence[str], *, k: int, exclude: Sequence[str] = (),
                   written_share: float = 0.25, seed: int = 0) -> tuple[list[dict], PairReport]:
    """Pairs from ``k`` sampled ``answers`` per task row (``rows`` repeats each task ``k`` times in a row).

    ``exclude``: task ids the pairs must not touch (the policy's training items, the test items);
    one of them among ``rows`` raises. A sampled pair's chosen side is the right answer the policy
    gave most often, its rejected side the wrong one it gave most often. Written pairs are added
    for all-right prompts until they are ``written_share`` of all pairs (or the prompts run out).
    Returns (pairs as in ``preferences.py`` plus ``"source"``, the report).
    """
    groups, banned = _grouped(rows, answers, k), set(exclude)
    clash = sorted({row["id"] for row, _ in groups} & banned)
    if clash:
        raise ValueError(f"{len(clash)} prompts are excluded items (e.g. {clash[0]}): on-policy pairs need unseen prompts")
    rng, report, pairs, all_right = rng_for(seed, "onpolicy"), PairReport(prompts=len(groups)), [], []
    for row, said in groups:
        fam = report.by_family.setdefault(row["family"], {"prompts": 0, "pairs": 0})
        fam["prompts"] += 1
        right = [a for a in said if verify(row, a)]
        wrong = [a for a in said if not verify(row, a)]
        if right and wrong:
            pairs.append(_pair(row, _most_common(right), _most_common(wrong), "wrong", "sampled"))
            report.sampled += 1
            fam["pairs"] += 1
        elif right:
            all_right.append((row, _most_common(right)))
        else:
            report.all_wrong += 1
    report.all_right = len(all_right)
    rng.shuffle(all_right)
    target = round(written_share / (1 - written_share) * report.sampled)    # written / all pairs = written_share
    for row, chosen in all_right:
        if report.written >= target:
            break
        off = off_format_answer(row, rng)
        reason, rejected = ("off_format", off) if off and rng.random() < 0.6 else ("verbose", verbose_answer(row, rng))
        if rejected.strip() == chosen or (reason == "off_format" and verify(row, rejected)):
            continue
        pairs.append(_pair(row, chosen, rejected, reason, "written"))
        report.written += 1
        report.by_family[row["family"]]["pairs"] += 1
    pairs.sort(key=lambda p: p["task_id"])
    for i, p in enumerate(pairs):
        p["id"] = f"onpolicy-{i + 1:05d}"
    return pairs, report


def _pair(row: dict, chosen: str, rejected: str, reason: str, source: str) -> dict:
    return {"id": "", "task_id": row["id"], "family": row["family"], "prompt": row["prompt"], "chosen": chosen,
            "rejected": rejected, "reason": reason, "source": source}
