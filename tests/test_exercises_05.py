"""Chapter 05's exercise checkers: they accept the right answer and give a useful hint otherwise."""
from ftlib.course.exercises import CHECKS, check
from ftlib.course.exercises.ch05_instruction_tuning import leaky_split


def right_labels(ids, mask):
    return [t if m else -100 for t, m in zip(ids, mask)]


def test_label_mask_checker(capsys):
    assert check("05.label_mask", right_labels)
    assert not check("05.label_mask", lambda ids, mask: list(ids))
    assert "labels the prompt" in capsys.readouterr().out
    assert not check("05.label_mask", lambda ids, mask: [-100 if m else t for t, m in zip(ids, mask)])
    assert "inverted" in capsys.readouterr().out
    assert not check("05.label_mask", lambda ids, mask: [t if m else 0 for t, m in zip(ids, mask)])
    assert "ignore_index is -100" in capsys.readouterr().out
    assert not check("05.label_mask", lambda ids, mask: right_labels(ids, mask)[1:] + [-100])
    assert "shifted by one" in capsys.readouterr().out
    assert not check("05.label_mask", lambda ids, mask: [t for t, m in zip(ids, mask) if m])
    assert "one per token" in capsys.readouterr().out
    # right on one reply, wrong once a row has none: the all-zero mask case names itself
    assert not check("05.label_mask", lambda ids, mask: right_labels(ids, mask) if any(mask) else [])
    assert "assistant_mask=[0, 0, 0, 0]" in capsys.readouterr().out
    assert not check("05.label_mask", lambda ids, mask: None)
    assert "returns None" in capsys.readouterr().out
    assert not check("05.label_mask", None)
    assert not check("05.label_mask", [1, 2, 3])                    # not callable: a hint, no crash


def test_sharegpt_to_messages_checker(capsys):
    roles = {"system": "system", "human": "user", "gpt": "assistant"}
    assert check("05.sharegpt_to_messages",
                 lambda row: [{"role": roles[t["from"]], "content": t["value"]} for t in row["conversations"]])
    assert not check("05.sharegpt_to_messages",
                     lambda row: [{"role": t["from"], "content": t["value"]} for t in row["conversations"]])
    assert "role names" in capsys.readouterr().out
    assert not check("05.sharegpt_to_messages", lambda row: [
        {"role": roles[t["from"]], "content": t["value"]} for t in row["conversations"] if t["from"] != "system"])
    assert "dropped the system turn" in capsys.readouterr().out
    assert not check("05.sharegpt_to_messages",
                     lambda row: [{"role": t["value"], "content": roles[t["from"]]} for t in row["conversations"]])
    assert "swapped" in capsys.readouterr().out
    assert not check("05.sharegpt_to_messages", lambda row: [
        {"from": roles[t["from"]], "value": t["value"]} for t in row["conversations"]])
    assert "'role' and 'content'" in capsys.readouterr().out
    assert not check("05.sharegpt_to_messages", lambda row: sorted(
        ({"role": roles[t["from"]], "content": t["value"]} for t in row["conversations"]), key=lambda m: m["role"]))
    assert "wrong order" in capsys.readouterr().out
    two = {"human": "user", "gpt": "assistant"}                      # forgets that a system turn exists
    assert not check("05.sharegpt_to_messages",
                     lambda row: [{"role": two[t["from"]], "content": t["value"]} for t in row["conversations"]])
    assert "map every ShareGPT role" in capsys.readouterr().out
    assert not check("05.sharegpt_to_messages", None)
    assert not check("05.sharegpt_to_messages", "messages")          # not callable: a hint, no crash


def test_leaky_split_plants_copies_and_rewordings_and_is_deterministic():
    train, test = leaky_split(0)
    assert (train, test) == leaky_split(0) and test != leaky_split(1)[1]
    assert len(train) == 300 and len(test) == 60 and len({r["id"] for r in test}) == 60
    items = {(t["family"], t["meta"]["key"]) for t in train}
    prompts = {t["prompt"] for t in train}
    leaks = [r for r in test if (r["family"], r["meta"]["key"]) in items]
    assert len(leaks) == 10 and sum(r["prompt"] in prompts for r in leaks) == 5   # 5 copies, 5 rewordings
    keys = {t["meta"]["key"] for t in train}
    assert sum(r["meta"]["key"] in keys for r in test) > len(leaks)              # same key, other family: no leak


def test_find_leak_checker(capsys):
    train, test = leaky_split(0)
    items = {(t["family"], t["meta"]["key"]) for t in train}
    right = {r["id"] for r in test if (r["family"], r["meta"]["key"]) in items}
    assert check("05.find_leak", right, train=train, test=test)
    assert check("05.find_leak", sorted(right), train=train, test=test)          # a list of ids is fine too
    verbatim = {r["id"] for r in test if r["prompt"] in {t["prompt"] for t in train}}
    ok, hint = CHECKS["05.find_leak"](verbatim, train=train, test=test)
    assert not ok and "only the verbatim copies; 5 reworded" in hint and "meta['key']" in hint
    keys = {t["meta"]["key"] for t in train}
    ok, hint = CHECKS["05.find_leak"]({r["id"] for r in test if r["meta"]["key"] in keys}, train=train, test=test)
    assert not ok and "is not a leak" in hint and "(family, meta['key'])" in hint
    ok, hint = CHECKS["05.find_leak"](set(list(right)[:4]), train=train, test=test)
    assert not ok and "4 of the 10" in hint
    assert not check("05.find_leak", [r for r in test if r["id"] in right], train=train, test=test)
    assert "ids, not the rows" in capsys.readouterr().out
    assert not check("05.find_leak", 10, train=train, test=test)
    assert "set of test row ids" in capsys.readouterr().out
    assert not check("05.find_leak", {0, 1}, train=train, test=test)
    assert "not the id of a test row" in capsys.readouterr().out
    assert not check("05.find_leak", None, train=train, test=test)
