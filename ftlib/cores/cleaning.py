"""Cleaning a raw pretraining corpus: dedup, quality filters, PII masking, and a score.

Each stage is a pure function of text. :func:`clean` runs them in order over corpus rows
(``{"id", "text", ...}``) and reports what each stage flagged; :func:`score` compares those flags
with the ground-truth labels the corpus generator planted (see :mod:`ftlib.data`), corrected by
:func:`defect_labels` where a planted near-copy became an exact one.

    stage          catches                         how
    too_short      scraps                          fewer than 8 words (Chinese: 8 characters)
    junk           symbol soup, mashing, blobs     repeated lines, symbol ratio, long "words", no function words
    boilerplate    menus, cookie banners, footers  share of lines that are web boilerplate
    language       not English or Chinese          script + stopword counts
    exact_dedup    copies, up to case/whitespace   hash of normalised text (case, whitespace), keep first
    near_dedup     lightly edited copies           MinHash + LSH over 5-shingles, keep first
    pii            emails, phones, IPv4            regexes with guards against look-alikes; masks, keeps the doc

The cheap per-document filters run first (as in FineWeb), so dedup compares fewer documents and
a repeated scrap counts as a scrap, not as a duplicate.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter

# ---------------------------------------------------------------------------------------------
# Deduplication
# ---------------------------------------------------------------------------------------------
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def normalize(text: str) -> str:
    """NFKC, lower case, all whitespace runs collapsed: ``normalize(" A\\tb ") == "a b"``."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def exact_dedup(texts: list[str]) -> dict[int, int]:
    """``{duplicate index: index of its first occurrence}`` by a hash of the :func:`normalize` d text.

    >>> exact_dedup(["a b", "c", "A  b"])
    {2: 0}
    """
    first, dups = {}, {}
    for i, text in enumerate(texts):
        key = hashlib.sha1(normalize(text).encode()).hexdigest()
        if key in first:
            dups[i] = first[key]
        else:
            first[key] = i
    return dups


def word_shingles(text: str, n: int = 5) -> set[str]:
    """Word n-grams for space-separated text, character n-grams for Chinese (no spaces).

    >>> sorted(word_shingles("the cat sat on the mat", n=5))
    ['cat sat on the mat', 'the cat sat on the']
    >>> sorted(word_shingles("小猫在河边", n=4))
    ['小猫在河', '猫在河边']
    """
    text = normalize(text)
    chinese = cjk_ratio(text) > 0.3
    units, sep = (list(text.replace(" ", "")), "") if chinese else (text.split(), " ")
    if len(units) <= n:
        return {sep.join(units)}
    return {sep.join(units[i:i + n]) for i in range(len(units) - n + 1)}


def minhashes(texts: list[str], num_perm: int = 128, shingle: int = 5, seed: int = 1,
              progress: bool = False) -> list:
    """One datasketch ``MinHash`` per text (the slow part of near-dedup; compute once, reuse)."""
    from datasketch import MinHash
    from tqdm.auto import tqdm
    out = []
    for text in tqdm(texts, desc="minhash", disable=not progress):
        m = MinHash(num_perm=num_perm, seed=seed)
        m.update_batch([s.encode() for s in word_shingles(text, shingle)])
        out.append(m)
    return out


# Estimated Jaccard above which near_dedup calls two documents copies; clean() uses it, and so does
# the course base model (ftlib.engine.pretrain). Chapter 01 (1.2) chooses it by a sweep against the labels.
NEAR_THRESHOLD = 0.6


def near_dedup(texts: list[str], threshold: float = NEAR_THRESHOLD, num_perm: int = 128, shingle: int = 5,
               signatures: list | None = None) -> dict[int, int]:
    """``{duplicate index: index of a kept near-copy}``: estimated Jaccard of shingles ≥ ``threshold``.

    LSH (banded MinHash) proposes candidates among the documents kept so far; the estimated
    Jaccard similarity confirms them. Pass ``signatures=minhashes(texts)`` to sweep thresholds cheaply.

    >>> near_dedup(["the cat sat on the mat by the door today", "a dog ran far away from here",
    ...             "the cat sat on the mat by the door today again"], threshold=0.5)
    {2: 0}
    """
    from datasketch import MinHashLSH
    signatures = signatures or minhashes(texts, num_perm, shingle)
    lsh = MinHashLSH(threshold=threshold, num_perm=len(signatures[0].hashvalues) if signatures else num_perm)
    dups = {}
    for i, m in enumerate(signatures):
        best = max(((m.jaccard(signatures[j]), j) for j in lsh.query(m)), default=(0.0, -1))
        if best[0] >= threshold:
            dups[i] = best[1]
        else:
            lsh.insert(i, m)
    return dups


