"""Markers given by where a test lives and what it needs, so `-m "not lab"` and
`-m "not sshd"` select by them without each module having to remember them.

- `lab`: every test under tests/lab/ (each brings a lab up: root, network
  namespaces). A test elsewhere that brings one up says so with `pytestmark`
  (tests/contract/test_lb_contract.py); tests/test_suite_layout.py checks both.
- `sshd`: every test that asks for the real sshd fixture (tests/sshd_fixture.py);
  one that reaches it through `request.getfixturevalue` marks its parameter.
"""

from __future__ import annotations

from pathlib import Path

import pytest

LAB_TESTS = Path(__file__).resolve().parent / "lab"
SSHD_FIXTURES = frozenset({"sshd_server", "sshd_server_without_sftp"})


def mark(items: list[pytest.Item]) -> None:
    for item in items:
        if LAB_TESTS in item.path.parents:
            item.add_marker(pytest.mark.lab)
        if SSHD_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.sshd)
