"""A pair's undo record: its shape is checked before any revert (no host contacted)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ocsscale.errors import StepFailed, UndoRecordError
from ocsscale.providers.lb import open_driver
from ocsscale.providers.lb.base import LbSite
from ocsscale.providers.lb.pair import PairDriver
from ocsscale.providers.lb.pair_routing import PairRouting
from ocsscale.providers.plugin import Ports
from tests.config.helpers import load_text
from tests.config.test_config_lb_pair import one_armed, two_armed


def _driver(tmp_path: Path, driver: str, topology: str = "one-armed") -> PairDriver:
    shape = one_armed if topology == "one-armed" else two_armed
    text = shape(("driver: engine ", f"driver: {driver} "))
    loaded = load_text(tmp_path, text)
    site = LbSite.from_pool(loaded.pool, loaded.profile)
    built = open_driver(loaded.pool.load_balancer.driver, site, Ports())
    assert isinstance(built, PairDriver)
    return built


def _state(vip_present: bool = False) -> dict[str, Any]:
    return {
        "files": {"/etc/x.cfg": None},
        "active": False,
        "vip_present": vip_present,
        "keepalived": {
            "config_sha256": None,
            "track_script": None,
            "active": False,
            "nonlocal_bind": "0",
        },
    }


@pytest.mark.parametrize("kind", ["engine", "haproxy"])
def test_the_pair_record_and_what_is_refused(tmp_path: Path, kind: str) -> None:
    driver = _driver(tmp_path, kind)
    assert driver.kind == kind and driver.targets() == ["lb01", "lb02"]
    assert driver.capabilities.pair and driver.target() == "lb01+lb02"
    # each host's own paths and service control ({host} filled in, none here)
    assert set(driver.keepalived) == {"lb01", "lb02"}
    undo = driver.undo_for({"hosts": {"lb01": _state(), "lb02": _state()}})
    driver.check_undo(undo)
    assert undo["pair"]["lb02"]["host"] == "lb02"

    def refused(change: Any) -> None:
        bad = copy.deepcopy(undo)
        change(bad)
        with pytest.raises(UndoRecordError):
            driver.check_undo(bad)

    refused(lambda u: u.__setitem__("driver", "manual"))
    refused(lambda u: u["pair"].pop("lb02"))
    refused(lambda u: u["pair"].__setitem__("lb03", u["pair"].pop("lb02")))
    refused(lambda u: u["pair"]["lb01"]["keepalived"].__setitem__("config_sha256", "zz"))
    refused(lambda u: u["pair"]["lb01"]["keepalived"].__setitem__("nonlocal_bind", "2; rm"))
    refused(lambda u: u["pair"]["lb02"]["keepalived"].__setitem__("active", "yes"))
    refused(lambda u: u["pair"]["lb02"]["keepalived"].__setitem__("track_script", "not base64!"))
    refused(lambda u: u["pair"]["lb01"].pop("keepalived"))


def test_the_plan_note_names_both_hosts_and_the_floating_addresses(tmp_path: Path) -> None:
    driver = _driver(tmp_path, "haproxy")
    note = driver.plan_note(driver.site.farm)
    assert "lb01 and lb02" in note and "10.0.0.40/16" in note and "router id 51" in note


def test_the_routing_record_of_a_two_armed_pair_and_what_is_refused(tmp_path: Path) -> None:
    """routing.enable's undo record for a pair: per host the sysctl, keepalived's
    service state and only a SHA-256 of its configuration (no host contacted)."""
    with pytest.raises(StepFailed, match="no back-end address"):
        PairRouting(_driver(tmp_path, "haproxy"), "10.0.0.40", "10.0.1.40")
    work = PairRouting(_driver(tmp_path, "haproxy", "two-armed"), "10.0.0.40", "10.0.1.40")
    state = {"forwarding": "0", "config_sha256": None, "active": False}
    current = {"hosts": {"lb01": dict(state), "lb02": dict(state)}, "holders": []}
    assert not work.done(current)
    undo = work.undo_for(current)
    work.check_undo(undo)

    def refused(change: Any) -> None:
        bad = copy.deepcopy(undo)
        change(bad)
        with pytest.raises(UndoRecordError):
            work.check_undo(bad)

    refused(lambda u: u["pair_routing"].pop("lb02"))
    refused(lambda u: u["pair_routing"].__setitem__("lb03", u["pair_routing"].pop("lb02")))
    refused(lambda u: u["pair_routing"]["lb01"].__setitem__("forwarding", "1; reboot"))
    refused(lambda u: u["pair_routing"]["lb01"].__setitem__("config_sha256", "zz"))
    refused(lambda u: u["pair_routing"]["lb02"].__setitem__("active", "yes"))
    on = {"forwarding": "1", "config_sha256": "a" * 64, "active": True}
    assert work.done({"hosts": {"lb01": on, "lb02": on}, "holders": ["lb01"]})
    assert not work.done({"hosts": {"lb01": on, "lb02": on}, "holders": ["lb01", "lb02"]})
