"""Every public entry point rejects bad input with an error naming the problem (tests/bad_inputs.py),
and docs/bad_inputs.md is the table these cases produce."""

import re
import warnings
from pathlib import Path

import pytest

from tests.bad_inputs import CASES


@pytest.mark.parametrize("case", CASES, ids=[f"{c.entry}: {c.given}" for c in CASES])
def test_bad_input_gets_a_clear_error(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(case.error, match=case.match):
            case.call()


def test_the_docs_table_is_generated_from_these_cases():
    """Row for row the cases, each with its error type and expected message (third-party parts of a
    message may differ between library versions, so the regex is checked, not the whole text)."""
    table = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"
    rows = [line for line in table.read_text().splitlines() if line.startswith("| `") and "entry point" not in line]
    stale = "docs/bad_inputs.md is stale: run python scripts/bad_inputs_table.py"
    assert len(rows) == len(CASES), stale
    for row, case in zip(rows, CASES):
        entry, given, error = (cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:4])
        assert (entry, given) == (f"`{case.entry}`", case.given), stale
        assert error.startswith(f"`{case.error.__name__}`") and re.search(case.match, error.replace("\\|", "|")), stale
