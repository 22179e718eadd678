"""Write every generated data file, and check that the committed ones are what the code makes.

>>> GENERATED[-1]
'MANIFEST.json'
>>> lexicon_rows()[0]
{'en': 'one', 'zh': '一', 'category': 'number', 'en_alt': [], 'zh_alt': []}
"""
import hashlib
import json
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from .capstone import date_rows, with_mistakes
from .corpus import build_corpus, label_counts
from .jsonl import write_jsonl
from .preferences import build_preferences
from .tasks import FAMILIES, build_tasks
from .world import LEXICON, place_names

MANIFEST = "MANIFEST.json"
JSONL_FILES = ("corpus_raw.jsonl", "tasks_train.jsonl", "tasks_val.jsonl", "tasks_test.jsonl",
               "preferences_train.jsonl", "preferences_test.jsonl", "lexicon_en_zh.jsonl",
               "capstone_train.jsonl", "capstone_test.jsonl")
FLAWED = "capstone_train_flawed.jsonl"     # a learner's file with planted mistakes: not all lines are JSON
GENERATED = JSONL_FILES + (FLAWED, MANIFEST)
CAPSTONE = {"train": 800, "test": 200}     # chapter 11's example dataset (dates to ISO 8601), rows per split


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def lexicon_rows():
    """The lexicon (category number, colour, ... ) and the place names (category place) as dicts."""
    return [{**asdict(w), "en_alt": list(w.en_alt), "zh_alt": list(w.zh_alt)} for w in LEXICON + place_names()]


def write_files(out_dir, seed=0):
    """Build everything with `seed`, write the JSONL files and MANIFEST.json into out_dir; return the manifest."""
    out_dir = Path(out_dir)
    corpus, tasks = build_corpus(seed), build_tasks(seed)
    prefs = build_preferences(tasks, seed)
    dates = {"train": date_rows(CAPSTONE["train"], seed), "test": date_rows(CAPSTONE["test"], seed, offset=CAPSTONE["train"])}
    contents = {"corpus_raw.jsonl": corpus, "lexicon_en_zh.jsonl": lexicon_rows(),
                **{f"capstone_{s}.jsonl": rows for s, rows in dates.items()},
                **{f"tasks_{s}.jsonl": rows for s, rows in tasks.items()},
                **{f"preferences_{s}.jsonl": rows for s, rows in prefs.items()}}
    files = {}
    for name in JSONL_FILES:
        rows = write_jsonl(out_dir / name, contents[name])
        files[name] = {"rows": rows, "bytes": (out_dir / name).stat().st_size, "sha256": sha256_of(out_dir / name)}
    lines, planted = with_mistakes(dates["train"], dates["test"], seed)
    (out_dir / FLAWED).write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")
    files[FLAWED] = {"rows": len(lines), "bytes": (out_dir / FLAWED).stat().st_size, "sha256": sha256_of(out_dir / FLAWED)}
    manifest = {
        "command": f"python -m ftlib.data build --seed {seed}", "seed": seed, "files": files,
        "corpus_labels": label_counts(corpus), "corpus_langs": dict(sorted(Counter(r["lang"] for r in corpus).items())),
        "task_families": {f: {s: sum(r["family"] == f for r in tasks[s]) for s in tasks} for f in FAMILIES},
        "capstone_mistakes": [{"line": line, "kind": kind, "field": field} for line, kind, field in planted],
        "preference_reasons": {s: dict(sorted(Counter(r["reason"] for r in rows).items()))
                               for s, rows in prefs.items()},
    }
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (out_dir / MANIFEST).write_text(text, encoding="utf-8", newline="\n")
    return manifest


def differing_files(data_dir, seed=0):
    """Rebuild into a temporary folder; return the generated file names whose bytes differ (or are missing)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_files(tmp, seed)
        return [name for name in GENERATED if not (Path(data_dir) / name).is_file()
                or (Path(data_dir) / name).read_bytes() != (Path(tmp) / name).read_bytes()]
