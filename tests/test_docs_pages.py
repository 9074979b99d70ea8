"""The reference pages stay complete: every public name has an entry in the API
reference, and every recorded OTP scenario is cited on the Semantics page."""

from __future__ import annotations

import re
from pathlib import Path

import otp_py

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCENARIOS = ROOT / "tests" / "conformance" / "data"

_ENTRY = re.compile(
    r"^\.\. (?:auto(?:class|exception|function|data|module)|data|module)::\s+"
    r"(?:otp_py\.)?([\w.]+)",
    re.M,
)


def test_every_public_name_is_in_the_api_reference() -> None:
    documented = set(_ENTRY.findall((DOCS / "api.rst").read_text()))
    missing = sorted(set(otp_py.__all__) - documented)
    assert not missing, f"add these to docs/api.rst: {missing}"


def test_every_conformance_scenario_is_cited_on_the_semantics_page() -> None:
    page = (DOCS / "semantics.rst").read_text()
    missing = sorted(p.stem for p in SCENARIOS.glob("*.json") if p.stem not in page)
    assert not missing, f"cite these in docs/semantics.rst: {missing}"


def test_the_traces_the_semantics_page_includes_exist() -> None:
    page = (DOCS / "semantics.rst").read_text()
    included = re.findall(r"\.\. literalinclude:: \.\./tests/conformance/data/(\S+)", page)
    assert included
    assert all((SCENARIOS / name).exists() for name in included)
