"""A verifiable instruction-task suite: short answers that a small model can be scored on exactly.

Each Family has `generate(rng) -> {"prompt", "answer", "meta"}` and `verify(row, completion) -> bool`.
`meta["key"]` names the underlying item (the sum, the word, the fact); splits are disjoint by key,
so a test question is never a rephrasing of a training question.

>>> import random
>>> row = FAMILIES["arithmetic"].generate(random.Random(1))
>>> row["prompt"], row["answer"]
('Calculate 74 + 99. Reply with just the number.', '173')
>>> verify(dict(row, family="arithmetic"), "Answer: 173."), verify(dict(row, family="arithmetic"), "173 or 174")
(True, False)
"""
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from . import verifiers as v
from .prose import make_context, vary
from .world import ANIMALS, CROPS, JOBS, LEXICON, MOUNTAINS, PEOPLE, PRONOUNS, RIVERS, TOWNS, rng_for

EXTRA_WORDS = ("lantern meadow orchard kettle window basket ladder candle garden pillow harbour blanket pepper "
               "thimble saddle marble anchor parrot beacon button hammer island jacket lemon mirror needle otter "
               "pebble quilt ribbon shovel tunnel violin wagon acorn barrel cellar dragon feather goblet hollow "
               "juniper kitten locket mitten nutmeg oyster puddle riddle spindle teapot umbrella velvet walnut "
               "willow timber copper").split()
WORDS = sorted({w.en for w in LEXICON} | set(EXTRA_WORDS))
LONG_WORDS = [w for w in WORDS if len(w) >= 4] + list(TOWNS)
ONSETS = "b d f g k l m n p r s t v z ch sh st tr br pl".split()
VOWELS = "a e i o u".split()
CODAS = ["", "", "", "n", "r", "l", "s", "m"]


def coined_word(rng):
    """A pronounceable made-up word of two or three syllables ("bretolim"): an endless supply of
    spelling items, so the word families can have thousands of keys instead of the lexicon's ~200."""
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(rng.randint(2, 3)))


def spelling_word(rng, real_words, real_share=0.2):
    """A real word (with probability ``real_share``) or a coined one."""
    return rng.choice(real_words) if rng.random() < real_share else coined_word(rng)


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    generate: Callable  # (rng) -> {"prompt", "answer", "meta": {"key", ...}}
    verify: Callable  # (row, completion) -> bool


def _row(prompt, answer, key, **meta):
    return {"prompt": prompt, "answer": answer, "meta": {"key": key, **meta}}


def gen_arithmetic(rng):
    op = rng.choice("+-*")
    a, b = {"+": (rng.randint(2, 99), rng.randint(2, 99)), "-": (rng.randint(10, 99), 0),
            "*": (rng.randint(2, 12), rng.randint(2, 20))}[op]
    if op == "-":
        b = rng.randint(1, a)
    word = {"+": "plus", "-": "minus", "*": "times"}[op]
    prompt = rng.choice([f"What is {a} {op} {b}?", f"Compute {a} {op} {b}.", f"What is {a} {word} {b}?",
                         f"Calculate {a} {op} {b}. Reply with just the number.", f"{a} {op} {b} = ?"])
    answer = {"+": a + b, "-": a - b, "*": a * b}[op]
    return _row(prompt, str(answer), f"{a}{op}{b}")


def gen_reverse_word(rng):
    w = spelling_word(rng, LONG_WORDS)
    prompt = rng.choice([f"Reverse the letters of the word '{w}'.", f'Write the word "{w}" backwards.',
                         f"Spell '{w}' in reverse order.", f"What is '{w}' written backwards?"])
    return _row(prompt, w[::-1], w)


def gen_sort_numbers(rng):
    nums = rng.sample(range(1, 100), rng.randint(4, 7))
    shown, descending = ", ".join(map(str, nums)), rng.random() < 0.3
    if descending:
        prompt = rng.choice([f"Sort these numbers from largest to smallest: {shown}.",
                             f"Put {shown} in descending order."])
    else:
        prompt = rng.choice([f"Sort these numbers from smallest to largest: {shown}.",
                             f"Put {shown} in ascending order.", f"Arrange in increasing order: {shown}."])
    answer = ", ".join(map(str, sorted(nums, reverse=descending)))
    return _row(prompt, answer, f"{shown}|{'desc' if descending else 'asc'}")


