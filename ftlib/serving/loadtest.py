"""A bounded load test of a chat server: throughput and latency at a few concurrency levels.

:func:`load_test` sends ``requests`` chat completions with ``concurrency`` clients at once (each
sends its next request when the last one returns), all with the same prompt and greedy decoding,
and reports requests/s, completion tokens/s (from each reply's ``usage``), and the 50th and 95th
percentile of the latency. A server that generates one request at a time serves concurrent
clients by queueing them, so latency grows with concurrency while throughput stays about flat;
a batching server (vLLM, TGI) raises throughput instead. Rejected requests (429) are counted, not
retried.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    ok: int
    rejected: int
    seconds: float
    tokens: int
    p50: float
    p95: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0-1) by linear interpolation between order statistics (numpy's default)."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo, frac = int(pos), pos - int(pos)
    return s[lo] + (s[min(lo + 1, len(s) - 1)] - s[lo]) * frac


async def _run(url: str, model: str, concurrency: int, requests: int, max_tokens: int, prompt: str) -> LoadResult:
    import httpx
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0}
    latencies, tokens, rejected = [], 0, 0
    todo = iter(range(requests))

    async def client(http):
        nonlocal tokens, rejected
        for _ in todo:
            t0 = time.perf_counter()
            reply = await http.post(url.rstrip("/") + "/v1/chat/completions", json=body)
            if reply.status_code == 429:
                rejected += 1
                continue
            reply.raise_for_status()
            latencies.append(time.perf_counter() - t0)
            tokens += reply.json()["usage"]["completion_tokens"]

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=600) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    seconds = time.perf_counter() - t0
    return LoadResult(concurrency, requests, len(latencies), rejected, seconds, tokens,
                      percentile(latencies, 0.5), percentile(latencies, 0.95))


def load_test(url: str, model: str, concurrency: int, requests: int, *, max_tokens: int = 32,
              prompt: str = "Count the letter r in 'strawberry'.") -> LoadResult:
    """Send ``requests`` greedy completions, ``concurrency`` at a time; measure throughput and latency.
    Runs its own event loop on a worker thread, so it also works inside Jupyter (which has one running)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _run(url, model, concurrency, requests, max_tokens, prompt)).result()
