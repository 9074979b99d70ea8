"""The web observer in a real browser: Debian's Chromium, headless, driven by
Selenium, on the page of ``otp-py run TREE --web``."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.web import browser, trees

pytestmark = pytest.mark.skipif(browser.missing() is not None,
                                reason=str(browser.missing()))

TIMEOUT = 30.0
CHILDREN = ("shop/web", "shop/api", "shop/cache", "shop/workers/worker-1",
            "shop/workers/worker-2", "shop/workers/scheduler", "shop/ingest/reader",
            "shop/ingest/parser")


def wait(driver: Any, script: str, timeout: float = TIMEOUT, poll: float = 0.02) -> Any:
    """Wait until ``script`` (a JavaScript function body) returns something true in
    the page; return it."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=poll).until(
        lambda d: d.execute_script(script))


def card(driver: Any, path: str) -> dict[str, str]:
    """What the page shows of the child at ``path``: its state, pid and restarts."""
    result: dict[str, str] = driver.execute_script(
        "const c = document.querySelector(`.child[data-path='${arguments[0]}']`);"
        "return c && {state: c.dataset.state, pid: c.dataset.pid,"
        " restarts: c.dataset.restarts,"
        " text: c.querySelector('[data-fact=state]').textContent}", path)
    return result


def click(driver: Any, css: str) -> None:
    driver.find_element("css selector", css).click()


def declared_paths(spec: Any, parent: str = "") -> list[str]:
    paths = []
    for child in spec.children:
        path = f"{parent or spec.id}/{child.id}"
        if hasattr(child, "children"):
            paths += declared_paths(child, path)
        else:
            paths.append(path)
    return paths


def test_the_page_shows_the_tree_live_and_its_buttons_act(runtime: Path) -> None:
    assert sorted(declared_paths(trees.HEALTHY)) == sorted(CHILDREN)
    cli, url = browser.serve("tests.web.trees:HEALTHY", runtime)
    with cli, browser.chromium() as driver:
        driver.get(url)
        # Every child, each with its state in words (not colour alone) and its pid.
        wait(driver, "return document.querySelectorAll('.child[data-state=running]')"
                     f".length === {len(CHILDREN)}")
        shown = driver.execute_script(
            "return [...document.querySelectorAll('.child')].map(c => c.dataset.path)")
        assert sorted(shown) == sorted(CHILDREN)
        assert all(card(driver, p)["text"] == "running" for p in CHILDREN)
        boxes = driver.execute_script(
            "return [...document.querySelectorAll('.sup')].map(s => s.dataset.path)")
        assert boxes == ["shop", "shop/workers", "shop/ingest"]
        assert "one_for_all" in driver.find_element(
            "css selector", ".sup[data-path='shop/workers'] .badge").text
        tree_pid = cli.proc.pid

        # Kill a process child from outside: the page shows its restart within 1 s.
        api = card(driver, "shop/api")
        pid = int(api["pid"])
        assert tree_pid in [p.pid for p in psutil.Process(pid).parents()]
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        wait(driver, "const c = document.querySelector(\".child[data-path='shop/api']\");"
                     f"return c.dataset.restarts === '1' && c.dataset.state === 'running'"
                     f" && c.dataset.pid !== '' && c.dataset.pid !== '{pid}'",
             timeout=5.0, poll=0.01)
        seen = time.monotonic() - killed
        print(f"the restart showed {seen:.3f} s after the kill")
        assert seen < 1.0, f"the restart showed {seen:.3f} s after the kill"
        assert driver.execute_script(  # the crash made it flash
            "return document.querySelector(\".child[data-path='shop/api']\").dataset.crashes")\
            == "1"
        new_pid = int(card(driver, "shop/api")["pid"])
        assert tree_pid in [p.pid for p in psutil.Process(new_pid).parents()]
        wait(driver, "return [...document.querySelectorAll('#events .event.abnormal')].some("
                     "e => e.textContent.includes('crashed') && "
                     "e.textContent.includes('shop: api exited') && "
                     "e.textContent.includes('SIGKILL'))")

        # Clicked, a child shows its crash history and the tail of its logs.
        click(driver, ".child[data-path='shop/api'] .pick")
        wait(driver, "return [...document.querySelectorAll('#details-history li.abnormal')]"
                     ".some(li => li.textContent.includes('SIGKILL'))")
        wait(driver, "return [...document.querySelectorAll('#details-logs pre')]"
                     ".some(pre => pre.textContent.includes('api: listening'))")

        # Click restart on another child: its pid changes.
        worker = card(driver, "shop/workers/worker-1")
        click(driver, ".child[data-path='shop/workers/worker-1'] .pick")
        wait(driver, "return document.querySelector('#details-title').textContent"
                     " === 'shop/workers/worker-1'")
        click(driver, "#details button[data-op=restart]")
        wait(driver, "const c = document.querySelector(\".child[data-path="
                     "'shop/workers/worker-1']\"); return c.dataset.state === 'running'"
                     f" && c.dataset.pid !== '' && c.dataset.pid !== '{worker['pid']}'")
        wait(driver, "return document.querySelector('#toast').textContent"
                     ".includes('restarted shop/workers/worker-1')")

        # Stop asks first; cancelled, nothing happens; confirmed, the child stops.
        click(driver, "#details button[data-op=terminate]")
        wait(driver, "return document.querySelector('#confirm').open")
        click(driver, "#confirm-cancel")
        assert not driver.execute_script("return document.querySelector('#confirm').open")
        click(driver, "#details button[data-op=terminate]")
        wait(driver, "return document.querySelector('#confirm').open")
        click(driver, "#confirm-ok")
        wait(driver, "return document.querySelector(\".child[data-path="
                     "'shop/workers/worker-1']\").dataset.state === 'stopped'")
        assert card(driver, "shop/workers/worker-1")["text"] == "stopped"
        click(driver, "#details button[data-op=start]")
        wait(driver, "return document.querySelector(\".child[data-path="
                     "'shop/workers/worker-1']\").dataset.state === 'running'")
    assert cli.proc.returncode == 0, cli.output


def _outside_address() -> str:
    """A non-loopback IPv4 address of this machine (0.0.0.0 when it has none)."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return address.address
    return "0.0.0.0"


def test_off_loopback_a_request_without_the_token_is_refused(runtime: Path) -> None:
    cli, url = browser.serve("tests.web.trees:HEALTHY", runtime, "--web-allow-remote",
                             host="0.0.0.0")
    with cli, browser.chromium() as driver:
        cli.wait_for("needs the token in that address")
        port = int(url.split(":")[2].split("/")[0])
        token = url.split("?token=")[1]
        assert url.startswith("http://0.0.0.0:")
        address = _outside_address()
        for path in ("/", "/static/app.js", "/api/tree", "/api/stream"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=TIMEOUT)
            assert refused.value.code == 401, path
            refused.value.close()
        driver.get(f"http://{address}:{port}/")
        assert "needs its token" in driver.find_element("tag name", "body").text
        driver.get(f"http://{address}:{port}/?token={token}")
        wait(driver, "return document.querySelectorAll('.child[data-state=running]')"
                     f".length === {len(CHILDREN)}")
        assert "?token" not in driver.current_url  # (dropped from the address bar)
        wait(driver, "return document.querySelector('#connection').textContent"
                     ".includes('live')")
