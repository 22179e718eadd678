"""The server's model side: chat requests checked against a model, and one generation at a time.

:class:`Served` is one model with its tokenizer, context size and stop tokens. :class:`Generator`
runs generations one after another, in arrival order, on one worker thread (``max_waiting`` bounds
how many wait) and streams text pieces as they are produced, holding back any text that could still
become a stop sequence, so a stop string never reaches the client even in part. A streaming client
that goes away cancels its generation at the next token (a waiting one, before it starts); a
non-streaming request runs to its end. Everything a request can get wrong raises :class:`RequestError` with
the HTTP status and OpenAI's error type, before any work is done.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

ROLES = ("system", "user", "assistant")


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx), OpenAI's error ``kind`` and ``param``."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error",
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = status, message, param, kind, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


@dataclass
class Served:
    """A model as the server holds it."""
    name: str
    model: object
    tokenizer: object
    context: int = 0                     # tokens: prompt + answer (0: the model config's)
    stop_ids: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.context = self.context or int(getattr(self.model.config, "max_position_embeddings", 2048))
        if not self.stop_ids:
            from ftlib.engine.sft_data import stop_ids
            self.stop_ids = stop_ids(self.tokenizer)


@dataclass
class Job:
    """A checked request: the prompt's ids and how to sample."""
    served: Served
    prompt_ids: list[int]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


def check_request(body: dict, models: dict[str, Served]) -> Job:
    """Turn a ``/v1/chat/completions`` body into a :class:`Job`, or raise :class:`RequestError`."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise RequestError(400, "'model' is required: one of " + ", ".join(models), "model")
    if name not in models:
        raise RequestError(404, f"the model '{name}' does not exist; this server has {', '.join(models)}", "model",
                           code="model_not_found")
    served = models[name]
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list of {role, content} objects", "messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise RequestError(400, f"messages[{i}] must be {{'role': one of {', '.join(ROLES)}, 'content': a string}}",
                               f"messages[{i}]")
    if body.get("n", 1) != 1:
        raise RequestError(400, "this server returns one choice per request (n = 1)", "n")
    ids = _encode_chat(served.tokenizer, [{"role": m["role"], "content": m["content"]} for m in messages])
    room = served.context - len(ids)
    if room < 1:
        raise RequestError(400, f"the prompt is {len(ids)} tokens; this model's context is {served.context}",
                           "messages", code="context_length_exceeded")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", min(256, room)))
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise RequestError(400, "'max_tokens' must be an integer of at least 1", "max_tokens")
    if max_tokens > room:
        raise RequestError(400, f"max_tokens {max_tokens} + the prompt's {len(ids)} tokens exceed the context of "
                           f"{served.context}", "max_tokens", code="context_length_exceeded")
    temperature, top_p = body.get("temperature", 1.0), body.get("top_p", 1.0)
    if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise RequestError(400, "'temperature' must be a number from 0 to 2", "temperature")
    if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise RequestError(400, "'top_p' must be a number above 0 and at most 1", "top_p")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise RequestError(400, "'seed' must be an integer", "seed")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise RequestError(400, "'stream_options' must be an object, e.g. {\"include_usage\": true}", "stream_options")
    if not isinstance(body.get("stream", False), bool):
        raise RequestError(400, "'stream' must be true or false", "stream")
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        raise RequestError(400, "'metadata' must be an object of strings", "metadata")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
        raise RequestError(400, "'stop' must be a string or a list of up to 4 non-empty strings", "stop")
    return Job(served, ids, max_tokens, float(temperature), float(top_p), seed, stop)


class Stream:
    """One admitted job: its pieces arrive on ``queue`` as ``(text, completion tokens so far, finish
    reason or None)``, then ``None``; set ``cancel`` to stop it (a client that went away)."""

    def __init__(self):
        self.queue: queue.Queue = queue.Queue()
        self.cancel = threading.Event()

    def pieces(self) -> Iterator[tuple[str, int, str | None]]:
        """Block for each piece until the job ends (for a caller on a worker thread)."""
        while (item := self.queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item


def _encode_chat(tokenizer, messages: list[dict]) -> list[int]:
    """The prompt's ids under the model's chat template (special tokens come from the template).
    Encoded by the fast tokenizer's backend, which does not warn about prompts longer than the
    model: that is the request check's business, with a 400."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return backend.encode(text, add_special_tokens=False).ids
    return tokenizer(text, add_special_tokens=False)["input_ids"]


