"""The how-to's example (examples/howto_ray.py) runs as written, on a Ray of its own,
leaves nothing behind (the runner of tests/test_examples.py adopts and checks
whatever it left), and prints what the page shows."""

from __future__ import annotations

import re

from tests.test_examples import run_example

EXPECTED = [
    "root: started indexer",
    "root/edge: started cache",
    "root/edge: started watcher",
    "root: started edge",
    re.compile(r"indexer runs on node [0-9a-f]{8}\.\.\., worker pid \d+"),
    "edge's children: [('cache', 'running'), ('watcher', 'running')]",
    re.compile(r"root: indexer exited: ray actor died: worker process died "
               r"\(node [0-9a-f]{12}, [0-9a-f.:]+, pid \d+\); restart"),
    "root: started indexer (restart 1)",
    "a new actor: True",
    "root/edge: terminated watcher: shutdown",
    "root/edge: terminated cache: shutdown",
    "root: terminated edge: shutdown",
    "root: terminated indexer: shutdown",
    "actors left alive: 0",
]


def test_the_ray_how_to_example_runs_as_written() -> None:
    result = run_example("howto_ray.py", timeout=120)
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stderr}"
    lines = result.stdout.splitlines()
    for want in EXPECTED:
        if isinstance(want, re.Pattern):
            assert any(want.fullmatch(line) for line in lines), (want.pattern, result.stdout)
        else:
            assert want in lines, (want, result.stdout)
