"""Turning a run's results into the table (text, Markdown, reStructuredText), the raw
samples (JSON) and the plots (PNG).

Every output is generated from the same :class:`~benchmarks.harness.Results`, so the
page, the Markdown and the samples cannot disagree. The plots need matplotlib (the
``bench`` extra); without it they are skipped with a printed reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import Results, Row, Series, Target

__all__ = [
    "fmt", "load", "markdown", "plots", "rst", "samples_json", "table_rows", "text", "write",
]

TIMES = "\u00d7"  # the multiplication sign of ratios
NONE = "\u2013"  # an en dash, for figures that do not exist

HEADERS = ("section", "measurement", "unit", "otp_py median", "otp_py p99", "n",
           "comparison", "median", "p99", "n", "otp_py / comparison")


def fmt(value: float) -> str:
    """A figure with as many digits as it deserves."""
    if value is None or math.isnan(value):
        return NONE
    if math.isinf(value):
        return "∞"
    magnitude = abs(value)
    if magnitude >= 10_000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude == 0:
        return "0"
    return f"{value:.2g}" if magnitude < 0.01 else f"{value:.3f}"


def _ratio(row: Row) -> str:
    ratio = row.ratio
    if math.isnan(ratio):
        return NONE
    return f"{fmt(ratio)}{TIMES}"


def _theirs(row: Row) -> tuple[str, str, str, str]:
    theirs = row.theirs
    if theirs is None:
        return NONE, "", "", ""
    if theirs.skipped:
        return f"{theirs.label}: skipped ({theirs.skipped})", "", "", ""
    return theirs.label, fmt(theirs.median), fmt(theirs.tail), str(theirs.n)


def table_rows(results: Results) -> list[tuple[str, ...]]:
    """The table's cells, row by row (strings)."""
    out = []
    for row in results.rows:
        ours: Series = row.ours
        out.append((
            row.section, row.what, ours.unit, fmt(ours.median), fmt(ours.tail), str(ours.n),
            *_theirs(row), _ratio(row),
        ))
    return out


def _target_lines(results: Results) -> list[str]:
    lines = []
    for target in results.targets:
        verdict = {True: "MET", False: "NOT MET", None: "not measured"}[target.met]
        lines.append(f"[{verdict}] {target.text}: {target.figure}")
    return lines


def text(results: Results) -> str:
    """The table for a terminal (columns padded; long cells kept whole)."""
    rows = [HEADERS, *table_rows(results)]
    widths = [min(48, max(len(r[i]) for r in rows)) for i in range(len(HEADERS))]
    lines = []
    for k, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) if i in (0, 1, 2, 6) else cell.rjust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("p99: the 99th percentile toward the bad side (for rates, the 1st).")
    lines.append("")
    lines += _target_lines(results)
    if results.notes:
        lines.append("")
        lines += [f"note: {n}" for n in results.notes]
    return "\n".join(lines)


def _md_cell(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown(results: Results, meta: dict[str, Any], plot_names: Sequence[str] = ()) -> str:
    lines = [
        "# otp_py benchmarks",
        "",
        f"Produced by `{meta['command']}` on {meta['date']}.",
        "",
        f"Machine: {meta['machine']}. Python {meta['python']}; otp_py {meta['otp_py']} "
        f"({meta['revision']}). Load average before/after: {meta['load_before']} / "
        f"{meta['load_after']}.",
        "",
        "Medians and p99 (the 99th percentile toward the bad side; for rates, the 1st) "
        "over all measured samples; `n` is the number of samples. The ratio is otp_py's "
        "median over the comparison's. Raw samples: `samples.json`.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" if i in (0, 1, 2, 6) else "---:" for i in range(len(HEADERS))) + "|",
    ]
    for row in table_rows(results):
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    lines += ["", "## Targets", ""]
    lines += [f"- {line}" for line in _target_lines(results)]
    if results.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {n}" for n in results.notes]
    if plot_names:
        lines += ["", "## Distributions", ""]
        lines += [f"![{name}]({name})" for name in plot_names]
    return "\n".join(lines) + "\n"


def _rst_cell(cell: str) -> str:
    return cell.replace("*", "\\*").replace("`", "\\`").replace("|", "\\|") or "\\ "


