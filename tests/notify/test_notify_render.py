"""A notify child's STATUS= in the table (``otp-py status`` and the live view share
its rows) and in ``otp-py status PATH``."""

from __future__ import annotations

from otp_py.cli.render import STATUS_WIDTH, cells, child_detail


def _row(**fields: object) -> dict[str, object]:
    return {"path": "root/redis", "kind": "worker", "backend": "command", "state": "running",
            "restarts": 0, "pid": 42, "started_at": None, "last_exit": None, "note": None,
            "restart": "permanent", "shutdown": "5 s", **fields}


def test_the_table_shows_the_status_after_the_state() -> None:
    assert cells(_row(status="Ready to accept connections"), 0.0)[2] == (
        "running (Ready to accept connections)")
    assert cells(_row(), 0.0)[2] == "running"


def test_a_long_status_is_clipped_in_the_table_and_whole_in_the_detail() -> None:
    status = "x" * 100
    state = cells(_row(status=status), 0.0)[2]
    assert len(state) <= len("running ()") + STATUS_WIDTH
    assert f"  status    {status}" in child_detail(_row(status=status), 0.0)


def test_control_characters_never_reach_the_terminal() -> None:
    state = cells(_row(status="\x1b[2Jhi"), 0.0)[2]
    assert "\x1b" not in state
    assert all("\x1b" not in line for line in child_detail(_row(status="\x1b[2Jhi"), 0.0))
