"""The raw pretraining corpus: clean English and Chinese prose with labelled, planted defects.

`build_corpus(seed)` returns rows
    {"id": "doc-00001", "text", "lang": "en"|"zh"|"es"|"de", "labels": [...], "dup_of": id or None,
     "pii": [{"kind", "start", "end"}], "tricky": [{"kind", "start", "end"}]}
Clean documents have `labels == []`. Duplicates always point at an earlier clean document.
`tricky` spans are number-shaped values that are NOT personal data (dates, versions, ids...).

>>> rows = build_corpus(seed=0, n_docs=60)
>>> len(rows), rows[0]["id"], rows[0]["labels"]
(60, 'doc-00001', [])
>>> all(r["text"][s["start"]:s["end"]] for r in rows for s in r["pii"] + r["tricky"])
True
"""
from collections import Counter

from .defects import add_pii, boilerplate, junk, near_duplicate_edit, other_language, too_short
from .prose import english_document
from .prose_zh import chinese_document
from .spans import PII_KINDS, TRICKY_KINDS, unmark
from .world import rng_for

LABELS = ("exact_duplicate", "near_duplicate", "boilerplate", "pii", "junk", "too_short", "other_language")
SHARES = {  # kind of document -> share of the corpus; the rest is clean English
    "exact_duplicate": 0.05, "near_duplicate": 0.05, "boilerplate": 0.025, "pii": 0.03,
    "junk": 0.025, "too_short": 0.025, "other_language": 0.03, "clean_zh": 0.09,
}
N_WARMUP = 20  # the first documents are clean English, so a duplicate always has a source
MAX_JACCARD = 0.5  # unlabelled prose documents overlap less than this with each other...
MIN_NEAR_JACCARD = 0.75  # ...and planted near-duplicates at least this much with their source
INDEXED = {"clean_en", "clean_zh", "pii", "other_language"}  # kinds that must not be accidental near-duplicates


def plan_kinds(n_docs, rng):
    """The kind of each document, in order: N_WARMUP clean ones, then a shuffled mix."""
    counts = {kind: round(n_docs * share) for kind, share in SHARES.items()}
    kinds = [kind for kind in SHARES for _ in range(counts[kind])]
    kinds += ["clean_en"] * (n_docs - N_WARMUP - len(kinds))
    rng.shuffle(kinds)
    return ["clean_en"] * N_WARMUP + kinds


def make_document(kind, rng, clean):
    """One document of `kind`. `clean` lists earlier clean docs as (id, marked text, lang).

    Returns (marked text, lang, labels, dup_of).
    """
    if kind == "clean_en":
        return english_document(rng)[1], "en", [], None
    if kind == "clean_zh":
        return chinese_document(rng)[1], "zh", [], None
    if kind in ("exact_duplicate", "near_duplicate"):
        src_id, src_text, lang = rng.choice(clean)
        text = src_text if kind == "exact_duplicate" else near_duplicate_edit(rng, src_text, lang)
        return text, lang, [kind], src_id
    if kind == "pii":
        genre = rng.choice(["letter", "notice", "diary", "trading", "travel"])
        return add_pii(rng, english_document(rng, genre, max_words=170)[1]), "en", ["pii"], None
    if kind == "other_language":
        lang = rng.choice(["es", "de"])
        return other_language(rng, lang), lang, ["other_language"], None
    makers = {"boilerplate": boilerplate, "junk": junk, "too_short": too_short}
    return makers[kind](rng), "en", [kind], None


def trigram_shingles(text, lang):
    """Word 3-grams (character 4-grams for Chinese), the sets whose Jaccard we bound.

    >>> sorted(trigram_shingles("A b c d", "en"))
    ['a b c', 'b c d']
    """
    if lang == "zh":
        text = "".join(text.split())
        return {text[i:i + 4] for i in range(len(text) - 3)}
    words = text.lower().split()
    return {" ".join(words[i:i + 3]) for i in range(len(words) - 2)}


def jaccard(a, b):
    """|a & b| / |a | b|: jaccard({1, 2}, {2, 3}) -> 0.333..."""
    common = len(a & b)
    return common / (len(a) + len(b) - common) if a or b else 1.0


class ShingleIndex:
    """Earlier documents' shingle sets, with postings so a new one is compared only to overlapping ones."""

    def __init__(self):
        self.sets, self.postings = [], {}

    def max_jaccard(self, new):
        """The largest Jaccard similarity between the set `new` and any added set (0.0 if none)."""
        overlap = Counter()
        for s in new:
            overlap.update(self.postings.get(s, ()))
        return max((c / (len(new) + len(self.sets[j]) - c) for j, c in overlap.items()), default=0.0)

    def add(self, new):
        for s in new:
            self.postings.setdefault(s, []).append(len(self.sets))
        self.sets.append(new)


def to_row(doc_id, marked, lang, labels, dup_of):
    """Strip the span markers and split the spans into `pii` and `tricky`."""
    text, spans = unmark(marked)
    return {"id": doc_id, "text": text, "lang": lang, "labels": labels, "dup_of": dup_of,
            "pii": [s for s in spans if s["kind"] in PII_KINDS],
            "tricky": [s for s in spans if s["kind"] in TRICKY_KINDS]}


def acceptable(kind, text, sh, seen, index, source_shingles):
    """Is a candidate what its kind says and nothing more? Only labelled copies repeat a text,
    prose is never an accidental near-copy of earlier prose, and planted near-copies stay near."""
    if kind == "exact_duplicate":
        return True
    if text in seen:
        return False
    if kind == "near_duplicate":
        return jaccard(sh, source_shingles) >= MIN_NEAR_JACCARD
    return kind not in INDEXED or index.max_jaccard(sh) < MAX_JACCARD


def build_corpus(seed=0, n_docs=4000):
    """Generate the raw corpus as a list of rows (see module docstring), deterministic in seed."""
    rng = rng_for(seed, "corpus")
    rows, clean, seen, index, clean_shingles = [], [], set(), ShingleIndex(), {}
    for i, kind in enumerate(plan_kinds(n_docs, rng)):
        doc_id = f"doc-{i + 1:05d}"
        for _ in range(200):  # regenerate until the document is what its label says, and nothing more
            marked, lang, labels, dup_of = make_document(kind, rng, clean)
            row = to_row(doc_id, marked, lang, labels, dup_of)
            sh = trigram_shingles(row["text"], lang)
            if acceptable(kind, row["text"], sh, seen, index, clean_shingles.get(dup_of)):
                break
        else:
            raise RuntimeError(f"could not make a {kind} document for {doc_id}")
        seen.add(row["text"])
        if kind in INDEXED:
            index.add(sh)
        if not labels:
            clean.append((doc_id, marked, lang))
            clean_shingles[doc_id] = sh
        rows.append(row)
    return rows


def label_counts(rows):
    """{"clean": n, "pii": n, ...} in LABELS order, for the manifest and the tests."""
    counts = Counter(label for row in rows for label in row["labels"])
    out = {"clean": sum(1 for row in rows if not row["labels"])}
    out.update({label: counts[label] for label in LABELS})
    return out
