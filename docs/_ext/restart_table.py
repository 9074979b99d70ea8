"""Sphinx directives that render the core's decision data, so the docs cannot drift.

``.. restart-table::``
    OTP's restart table (restart type x exit reason -> outcome), read from
    :data:`otp_py._core.table.RESTART_TABLE` at build time.

``.. strategy-plans::``
    What each built-in strategy plans when ``b`` fails among the children ``a``,
    ``b``, ``c``, ``d``, read from the strategies' own :meth:`plan` methods.

Both render reStructuredText (a ``list-table``) and hand it to the parser, so the
output is an ordinary docutils table. The rendering functions are plain functions of
their data (:func:`render_restart_table`, :func:`render_strategy_plans`) that tests
call directly; they need neither Sphinx nor docutils, which are imported only when
Sphinx loads the extension.

A table with a hole (a restart type and reason class with no outcome) or with a key
that is not a restart type and reason class is an error, not a blank cell: the build,
run with ``-W``, fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from otp_py._core import strategies as strategies_module
from otp_py._core import table as table_module
from otp_py._core.reasons import ReasonKind
from otp_py._core.strategies import (
    OneForAll,
    OneForOne,
    RestartPlan,
    RestartStrategy,
    RestForOne,
    SimpleOneForOne,
)
from otp_py._core.table import RESTART_TABLE, Outcome
from otp_py._core.types import Restart

if TYPE_CHECKING:
    from sphinx.application import Sphinx

__all__ = [
    "render_restart_table",
    "render_strategy_plans",
    "restart_table_rows",
    "setup",
    "strategy_plan_rows",
]

CORNER = "restart type / exit reason"


def _literal(text: str) -> str:
    return f"``{text}``"


def restart_table_rows(
    table: Mapping[tuple[Restart, ReasonKind], Outcome] = RESTART_TABLE,
) -> list[list[str]]:
    """The restart table as rows of plain strings: a header row of reason classes,
    then one row per restart type, in the order the enums declare them.

    Raises ``ValueError`` if a (restart type, reason class) pair has no outcome or
    the table has a key that is not such a pair.
    """
    expected = {(r, k) for r in Restart for k in ReasonKind}
    missing = sorted(f"({r.value}, {k.value})" for r, k in expected - set(table))
    extra = sorted(repr(key) for key in set(table) - expected)
    if missing or extra:
        problems = []
        if missing:
            problems.append("no outcome for " + ", ".join(missing))
        if extra:
            problems.append("unexpected keys " + ", ".join(extra))
        raise ValueError("RESTART_TABLE is incomplete: " + "; ".join(problems))
    rows = [[CORNER, *(kind.value for kind in ReasonKind)]]
    for restart in Restart:
        rows.append([restart.value, *(table[restart, kind].value for kind in ReasonKind)])
    return rows


def _list_table(rows: Sequence[Sequence[str]], *, stub_columns: int, widths: str) -> list[str]:
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        f"   :stub-columns: {stub_columns}",
        f"   :widths: {widths}",
        "",
    ]
    for row in rows:
        first, *rest = row
        lines.append(f"   * - {first}")
        lines.extend(f"     - {cell}" for cell in rest)
    return lines


def render_restart_table(
    table: Mapping[tuple[Restart, ReasonKind], Outcome] = RESTART_TABLE,
) -> str:
    """The restart table as a reStructuredText ``list-table``.

    The header cells are the reason classes (``normal``, ``shutdown``,
    ``{shutdown, term}``, ``abnormal``) and the stub column the restart types, all as
    inline literals; each body cell is an outcome's value (``restart``, ``keep``,
    ``remove``), bold when it is ``restart``.
    """
    header, *body = restart_table_rows(table)
    rows = [[header[0], *map(_literal, header[1:])]]
    for restart, *outcomes in body:
        cells = [f"**{o}**" if o == Outcome.RESTART.value else o for o in outcomes]
        rows.append([_literal(restart), *cells])
    return "\n".join(_list_table(rows, stub_columns=1, widths="22 " + "19 " * 4)) + "\n"


class _Row:
    """Siblings for the plan examples: a fixed row of running permanent children."""

    def __init__(self, ids: Sequence[str]) -> None:
        self._ids = tuple(ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __reversed__(self) -> Iterator[str]:
        return reversed(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, child_id: object) -> bool:
        return child_id in self._ids

    def after(self, child_id: str) -> Iterator[str]:
        return iter(self._ids[self._ids.index(child_id) + 1 :])

    def restart_type(self, child_id: str) -> Restart:
        return Restart.PERMANENT

    def is_running(self, child_id: str) -> bool:
        return True


BUILT_IN: tuple[RestartStrategy, ...] = (OneForOne(), OneForAll(), RestForOne(), SimpleOneForOne())
EXAMPLE_CHILDREN = ("a", "b", "c", "d")
EXAMPLE_FAILED = "b"


def strategy_plan_rows(
    strategies: Sequence[RestartStrategy] = BUILT_IN,
    children: Sequence[str] = EXAMPLE_CHILDREN,
    failed: str = EXAMPLE_FAILED,
) -> list[tuple[str, RestartPlan]]:
    """Each strategy's name and the plan it makes when ``failed`` must restart."""
    siblings: Any = _Row(children)
    return [(s.name, s.plan(failed, siblings)) for s in strategies]