# ---------------------------------------------------------------------------------------------
# Quality filters: each returns a number; the thresholds live in clean()
# ---------------------------------------------------------------------------------------------
def cjk_ratio(text: str) -> float:
    """Share of non-space characters that are CJK ideographs: ``cjk_ratio("ab小猫") == 0.5``."""
    chars = [c for c in text if not c.isspace()]
    return sum(1 for c in chars if _CJK.match(c)) / max(1, len(chars))


def length(text: str) -> int:
    """Words, counting each CJK character as a word: ``length("Rain in 维尔莫拉") == 6``."""
    return len(_CJK.sub(" ", text).split()) + len(_CJK.findall(text))


def repeated_line_ratio(text: str) -> float:
    """Share of non-empty lines that repeat an earlier line.

    >>> repeated_line_ratio("buy now\\nbuy now\\nbuy now\\nsomething else")
    0.5
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (len(lines) - len(set(lines))) / max(1, len(lines))


def symbol_ratio(text: str) -> float:
    """Share of non-space characters that are neither letters, digits nor common punctuation.

    >>> symbol_ratio("ok!! #$%&")
    0.5
    """
    chars = [c for c in text if not c.isspace()]
    common = set(".,;:!?'\"()-–—…、，。！？：；（）“”‘’")
    return sum(1 for c in chars if not (c.isalnum() or c in common)) / max(1, len(chars))


def mean_word_length(text: str) -> float:
    """Mean length of space-separated words (a base64 blob is one 76-character "word")."""
    words = text.split()
    return sum(map(len, words)) / max(1, len(words))


STOPWORDS = {  # the most frequent function words; a real sentence in the language has several
    "en": set("the a an and of to in is was on at for with it he she they his her i my we you "
              "that this but by from as be had have are not".split()),
    "es": set("el la los las de del y en un una es está que con por para se su al muy hay".split()),
    "de": set("der die das den dem und ist ein eine im in zu mit von sie es auf am nicht ich".split()),
    "fr": set("le la les des du et est un une dans que pour avec sur au pas je il elle".split()),
}


def stopword_counts(text: str) -> dict[str, int]:
    """How many words of ``text`` are stopwords of each language in :data:`STOPWORDS`."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    return {lang: sum(w in stop for w in words) for lang, stop in STOPWORDS.items()}


def language(text: str) -> str:
    """``"zh"`` by script, else the language with the most stopwords, ``"unknown"`` with fewer than 2.

    >>> language("The river runs past the old mill."), language("小猫在河边喝水。")
    ('en', 'zh')
    >>> language("El pueblo está junto al río y hay un puente."), language("qwerty asdf zxcv")
    ('es', 'unknown')
    """
    if cjk_ratio(text) > 0.3:
        return "zh"
    counts = stopword_counts(text)
    best = max(counts, key=lambda lang: (counts[lang], lang == "en"))  # ties go to English
    return best if counts[best] >= 2 else "unknown"


_BOILERPLATE = re.compile(
    r"cookie|privacy|terms of use|all rights reserved|subscribe|newsletter|sign up|log in|"
    r"skip to|read more|back to top|share:|search this site|next article|previous article|menu:|"
    r"\s[|>·»↑]\s|[|>·»↑]$", re.IGNORECASE)