def gen_sort_words(rng):
    words = rng.sample(WORDS, rng.randint(3, 6))
    shown = ", ".join(words)
    prompt = rng.choice([f"Sort these words alphabetically: {shown}.",
                         f"Put these words in alphabetical order: {shown}.", f"Arrange alphabetically: {shown}."])
    return _row(prompt, ", ".join(sorted(words)), ",".join(sorted(words)))


def gen_count_letter(rng):
    w = spelling_word(rng, WORDS)
    letters = sorted(set(w)) if rng.random() < 0.8 else sorted(set("abcdefghijklmnopqrstuvwxyz") - set(w))
    c = rng.choice(letters)
    prompt = rng.choice([f"How many times does the letter '{c}' appear in '{w}'?",
                         f'Count the letter "{c}" in the word "{w}".',
                         f"In the word '{w}', how many '{c}'s are there?"])
    return _row(prompt, str(w.count(c)), f"{w}/{c}")


SHORT_SENTENCES = [
    "the {R} [is|was] [high|low|cold] [today|this morning|after the rain]",
    "{P} sold [two|three|four] baskets of {crop} [at the market|in {T}]",
    "the ferry to {T} leaves at [noon|dawn|six]",
    "[my|our] {relative} keeps {animals} [near|behind] the house",
    "the festival in {T} [starts|begins] in {month}",
    "{P} walked [slowly|quickly] along the {R} [to {T2}|toward {T2}]",
    "[snow|rain|fog] [covered|filled] the [valley|square|streets] [last night|this morning]",
    "{P} made {dish} for [the whole family|dinner|{Q}]",
    "the [old|new] bridge over the {R} needs [paint|repairs]",
    "[please|kindly] [bring|carry] the {colour} basket to the [gate|mill|inn]",
]


def short_sentence(rng):
    """A lowercase sentence of 4-12 words without final punctuation, for counting and formatting."""
    return vary(rng, rng.choice(SHORT_SENTENCES)).format(**make_context(rng))


def gen_count_words(rng):
    s = short_sentence(rng)
    prompt = rng.choice([f'How many words are in this sentence: "{s}"?', f"Count the words in: {s}",
                         f'How many words does "{s}" have?'])
    return _row(prompt, str(len(s.split())), s)


def gen_format_upper(rng):
    s = short_sentence(rng)
    prompt = rng.choice([f"Rewrite in capital letters: {s}", f"Convert to uppercase: {s}",
                         f"Write this in all caps: {s}"])
    return _row(prompt, s.upper(), s)


def gen_format_list(rng):
    pool = sorted(set(CROPS) | set(ANIMALS) | {w.en for w in LEXICON if w.category == "food"})
    items = rng.sample(pool, rng.randint(3, 5))
    shown = ", ".join(items)
    prompt = rng.choice([f'Write these items as a list, one per line, each starting with "- ": {shown}',
                         f"Turn this into a dash list with one item per line: {shown}",
                         f"Format as a list (one '- item' per line): {shown}"])
    return _row(prompt, "\n".join("- " + x for x in items), ",".join(items))


def gen_extract_json(rng):
    (name, pron), town, age, job = rng.choice(PEOPLE), rng.choice(list(TOWNS)), rng.randint(18, 80), rng.choice(JOBS)
    he = PRONOUNS[pron][0]
    with_job = rng.random() < 0.3
    if with_job:
        sentence = rng.choice([f"{name} is a {age}-year-old {job} from {town}.",
                               f"The {job} {name}, who is {age}, works in {town}."])
    else:
        sentence = rng.choice([f"{name} is {age} years old and lives in {town}.",
                               f"{name}, aged {age}, lives in {town}.",
                               f"Living in {town}, {name} turned {age} this spring.",
                               f"{name} moved to {town} last year; {he} is {age} now."])
    keys = ["name", "age", "town"] + (["job"] if with_job else [])
    rng.shuffle(keys)
    values = {"name": name, "age": age, "town": town, "job": job}
    shown = ", ".join(f'"{k}"' for k in keys)
    prompt = f"Extract a JSON object with the keys {shown} from this sentence (age as a number): {sentence}"
    return _row(prompt, json.dumps({k: values[k] for k in keys}, ensure_ascii=False), sentence)


