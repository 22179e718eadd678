"""Chat data formats and converters: Alpaca, ShareGPT, and the `messages` list that chat templates take.

    Alpaca    {"instruction", "input", "output"} (optional "system"): one turn
    ShareGPT  {"conversations": [{"from": "system"|"human"|"gpt", "value"}]}: many turns
    messages  [{"role": "system"|"user"|"assistant", "content"}]: what tokenizer chat templates use

>>> msgs = alpaca_to_messages({"instruction": "Add 2 and 3.", "input": "", "output": "5"})
>>> msgs
[{'role': 'user', 'content': 'Add 2 and 3.'}, {'role': 'assistant', 'content': '5'}]
>>> messages_to_sharegpt(msgs)["conversations"][0]
{'from': 'human', 'value': 'Add 2 and 3.'}
>>> print(render_chatml(msgs[:1], add_generation_prompt=True), end="")
<|im_start|>user
Add 2 and 3.<|im_end|>
<|im_start|>assistant
"""
ROLES = ("system", "user", "assistant")
SHAREGPT_TO_ROLE = {"system": "system", "human": "user", "gpt": "assistant"}
ROLE_TO_SHAREGPT = {role: name for name, role in SHAREGPT_TO_ROLE.items()}


def check_messages(messages):
    """Raise ValueError naming the index of the first message with an unknown role or no text content."""
    for i, m in enumerate(messages):
        if m.get("role") not in ROLES:
            raise ValueError(f"message {i}: unknown role {m.get('role')!r} (expected one of {', '.join(ROLES)})")
        if not isinstance(m.get("content"), str):
            raise ValueError(f"message {i}: content must be a string, got {type(m.get('content')).__name__}")
    return messages


def alpaca_to_messages(row):
    """Alpaca row -> messages. A non-empty `input` follows the instruction after a blank line."""
    user = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
    system = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    return system + [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]


def messages_to_alpaca(messages):
    """Single-turn messages -> Alpaca row (`input` is always "": the split point is not recoverable)."""
    check_messages(messages)
    system = [m["content"] for m in messages if m["role"] == "system"]
    turns = [m for m in messages if m["role"] != "system"]
    if [m["role"] for m in turns] != ["user", "assistant"]:
        raise ValueError(f"Alpaca holds one user turn and one assistant turn, got roles {[m['role'] for m in turns]}")
    row = {"instruction": turns[0]["content"], "input": "", "output": turns[1]["content"]}
    return {"system": system[0], **row} if system else row


def sharegpt_to_messages(row):
    """ShareGPT row -> messages; raises ValueError naming the index of an unknown `from`."""
    messages = []
    for i, turn in enumerate(row["conversations"]):
        if turn.get("from") not in SHAREGPT_TO_ROLE:
            raise ValueError(f"turn {i}: unknown ShareGPT role {turn.get('from')!r} "
                             f"(expected one of {', '.join(SHAREGPT_TO_ROLE)})")
        messages.append({"role": SHAREGPT_TO_ROLE[turn["from"]], "content": turn["value"]})
    return messages


def messages_to_sharegpt(messages):
    """messages -> ShareGPT row (any number of turns)."""
    check_messages(messages)
    return {"conversations": [{"from": ROLE_TO_SHAREGPT[m["role"]], "value": m["content"]} for m in messages]}


def task_to_messages(row, system=None):
    """A task row (prompt, answer) -> messages, with an optional system prompt first."""
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["answer"]}]


def to_messages(row):
    """Any of the formats (a messages list, ShareGPT, Alpaca, or a task row) -> messages."""
    if isinstance(row, list):
        return check_messages(row)
    if "conversations" in row:
        return sharegpt_to_messages(row)
    if "instruction" in row:
        return alpaca_to_messages(row)
    if "prompt" in row and "answer" in row:
        return task_to_messages(row)
    raise ValueError(f"unrecognised row with keys {sorted(row)}")


def from_messages(messages, fmt):
    """messages -> "alpaca" or "sharegpt" (or "messages", checked and returned as is)."""
    converters = {"alpaca": messages_to_alpaca, "sharegpt": messages_to_sharegpt, "messages": check_messages}
    if fmt not in converters:
        raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(converters)})")
    return converters[fmt](messages)


def render_chatml(messages, add_generation_prompt=False):
    """The ChatML text a model sees: `<|im_start|>role\\ncontent<|im_end|>\\n` per message.

    add_generation_prompt appends `<|im_start|>assistant\\n` so the model writes the reply.
    """
    check_messages(messages)
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")