def boilerplate_ratio(text: str) -> float:
    """Share of non-empty lines that look like web boilerplate (menus, banners, footers).

    >>> boilerplate_ratio("Home | News | Contact\\nThe market opens early.\\n© 2024. All rights reserved.")
    0.6666666666666666
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return sum(bool(_BOILERPLATE.search(line)) for line in lines) / max(1, len(lines))


# ---------------------------------------------------------------------------------------------
# PII masking
# ---------------------------------------------------------------------------------------------
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
# optional +country code, an area code (in brackets or not), then 2-3 groups of digits; a date
# (2024-03-15) fails the 3-digit groups, an id (KB-2585-4104) fails the look-behind.
PHONE = re.compile(r"(?<![\w+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,5}\)|\d{2,5})(?:[ .-]\d{3,6}){1,2}(?![\w-]|\.\d)")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_VERSION_CONTEXT = re.compile(r"(?:version|release|build|\bv)\s*$", re.IGNORECASE)
PLACEHOLDERS = {"email": "[EMAIL]", "phone": "[PHONE]", "ip": "[IP]"}


def find_pii(text: str) -> list[dict]:
    """Sorted, non-overlapping ``{"kind", "start", "end"}`` spans of emails, phone numbers, IPv4s.

    >>> [s["kind"] for s in find_pii("Mail a.b@x.example or call 555-012-4271 from 192.0.2.7.")]
    ['email', 'phone', 'ip']
    >>> find_pii("version 2.10.3.1, build 1.2.3.4.5, on 2024-03-15 at 09:30 for 12.50, ref KB-2585-4104")
    []
    """
    spans = [{"kind": "email", "start": m.start(), "end": m.end()} for m in EMAIL.finditer(text)]
    for m in IPV4.finditer(text):
        octets_ok = all(int(part) <= 255 for part in m.group().split("."))
        if octets_ok and not _VERSION_CONTEXT.search(text[max(0, m.start() - 12):m.start()]):
            spans.append({"kind": "ip", "start": m.start(), "end": m.end()})
    for m in PHONE.finditer(text):
        if 9 <= sum(c.isdigit() for c in m.group()) <= 13:
            spans.append({"kind": "phone", "start": m.start(), "end": m.end()})
    spans.sort(key=lambda s: (s["start"], -s["end"]))
    kept, end = [], -1  # drop a span inside an earlier one (digits of an email, a phone inside an IP)
    for s in spans:
        if s["start"] >= end:
            kept.append(s)
            end = s["end"]
    return kept


def mask_pii(text: str) -> tuple[str, list[dict]]:
    """Replace every span of :func:`find_pii` with ``[EMAIL]``, ``[PHONE]`` or ``[IP]``.

    Returns ``(masked text, spans in the original text)``; everything else is kept as is.

    >>> mask_pii("Call (555) 013-8697 or write to wren@post.example.")[0]
    'Call [PHONE] or write to [EMAIL].'
    """
    spans = find_pii(text)
    pieces, pos = [], 0
    for s in spans:
        pieces += [text[pos:s["start"]], PLACEHOLDERS[s["kind"]]]
        pos = s["end"]
    return "".join(pieces) + text[pos:], spans


# ---------------------------------------------------------------------------------------------
# The pipeline and its score
# ---------------------------------------------------------------------------------------------
STAGES = ("too_short", "junk", "boilerplate", "language", "exact_dedup", "near_dedup", "pii")
TARGETS = {  # stage -> the defect (a label of defect_labels) it is meant to catch
    "too_short": "too_short", "junk": "junk", "boilerplate": "boilerplate", "language": "other_language",
    "exact_dedup": "exact_duplicate", "near_dedup": "near_duplicate", "pii": "pii",
}


def defect_labels(corpus: list[dict]) -> dict[str, set[str]]:
    """The defects each document is scored against: the planted ``labels``, with one correction.

    A ``near_duplicate`` whose edits were whitespace only is identical to its source after
    :func:`normalize`: it *is* an exact duplicate, so it is labelled ``exact_duplicate`` here, and
    exact dedup, not near dedup, is the stage that should catch it.

    >>> rows = [{"id": "a", "text": "The cat sat.", "labels": [], "dup_of": None},
    ...         {"id": "b", "text": "The  cat\\nsat.", "labels": ["near_duplicate"], "dup_of": "a"},
    ...         {"id": "c", "text": "The dog sat.", "labels": ["near_duplicate"], "dup_of": "a"}]
    >>> defect_labels(rows)
    {'a': set(), 'b': {'exact_duplicate'}, 'c': {'near_duplicate'}}
    """
    text = {row["id"]: row["text"] for row in corpus}
    out = {}
    for row in corpus:
        labels = set(row["labels"])
        if ("near_duplicate" in labels and row.get("dup_of") in text
                and normalize(row["text"]) == normalize(text[row["dup_of"]])):
            labels = labels - {"near_duplicate"} | {"exact_duplicate"}
        out[row["id"]] = labels
    return out


def is_junk(text: str, *, max_repeated: float = 0.3, max_symbols: float = 0.1,
            max_word_length: float = 12.0) -> bool:
    """Repeated lines, symbol soup, blob-like words, or Latin text with no function words."""
    return (repeated_line_ratio(text) > max_repeated or symbol_ratio(text) > max_symbols
            or (cjk_ratio(text) < 0.3 and mean_word_length(text) > max_word_length)
            or language(text) == "unknown")


def clean(corpus: list[dict], *, near_threshold: float = NEAR_THRESHOLD, min_length: int = 8,
          max_boilerplate: float = 0.3, keep_languages: tuple = ("en", "zh"), mask: bool = True,
          signatures: list | None = None) -> tuple[list[dict], list[dict]]:
    """Run :data:`STAGES` in order. Returns ``(kept rows, stage report)``.

    Kept rows are copies with PII masked (when ``mask``). The report has one dict per stage:
    ``{"stage", "flagged": [ids], "docs": kept after the stage, "words": their total length}``.
    ``signatures`` (``minhashes`` of all texts, in corpus order) skips recomputing MinHashes.
    """
    index = {row["id"]: i for i, row in enumerate(corpus)}
    rows, report = list(corpus), []

    def step(stage, flagged_ids):
        nonlocal rows
        flagged_ids = set(flagged_ids)
        rows = [r for r in rows if r["id"] not in flagged_ids] if stage != "pii" else rows
        report.append({"stage": stage, "flagged": sorted(flagged_ids), "docs": len(rows),
                       "words": sum(length(r["text"]) for r in rows)})

    report.append({"stage": "raw", "flagged": [], "docs": len(rows),
                   "words": sum(length(r["text"]) for r in rows)})
    step("too_short", [r["id"] for r in rows if length(r["text"]) < min_length])
    step("junk", [r["id"] for r in rows if is_junk(r["text"])])
    step("boilerplate", [r["id"] for r in rows if boilerplate_ratio(r["text"]) > max_boilerplate])
    step("language", [r["id"] for r in rows if language(r["text"]) not in keep_languages])
    step("exact_dedup", [rows[i]["id"] for i in exact_dedup([r["text"] for r in rows])])
    sigs = [signatures[index[r["id"]]] for r in rows] if signatures else None
    step("near_dedup", [rows[i]["id"] for i in near_dedup([r["text"] for r in rows], near_threshold,
                                                            signatures=sigs)])
    masked = [(r, *mask_pii(r["text"])) for r in rows]
    step("pii", [r["id"] for r, _, spans in masked if spans])
    if mask:
        rows = [{**r, "text": text, "pii_found": spans} for r, text, spans in masked]
    return rows, report


def score(corpus: list[dict], flagged_ids_by_stage: dict[str, list]) -> dict[str, dict]:
    """Precision and recall of each stage against the defect it targets, keyed by defect.

    Labels come from :func:`defect_labels` (a whitespace-only near-copy is an exact duplicate).
    For the stage that targets defect ``d``: ``hits`` = its flags that carry ``d``;
    precision = hits / flagged; recall = hits / documents carrying ``d``; ``removed`` = share of
    the ``d`` documents that any removing stage (all but ``pii``, which masks) took out, so a
    defect caught by an earlier stage shows there. Off-target flags are counted by their labels.

    >>> rows = [{"id": "a", "text": "x", "labels": [], "dup_of": None},
    ...         {"id": "b", "text": "x ", "labels": ["near_duplicate"], "dup_of": "a"}]
    >>> s = score(rows, {"exact_dedup": ["b"], "near_dedup": []})
    >>> s["exact_duplicate"]["precision"], s["exact_duplicate"]["recall"], s["near_duplicate"]["documents"]
    (1.0, 1.0, 0)
    """
    labels = defect_labels(corpus)
    removed_ids = set().union(*(set(ids) for stage, ids in flagged_ids_by_stage.items() if stage != "pii"))
    out = {}
    for stage, defect in TARGETS.items():
        flagged = set(flagged_ids_by_stage.get(stage, []))
        truth = {i for i, ls in labels.items() if defect in ls}
        hits = len(flagged & truth)
        off_target = Counter(label for i in flagged - truth for label in sorted(labels[i]) or ["clean"])
        out[defect] = {"stage": stage, "documents": len(truth), "flagged": len(flagged), "hits": hits,
                       "precision": hits / max(1, len(flagged)), "recall": hits / max(1, len(truth)),
                       "removed": len(removed_ids & truth) / max(1, len(truth)),
                       "off_target": dict(off_target)}
    return out


def sweep_near_threshold(corpus: list[dict], report: list[dict], thresholds, signatures: list) -> list[dict]:
    """Near dedup alone, rerun at each threshold on the documents that reach it in ``report``.

    ``report`` is :func:`clean`'s (its stages before near dedup do not depend on the threshold);
    ``signatures`` are :func:`minhashes` of all corpus texts, in corpus order. Each threshold is
    scored by :func:`score`, so the sweep and the pipeline's table use one definition.
    Returns ``[{"threshold", "flagged", "hits", "documents", "precision", "recall"}, ...]``.
    """
    before = STAGES[:STAGES.index("near_dedup")]
    flags = {r["stage"]: r["flagged"] for r in report if r["stage"] in before}
    removed = set().union(*map(set, flags.values()))
    reach = [i for i, row in enumerate(corpus) if row["id"] not in removed]
    texts, sigs = [corpus[i]["text"] for i in reach], [signatures[i] for i in reach]
    rows = []
    for threshold in thresholds:
        found = near_dedup(texts, threshold, signatures=sigs)
        s = score(corpus, {**flags, "near_dedup": [corpus[reach[j]]["id"] for j in found]})["near_duplicate"]
        rows.append({"threshold": threshold, **{k: s[k] for k in ("flagged", "hits", "documents",
                                                                 "precision", "recall")}})
    return rows


def choose_threshold(sweep: list[dict], min_precision: float = 0.99) -> dict:
    """The sweep row to use: best recall among rows with precision >= ``min_precision``; of equals,
    the highest threshold (the one that merges the fewest different documents on new data).

    >>> choose_threshold([{"threshold": 0.5, "precision": 0.97, "recall": 1.0},
    ...                   {"threshold": 0.6, "precision": 1.0, "recall": 1.0},
    ...                   {"threshold": 0.7, "precision": 1.0, "recall": 0.95}])["threshold"]
    0.6
    """
    ok = [row for row in sweep if row["precision"] >= min_precision]
    if not ok:
        raise ValueError(f"no threshold reaches precision {min_precision}")
    return max(ok, key=lambda row: (row["recall"], row["threshold"]))


def score_pii_spans(corpus: list[dict], found: dict[str, list[dict]]) -> dict[str, dict]:
    """Span-level PII score per kind: a found span is right when it equals a planted one exactly.

    ``found`` maps document id to :func:`find_pii` spans. ``tricky_flagged`` counts found spans
    that overlap a planted look-alike (version, date, time, price, id): those are the classic errors.
    """
    out = {}
    for kind in ("email", "phone", "ip"):
        truth = {(r["id"], s["start"], s["end"]) for r in corpus for s in r["pii"] if s["kind"] == kind}
        pred = {(i, s["start"], s["end"]) for i, spans in found.items() for s in spans if s["kind"] == kind}
        tricky = sum(1 for r in corpus for s in found.get(r["id"], []) if s["kind"] == kind
                     for t in r["tricky"] if s["start"] < t["end"] and t["start"] < s["end"])
        out[kind] = {"planted": len(truth), "found": len(pred), "precision": len(truth & pred) / max(1, len(pred)),
                     "recall": len(truth & pred) / max(1, len(truth)), "tricky_flagged": tricky}
    return out
