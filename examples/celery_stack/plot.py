"""Draw a chaos run: tasks completed per second, one panel per system, faults marked
(red), and where the driver had to repair the stack as an operator would (dashed).

``python -m examples.celery_stack.plot RUN.json OUT.png`` (the JSON of
``chaos --json``); the driver calls :func:`plot` itself with ``--plot``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

SHORT = {
    "worker-kill": "kill -9\nworker",
    "pool-child-kill": "kill -9\npool child",
    "redis-kill": "kill -9\nredis",
    "worker-freeze": "SIGSTOP\nworker",
    "redis-crash-loop": "redis\ncrash loop",
    "supervisor-kill": "SIGKILL\nsupervisor",
}


def per_second(times: list[float], t0: float, length: int) -> list[int]:
    counts = [0] * length
    for t in times:
        second = int(t - t0)
        if 0 <= second < length:
            counts[second] += 1
    return counts


def plot(runs: list[dict[str, Any]], path: str) -> None:
    """Write the PNG: tasks completed (first completions) per second of each run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    length = 1 + max((int(max(run["completions"], default=run["t0"]) - run["t0"])
                      for run in runs), default=1)
    figure, axes = plt.subplots(len(runs), 1, figsize=(11, 2.6 * len(runs) + 0.6),
                                sharex=True, squeeze=False)
    top = max((max(per_second(run["completions"], run["t0"], length), default=0)
               for run in runs), default=1) + 4
    for axis, run in zip(axes[:, 0], runs, strict=True):
        counts = per_second(run["completions"], run["t0"], length)
        axis.bar(range(length), counts, width=1.0, color="#4c72b0", align="edge")
        for fault in run["faults"]:
            x = fault["t"] - run["t0"]
            axis.axvline(x, color="#c44e52", linewidth=1.2)
            axis.text(x + 0.5, top - 0.5, SHORT.get(fault["fault"], fault["fault"]),
                      fontsize=7, va="top", color="#c44e52")
            if fault.get("repaired_at"):
                x = fault["repaired_at"] - run["t0"]
                axis.axvline(x, color="#555555", linewidth=1.0, linestyle="--")
                axis.text(x + 0.5, top * 0.55, "operator", fontsize=7, color="#555555",
                          rotation=90, va="center")
        axis.set_ylim(0, top)
        axis.set_ylabel("tasks done / s")
        axis.set_title(f"{run['system']}: {run['done']}/{run['accepted']} tasks done, "
                       f"{run['lost']} lost, {run['duplicated']} run twice",
                       fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds since the supervisor was started")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m examples.celery_stack.plot RUN.json OUT.png", file=sys.stderr)
        return 2
    with open(argv[0]) as file:
        data = json.load(file)
    plot(data["runs"], argv[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
