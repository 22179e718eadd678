"""An OpenAI-compatible chat server for the course's models (FastAPI + uvicorn, CPU).

    python -m ftlib.serving.server --model smollm2-135m --model smollm2-sft-lora [--port 8000]

Routes, as vLLM's and llama.cpp's servers have them:

- ``GET /v1/models``: the models served;
- ``POST /v1/chat/completions``: the chat template of the model, ``max_tokens``, ``temperature``,
  ``top_p``, ``seed``, ``stop``; ``"stream": true`` sends ``chat.completion.chunk`` objects as
  server-sent events and ends with ``data: [DONE]``; ``usage`` counts tokens
  (``stream_options.include_usage`` adds it to the stream);
- ``GET /health``; ``GET /``: a page that asks every served model the same question, side by side.

Every bad request gets OpenAI's error JSON with a 4xx status (:class:`ftlib.serving.generate.RequestError`);
nothing a client sends makes a 500. Each request is logged as one JSON line (time, model, prompt
and answer length, latency, status, the language of the prompt, a ``family`` the client may name
in ``metadata``), which :mod:`ftlib.metrics.drift` reads.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from ftlib.serving.generate import Generator, RequestError, Served, check_request, drain

PAGE = Path(__file__).with_name("page.html")


def _language(text: str) -> str:
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"


class RequestLog:
    """One JSON line per request, appended (thread-safe)."""

    def __init__(self, path: str | Path | None):
        self.path, self.lock = (Path(path) if path else None), threading.Lock()

    def write(self, **row) -> None:
        if self.path is None:
            return
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": round(time.time(), 3), **row}, ensure_ascii=False) + "\n")


def create_app(models: dict[str, Served], log_path: str | Path | None = None, max_waiting: int = 32):
    """The FastAPI application serving ``models`` (``{name: Served}``)."""
    app = FastAPI(title="ftcourse server")
    generator, log = Generator(max_waiting), RequestLog(log_path)
    app.state.generator = generator

    def error(e: RequestError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):                    # unknown routes, wrong methods: OpenAI's shape
        return error(RequestError(exc.status_code, str(exc.detail), kind="invalid_request_error"))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        return error(RequestError(400, "the request does not validate: " + str(exc.errors())[:300]))

    @app.exception_handler(Exception)
    async def unexpected(request, exc):                    # a bug of ours: say so, keep serving
        return error(RequestError(500, f"internal error: {type(exc).__name__}", kind="server_error"))

    @app.get("/health")
    def health():
        return {"status": "ok", "models": list(models), "waiting": generator.waiting}

    @app.get("/v1/models")
    def list_models():
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "ftcourse"}
                                           for n in models]}

    @app.get("/", response_class=HTMLResponse)
    def page():
        return PAGE.read_text().replace("__MODELS__", json.dumps(list(models)))

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        t0 = time.perf_counter()
        try:
            body = json.loads(await request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return error(RequestError(400, f"the body is not JSON: {e}"))
        try:
            job = check_request(body, models)
            stream = generator.start(job)
        except RequestError as e:
            log.write(model=body.get("model") if isinstance(body, dict) else None, status=e.status, error=e.message)
            return error(e)
        prompt = " ".join(m["content"] for m in body["messages"])
        meta = body.get("metadata") or {}
        record = {"model": job.served.name, "prompt_chars": len(prompt), "prompt_tokens": len(job.prompt_ids),
                  "language": _language(prompt), "family": meta.get("family")}
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def usage(n):
            return {"prompt_tokens": len(job.prompt_ids), "completion_tokens": n, "total_tokens": len(job.prompt_ids) + n}

        if not body.get("stream"):
            from starlette.concurrency import run_in_threadpool
            text, n, finish, _ = await run_in_threadpool(lambda: drain(stream))
            log.write(**record, completion_tokens=n, answer_chars=len(text), seconds=round(time.perf_counter() - t0, 4),
                      status=200, finish=finish)
            return {"id": rid, "object": "chat.completion", "created": created, "model": job.served.name,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                    "usage": usage(n)}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events():
            def chunk(delta, finish=None, **extra):
                return "data: " + json.dumps({"id": rid, "object": "chat.completion.chunk", "created": created,
                                              "model": job.served.name, "choices": [{"index": 0, "delta": delta,
                                              "finish_reason": finish}], **extra}, ensure_ascii=False) + "\n\n"
            n, chars, finish = 0, 0, None
            try:
                yield chunk({"role": "assistant", "content": ""})
                while (item := await asyncio.to_thread(stream.queue.get)) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    text, n, reason = item
                    chars += len(text)
                    if text:
                        yield chunk({"content": text})
                    finish = reason or finish
                yield chunk({}, finish or "length")
                if include_usage:
                    yield "data: " + json.dumps({"id": rid, "object": "chat.completion.chunk", "created": created,
                                                 "model": job.served.name, "choices": [], "usage": usage(n)}) + "\n\n"
                yield "data: [DONE]\n\n"
            finally:                                       # also when the client goes away mid-stream
                stream.cancel.set()
                log.write(**record, completion_tokens=n, answer_chars=chars, seconds=round(time.perf_counter() - t0, 4),
                          status=200 if finish else 499, finish=finish or "client_closed", stream=True)

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def load_served(names: list[str], profile: str | None = None, seed: int = 0) -> dict[str, Served]:
    """The course's models by name (or local folders / hub ids), ready to serve."""
    from ftlib.engine.sft_data import chatml_template
    from ftlib.products.registry import load_model
    served = {}
    for name in names:
        model, tokenizer = load_model(name, profile=profile, seed=seed)
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = chatml_template()
        served[name] = Served(name, model.eval(), tokenizer)
    return served


def main(argv: list[str] | None = None) -> int:
    import uvicorn
    parser = argparse.ArgumentParser(prog="python -m ftlib.serving.server", description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="a course name, local folder or hub id (repeatable)")
    parser.add_argument("--profile", default=None, help="smoke | cpu | gpu (default: $FTLIB_PROFILE or cpu)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log", default="requests.jsonl", help="the request log (JSON lines)")
    args = parser.parse_args(argv)
    app = create_app(load_served(args.model, args.profile), args.log)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
