"""``otp-py run --web``: the flags, checked before anything starts, and the observer
of a tree run without a control socket."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from tests.cli.clitools import Cli, run

pytest.importorskip("aiohttp", reason="the web extra (aiohttp) is not installed")

TARGET = "tests.web.trees:HEALTHY"


def test_a_non_loopback_address_without_the_flag_is_refused_before_the_tree_starts(
        runtime: Path) -> None:
    result = run(["run", TARGET, "--view", "events", "--web", "0.0.0.0:0"], runtime)
    assert result.returncode == 2
    assert "0.0.0.0 is not a loopback address" in result.stderr
    assert "--web-allow-remote" in result.stderr
    assert "starting tree" not in result.stdout + result.stderr


def test_the_remote_flag_goes_with_web(runtime: Path) -> None:
    result = run(["run", TARGET, "--web-allow-remote"], runtime)
    assert result.returncode == 2
    assert "--web-allow-remote goes with --web HOST:PORT" in result.stderr


def test_without_a_control_socket_the_page_still_restarts_children(runtime: Path) -> None:
    with Cli(["run", TARGET, "--view", "events", "--no-control", "--web", "127.0.0.1:0"],
             runtime) as cli:
        line = cli.wait_for(r"web observer at http://127\.0\.0\.1:\d+/$")
        match = re.search(r"(http://\S+)", line)
        assert match is not None
        url = match.group(1)
        assert "token" not in url  # (loopback: none needed)
        with urllib.request.urlopen(url + "api/child?path=api", timeout=30) as response:
            before = json.load(response)["child"]["pid"]
        request = urllib.request.Request(
            url + "api/action", data=json.dumps({"op": "restart", "path": "api"}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["message"] == "restarted shop/api"
        with urllib.request.urlopen(url + "api/child?path=api", timeout=30) as response:
            after = json.load(response)["child"]
        assert after["pid"] != before and after["state"] == "running"
        cli.wait_for("shop: started api \\(restart 1\\)")
    assert cli.proc.returncode == 0, cli.output
