"""Where the contract tests read Twilio's OpenAPI description of TaskRouter v1 from.

`make test` fetches it with npm, from the package Twilio publishes it in, at the version the
Makefile pins (CONTRACT_VERSION), into the gitignored .cache/contracts. Without npm, or offline,
the copy beside the project in ../shared/contracts serves; without either the tests skip.
The description is never part of the project itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAME = "twilio_taskrouter_v1.json"
FETCHED = ROOT / ".cache" / "contracts" / NAME
BESIDE = ROOT.parent / "shared" / "contracts" / NAME
CANDIDATES = (FETCHED, BESIDE)

MISSING = (
    "Twilio's OpenAPI description of TaskRouter v1 is missing: `make test` fetches it with npm "
    f"into .cache/contracts/{NAME}, or put it at ../shared/contracts/{NAME}"
)


def contract_path() -> Path | None:
    """The first description found: the one `make test` fetched, else the one beside us."""
    return next((path for path in CANDIDATES if path.is_file()), None)


def load_contract() -> dict[str, Any]:
    """The parsed description, or a skip that says how to get it."""
    path = contract_path()
    if path is None:
        pytest.skip(MISSING)
    return json.loads(path.read_text())
