"""Prompting without training: few-shot prompts and retrieval-augmented generation (RAG).

Chapter 08 asks whether a task needs fine-tuning at all. Two cheaper answers, both of which only
change the prompt:

- **few-shot**: show solved examples of the task before the question (:func:`few_shot_render`);
- **RAG**: find passages of the course corpus that share words with the question (BM25, through
  the ``bm25s`` library) and put them in the prompt (:class:`Retriever`, :func:`rag_render`).

Both return a ``render(prompt) -> text`` for :func:`ftlib.metrics.exact_match.exact_match`, so every method
is scored by the same verifiers on the same items.

    retriever = Retriever(passages(load_corpus()))
    result = exact_match(model, tok, rows, render=rag_render(tok, retriever, k=3))
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

from ftlib.engine.sft_data import chat_prompt

RAG_INSTRUCTION = "Answer the question using these notes. Reply with the answer only."


def passages(corpus: Sequence[dict], *, max_words: int = 60, lang: str = "en") -> list[str]:
    """Split the clean documents of ``corpus`` in ``lang`` into passages of whole sentences, at
    most ``max_words`` words each (one longer sentence stays whole). Labelled (defective) rows
    are left out: a retriever should read the cleaned corpus."""
    out = []
    for row in corpus:
        if row["lang"] != lang or row.get("labels"):
            continue
        current: list[str] = []
        for sentence in re.split(r"(?<=[.!?])\s+", row["text"].strip()):
            if current and len(" ".join(current + [sentence]).split()) > max_words:
                out.append(" ".join(current))
                current = []
            current.append(sentence)
        if current:
            out.append(" ".join(current))
    return out


class Retriever:
    """BM25 over ``texts`` (``bm25s``, English stopwords removed). ``search(query, k)`` returns the
    ``k`` best passages, best first."""

    def __init__(self, texts: Sequence[str]):
        import logging

        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)    # its DEBUG lines are not the lesson
        self.texts = list(texts)
        self._bm25 = bm25s.BM25()
        self._bm25.index(bm25s.tokenize(self.texts, stopwords="en", show_progress=False), show_progress=False)

    def search(self, query: str, k: int = 3) -> list[str]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 3) -> list[list[str]]:
        import bm25s

        tokens = bm25s.tokenize(list(queries), stopwords="en", return_ids=False, show_progress=False)
        ids, _ = self._bm25.retrieve(tokens, k=min(k, len(self.texts)), show_progress=False)
        return [[self.texts[i] for i in row] for row in ids.tolist()]


def rag_prompt(question: str, notes: Sequence[str]) -> str:
    """The user turn of a RAG prompt: instruction, numbered notes, then the question."""
    lines = "\n".join(f"{i}. {note}" for i, note in enumerate(notes, 1))
    return f"{RAG_INSTRUCTION}\n\nNotes:\n{lines}\n\nQuestion: {question}"


def rag_render(tokenizer, retriever: Retriever, k: int = 3, system: str | None = None) -> Callable[[str], str]:
    """``render(prompt)`` for :func:`ftlib.metrics.exact_match.exact_match`: the prompt with its ``k`` best
    passages, in the model's chat template."""
    return lambda prompt: chat_prompt(tokenizer, rag_prompt(prompt, retriever.search(prompt, k)), system)


def few_shot_render(tokenizer, examples: Sequence[dict], system: str | None = None) -> Callable[[str], str]:
    """``render(prompt)``: solved ``examples`` (task rows) as earlier user/assistant turns, then the
    prompt. Take examples from the train split, never from the items being scored."""
    shots = [m for row in examples for m in ({"role": "user", "content": row["prompt"]},
                                             {"role": "assistant", "content": row["answer"]})]
    head = [{"role": "system", "content": system}] if system else []

    def render(prompt: str) -> str:
        messages = head + shots + [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return render


def recall_at_k(retriever: Retriever, rows: Sequence[dict], k: int = 3) -> list[bool]:
    """Per task row: does one of the ``k`` retrieved passages contain an accepted answer
    (``meta["accept"]``, else the answer; case-insensitive)? RAG cannot beat its retriever."""
    found = []
    for row, notes in zip(rows, retriever.search_many([r["prompt"] for r in rows], k)):
        accept = [a.lower() for a in (row.get("meta", {}).get("accept") or [row["answer"]])]
        text = " ".join(notes).lower()
        found.append(any(a in text for a in accept))
    return found
