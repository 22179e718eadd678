"""The OpenAI-compatible server, driven by the official openai client against a server this test
starts on a free loopback port (and stops): routes, streaming, sampling settings, and every kind of
bad request answered with a 4xx error, never a crash."""
import json
import socket
import threading
import time

import httpx
import openai
import pytest
import torch

from ftlib.serving.generate import Served
from ftlib.serving.server import create_app

QUESTION = [{"role": "user", "content": "What is 2 + 3?"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tok):
    import uvicorn

    from ftlib.engine.models import TinyConfig, tiny_llama
    models = {}
    for i, name in enumerate(("tiny-a", "tiny-b")):
        torch.manual_seed(i)
        model = tiny_llama(TinyConfig(vocab_size=len(tok), hidden_size=32, n_layers=2, n_heads=4, n_kv_heads=2,
                                      intermediate_size=48, max_seq_len=96), pad_token_id=tok.pad_token_id,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id).eval()
        models[name] = Served(name, model, tok, stop_ids=[tok.eos_token_id])   # random weights: rarely stops early
    log = tmp_path_factory.mktemp("server") / "requests.jsonl"
    app = create_app(models, log, max_waiting=8)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    yield {"url": url, "client": openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0),
           "log": log, "app": app}
    srv.should_exit = True
    thread.join(timeout=10)


def test_models_health_and_the_page(server):
    assert [m.id for m in server["client"].models.list().data] == ["tiny-a", "tiny-b"]
    assert httpx.get(server["url"] + "/health").json()["status"] == "ok"
    page = httpx.get(server["url"] + "/").text
    assert '["tiny-a", "tiny-b"]' in page and "/v1/chat/completions" in page


