"""The chat page in a real browser: Debian's headless Chromium driven by playwright (no download).

:func:`ask_page` opens the server's page, types a question, waits until every model's streamed
answer is complete, and returns what the page shows (optionally a screenshot). Playwright's
synchronous API refuses to run inside an event loop (Jupyter has one), so it runs on a worker thread.
"""
from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def _ask(url: str, question: str, models: list[str], screenshot: Path | None, timeout_ms: int) -> dict[str, dict]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 420})
            page.goto(url.rstrip("/") + "/")
            page.fill("#question", question)
            page.click("#send")
            shown = {}
            for name in models:
                box = f'.answer[data-model="{name}"]'
                page.wait_for_selector(f'{box}[data-done="true"]', timeout=timeout_ms)
                shown[name] = {"text": page.inner_text(f"{box} pre"), "status": page.inner_text(f"{box} .status")}
            if screenshot:
                page.screenshot(path=str(screenshot))
            return shown
        finally:
            browser.close()


def ask_page(url: str, question: str, models: list[str], screenshot: str | Path | None = None,
             timeout_ms: int = 120_000) -> dict[str, dict]:
    """``{model: {"text", "status"}}`` as the page shows them after asking ``question``."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: ./run.sh setup installs Debian's chromium with apt-get as root")
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_ask, url, question, list(models), Path(screenshot) if screenshot else None,
                           timeout_ms).result()
