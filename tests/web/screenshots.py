"""Take the docs' screenshots of the web observer: ``python -m tests.web.screenshots``
(from the repository's root; needs Chromium, chromedriver and selenium).

Writes ``docs/_static/web-healthy.png`` (a healthy tree and its timeline, 1280x800),
``docs/_static/web-crash-loop.png`` (a child in a crash loop, its crash history open)
and ``docs/_static/web-phone.png`` (the crash loop on a phone-sized viewport).

The only thing changed in the page before a picture is taken: the checkout's own
directory, in the tracebacks' file names, is shown as ``.../otp_py`` (it says where
the screenshots were taken, which is nobody's business)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.cli.clitools import ROOT, runtime_dir
from tests.web.browser import chromium, missing, serve, set_viewport

OUT = ROOT / "docs" / "_static"


def _wait(driver: object, script: str, timeout: float = 30.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: d.execute_script(script))


def _anonymise(driver: object) -> None:
    driver.execute_script(  # type: ignore[attr-defined]
        "for (const pre of document.querySelectorAll('pre'))"
        " pre.textContent = pre.textContent.split(arguments[0]).join('.../otp_py')",
        str(ROOT))


def healthy(out: Path) -> None:
    with runtime_dir() as runtime:
        cli, url = serve("tests.web.trees:HEALTHY", runtime)
        with cli, chromium() as driver:
            driver.get(url)
            _wait(driver, "return document.querySelectorAll('.child[data-state=running]')"
                          ".length === 8 && [...document.querySelectorAll('.child')]"
                          ".every(c => c.dataset.started)")
            time.sleep(2.5)  # a few seconds of uptime on the cards
            _wait(driver, "return document.querySelectorAll('#events .event').length > 10")
            driver.save_screenshot(str(out / "web-healthy.png"))


def crash_loop(out: Path) -> None:
    with runtime_dir() as runtime:
        cli, url = serve("tests.web.trees:CRASH_LOOP", runtime)
        with cli, chromium() as driver:
            driver.get(url)
            _wait(driver, "const c = document.querySelector('.child[data-path=\"shop/ingest/"
                          "reader\"]'); return c && parseInt(c.dataset.restarts) >= 6")
            driver.find_element("css selector", "#filter option[value='shop/ingest']").click()
            driver.find_element(
                "css selector", '.child[data-path="shop/ingest/reader"] .pick').click()
            _wait(driver, "return document.querySelectorAll('#details-history li').length >= 3")
            driver.execute_script("document.querySelector('#details-history details')"
                                  ".open = true; document.querySelector('.side').scrollTop = 0")
            _anonymise(driver)
            _wait(driver, "return document.querySelector('.child.flash"
                          "[data-state=restarting]') !== null", timeout=60)
            driver.save_screenshot(str(out / "web-crash-loop.png"))
            set_viewport(driver, 390, 844)
            driver.execute_script("document.querySelector('.sup[data-path=\"shop/ingest\"]')"
                                  ".scrollIntoView({block: 'start'})")
            _wait(driver, "return document.querySelector('.child.flash') !== null")
            driver.save_screenshot(str(out / "web-phone.png"))


def main() -> int:
    why = missing()
    if why is not None:
        print(f"cannot take the screenshots: {why}", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    healthy(OUT)
    crash_loop(OUT)
    for name in ("web-healthy.png", "web-crash-loop.png", "web-phone.png"):
        print(OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