def test_a_completion_and_its_stream_agree(server):
    client = server["client"]
    whole = client.chat.completions.create(model="tiny-a", messages=QUESTION, max_tokens=12, temperature=0)
    text = whole.choices[0].message.content
    assert whole.usage.completion_tokens <= 12 and whole.usage.prompt_tokens > 0
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    chunks = list(client.chat.completions.create(model="tiny-a", messages=QUESTION, max_tokens=12, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == \
        [whole.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_seed_stop_and_max_tokens(server):
    client = server["client"]
    ask = lambda **kw: client.chat.completions.create(model="tiny-b", messages=QUESTION, **kw).choices[0]  # noqa: E731
    assert ask(max_tokens=16, temperature=1.0, seed=7).message.content == ask(max_tokens=16, temperature=1.0, seed=7).message.content
    greedy = ask(max_tokens=16, temperature=0).message.content
    assert len(greedy) > 4
    stop = greedy[2:4]
    cut = ask(max_tokens=16, temperature=0, stop=[stop])
    assert cut.message.content == greedy[:greedy.find(stop)] and cut.finish_reason == "stop"
    streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="tiny-b", messages=QUESTION, max_tokens=16, temperature=0, stop=[stop], stream=True) if c.choices)
    assert streamed == cut.message.content                       # no part of the stop string slips out
    short = ask(max_tokens=2, temperature=0)
    assert short.finish_reason == "length"


@pytest.mark.parametrize("kwargs, error, param", [
    ({"model": "gpt-9", "messages": QUESTION}, openai.NotFoundError, "model"),
    ({"model": "tiny-a", "messages": []}, openai.BadRequestError, "messages"),
    ({"model": "tiny-a", "messages": [{"role": "wizard", "content": "hi"}]}, openai.BadRequestError, "messages[0]"),
    ({"model": "tiny-a", "messages": [{"role": "user"}]}, openai.BadRequestError, "messages[0]"),
    ({"model": "tiny-a", "messages": [{"role": "user", "content": "word " * 200}]}, openai.BadRequestError, "messages"),
    ({"model": "tiny-a", "messages": QUESTION, "max_tokens": 0}, openai.BadRequestError, "max_tokens"),
    ({"model": "tiny-a", "messages": QUESTION, "max_tokens": 10 ** 9}, openai.BadRequestError, "max_tokens"),
    ({"model": "tiny-a", "messages": QUESTION, "temperature": 7}, openai.BadRequestError, "temperature"),
    ({"model": "tiny-a", "messages": QUESTION, "top_p": 0}, openai.BadRequestError, "top_p"),
    ({"model": "tiny-a", "messages": QUESTION, "stop": ["a", "b", "c", "d", "e"]}, openai.BadRequestError, "stop"),
    ({"model": "tiny-a", "messages": QUESTION, "n": 3}, openai.BadRequestError, "n"),
])
def test_bad_requests_get_openai_errors(server, kwargs, error, param):
    with pytest.raises(error) as caught:
        server["client"].chat.completions.create(**kwargs)
    assert caught.value.body["param"] == param and caught.value.status_code in (400, 404)


@pytest.mark.parametrize("content", [b"{not json", b"", "[1, 2]".encode(), json.dumps({"model": 3}).encode(),
                                     json.dumps({"model": "tiny-a", "messages": QUESTION, "stream_options": "yes"}).encode(),
                                     json.dumps({"model": "tiny-a", "messages": QUESTION, "stream": "yes"}).encode(),
                                     json.dumps({"model": "tiny-a", "messages": QUESTION, "metadata": [1]}).encode()])
def test_bodies_that_are_not_requests_get_400(server, content):
    reply = httpx.post(server["url"] + "/v1/chat/completions", content=content,
                       headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and "message" in reply.json()["error"]


def test_unknown_routes_and_methods_are_4xx_json(server):
    assert httpx.get(server["url"] + "/v1/nothing").status_code == 404
    reply = httpx.get(server["url"] + "/v1/chat/completions")
    assert reply.status_code == 405 and reply.json()["error"]["type"] == "invalid_request_error"


def test_a_client_that_leaves_mid_stream_does_not_hurt_the_server(server):
    body = {"model": "tiny-a", "messages": QUESTION, "max_tokens": 60, "temperature": 0, "stream": True}
    with httpx.stream("POST", server["url"] + "/v1/chat/completions", json=body) as reply:
        next(reply.iter_lines())                                   # read one event, then hang up
    for _ in range(100):                                           # the cancelled generation ends and frees the model
        if server["app"].state.generator.waiting == 0:
            break
        time.sleep(0.05)
    assert server["app"].state.generator.waiting == 0
    again = server["client"].chat.completions.create(model="tiny-a", messages=QUESTION, max_tokens=3)
    assert again.choices[0].finish_reason in ("length", "stop")
    rows = [json.loads(line) for line in server["log"].read_text().splitlines()]
    assert any(r.get("finish") == "client_closed" for r in rows)
    assert all({"model", "status", "time"} <= set(r) for r in rows)


def test_a_full_queue_answers_429(server):
    generator = server["app"].state.generator
    generator.lock.acquire()                                       # the model is busy
    generator.max_waiting = 1
    try:
        waiting = threading.Thread(target=lambda: server["client"].chat.completions.create(
            model="tiny-a", messages=QUESTION, max_tokens=2), daemon=True)
        waiting.start()
        while generator.waiting < 1:
            time.sleep(0.02)
        with pytest.raises(openai.RateLimitError):
            server["client"].chat.completions.create(model="tiny-a", messages=QUESTION, max_tokens=2)
    finally:
        generator.lock.release()
        generator.max_waiting = 8
    waiting.join(timeout=30)


def test_waiting_requests_are_served_in_arrival_order(server):
    generator, done = server["app"].state.generator, []
    generator.lock.acquire()                                       # hold the model while three requests queue
    try:
        threads = []
        for i in range(3):
            def ask(i=i):
                server["client"].chat.completions.create(model="tiny-a", messages=QUESTION, max_tokens=2)
                done.append(i)
            threads.append(threading.Thread(target=ask, daemon=True))
            threads[-1].start()
            while generator.waiting < i + 1:
                time.sleep(0.02)
    finally:
        generator.lock.release()
    for t in threads:
        t.join(timeout=30)
    assert done == [0, 1, 2]


def test_the_load_test_measures_queueing(server):
    from ftlib.serving.loadtest import load_test, percentile
    assert percentile([1, 2, 3, 4], 0.5) == 2.5 and percentile([5], 0.95) == 5
    one = load_test(server["url"], "tiny-a", concurrency=1, requests=4, max_tokens=8)
    four = load_test(server["url"], "tiny-a", concurrency=4, requests=8, max_tokens=8)
    for r in (one, four):
        assert r.ok == r.requests and r.rejected == 0 and r.tokens > 0 and r.p50 <= r.p95
    assert four.p50 > one.p50                         # one generation at a time: the others wait in line


def test_the_chat_page_in_a_real_browser(server, tmp_path):
    """Debian's headless Chromium, driven by playwright: type a question, see every model answer."""
    from ftlib.serving.browser import CHROMIUM, ask_page
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed: ./run.sh setup installs Debian's chromium with apt-get when run as root")
    shown = ask_page(server["url"], "What is 2 + 3?", ["tiny-a", "tiny-b"], screenshot=tmp_path / "page.png")
    assert all(v["status"].startswith("finished:") for v in shown.values()), shown
    direct = {name: server["client"].chat.completions.create(model=name, messages=QUESTION, max_tokens=64,
                                                             temperature=0).choices[0].message.content
              for name in shown}
    assert {name: v["text"] for name, v in shown.items()} == direct     # the page shows what the API answers
    assert (tmp_path / "page.png").stat().st_size > 1000
