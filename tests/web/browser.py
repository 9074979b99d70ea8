"""Debian's Chromium, headless, driven by Selenium; and ``otp-py run --web`` to point
it at. Used by the browser test and by the screenshot script (``python -m
tests.web.screenshots``)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from tests.cli.clitools import Cli

CHROMIUM = os.environ.get("OTP_PY_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OTP_PY_CHROMEDRIVER", "/usr/bin/chromedriver")

# Without these, Chromium on a closed network (and as root) refuses to start, or
# spends its time trying to reach Google's services.
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--disable-extensions", "--hide-scrollbars",
    "--lang=en-US",
)


def missing() -> str | None:
    """Why no browser test can run here (None: it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} is missing (apt-get install {package})"
    return None


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 800) -> Iterator[Any]:
    """A headless Chromium with a fresh profile, quit (and every process of it
    killed) on leaving."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="otpweb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    service = Service(CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    family: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error, AttributeError):
        family = psutil.Process(service.process.pid).children(recursive=True)
    try:
        driver.set_window_size(width, height)
        yield driver
    finally:
        driver.quit()
        for proc in family:  # (a renderer left behind by a crash)
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def set_viewport(driver: Any, width: int, height: int) -> None:
    """Make the page's viewport (not the window) ``width`` x ``height``."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})


def serve(target: str, runtime: Path, *extra: str, host: str = "127.0.0.1") -> tuple[Cli, str]:
    """``otp-py run TARGET --web HOST:0`` (plus ``extra``), and its page's address once
    it serves."""
    cli = Cli(["run", target, "--view", "events", "--web", f"{host}:0", *extra], runtime)
    try:
        line = cli.wait_for(r"web observer at http://")
    except BaseException:
        cli.close()
        raise
    match = re.search(r"(http://\S+)", line)
    assert match is not None, line
    return cli, match.group(1)
