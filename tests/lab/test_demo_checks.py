"""The checks `make demo` reports, against a real lab: they see what is there."""

from __future__ import annotations

import pytest

from ocsscale_lab import demo

from .conftest import RUN_ID, RunningLab
from .fe_support import hosts_files

pytestmark = pytest.mark.lab


def test_the_demo_reads_every_pinned_hosts_file_including_windows(
    one_armed_lab: RunningLab,
) -> None:
    digests = demo.hosts_digests(one_armed_lab.state.name)
    pinned = set(hosts_files(one_armed_lab))  # every host validate-fe pins
    assert set(digests) == pinned and demo.WINDOWS_HOST in pinned
    assert all(digests.values()), digests


def test_the_demo_sees_what_a_lab_leaves_and_nothing_for_no_lab(
    one_armed_lab: RunningLab,
) -> None:
    found = demo.leftovers(one_armed_lab.state.name)
    assert f"namespace {one_armed_lab.topo.ns('admin')}" in found
    assert str(one_armed_lab.state.directory) in found
    assert any(item.startswith("process ") for item in found)
    assert demo.leftovers(f"tnone{RUN_ID}") == []