FACT_QUESTIONS = {  # attribute -> question templates
    "river": ["Which river runs past {x}?", "What river flows through {x}?", "{x} lies on which river?",
              "Name the river that {x} stands on."],
    "crop": ["What crop is {x} known for?", "What do the farms around {x} mostly grow?",
             "Which crop are the fields of {x} known for?", "{x} is best known for which crop?"],
    "animal": ["What animals do most families in {x} keep?", "Which animals do the people of {x} keep?",
               "In {x}, what do most households keep?", "What animals are kept in nearly every yard in {x}?"],
    "founder": ["Who founded {x}?", "Who was the founder of {x}?", "{x} was founded by whom?",
                "Name the founder of {x}."],
    "festival": ["In which month is the {x} festival held?", "When does {x} hold its festival? Give the month.",
                 "Which month is festival time in {x}?", "In what month does {x} celebrate its festival?"],
    "population": ["About how many people live in {x}?", "What is the population of {x}?",
                   "Roughly how many people live in {x}?", "How many people is {x} home to?"],
    "source": ["On which mountain does the {x} rise?", "Which mountain is the source of the {x}?",
               "Where does the {x} begin? Name the mountain.", "The {x} rises on which mountain?"],
    "lake": ["Into which lake does the {x} flow?", "Which lake does the {x} end in?",
             "Where does the {x} end? Name the lake.", "The {x} flows into which lake?"],
    "height": ["How high is {x}, in metres?", "What is the height of {x} in metres?",
               "How many metres high is {x}?", "How tall is {x}? Answer in metres."],
}


def facts():
    """Every askable fact as (subject, attribute, answer, accepted normalised answers)."""
    out = []
    for t in TOWNS.values():
        out += [(t.name, "river", "the " + t.river, [v.normalize_name(t.river)]),
                (t.name, "crop", t.crop, sorted({t.crop, CROPS[t.crop][0]})),
                (t.name, "animal", t.animal, sorted({t.animal, ANIMALS[t.animal][0]})),
                (t.name, "founder", t.founder, [t.founder.casefold()]),
                (t.name, "festival", t.festival_month, [t.festival_month.casefold()]),
                (t.name, "population", f"{t.population:,}", [])]
    for r in RIVERS.values():
        out += [(r.name, "source", r.source, [v.normalize_name(r.source)]),
                (r.name, "lake", r.lake, [v.normalize_name(r.lake)])]
    out += [(m.name, "height", f"{m.height_m:,}", []) for m in MOUNTAINS.values()]
    return out


FACTS = facts()


def gen_fact_lookup(rng):
    subject, attr, answer, accept = rng.choice(FACTS)
    prompt = rng.choice(FACT_QUESTIONS[attr]).format(x=subject)
    return _row(prompt, answer, f"{subject}/{attr}", accept=accept)


def gen_translate_en_zh(rng):
    w = rng.choice(LEXICON)
    prompt = rng.choice([f"Translate into Chinese: {w.en}", f'What is the Chinese word for "{w.en}"?',
                         f"How do you say '{w.en}' in Chinese?", f"Give the Chinese for: {w.en}",
                         f"Translate the English word '{w.en}' into Chinese.", f'Chinese for "{w.en}"?'])
    return _row(prompt, w.zh, w.en, accept=[w.zh, *w.zh_alt])


def gen_translate_zh_en(rng):
    w = rng.choice(LEXICON)
    prompt = rng.choice([f"Translate into English: {w.zh}", f"What does {w.zh} mean in English?",
                         f'Give the English word for "{w.zh}".', f"How do you say {w.zh} in English?",
                         f"Translate the Chinese word '{w.zh}' into English.", f'English for "{w.zh}"?'])
    return _row(prompt, w.en, w.zh, accept=[w.en, *w.en_alt])


def _verify_fact(row, completion):
    if not row["meta"]["accept"]:  # population, height: a number
        return v.number_matches(row["answer"], completion)
    return v.name_matches(row["meta"]["accept"], completion)