def _sequence(ids: Sequence[str]) -> str:
    return " → ".join(_literal(i) for i in ids) if ids else "(none)"


def _picture(children: Sequence[str], failed: str, plan: RestartPlan) -> str:
    touched = set(plan.stop) | set(plan.start)
    marks = []
    for cid in children:
        if cid == failed:
            marks.append(f"{cid}✗")
        elif cid in touched:
            marks.append(f"{cid}↻")
        else:
            marks.append(cid)
    return _literal(" ".join(marks))


def render_strategy_plans(
    strategies: Sequence[RestartStrategy] = BUILT_IN,
    children: Sequence[str] = EXAMPLE_CHILDREN,
    failed: str = EXAMPLE_FAILED,
) -> str:
    """The built-in strategies' plans as a reStructuredText ``list-table``."""
    rows = [
        [
            "strategy",
            "children (✗ failed, ↻ restarted with it)",
            "stop, in order",
            "then start, in order",
        ]
    ]
    for name, plan in strategy_plan_rows(strategies, children, failed):
        rows.append(
            [
                _literal(name),
                _picture(children, failed, plan),
                _sequence(plan.stop),
                _sequence(plan.start),
            ]
        )
    return "\n".join(_list_table(rows, stub_columns=1, widths="22 26 26 26")) + "\n"


def _directives() -> dict[str, type]:
    """The directive classes (built here so that importing this module needs no Sphinx)."""
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class RenderedDirective(SphinxDirective):
        """Parse generated reStructuredText in place of the directive."""

        has_content = False
        required_arguments = 0
        optional_arguments = 0
        source_module: Any = None  # the module whose data is shown
        render: Any = None  # () -> str

        def run(self) -> list[nodes.Node]:
            # Rebuild pages using the directive when the data they show changes.
            self.env.note_dependency(self.source_module.__file__)
            try:
                text = type(self).render()
            except Exception as exc:  # a hole in the data: fail the build, visibly
                error = self.state.document.reporter.error(f"{self.name}: {exc}", line=self.lineno)
                return [error]
            container = nodes.container()
            source = self.get_source_info()[0] or "<generated>"
            lines = StringList(text.splitlines(), source=f"{source} ({self.name})")
            self.state.nested_parse(lines, self.content_offset, container)
            return list(container.children)

    class RestartTableDirective(RenderedDirective):
        """``.. restart-table::``: the restart table, from ``RESTART_TABLE``."""

        source_module = table_module

        @staticmethod
        def render() -> str:
            return render_restart_table(table_module.RESTART_TABLE)

    class StrategyPlansDirective(RenderedDirective):
        """``.. strategy-plans::``: the built-in strategies' plans for one failure."""

        source_module = strategies_module

        @staticmethod
        def render() -> str:
            return render_strategy_plans()

    return {"restart-table": RestartTableDirective, "strategy-plans": StrategyPlansDirective}


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives (Sphinx's extension entry point)."""
    for name, directive in _directives().items():
        app.add_directive(name, directive)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
