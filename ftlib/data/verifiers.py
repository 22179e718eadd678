"""Answer checkers: lenient about the wrapping, strict about the content.

Lenient: surrounding whitespace, quotes, a trailing period, a leading "Answer:" or "The answer is",
and letter case where case does not matter. Strict: every number in a numeric answer must be
the right one, a list must have the right items in the right order, JSON must parse to the
same object. Each function is (gold, completion) -> bool.

>>> strip_answer('  Answer: "nretnal".  ')
'nretnal'
>>> number_matches("42", "The answer is 42."), number_matches("42", "42 or 43")
(True, False)
>>> number_matches("1,240", "about 1240")
True
>>> json_matches('{"name": "Wren", "age": 34}', 'Here: {"age": 34, "name": "Wren"}')
True
>>> bullets_match("- barley\\n- goats", "barley, goats")
False
"""
import json
import re
import unicodedata

_LEAD = re.compile(r"^\s*(?:(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:：\-]?|答案\s*[:：是]?)\s*", re.I)
_WRAP = "\"'`*“”‘’「」 \t\n"
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?!\d)|-?\d+(?:\.\d+)?")


def strip_answer(text):
    """Drop a leading "Answer:", surrounding quotes/whitespace and a trailing period."""
    s = _LEAD.sub("", unicodedata.normalize("NFKC", text), count=1)
    for _ in range(2):  # '"42".' needs the period and then the quotes removed
        s = s.strip(_WRAP).rstrip(".。!！").strip(_WRAP)
    return s


def numbers_in(text):
    """Every number in text as a float; "1,240" is one number. numbers_in("3 or 4.5") -> [3.0, 4.5]."""
    return [float(m.replace(",", "")) for m in _NUMBER.findall(unicodedata.normalize("NFKC", text))]


def number_matches(gold, completion):
    """True if the completion names at least one number and every number it names is gold."""
    found = numbers_in(completion)
    return bool(found) and all(x == numbers_in(gold)[0] for x in found)


def int_list_matches(gold, completion):
    """The integers of the completion, in order, equal those of gold ("3, 7, 19" == "3 7 19")."""
    ints = re.findall(r"-?\d+", strip_answer(completion))
    return bool(ints) and ints == re.findall(r"-?\d+", gold)


def word_list_matches(gold, completion):
    """The words of the completion, in order and ignoring case, equal those of gold."""
    words = re.findall(r"[a-z]+", strip_answer(completion).casefold())
    return bool(words) and words == re.findall(r"[a-z]+", gold.casefold())


def text_matches(gold, completion, case_sensitive=False):
    """Whole-answer comparison after strip_answer and collapsing inner whitespace."""
    got, want = " ".join(strip_answer(completion).split()), " ".join(gold.split())
    return got == want if case_sensitive else got.casefold() == want.casefold()


def normalize_name(text):
    """'The River Lusk.' -> 'lusk'; 'in May' -> 'may'; 'Mount Carrag' -> 'carrag'."""
    s = " ".join(strip_answer(text).casefold().split())
    previous = None
    while s != previous:
        previous = s
        s = re.sub(r"^(?:in|on|the|river|mount|mt\.?|lake)\s+", "", s)
        s = re.sub(r"\s+river$", "", s)
    return s


def name_matches(accept, completion):
    """True if the normalised completion is one of `accept` (already normalised names)."""
    return normalize_name(completion) in accept


def chinese_matches(accept, completion):
    """Chinese answer: no spaces, no final 。, one of `accept`."""
    return "".join(strip_answer(completion).split()) in accept


def english_word_matches(accept, completion):
    """English word answer: case-insensitive, an article ("a cat", "the moon") allowed."""
    s = re.sub(r"^(?:a|an|the|to)\s+", "", " ".join(strip_answer(completion).casefold().split()))
    return s in accept


def json_matches(gold, completion):
    """The first {...} of the completion (code fences allowed) parses to the same dict as gold."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", completion, re.S)
    text = fenced.group(1) if fenced else completion
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return False
    try:
        got = json.loads(text[start:end + 1])
    except json.JSONDecodeError:
        return False
    want = json.loads(gold)
    same_types = isinstance(got, dict) and all(type(got.get(k)) is type(v) for k, v in want.items())
    return same_types and got == want


def bullets_match(gold, completion):
    """Every non-empty line starts with "-", and the items (any case) equal gold's, in order."""
    def items(text):
        lines = [line.strip() for line in _LEAD.sub("", text, count=1).splitlines() if line.strip()]
        if not all(line.startswith("-") for line in lines):
            return None
        return [line[1:].strip().rstrip(".").casefold() for line in lines]
    got = items(completion)
    return bool(got) and got == items(gold)
