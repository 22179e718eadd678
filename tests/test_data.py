"""Tests for ftlib.data: the committed data is what the code makes, the labels are true, the verifiers are fair."""
import doctest
import hashlib
import importlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ftlib.data import (DATA_DIR, FAMILIES, LEXICON, JsonlError, alpaca_to_messages, from_messages, load_corpus,
                        load_preferences, load_tasks, messages_to_alpaca, messages_to_sharegpt, normalize_prompt,
                        read_jsonl, render_chatml, sharegpt_to_messages, task_to_messages, to_messages, verify,
                        write_jsonl)
from ftlib.data.__main__ import main as cli
from ftlib.data.build import GENERATED, MANIFEST, write_files
from ftlib.data.corpus import build_corpus
from ftlib.data.preferences import off_format_answer, wrong_answer
from ftlib.data.tasks import KNOWLEDGE_FAMILIES, SKILL_FAMILIES, SKILL_TRAIN, build_tasks, coined_word
from ftlib.data.world import TOWNS

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def tasks():
    return {s: load_tasks(s) for s in SPLITS}


@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("fresh")
    write_files(out, seed=0)
    return out


# ---- reproducibility ---------------------------------------------------------------------------
def test_committed_files_match_manifest():
    manifest = json.loads((DATA_DIR / MANIFEST).read_text(encoding="utf-8"))
    assert set(manifest["files"]) == set(GENERATED) - {MANIFEST}
    for name, info in manifest["files"].items():
        data = (DATA_DIR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"], name
        assert len(data) == info["bytes"] and data.count(b"\n") == info["rows"], name


def test_fresh_build_is_byte_identical(fresh_build):
    for name in GENERATED:
        assert (fresh_build / name).read_bytes() == (DATA_DIR / name).read_bytes(), name


def test_data_folder_is_small():
    assert sum(p.stat().st_size for p in DATA_DIR.iterdir()) < 10e6     # 3,000 training items per skill family


def test_seed_changes_the_data():  # so that byte-identity above is not trivially true
    assert build_corpus(seed=0, n_docs=100) == build_corpus(seed=0, n_docs=100)
    assert build_corpus(seed=0, n_docs=100) != build_corpus(seed=1, n_docs=100)


def test_check_command_passes_in_a_fresh_process_with_another_hash_seed():
    env = dict(os.environ, PYTHONHASHSEED="12345")
    done = subprocess.run([sys.executable, "-m", "ftlib.data", "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "byte-identical" in done.stdout


def test_check_command_names_a_changed_file(tmp_path, capsys):
    for name in GENERATED:
        shutil.copy(DATA_DIR / name, tmp_path / name)
    with open(tmp_path / "tasks_val.jsonl", "a", encoding="utf-8") as f:
        f.write('{"id":"extra"}\n')
    assert cli(["check", "--data", str(tmp_path)]) == 1
    assert "tasks_val.jsonl" in capsys.readouterr().out


@pytest.mark.parametrize("module", ["world", "spans", "prose", "prose_zh", "defects", "corpus", "verifiers", "tasks",
                                    "preferences", "formats", "jsonl", "build"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(f"ftlib.data.{module}"))
    assert result.attempted > 0 and result.failed == 0


# ---- corpus ------------------------------------------------------------------------------------
def test_every_label_is_present_in_plausible_amounts(corpus):
    n = len(corpus)
    counts = Counter(label for r in corpus for label in r["labels"])
    assert n == 4000
    assert 0.08 <= (counts["exact_duplicate"] + counts["near_duplicate"]) / n <= 0.12
    for label in ("boilerplate", "pii", "junk", "too_short", "other_language"):
        assert 0.015 <= counts[label] / n <= 0.05, label
    langs = Counter(r["lang"] for r in corpus)
    assert 0.85 <= langs["en"] / n <= 0.90 and 0.08 <= langs["zh"] / n <= 0.11
    assert {r["lang"] for r in corpus if "other_language" in r["labels"]} == {"es", "de"}
    assert all(len(r["labels"]) <= 1 for r in corpus)


def test_document_lengths(corpus):
    for r in corpus:
        words = len(r["text"].split())
        if not r["labels"] and r["lang"] == "en":
            assert 40 <= words <= 200, r["id"]
        if r["lang"] != "zh":  # Chinese has no spaces to count
            assert (words < 8) == ("too_short" in r["labels"]), r["id"]
    assert sum(len(r["text"].encode()) for r in corpus) < 2.5e6


def test_only_labelled_duplicates_repeat_text(corpus):
    seen = {}
    for r in corpus:
        if r["text"] in seen:
            assert r["labels"] == ["exact_duplicate"], r["id"]
        seen.setdefault(r["text"], r["id"])


def _shingles(text, lang):
    if lang == "zh":
        text = "".join(text.split())
        return {text[i:i + 4] for i in range(len(text) - 3)}
    words = text.lower().split()
    return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}


def _jaccard(a, b):
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def test_dup_of_points_to_an_earlier_clean_source(corpus):
    by_id = {r["id"]: r for r in corpus}
    for r in corpus:
        if not {"exact_duplicate", "near_duplicate"} & set(r["labels"]):
            assert r["dup_of"] is None
            continue
        src = by_id[r["dup_of"]]
        assert src["id"] < r["id"] and src["labels"] == [] and src["lang"] == r["lang"]
        if r["labels"] == ["exact_duplicate"]:
            assert r["text"] == src["text"] and r["tricky"] == src["tricky"]
        else:
            assert r["text"] != src["text"]
            assert _jaccard(_shingles(r["text"], r["lang"]), _shingles(src["text"], r["lang"])) >= 0.75, r["id"]


def test_unlabelled_documents_are_not_near_duplicates_of_each_other(corpus):
    clean = [(r["id"], _shingles(r["text"], r["lang"])) for r in corpus if not r["labels"]]
    for doc_id, sh in random.Random(0).sample(clean, 150):
        worst = max(_jaccard(sh, other) for other_id, other in clean if other_id != doc_id)
        assert worst < 0.5, doc_id


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
PHONE = re.compile(r"\+?[\d ()-]{7,}")
IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


def test_pii_spans_slice_to_emails_phones_and_ips(corpus):
    kinds = Counter()
    for r in corpus:
        assert bool(r["pii"]) == ("pii" in r["labels"]), r["id"]
        for span in r["pii"]:
            value = r["text"][span["start"]:span["end"]]
            kinds[span["kind"]] += 1
            if span["kind"] == "email":
                assert EMAIL.fullmatch(value), value
            elif span["kind"] == "phone":
                assert PHONE.fullmatch(value) and sum(c.isdigit() for c in value) >= 10, value
            else:
                assert IPV4.fullmatch(value) and all(int(g) <= 255 for g in IPV4.fullmatch(value).groups()), value
    assert min(kinds[k] for k in ("email", "phone", "ip")) >= 20


TRICKY = {"version": r"\d+(\.\d+){2,3}", "date": r"\d{4}-\d{2}-\d{2}", "time": r"\d{2}:\d{2}",
          "price": r"\d+\.\d{2}", "id": r"[A-Z]+-\d{4}-\d{4}"}


def test_tricky_spans_are_number_shaped_and_not_pii(corpus):
    kinds, ip_lookalikes = Counter(), 0
    for r in corpus:
        for span in r["tricky"]:
            value = r["text"][span["start"]:span["end"]]
            kinds[span["kind"]] += 1
            assert re.fullmatch(TRICKY[span["kind"]], value), (span, value)
            assert not any(p["start"] < span["end"] and span["start"] < p["end"] for p in r["pii"])
            ip_lookalikes += bool(IPV4.fullmatch(value))
    assert min(kinds.values()) >= 50 and set(kinds) == set(TRICKY)
    assert ip_lookalikes >= 20  # four-part versions: a naive IPv4 regex would flag these


def test_facts_are_stated_consistently(corpus):
    stated = {"population": re.compile(r"About ([\d,]+) people live in (\w+)\."),
              "founder": re.compile(r"(\w+) was founded by (\w+ \w+)")}
    checked = 0
    for r in corpus:
        for m in stated["population"].finditer(r["text"]):
            assert m.group(1) == f"{TOWNS[m.group(2)].population:,}"
            checked += 1
        for m in stated["founder"].finditer(r["text"]):
            if m.group(1) in TOWNS:
                assert m.group(2) == TOWNS[m.group(1)].founder
                checked += 1
    assert checked > 200


def test_every_fact_question_is_answered_somewhere_in_the_corpus(corpus, tasks):
    texts = [r["text"] for r in corpus if not r["labels"]]
    for row in tasks["test"]:
        if row["family"] == "fact_lookup":
            subject = row["meta"]["key"].split("/")[0]
            answer = row["answer"].removeprefix("the ")
            assert any(subject in t and answer in t for t in texts), row["prompt"]


# ---- tasks -------------------------------------------------------------------------------------
def test_families_and_split_sizes(tasks):
    assert len(FAMILIES) >= 10 and set(SKILL_FAMILIES) | set(KNOWLEDGE_FAMILIES) == set(FAMILIES)
    for family in FAMILIES:
        sizes = {s: sum(r["family"] == family for r in tasks[s]) for s in SPLITS}
        train = (SKILL_TRAIN - 10, SKILL_TRAIN) if family in SKILL_FAMILIES else (380, 410)
        assert train[0] <= sizes["train"] <= train[1] and 45 <= sizes["val"] <= 60 and 95 <= sizes["test"] <= 110, sizes


def test_skill_families_have_thousands_of_keys_so_a_large_training_split_stays_disjoint(tasks):
    for family in SKILL_FAMILIES:
        keys = {s: {r["meta"]["key"] for r in tasks[s] if r["family"] == family} for s in SPLITS}
        assert len(keys["train"]) >= 0.5 * SKILL_TRAIN, (family, len(keys["train"]))   # many distinct items
        assert not keys["train"] & keys["test"] and not keys["train"] & keys["val"], family


def test_a_larger_training_split_leaves_test_and_validation_items_as_they_were():
    small, large = build_tasks(0, skill_train=400), build_tasks(0, skill_train=1200)
    for split in ("val", "test"):
        assert small[split] == large[split]
    for family in SKILL_FAMILIES:
        rows = lambda t: [r for r in t["train"] if r["family"] == family]     # noqa: E731
        assert len(rows(large)) > 2.5 * len(rows(small)) and rows(large)[:len(rows(small))] == rows(small)


def test_coined_words_are_varied_and_pronounceable():
    rng = random.Random(0)
    words = [coined_word(rng) for _ in range(2000)]
    assert len(set(words)) > 1900 and all(w.isalpha() and w.islower() and 4 <= len(w) <= 15 for w in words)
    assert all(re.search("[aeiou]", w[:3]) for w in words)                # a vowel in every first syllable


def test_splits_are_disjoint_by_prompt_and_by_key(tasks):
    prompts = {s: {normalize_prompt(r["prompt"]) for r in tasks[s]} for s in SPLITS}
    keys = {s: {(r["family"], r["meta"]["key"]) for r in tasks[s]} for s in SPLITS}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not prompts[a] & prompts[b] and not keys[a] & keys[b]
    assert sum(len(p) for p in prompts.values()) == sum(len(rows) for rows in tasks.values())


def test_gold_answers_verify_and_corrupted_ones_do_not(tasks):
    rng = random.Random(0)
    for split in SPLITS:
        for row in tasks[split]:
            assert verify(row, row["answer"]), row["id"]
            assert not verify(row, wrong_answer(row, rng)), row["id"]
            off = off_format_answer(row, rng)
            assert off is None or not verify(row, off), row["id"]


def _row(family, answer, **meta):
    return {"family": family, "answer": answer, "meta": meta}


CASES = [  # (task row, completion, expected)
    (_row("arithmetic", "42"), "42", True), (_row("arithmetic", "42"), "  42 \n", True),
    (_row("arithmetic", "42"), "Answer: 42", True), (_row("arithmetic", "42"), "The answer is 42.", True),
    (_row("arithmetic", "42"), "**42**", True), (_row("arithmetic", "42"), "42 or 43", False),
    (_row("arithmetic", "42"), "17 + 25 = 42", False), (_row("arithmetic", "42"), "43", False),
    (_row("arithmetic", "42"), "forty-two", False), (_row("arithmetic", "42"), "", False),
    (_row("count_letter", "0"), "0", True), (_row("count_letter", "0"), "none", False),
    (_row("fact_lookup", "1,240", accept=[]), "1240", True),
    (_row("fact_lookup", "1,240", accept=[]), "About 1,240 people.", True),
    (_row("fact_lookup", "1,240", accept=[]), "1,250", False),
    (_row("fact_lookup", "the Lusk", accept=["lusk"]), "Lusk", True),
    (_row("fact_lookup", "the Lusk", accept=["lusk"]), "The River Lusk.", True),
    (_row("fact_lookup", "the Lusk", accept=["lusk"]), "the Varrow", False),
    (_row("fact_lookup", "the Lusk", accept=["lusk"]), "the Lusk or the Varrow", False),
    (_row("fact_lookup", "May", accept=["may"]), "in May", True),
    (_row("sort_numbers", "3, 7, 19, 42"), "3 7 19 42", True),
    (_row("sort_numbers", "3, 7, 19, 42"), "Answer: 3, 7, 19, 42.", True),
    (_row("sort_numbers", "3, 7, 19, 42"), "3, 7, 42, 19", False),
    (_row("sort_numbers", "3, 7, 19, 42"), "3, 7, 19", False),
    (_row("sort_words", "bird, lake, otter"), "Bird, Lake, Otter", True),
    (_row("sort_words", "bird, lake, otter"), "bird, otter, lake", False),
    (_row("sort_words", "bird, lake, otter"), "bird, lake and otter", False),
    (_row("reverse_word", "nretnal"), "'NRETNAL'.", True), (_row("reverse_word", "nretnal"), "lantern", False),
    (_row("translate_en_zh", "猫", accept=["猫"]), "猫。", True),
    (_row("translate_en_zh", "猫", accept=["猫"]), "答案：猫", True),
    (_row("translate_en_zh", "猫", accept=["猫"]), "狗", False),
    (_row("translate_en_zh", "猫", accept=["猫"]), "The Chinese word for cat is 猫.", False),
    (_row("translate_zh_en", "cat", accept=["cat"]), "A cat.", True),
    (_row("translate_zh_en", "cat", accept=["cat"]), "dog", False),
    (_row("extract_json", '{"name": "Wren", "age": 34}'), '{"age": 34, "name": "Wren"}', True),
    (_row("extract_json", '{"name": "Wren", "age": 34}'), '```json\n{"name": "Wren", "age": 34}\n```', True),
    (_row("extract_json", '{"name": "Wren", "age": 34}'), '{"name": "Wren", "age": "34"}', False),
    (_row("extract_json", '{"name": "Wren", "age": 34}'), '{"name": "Wren", "age": 34, "town": "x"}', False),
    (_row("extract_json", '{"name": "Wren", "age": 34}'), "{'name': 'Wren', 'age': 34}", False),
    (_row("extract_json", '{"name": "Wren", "age": 34}'), '{"name": "Wren", "age": 35}', False),
    (_row("format_upper", "THE RIVER IS HIGH"), "Answer: THE RIVER IS HIGH.", True),
    (_row("format_upper", "THE RIVER IS HIGH"), "The River Is High", False),
    (_row("format_list", "- barley\n- goats"), "Answer:\n- barley\n- goats\n", True),
    (_row("format_list", "- barley\n- goats"), "barley, goats", False),
    (_row("format_list", "- barley\n- goats"), "- barley", False),
    (_row("format_list", "- barley\n- goats"), "* barley\n* goats", False),
]


@pytest.mark.parametrize("row, completion, expected", CASES, ids=[f"{r['family']}:{c!r}" for r, c, _ in CASES])
def test_verifier_edge_cases(row, completion, expected):
    assert verify(row, completion) is expected


def test_load_tasks_filters_and_rejects_unknown_names():
    rows = load_tasks("val", families=["arithmetic"])
    assert rows and {r["family"] for r in rows} == {"arithmetic"}
    with pytest.raises(ValueError, match="nope"):
        load_tasks("val", families=["nope"])
    with pytest.raises(ValueError, match="dev"):
        load_tasks("dev")


def test_lexicon_words_translate_one_way_only():
    for field in ("en", "zh"):
        values = [getattr(w, field) for w in LEXICON]
        assert len(values) == len(set(values)), field


# ---- preferences -------------------------------------------------------------------------------
def test_preferences_chosen_verifies_and_wrong_rejected_fails(tasks):
    for split in ("train", "test"):
        by_id = {r["id"]: r for r in tasks[split]}
        pairs = load_preferences(split)
        assert {p["reason"] for p in pairs} == {"wrong", "verbose", "off_format"}
        assert {p["family"] for p in pairs} == set(FAMILIES)
        for p in pairs:
            task = by_id[p["task_id"]]
            assert p["prompt"] == task["prompt"] and p["chosen"] == task["answer"] != p["rejected"]
            assert verify(task, p["chosen"])
            if p["reason"] in ("wrong", "off_format"):
                assert not verify(task, p["rejected"]), p["id"]
            else:
                assert p["chosen"] in p["rejected"] and len(p["rejected"]) > 2 * len(p["chosen"])


# ---- formats -----------------------------------------------------------------------------------
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"},
        {"role": "assistant", "content": "6"}]


def test_sharegpt_round_trip():
    sharegpt = messages_to_sharegpt(CHAT)
    assert [t["from"] for t in sharegpt["conversations"]] == ["system", "human", "gpt", "human", "gpt"]
    assert sharegpt_to_messages(sharegpt) == CHAT
    assert to_messages(sharegpt) == CHAT and from_messages(CHAT, "sharegpt") == sharegpt


def test_alpaca_round_trip_and_input_merge():
    row = {"system": "Be brief.", "instruction": "Add 2 and 2.", "input": "", "output": "4"}
    assert messages_to_alpaca(alpaca_to_messages(row)) == row
    merged = alpaca_to_messages({"instruction": "Translate.", "input": "cat", "output": "猫"})
    assert merged[0] == {"role": "user", "content": "Translate.\n\ncat"}
    with pytest.raises(ValueError, match="one user turn"):
        messages_to_alpaca(CHAT)


def test_task_to_messages():
    row = {"prompt": "What is 2 + 2?", "answer": "4"}
    assert task_to_messages(row, system="Be brief.")[0] == {"role": "system", "content": "Be brief."}
    assert to_messages(row) == [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]


def test_unknown_roles_name_the_role_and_index():
    with pytest.raises(ValueError, match=r"turn 1: unknown ShareGPT role 'bot'"):
        sharegpt_to_messages({"conversations": [{"from": "human", "value": "hi"}, {"from": "bot", "value": "yo"}]})
    with pytest.raises(ValueError, match=r"message 2: unknown role 'robot'"):
        render_chatml(CHAT[:2] + [{"role": "robot", "content": "beep"}])
    with pytest.raises(ValueError, match="xml"):
        from_messages(CHAT, "xml")


def test_render_chatml_matches_transformers_chat_template():
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")))
    tok.chat_template = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
                         " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
                         "{{ '<|im_start|>assistant\n' }}{% endif %}")
    assert render_chatml(CHAT[:2], True) != render_chatml(CHAT[:2])
    for messages, gen in ((CHAT, False), (CHAT[:2], True)):
        assert render_chatml(messages, gen) == tok.apply_chat_template(messages, tokenize=False,
                                                                       add_generation_prompt=gen)
    assert render_chatml(CHAT[1:3]) == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"


# ---- jsonl -------------------------------------------------------------------------------------
def test_write_jsonl_is_canonical(tmp_path):
    path = tmp_path / "out.jsonl"
    assert write_jsonl(path, [{"b": 1, "a": "猫 \u2028"}, {"z": None}]) == 2
    assert path.read_bytes() == '{"a":"猫 \u2028","b":1}\n{"z":null}\n'.encode()
    assert read_jsonl(path) == [{"b": 1, "a": "猫 \u2028"}, {"z": None}]  # U+2028 is not a line break
    with pytest.raises(TypeError, match="row 0"):
        write_jsonl(path, [["not", "a", "dict"]])


@pytest.mark.parametrize("text, rows", [('{"a":1}\n{"a":2}\n', 2), ('{"a":1}\n{"a":2}', 2), ("", 0)])
def test_read_jsonl_keeps_every_row(tmp_path, text, rows):
    path = tmp_path / "ok.jsonl"
    path.write_text(text, encoding="utf-8")
    assert [r["a"] for r in read_jsonl(path, required=("a",))] == list(range(1, rows + 1))


BAD_FILES = [  # (content, required, types, line, field, message fragment)
    ('{"answer":"x"}\n{"answer":\n', (), None, 2, None, "invalid JSON"),
    ('{"answer":"x"}\n[1, 2]\n', (), None, 2, None, "expected a JSON object, got list"),
    ('{"answer":"x"}\n{"answer":"y"}\n{"question":"z"}\n', ("answer",), None, 3, "answer", "field 'answer' is missing"),
    ('{"answer":"x"}\n{"answer":42}\n', (), {"answer": str}, 2, "answer", "field 'answer' should be str, got int"),
    ('{"answer":"x"}\n\n{"answer":"y"}\n', (), None, 2, None, "empty line"),
    ('{"answer":"x"}\n\n', (), None, 2, None, "empty line"),
]


@pytest.mark.parametrize("content, required, types, line, field, fragment", BAD_FILES)
def test_read_jsonl_errors_name_file_line_and_field(tmp_path, content, required, types, line, field, fragment):
    path = tmp_path / "tasks_bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(JsonlError) as err:
        read_jsonl(path, required=required, types=types)
    assert (err.value.path, err.value.line, err.value.field) == (str(path), line, field)
    assert str(err.value).startswith(f"{path}:{line}: ") and fragment in str(err.value)


def test_read_jsonl_error_quotes_the_start_of_the_row(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps({"text": "x" * 500}) + "\n", encoding="utf-8")
    with pytest.raises(JsonlError) as err:
        read_jsonl(path, required=("answer",))
    assert '(row: {"text": "xxx' in str(err.value) and "x" * 200 not in str(err.value)
