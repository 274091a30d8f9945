"""Fixtures for the web UI tests: a live UI server per test and one headless Chromium.

The browser is Debian's ``chromium`` with its ``chromium-driver``, driven by Selenium:
scripts/check.sh installs both when missing. Without them these tests fail, saying how to
install them; ``OSTINATO_SKIP_BROWSER_TESTS=1`` turns that into an explicit skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._live import LiveUI

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "ui-screenshots"
CHROMIUM = ("chromium", "chromium-browser")
DRIVER = "chromedriver"


def _find(names: tuple[str, ...]) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium, driver = _find(CHROMIUM), _find((DRIVER,))
    if chromium is None or driver is None:
        message = (
            "the web UI tests need Debian's chromium and chromium-driver packages "
            "(apt-get install chromium chromium-driver; scripts/check.sh does it): "
            f"chromium={chromium}, chromedriver={driver}"
        )
        if os.environ.get("OSTINATO_SKIP_BROWSER_TESTS") == "1":
            pytest.skip(f"OSTINATO_SKIP_BROWSER_TESTS=1: {message}")
        pytest.fail(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests may run as root (CI containers)
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--no-first-run",
        "--disable-extensions",
    ):
        options.add_argument(argument)
    driver_ = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    driver_.set_page_load_timeout(30)
    try:
        yield driver_
    finally:
        driver_.quit()


@pytest.fixture(params=["memory", "sqlite"])
def ui_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/ui.db"


@pytest.fixture
def live_ui(ui_url: str) -> Iterator[LiveUI]:
    ui = LiveUI(ui_url).start()
    try:
        yield ui
    finally:
        ui.stop()


@pytest.fixture
def live_ui_actions(ui_url: str) -> Iterator[LiveUI]:
    ui = LiveUI(ui_url, allow_actions=True).start()
    try:
        yield ui
    finally:
        ui.stop()


@pytest.fixture
def screenshot(browser: Any, request: pytest.FixtureRequest) -> Any:
    """``screenshot("name")`` saves the page as build/ui-screenshots/<test>-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = request.node.name.replace("[", "-").replace("]", "")

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{test}-{name}.png"
        # The whole page, not just the window: resize to the document's height first.
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, max(900, min(int(height) + 40, 4000)))
        browser.save_screenshot(str(path))
        browser.set_window_size(1280, 900)
        return path

    return take
