"""Every public entry point rejects bad input with an error naming the problem (tests/bad_inputs.py),
the unusual inputs accepted on purpose get their documented behaviour, and docs/bad_inputs.md is the
table these cases produce (``python -m tests.bad_inputs_table``)."""

import re
import warnings

import pytest

from tests.bad_inputs import ACCEPTED, CASES
from tests.bad_inputs_table import ACCEPTED_HEADING, OUT

STALE = "docs/bad_inputs.md is stale: run python -m tests.bad_inputs_table"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.entry}: {c.given}" for c in CASES])
def test_bad_input_gets_a_clear_error(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(case.error, match=case.match):
            case.call()


@pytest.mark.parametrize("accepted", ACCEPTED, ids=[f"{a.entry}: {a.given}" for a in ACCEPTED])
def test_input_accepted_on_purpose_gets_its_behaviour(accepted):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert accepted.check(), accepted.behaviour


def _rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:4]] for row in rows]


def test_the_docs_table_is_generated_from_these_cases():
    """Row for row the cases, each with its error type and expected message (third-party parts of a
    message may differ between library versions, so the regex is checked, not the whole text), then
    the accepted inputs with their behaviour."""
    errors, accepted = OUT.read_text().split(ACCEPTED_HEADING)
    rows = _rows(errors)
    assert len(rows) == len(CASES), STALE
    for (entry, given, error), case in zip(rows, CASES):
        assert (entry, given) == (f"`{case.entry}`", case.given), STALE
        assert error.startswith(f"`{case.error.__name__}`") and re.search(case.match, error.replace("\\|", "|")), STALE
    kept = _rows(accepted)
    assert [tuple(r) for r in kept] == [(f"`{a.entry}`", a.given, a.behaviour.replace("|", "\\|")) for a in ACCEPTED], STALE
