"""The documentation's restart table is generated from RESTART_TABLE and shows all of it.

The docs render the table with a local Sphinx extension (``docs/_ext/restart_table.py``).
These tests call its rendering function directly, read the reStructuredText it
produces back into cells, and check every entry of the table is in its place, so the
docs cannot drift from the code. The last test runs the directive in a real (tiny)
Sphinx build when Sphinx is installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import MappingProxyType, ModuleType

import pytest

from otp_py import RESTART_TABLE, OneForAll, OneForOne, Outcome, Restart, RestForOne
from otp_py.reasons import ReasonKind

EXTENSION = Path(__file__).resolve().parent.parent / "docs" / "_ext" / "restart_table.py"


def _load_extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("restart_table", EXTENSION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ext = _load_extension()


def _cells(rst: str) -> list[list[str]]:
    """Read a ``list-table`` back into rows of cell texts (markup stripped)."""
    rows: list[list[str]] = []
    for line in rst.splitlines():
        stripped = line.strip()
        if stripped.startswith("* - "):
            rows.append([stripped[4:]])
        elif stripped.startswith("- ") and rows:
            rows[-1].append(stripped[2:])
    return [[cell.replace("``", "").replace("**", "") for cell in row] for row in rows]


def _as_grid(rst: str) -> dict[tuple[str, str], str]:
    header, *body = _cells(rst)
    grid = {}
    for row in body:
        for column, cell in zip(header[1:], row[1:], strict=True):
            grid[row[0], column] = cell
    return grid


def test_rendered_table_is_a_list_table_with_a_header_and_a_stub_column() -> None:
    rst = ext.render_restart_table(RESTART_TABLE)
    assert rst.startswith(".. list-table::")
    assert ":header-rows: 1" in rst
    assert ":stub-columns: 1" in rst


def test_every_restart_table_entry_appears_in_its_cell() -> None:
    grid = _as_grid(ext.render_restart_table(RESTART_TABLE))
    for (restart, kind), outcome in RESTART_TABLE.items():
        assert grid[restart.value, kind.value] == outcome.value, (restart, kind)


def test_the_rendered_table_has_exactly_one_cell_per_entry() -> None:
    header, *body = _cells(ext.render_restart_table(RESTART_TABLE))
    assert header[1:] == [kind.value for kind in ReasonKind]
    assert [row[0] for row in body] == [restart.value for restart in Restart]
    assert all(len(row) == 1 + len(ReasonKind) for row in body)
    assert len(body) * len(ReasonKind) == len(RESTART_TABLE)


def test_restart_outcomes_stand_out() -> None:
    rst = ext.render_restart_table(RESTART_TABLE)
    assert rst.count("**restart**") == sum(o is Outcome.RESTART for o in RESTART_TABLE.values())


def test_a_changed_table_renders_differently() -> None:
    changed = dict(RESTART_TABLE)
    changed[Restart.TRANSIENT, ReasonKind.SHUTDOWN] = Outcome.REMOVE
    grid = _as_grid(ext.render_restart_table(MappingProxyType(changed)))
    assert grid["transient", "shutdown"] == "remove"


def test_a_hole_in_the_table_is_an_error_not_a_blank_cell() -> None:
    holed = dict(RESTART_TABLE)
    del holed[Restart.TEMPORARY, ReasonKind.SHUTDOWN_TERM]
    with pytest.raises(ValueError, match=r"no outcome for \(temporary, \{shutdown, term\}\)"):
        ext.render_restart_table(holed)


def test_strategy_plans_are_read_from_the_strategies() -> None:
    rst = ext.render_strategy_plans()
    rows = {row[0]: row for row in _cells(rst)[1:]}
    assert rows["one_for_one"][2:] == ["(none)", "b"]
    assert rows["one_for_all"][2:] == ["d → c → a", "a → b → c → d"]
    assert rows["rest_for_one"][2:] == ["d → c", "b → c → d"]
    for strategy in (OneForOne(), OneForAll(), RestForOne()):
        plan = dict(ext.strategy_plan_rows())[strategy.name]
        assert plan == strategy.plan("b", ext._Row(("a", "b", "c", "d")))


def test_the_directive_renders_the_table_in_a_sphinx_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sphinx")
    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text("extensions = ['restart_table']\n")
    (src / "index.rst").write_text("Table\n=====\n\n.. restart-table::\n\n.. strategy-plans::\n")
    out = tmp_path / "out"
    monkeypatch.syspath_prepend(str(EXTENSION.parent))
    try:
        app = Sphinx(
            str(src),
            str(src),
            str(out),
            str(tmp_path / "doctrees"),
            "text",
            status=None,
            warningiserror=True,
        )
        app.build()
    finally:
        sys.modules.pop("restart_table", None)
    assert app.statuscode == 0
    text = (out / "index.txt").read_text()
    for (restart, kind), outcome in RESTART_TABLE.items():
        assert restart.value in text and kind.value in text and outcome.value in text
    assert "one_for_all" in text
