"""A real browser for the web tests: Debian's Chromium driven by Playwright, launched once per session,
with a fresh context (no cookies, no storage) for every test.

Never `playwright install`: these machines cannot reach its CDN. The browser is the one apt installs at
/usr/bin/chromium (the Makefile's setup installs it); CHROMIUM_PATH points elsewhere if need be."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",  # Debian's launcher script fails to add it on these machines
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: `make setup` installs it (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A new page in a new browser context: each test starts signed out, with nothing cached."""
    context = chromium.new_context(accept_downloads=True, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


@pytest.fixture
def axe_page(chromium: Browser) -> Iterator[Page]:
    """A page whose context ignores the CSP: axe-core is injected as an inline script, which pds's own
    policy rightly refuses."""
    context = chromium.new_context(locale="en-GB", timezone_id="UTC", bypass_csp=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go: $PDS_TEST_ARTIFACTS (CI keeps it), else a new temporary folder."""
    folder = Path(os.environ.get("PDS_TEST_ARTIFACTS") or tempfile.mkdtemp(prefix="pds-artifacts-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_accessibility(page: Page) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    assert AXE.is_file(), f"no axe-core at {AXE}: `make setup` runs npm ci"
    page.add_script_tag(path=str(AXE))
    results: dict[str, Any] = page.evaluate("() => axe.run()")
    blocking = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in results["violations"]
        if v["impact"] in BLOCKING
    ]
    assert blocking == [], f"{page.url}: {blocking}"
