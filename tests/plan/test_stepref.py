"""A step's reference (plan/stepref.py): the id the journal keys on is made
from it, and reads back to it."""

from __future__ import annotations

import pytest

from ocsscale.plan import StepRef


@pytest.mark.parametrize(
    ("ref", "step_id"),
    [
        (
            StepRef("validate-fe", "probe", "ocsfe01", "client01"),
            "validate-fe/probe[ocsfe01@client01]",
        ),
        (StepRef("validate-fe", "restart", "ocsfe01"), "validate-fe/restart[ocsfe01]"),
        (StepRef("configure-lb", "farm"), "configure-lb/farm"),
        (
            StepRef("cutover", "verify-srv", "_sip._tls.pool.example.com"),
            "cutover/verify-srv[_sip._tls.pool.example.com]",
        ),
    ],
)
def test_a_step_ref_round_trips_through_its_id(ref: StepRef, step_id: str) -> None:
    assert ref.id == step_id == str(ref)
    assert StepRef.parse(step_id) == ref
    assert hash(StepRef.parse(step_id)) == hash(ref)  # frozen: a key, as the id was


def test_an_id_the_planner_did_not_make_reads_back_as_itself() -> None:
    for text in ("no-phase", "a/b[unclosed", "[x]/y", "/lonely"):
        ref = StepRef.parse(text)
        assert ref.id == text and ref.phase == ""
    # a row label holding @ gives the same id back, read as a row and an item
    odd = StepRef("validate-fe", "probe", "a@b")
    assert StepRef.parse(odd.id).id == odd.id


def test_an_item_needs_a_row() -> None:
    with pytest.raises(ValueError, match="needs a row"):
        StepRef("validate-fe", "probe", None, "client01")
    with pytest.raises(AttributeError):
        StepRef("validate-fe", "probe").row = "x"  # type: ignore[misc]
