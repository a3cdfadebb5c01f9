"""Open local HTML files in a real headless browser (Debian's chromium driven by Playwright).

Used by the feedback page tests. Playwright's own browser download is not needed: the system
chromium (``apt-get install chromium``) is launched through ``executable_path``. Tests that need the
browser call :func:`launch` (or the ``chromium`` fixture built on it) and are skipped, with the
reason, when Playwright or chromium is missing (in CI, where the Makefile installs chromium, they
fail instead). If both are present but chromium does not start, that is an error, not a skip.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]
VIEWPORT = {"width": 1000, "height": 800}

# What the page looks like once loaded: every image decoded or not, scripts, on* handlers, text.
_FACTS_JS = """
async () => {
  const images = Array.from(document.images);
  const decoded = await Promise.all(images.map(i => i.decode().then(() => true, () => false)));
  const handlers = Array.from(document.querySelectorAll('*')).filter(
      e => Array.from(e.attributes).some(a => a.name.toLowerCase().startsWith('on')));
  return {
    title: document.title,
    text: document.body ? document.body.innerText : '',
    images: images.map((i, k) => ({complete: i.complete, naturalWidth: i.naturalWidth,
                                   naturalHeight: i.naturalHeight, decoded: decoded[k],
                                   src_scheme: i.src.split(':')[0], alt: i.alt})),
    scripts: document.querySelectorAll('script').length,
    handler_elements: handlers.map(e => e.outerHTML.slice(0, 200)),
    tags: Array.from(new Set(Array.from(document.querySelectorAll('*')).map(e => e.tagName.toLowerCase()))).sort(),
    rows: document.querySelectorAll('tbody tr').length,
  };
}
"""


def missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright==1.65.2)"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
        return f"chromium not found at {CHROMIUM} (as root: apt-get install chromium; or set CHROMIUM)"
    return None


@contextmanager
def launch():
    """A headless chromium for the duration of the block; pytest.skip when it is not available."""
    reason = missing()
    if reason and os.environ.get("CI"):
        # CI runs `make test` as root, where the Makefile installs chromium: a missing browser is a failure there.
        pytest.fail(f"browser test needs a headless chromium: {reason}")
    if reason:
        pytest.skip(f"browser test needs a headless chromium: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def page_facts(browser, path: Path, screenshot: Path | None = None) -> dict:
    """Open ``path`` (a local HTML file) and return what the page shows and what it tried to load.

    Besides the facts of ``_FACTS_JS``: ``requests``, every URL the page requested, ``outside``, those
    not ``file:`` or ``data:`` (blocked, so nothing leaves even when a test fails), and ``errors``,
    console errors (Content-Security-Policy violations among them) and uncaught page errors.
    """
    context = browser.new_context(viewport=VIEWPORT, java_script_enabled=True, offline=True)
    page = context.new_page()
    requests, outside, errors = [], [], []

    def route(r):
        url = r.request.url
        if url.startswith(("file:", "data:")):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("request", lambda req: requests.append(req.url))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(Path(path).resolve().as_uri(), wait_until="load")
        facts = page.evaluate(_FACTS_JS)
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    outside += [u for u in requests if not u.startswith(("file:", "data:")) and u not in outside]
    return {**facts, "requests": requests, "outside": outside, "errors": errors}