def rst(results: Results, meta: dict[str, Any]) -> str:
    """The table as a reStructuredText fragment (included by docs/benchmarks.rst)."""
    lines = [
        ".. This file is generated by `python -m benchmarks`; do not edit it.",
        "",
        f"Produced by ``{meta['command']}`` on {meta['date']}, on {meta['machine']}; "
        f"Python {meta['python']}, otp_py {meta['otp_py']} ({meta['revision']}); "
        f"load average before/after {meta['load_before']} / {meta['load_after']}.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :class: benchmarks",
        "",
    ]
    for row in [HEADERS, *table_rows(results)]:
        first = True
        for cell in row:
            lines.append(f"   {'* -' if first else '  -'} {_rst_cell(cell)}")
            first = False
    lines += ["", "**Targets**", ""]
    for target in results.targets:
        verdict = {True: "met", False: "**not met**", None: "not measured"}[target.met]
        lines.append(f"* {verdict}: {_rst_cell(target.text)}: {_rst_cell(target.figure)}")
    if results.notes:
        lines += ["", "**Notes**", ""]
        lines += [f"* {_rst_cell(n)}" for n in results.notes]
    return "\n".join(lines) + "\n"


def samples_json(results: Results, meta: dict[str, Any]) -> str:
    data = {
        "meta": meta,
        "series": {key: s.to_json() for key, s in results.series.items()},
        "rows": [
            {"section": r.section, "what": r.what, "ours": results.key_of(r.ours),
             "theirs": results.key_of(r.theirs) if r.theirs else None,
             "ratio": None if math.isnan(r.ratio) else r.ratio}
            for r in results.rows
        ],
        "targets": [{"text": t.text, "figure": t.figure, "met": t.met}
                    for t in results.targets],
        "notes": results.notes,
        "extra": results.extra,
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def load(path: Path) -> tuple[Results, dict[str, Any]]:
    """The results and meta data a run saved in ``samples.json``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    results = Results()
    for key, s in data["series"].items():
        results.keep(key, Series.from_json(s))
    for r in data["rows"]:
        theirs = results.series[r["theirs"]] if r["theirs"] else None
        results.row(r["section"], r["what"], results.series[r["ours"]], theirs)
    results.targets = [Target(t["text"], t["figure"], t["met"]) for t in data["targets"]]
    results.notes = list(data["notes"])
    results.extra = dict(data.get("extra", {}))
    return results, data["meta"]


def write(results: Results, meta: dict[str, Any], out: Path, *, with_plots: bool) -> list[Path]:
    """Write results.md, results.rst.inc, samples.json and the plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    drawn = plots(results, out) if with_plots else []
    written = []
    for name, content in (("results.md", markdown(results, meta, [p.name for p in drawn])),
                          ("results.rst.inc", rst(results, meta)),
                          ("samples.json", samples_json(results, meta))):
        path = out / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written + drawn


# --------------------------------------------------------------------- plots


def plots(results: Results, out: Path) -> list[Path]:
    """The distributions as PNG files; none (with a printed reason) without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        results.note("plots skipped: matplotlib is not installed (pip install -e '.[bench]')")
        return []
    series = results.series
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    def tick(value: float, _: Any = None) -> str:
        return f"{value:,.0f}" if value >= 1 else f"{value:.4g}"

    def log_x(ax: Any) -> None:
        ax.set_xscale("log")
        low, high = ax.get_xlim()
        wide = high / max(low, 1e-12) > 300  # over two and a half decades: 1, 10, 100...
        subs = (1.0,) if wide else (1.0, 2.0, 5.0)
        ax.xaxis.set_major_locator(LogLocator(subs=subs, numticks=12))
        ax.xaxis.set_major_formatter(FuncFormatter(tick))
        ax.xaxis.set_minor_formatter(NullFormatter())

    def bars(ax: Any, shown: list[Series], xlabel: str, colors: list[str]) -> None:
        """Horizontal bars of medians, one dot per sample, the median written."""
        top = max((max(s.samples) for s in shown if s.n), default=0.0) or 1.0
        for i, s in enumerate(shown):
            ax.barh(i, s.median, color=colors[i], alpha=0.6)
            ax.plot(s.samples, [i] * s.n, "k.", markersize=4)
            ax.annotate(f"median {fmt(s.median)}", (max(s.samples), i), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=7)
        ax.set_xlim(0, top * 1.3)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.xaxis.set_major_formatter(FuncFormatter(tick))
        ax.set_yticks(range(len(shown)))
        ax.set_yticklabels([s.label for s in shown], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)

    def ecdf(ax: Any, s: Series | None, **style: Any) -> None:
        if s is None or not s.n:
            return
        xs = sorted(s.samples)
        ys = [(i + 1) / len(xs) for i in range(len(xs))]
        ax.step(xs, ys, where="post", label=f"{s.label} (n={s.n})", **style)

    backends = ("forkserver", "fork", "spawn", "command", "thread", "asyncio")
    titles = {"forkserver": "process, forkserver (default)", "fork": "process, fork",
              "spawn": "process, spawn", "command": "command (tiny C program)",
              "thread": "thread", "asyncio": "asyncio task"}

    if "detect/celery" in series:
        fig, ax = plt.subplots(figsize=(9, 5))
        for b in backends:
            ecdf(ax, series.get(f"detect/{b}/otp"))
        ecdf(ax, series.get("detect/celery"), color="black", linestyle="--")
        log_x(ax)
        ax.set_xlabel("crash detection: child's exit → supervisor's report (ms, log scale)")
        ax.set_ylabel("fraction of crashes")
        ax.set_title("1. Crash detection, otp_py per backend vs a Celery 0.4-style poller")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.5, 0.97))
        ax.grid(True, which="both", alpha=0.3)
        save(fig, "detection.png")

        fig, axes = plt.subplots(2, 3, figsize=(13, 7))
        for ax, b in zip(axes.flat, backends, strict=True):
            ecdf(ax, series.get(f"restart/{b}/otp"))
            ecdf(ax, series.get(f"restart/{b}/raw"), linestyle="--")
            if b == "forkserver":
                ecdf(ax, series.get("restart/fork/raw"), linestyle=":")
            if b == "command":
                ecdf(ax, series.get("restart/command/supervisord"), linestyle="-.")
                ecdf(ax, series.get("restart/command/circus"), linestyle="-.")
            log_x(ax)
            ax.set_title(titles[b], fontsize=10)
            ax.set_xlabel("exit → new child running (ms)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=6, loc="lower right")
        fig.suptitle("2. Crash → restart, otp_py (solid) vs its floor (dashed) and others")
        save(fig, "restart.png")

    if "rate/task/otp" in series:
        fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
        keys = ["task/otp", "task/bare", "task/erlang", "thread/otp", "thread/bare"]
        present = [k for k in keys if series[f"rate/{k}"].n]
        bars(left, [series[f"rate/{k}"] for k in present],
             "restarts per second (bar: median; dots: runs)",
             ["C0" if k.endswith("otp") else "C7" for k in present])
        left.set_title("3. Restart throughput, a child that crashes on every start",
                       fontsize=10)
        for k in present:
            ecdf(right, series[f"gap/{k}"])
        log_x(right)
        right.set_xlabel("restart gap: raise → next generation running (µs)")
        right.set_ylabel("fraction of restarts")
        right.legend(fontsize=7, loc="lower right")
        right.grid(True, which="both", alpha=0.3)
        save(fig, "throughput.png")

    scale_keys = sorted({tuple(k.split("/")[1:3]) for k in series
                         if k.startswith("scale/") and not k.startswith("scale/memory/")},
                        key=lambda kn: (kn[0] != "asyncio", kn[0], int(kn[1])))
    if scale_keys:
        metrics = (("start", "start (ms)"), ("stop", "stop (ms)"), ("memory", "KB per child"))
        fig, axes = plt.subplots(len(metrics), len(scale_keys),
                                 figsize=(3.2 * len(scale_keys), 8), squeeze=False)
        for col, (kind, n) in enumerate(scale_keys):
            for row, (metric, ylabel) in enumerate(metrics):
                ax = axes[row][col]
                whos = ("otp-flat", "otp-tree", "floor")
                for i, who in enumerate(whos):
                    s = series.get(f"scale/{kind}/{n}/{who}/{metric}")
                    if s is None or not s.n:
                        continue
                    ax.bar(i, s.median, color=("C0", "C1", "C7")[i], alpha=0.6)
                    ax.plot([i] * s.n, s.samples, "k.", markersize=4)
                ax.set_xticks(range(3))
                ax.set_xticklabels(["one sup.", "3-level", "floor"], fontsize=8)
                if col == 0:
                    ax.set_ylabel(ylabel)
                if row == 0:
                    ax.set_title(f"{int(n):,} {kind}", fontsize=10)
        fig.suptitle("4. Starting and stopping many children (bar: median; dots: samples)")
        save(fig, "scale.png")

    idle_keys = [k.split("/")[1] for k in series if k.startswith("idle/") and k.endswith("/cpu")]
    if idle_keys:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4))
        for ax, (metric, xlabel) in zip(axes, (("cpu", "supervisor CPU ms per minute"),
                                                ("wakeups", "supervisor wakeups per minute")),
                                        strict=True):
            shown = [k for k in idle_keys if series[f"idle/{k}/{metric}"].n]
            bars(ax, [series[f"idle/{k}/{metric}"] for k in shown], xlabel,
                 ["C0" if k.startswith("otp") else "C7" for k in shown])
            if ax is axes[1]:
                ax.set_yticklabels([])
        fig.suptitle("5. Idle cost (bar: median; dots: windows)")
        save(fig, "idle.png")

    core_keys = [k for k in series if k.startswith("core/")]
    if core_keys:
        fig, ax = plt.subplots(figsize=(9, 3.5))
        bars(ax, [series[k] for k in core_keys],
             "events per second (bar: median; dots: rounds)", ["C0"] * len(core_keys))
        ax.set_title("6. The pure core's decisions", fontsize=10)
        save(fig, "core.png")
    return written

