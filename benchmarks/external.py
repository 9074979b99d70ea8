"""The outside tools some comparisons need, found, built or installed into the cache.

* ``tiny``: ``benchmarks/tiny.c`` compiled (static if the C library allows) with the
  system's C compiler into ``benchmarks/.cache/tiny``;
* supervisord and circus: installed with pip into a virtualenv of their own,
  ``benchmarks/.cache/tools`` (they pin libraries otp_py's environment need not
  carry, so they stay out of the ``bench`` extra);
* ``escript``: Erlang/OTP's script runner, if installed (Debian: ``erlang-base``).

Each finder returns the path, or None and the reason, which the benchmark prints in
place of the figures it could not measure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import CACHE, log

__all__ = ["escript", "tiny_program", "tool"]

HERE = Path(__file__).resolve().parent
TOOLS = CACHE / "tools"
TOOL_PACKAGES = ("supervisor", "circus")


def tiny_program() -> tuple[str | None, str]:
    """The compiled tiny C program, building it on first use."""
    source = HERE / "tiny.c"
    target = CACHE / "tiny"
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return str(target), ""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None, "no C compiler (cc/gcc) to build benchmarks/tiny.c"
    CACHE.mkdir(parents=True, exist_ok=True)
    error = ""
    for flags in (["-O2", "-static"], ["-O2"]):  # static if the C library allows
        try:
            done = subprocess.run(
                [compiler, *flags, "-o", str(target), str(source)],
                capture_output=True, text=True, check=False, timeout=120,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return None, f"cannot run the C compiler {compiler!r}: {exc}"
        if done.returncode == 0:
            return str(target), ""
        error = done.stderr.strip()[-300:]
    return None, f"building tiny.c failed: {error}"


def tool(name: str, *, install: bool) -> tuple[str | None, str]:
    """The path of ``supervisord`` or ``circusd`` from the tools' virtualenv,
    creating it (``pip install supervisor circus``) when ``install`` is true."""
    path = TOOLS / "bin" / name
    if path.exists():
        return str(path), ""
    if not install:
        return None, (f"{name} is not installed in benchmarks/.cache/tools "
                      "(a full run without --no-install installs it)")
    log(f"  installing {', '.join(TOOL_PACKAGES)} into {TOOLS} ...")
    try:
        if not (TOOLS / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True,
                           capture_output=True)
        subprocess.run(
            [str(TOOLS / "bin" / "python"), "-m", "pip", "install", "--quiet",
             *TOOL_PACKAGES],
            check=True, capture_output=True, timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        text = detail.decode(errors="replace").strip()[-300:] if detail else str(exc)
        return None, f"could not install {name} into {TOOLS}: {text}"
    if path.exists():
        return str(path), ""
    return None, f"{name} not found in {TOOLS} after installing {', '.join(TOOL_PACKAGES)}"


def escript() -> tuple[str | None, str]:
    """The ``escript`` on PATH, if any."""
    path = shutil.which("escript")
    if path is None:
        return None, "escript is not installed (Debian: apt-get install erlang-base)"
    return path, ""
