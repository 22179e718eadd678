"""Preference pairs built on-policy: the policy's own right answer against its own wrong one.

Pairs written from the reference answers (``preferences.py``) teach a policy little once it already
gives the chosen answer: DPO can then only push the rejected one down. On-policy pairs come from
what the policy really says on prompts it has not trained on: sample ``k`` answers per prompt,
check each with the task's verifier, and pair a right sample with a wrong one. Prompts where every
sample is right carry no such pair; a share of them get a written rejected answer of another kind
(``off_format`` or ``verbose``, as in ``preferences.py``) beside the policy's right answer, so a
reward model still sees those kinds. Prompts where every sample is wrong have nothing of the
policy's own to prefer; a capped share of them pair the reference answer with the policy's wrong
one (the skills it lacks), the rest are only counted.

``source`` says where the two sides come from: ``sampled`` (both from the policy: ``reason`` is
``wrong``), ``reference`` (the reference answer against the policy's wrong one), ``written`` (the
policy's right answer against a written ``off_format`` or ``verbose`` one).
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from .preferences import off_format_answer, verbose_answer
from .tasks import verify
from .world import rng_for


POOL_START = 2500   # a skill family's training items from here on are the pair prompts: no SFT recipe trains on them
RL_POOL = (2750, 3000)   # ...and from here on the RL prompts (chapter 06), after every profile's pair prompts


@dataclass(frozen=True)
class PairRecipe:
    per_family: int          # prompts per skill family for training pairs
    test_per_family: int     # further prompts per skill family for held-out pairs
    k: int                   # samples per prompt
    temperature: float
    written_share: float     # written off-format / verbose pairs as a share of all pairs
    reference_share: float   # at most this share of the prompts pair the reference answer with a wrong sample


PAIR_RECIPES = {
    "smoke": PairRecipe(per_family=3, test_per_family=2, k=2, temperature=1.0, written_share=0.25, reference_share=0.5),
    "cpu": PairRecipe(per_family=150, test_per_family=50, k=4, temperature=1.0, written_share=0.25, reference_share=0.1),
    "gpu": PairRecipe(per_family=200, test_per_family=50, k=8, temperature=1.0, written_share=0.25, reference_share=0.1),
}


@dataclass
class PairReport:
    """What happened to each prompt: how many gave a sampled pair, a written one, or none."""
    prompts: int = 0
    sampled: int = 0          # a right and a wrong sample: a "wrong" pair
    reference: int = 0        # all wrong, and chosen for a reference-vs-wrong pair
    written: int = 0          # all right, and chosen for a written off_format / verbose rejected
    all_right: int = 0        # all right (written pairs included)
    all_wrong: int = 0        # no right sample (reference pairs included)
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
                   written_share: float = 0.25, reference_share: float = 0.0, seed: int = 0,
                   id_prefix: str = "onpolicy") -> tuple[list[dict], PairReport]:
    """Pairs from ``k`` sampled ``answers`` per task row (``rows`` repeats each task ``k`` times in a row).

    ``exclude``: task ids the pairs must not touch (the policy's training items, the test items);
    one of them among ``rows`` raises. A sampled pair's chosen side is the right answer the policy
    gave most often, its rejected side the wrong one it gave most often. Reference pairs are added
    for all-wrong prompts up to ``reference_share`` of the prompts; written pairs for all-right
    prompts until they are ``written_share`` of all pairs (or the prompts run out).
    Returns (pairs as in ``preferences.py`` plus ``"source"``, with ids ``{id_prefix}-00001``…, the report).
    """
    groups, banned = _grouped(rows, answers, k), set(exclude)
    clash = sorted({row["id"] for row, _ in groups} & banned)
    if clash:
        raise ValueError(f"{len(clash)} prompts are excluded items (e.g. {clash[0]}): on-policy pairs need unseen prompts")
    rng, report, pairs = rng_for(seed, "onpolicy"), PairReport(prompts=len(groups)), []
    all_right, all_wrong = [], []
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
            all_wrong.append((row, _most_common(wrong)))
    report.all_right, report.all_wrong = len(all_right), len(all_wrong)
    rng.shuffle(all_wrong)
    for row, rejected in all_wrong[:round(reference_share * len(groups))]:
        pairs.append(_pair(row, row["answer"], rejected, "wrong", "reference"))
        report.reference += 1
        report.by_family[row["family"]]["pairs"] += 1
    rng.shuffle(all_right)
    own = report.sampled + report.reference
    target = round(written_share / (1 - written_share) * own)    # written / all pairs = written_share
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
        p["id"] = f"{id_prefix}-{i + 1:05d}"
    return pairs, report


def _pair(row: dict, chosen: str, rejected: str, reason: str, source: str) -> dict:
    return {"id": "", "task_id": row["id"], "family": row["family"], "prompt": row["prompt"], "chosen": chosen,
            "rejected": rejected, "reason": reason, "source": source}
