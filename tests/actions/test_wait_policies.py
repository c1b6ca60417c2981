"""The wait policies' logic without a lab: flush-only contacts no host, and
decommission's record of the clients cut names at most 20 addresses. The lab
tests (tests/lab/test_lab_waits.py) prove both against real connections; here
the connection table is a list given to the action, said so by the name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ocsscale.actions.base import Context
from ocsscale.actions.lb_drain import LbDrainRestart
from ocsscale.actions.legacy import LegacyDrain
from ocsscale.config.loader import load_pool
from ocsscale.errors import CheckFailed, UsageError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "one-armed.yaml"


def _no_host(name: str) -> Any:
    raise AssertionError(f"contacted {name}")


def _ctx(events: list[Any]) -> Context:
    loaded = load_pool(EXAMPLE)
    return Context(
        pool=loaded.pool,
        profile=loaded.profile,
        host=_no_host,
        emit=lambda kind, data: events.append((kind, dict(data))),
    )


def test_flush_only_changes_nothing_and_contacts_no_host() -> None:
    events: list[Any] = []
    action = LbDrainRestart(_ctx(events), {"fe": "ocsfe01", "fe_restart": "flush-only"})
    current = action.read()
    assert action.diff(current) == []
    ((kind, data),) = events
    assert kind == "findings" and "not restarted" in data["findings"][0]["message"]
    with pytest.raises(UsageError, match="'fe_restart' must be one of drained, flush-only"):
        LbDrainRestart(_ctx([]), {"fe": "ocsfe01", "fe_restart": "later"})
    with pytest.raises(UsageError, match="'on_timeout' must be one of fail, restart"):
        LbDrainRestart(_ctx([]), {"fe": "ocsfe01", "on_timeout": "stop"})


class _GivenTable(LegacyDrain):
    """LegacyDrain over a given connection table instead of the legacy FE's own."""

    table: list[tuple[str, int]] = []

    def _connected(self) -> list[tuple[str, int]]:
        return list(self.table)


def test_stop_records_the_clients_cut_and_names_at_most_20() -> None:
    events: list[Any] = []
    clients = [(f"10.9.0.{n}", 5061) for n in range(1, 26)]
    peers = [("10.0.1.41", 5061), ("10.0.0.40", 5061), ("10.0.5.5", 5061)]  # FE, VIP, peer
    _GivenTable.table = clients + peers
    action = _GivenTable(_ctx(events), {"drain_timeout": 1, "peers": ["10.0.5.5"]})
    evidence = action.apply(None)
    assert evidence["clients_cut"] == 25 and evidence["timed_out"] is True
    assert len(evidence["client_addresses"]) == 20 and evidence["client_addresses_more"] == 5
    assert evidence["seen"][0] == {**evidence["seen"][0], "clients": 25, "peers": 3}
    (finding,) = [d for kind, d in events if kind == "findings"]
    assert finding["findings"][0]["message"].endswith("and 5 more")

    action = _GivenTable(_ctx([]), {"drain_timeout": 1, "on_timeout": "fail", "peers": []})
    with pytest.raises(CheckFailed, match=r"26 client connection\(s\).* and 6 more"):
        action.apply(None)  # 10.0.5.5 is a client once it is not a configured peer

    _GivenTable.table = peers
    evidence = _GivenTable(_ctx([]), {"drain_timeout": 1, "peers": ["10.0.5.5"]}).apply(None)
    assert "timed_out" not in evidence and evidence["seen"][-1]["clients"] == 0