class Generator:
    """Generations one at a time, in arrival order: one worker thread takes jobs from a FIFO queue,
    so a slow or vanished client never holds the model and no request overtakes another; at most
    ``max_waiting`` jobs wait or run at once."""

    def __init__(self, max_waiting: int = 32):
        self.max_waiting, self.waiting = max_waiting, 0
        self.lock = threading.Lock()           # held while a job runs (tests hold it to fill the queue)
        self._count, self._jobs = threading.Lock(), queue.Queue()
        threading.Thread(target=self._worker, daemon=True).start()

    def start(self, job: Job) -> Stream:
        """Admit ``job`` (or raise :class:`RequestError` 429 at once) and queue it."""
        with self._count:
            if self.waiting >= self.max_waiting:
                raise RequestError(429, f"the server is busy ({self.waiting} requests waiting or running); try again",
                                   kind="server_busy", code="rate_limit_exceeded")
            self.waiting += 1
        stream = Stream()
        self._jobs.put((job, stream))
        return stream

    def _worker(self) -> None:
        while True:
            job, stream = self._jobs.get()
            try:
                if not stream.cancel.is_set():             # a client that left while waiting costs nothing
                    with self.lock:
                        for piece in self._generate(job, stream.cancel):
                            stream.queue.put(piece)
            except Exception as e:                          # reported to the caller, never lost
                stream.queue.put(e)
            finally:
                with self._count:
                    self.waiting -= 1
                stream.queue.put(None)

    def _generate(self, job: Job, cancel: threading.Event):
        tok, model = job.served.tokenizer, job.served.model
        if job.seed is not None:
            torch.manual_seed(job.seed)
        ids = torch.tensor([job.prompt_ids], device=model.device)
        past, produced, text, sent = None, [], "", 0
        finish = "length"
        longest_stop = max((len(s) for s in job.stop), default=0)
        with torch.no_grad():
            for _ in range(job.max_tokens):
                if cancel.is_set():
                    return
                out = model(input_ids=ids, past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits[0, -1].float()
                next_id = _pick(logits, job.temperature, job.top_p)
                if next_id in job.served.stop_ids:
                    finish = "stop"
                    break
                produced.append(next_id)
                ids = torch.tensor([[next_id]], device=model.device)
                text = tok.decode(produced, skip_special_tokens=True)
                cut = min((i for i in (text.find(s) for s in job.stop) if i >= 0), default=-1)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
                    break
                safe = len(text) - (longest_stop - 1 if longest_stop else 0)
                if text.endswith("\ufffd"):                 # half of a multi-byte character: wait for the rest
                    safe = min(safe, len(text) - 1)
                if safe > sent:
                    yield text[sent:safe], len(produced), None
                    sent = safe
        yield text[sent:], len(produced), finish


def _pick(logits: torch.Tensor, temperature: float, top_p: float) -> int:
    """Greedy at temperature 0, else sample from the nucleus of probability ``top_p``."""
    if temperature == 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1:
        sorted_p, order = probs.sort(descending=True)
        keep = sorted_p.cumsum(0) - sorted_p < top_p                # always keeps the most likely token
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
    return int(torch.multinomial(probs / probs.sum(), 1))


def drain(stream: Stream) -> tuple[str, int, str, float]:
    """A started job as one answer: ``(text, completion tokens, finish reason, seconds)``."""
    t0, text, n, finish = time.perf_counter(), "", 0, "length"
    for piece, n, reason in stream.pieces():
        text += piece
        finish = reason or finish
    return text, n, finish, time.perf_counter() - t0