FAMILIES = {f.name: f for f in [
    Family("arithmetic", "add, subtract or multiply two small integers", gen_arithmetic,
           lambda row, c: v.number_matches(row["answer"], c)),
    Family("reverse_word", "spell a word backwards", gen_reverse_word, lambda row, c: v.text_matches(row["answer"], c)),
    Family("sort_numbers", "sort 4-7 numbers ascending or descending", gen_sort_numbers,
           lambda row, c: v.int_list_matches(row["answer"], c)),
    Family("sort_words", "sort 3-6 words alphabetically", gen_sort_words,
           lambda row, c: v.word_list_matches(row["answer"], c)),
    Family("count_letter", "count one letter in a word", gen_count_letter,
           lambda row, c: v.number_matches(row["answer"], c)),
    Family("count_words", "count the words of a short sentence", gen_count_words,
           lambda row, c: v.number_matches(row["answer"], c)),
    Family("fact_lookup", "a fact about the invented world, stated in the corpus", gen_fact_lookup, _verify_fact),
    Family("translate_en_zh", "one lexicon word, English to Chinese", gen_translate_en_zh,
           lambda row, c: v.chinese_matches(row["meta"]["accept"], c)),
    Family("translate_zh_en", "one lexicon word, Chinese to English", gen_translate_zh_en,
           lambda row, c: v.english_word_matches(row["meta"]["accept"], c)),
    Family("extract_json", "pull name/age/town (and job) from a sentence into JSON", gen_extract_json,
           lambda row, c: v.json_matches(row["answer"], c)),
    Family("format_upper", "rewrite a sentence in capital letters", gen_format_upper,
           lambda row, c: v.text_matches(row["answer"], c, case_sensitive=True)),
    Family("format_list", "write comma-separated items as a '- ' list", gen_format_list,
           lambda row, c: v.bullets_match(row["answer"], c)),
]}
SPLITS = ("train", "val", "test")


def verify(row, completion):
    """Is `completion` a correct answer to task `row`? Dispatches on row["family"]."""
    return FAMILIES[row["family"]].verify(row, completion)


def normalize_prompt(prompt):
    """Case, punctuation and spacing removed: the form in which splits must not repeat a prompt."""
    text = unicodedata.normalize("NFKC", prompt).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def family_rows(family, rng, total):
    """Up to `total` rows with distinct normalised prompts (fewer if the family runs out)."""
    rows = {}
    for _ in range(40 * total):
        row = family.generate(rng)
        rows.setdefault(normalize_prompt(row["prompt"]), row)
        if len(rows) == total:
            break
    return list(rows.values())


SKILL_FAMILIES = ("arithmetic", "reverse_word", "sort_numbers", "sort_words", "count_letter", "count_words",
                  "extract_json", "format_upper", "format_list")   # the answer can be computed from the prompt
KNOWLEDGE_FAMILIES = ("fact_lookup", "translate_en_zh", "translate_zh_en")   # the answer is a fact to know
SIZES = {"train": 400, "val": 50, "test": 100}
SKILL_TRAIN = 3000   # training rows per skill family: its generator has thousands of keys to draw on


def build_tasks(seed=0, sizes=None, skill_train=SKILL_TRAIN):
    """{"train", "val", "test"} -> rows {"id", "family", "split", "prompt", "answer", "meta"}.

    sizes: rows per family and split, default :data:`SIZES`. Whole key groups go to one split
    (test first, then val, then train), so counts are approximate. A skill family's training split
    then grows to ``skill_train`` rows with further items whose key is not held out (the knowledge
    families have only a few hundred facts and words); test and validation items stay as they are.
    """
    sizes = sizes or SIZES
    out = {split: [] for split in SPLITS}
    for name, family in FAMILIES.items():
        rng = rng_for(seed, "tasks:" + name)
        rows = family_rows(family, rng, sum(sizes.values()))
        groups = {}
        for row in rows:
            groups.setdefault(row["meta"]["key"], []).append(row)
        placed = {split: [] for split in SPLITS}
        for group in groups.values():
            split = next((s for s in ("test", "val", "train") if len(placed[s]) < sizes[s]), None)
            if split is None:
                break
            placed[split] += group
        if name in SKILL_FAMILIES and skill_train and skill_train > len(placed["train"]):
            placed["train"] += more_train_rows(family, rng, placed, skill_train - len(placed["train"]))
        for split, split_rows in placed.items():
            out[split] += [{"id": f"{name}-{split}-{i:04d}", "family": name, "split": split, **row}
                           for i, row in enumerate(split_rows, 1)]
    return out


def more_train_rows(family, rng, placed, count):
    """``count`` new rows of ``family`` whose key is not in the test or validation split and
    whose prompt is new (fewer if the generator runs out)."""
    held = {r["meta"]["key"] for s in ("test", "val") for r in placed[s]}
    seen = {normalize_prompt(r["prompt"]) for rows in placed.values() for r in rows}
    extra = []
    for _ in range(40 * count):
        row = family.generate(rng)
        prompt = normalize_prompt(row["prompt"])
        if row["meta"]["key"] not in held and prompt not in seen:
            seen.add(prompt)
            extra.append(row)
            if len(extra) == count:
                break
    return extra
