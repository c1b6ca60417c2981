"""The one contract every load-balancer driver passes, in the lab against a real LB.

engine: the bundled engine on lb01 (`lab up --lb engine`); haproxy: Debian's
HAProxy on lb01 (`lab up --lb haproxy`); manual: the manual driver, whose
operator (tests/contract/lbbench.HandOperator) reads the checklist it prints
and configures that HAProxy by hand. Every driver is built as actions build
it, from the lab's pool file, inside the admin host's namespace.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from ocsscale.config.loader import load_pool
from ocsscale.errors import OcsscaleError, StepFailed, TransportError
from ocsscale.providers.lb.base import FarmSpec, LbDriver
from ocsscale.providers.lb.engine import EngineDriver
from ocsscale.providers.lb.haproxy import HaproxyDriver
from ocsscale.providers.lb.linuxhost import LinuxDriver
from ocsscale.transports.factory import HostPool
from ocsscale_lab import services

from .conftest import RunningLab
from .lbbench import ConnectLoop, HandOperator, answering, lb_files, make_driver, observer, wait_for

pytestmark = pytest.mark.lab

LAB_OF = {
    "engine": "one_armed_lab",
    "haproxy": "one_armed_haproxy_lab",
    "manual": "one_armed_haproxy_lab",  # the operator configures that HAProxy by hand
}
TWO_ARMED = {"engine": "two_armed_lab", "haproxy": "two_armed_haproxy_lab"}
LB_HOST = "lb01"


def _lab(request: pytest.FixtureRequest, kind: str, topology: str = "one-armed") -> RunningLab:
    return request.getfixturevalue(LAB_OF[kind] if topology == "one-armed" else TWO_ARMED[kind])


def _farm(lab: RunningLab) -> tuple[Any, FarmSpec]:
    loaded = load_pool(lab.state.pool_file)
    return loaded, FarmSpec.from_pool(loaded.pool, loaded.profile)


def _all_up(driver: LbDriver, farm: FarmSpec) -> bool:
    stats = driver.stats()
    names = {m.name for m in farm.members}
    return set(stats) == names and all(s.up_everywhere() for s in stats.values())


def _assert_clean(driver: LbDriver, farm: FarmSpec) -> None:
    """The LB serves nothing: no farm, service stopped, VIP absent and silent."""
    looked = observer(driver).read_farm()
    assert looked["view"] is None
    assert looked["active"] is False and looked["vip_present"] is False, looked
    assert answering(farm.vip, farm.ports) == []


@pytest.mark.parametrize(
    ("kind", "topology"),
    [
        ("engine", "one-armed"),
        ("haproxy", "one-armed"),
        ("manual", "one-armed"),
        ("engine", "two-armed-routed"),
        ("haproxy", "two-armed-routed"),
    ],
)
def test_driver_contract(kind: str, topology: str, request: pytest.FixtureRequest) -> None:
    lab = _lab(request, kind, topology)
    assert lab.topo.kind == topology
    loaded, farm = _farm(lab)
    name = farm.members[0].name
    others = [m.name for m in farm.members[1:]]

    def contract() -> None:
        with HostPool(loaded) as hosts:
            driver = make_driver(kind, loaded, hosts)
            lb = observer(driver)
            files_before = lb_files(driver)
            _assert_clean(driver, farm)
            current = driver.read_farm()
            assert current["view"] is None
            # the undo record as the journal gives it back: plain JSON
            undo = json.loads(json.dumps(driver.undo_for(current)))
            driver.check_undo(undo)  # the driver knows its own record's shape
            caps = driver.capabilities
            try:
                evidence = driver.apply_farm(farm, current)
                json.dumps(evidence)
                if caps.drives_itself:
                    # announced by gratuitous ARP: _assert_clean's probes left the admin
                    # host a FAILED neighbour entry for the VIP ("no route to host")
                    assert evidence["vip_announced"] is True, evidence
                # read back equals the plan (manual: the LB cannot be read, its HAProxy can)
                assert lb.read_farm()["view"] == farm.view()
                if not caps.read_back:
                    assert driver.read_farm()["view"] is None
                if not caps.detects:
                    assert {s.health for s in driver.stats().values()} == {"unknown"}
                wait_for("every member up on every port", lambda: _all_up(lb, farm))
                assert answering(farm.vip, farm.ports) == sorted(farm.ports)
                # a connection held open through the VIP counts as active on its port
                port = farm.check_ports[0]
                with socket.create_connection((farm.vip, port), timeout=5):
                    wait_for(
                        f"an active connection on {port}",
                        lambda: sum(s.active.get(port, 0) for s in lb.stats().values()) >= 1,
                        tries=20,
                    )

                since = time.time() - 5  # the LB host's clock is this machine's
                driver.set_member(name, "maint")
                stats = lb.stats()
                assert stats[name].admin == "maint"
                assert all(stats[o].admin == "ready" for o in others)
                wait_for(
                    f"an admin-state event for {name}",
                    lambda: [
                        e
                        for e in lb.events(since)
                        if e["server"] == name
                        and e["kind"] == "admin-state"
                        and "maint" in str(e["reason"])
                    ],
                    tries=10,
                )
                # the same farm again: a reload, which keeps the admin state and
                # refuses no new connection while it happens
                with ConnectLoop(farm.vip, farm.check_ports[0]) as load:
                    wait_for("connections through the VIP", lambda: load.attempts, tries=20)
                    driver.apply_farm(farm, driver.read_farm())
                assert load.attempts > 1 and load.failed == [], load.failed[:5]
                assert lb.stats()[name].admin == "maint"
                assert lb.read_farm()["view"] == farm.view()
                driver.set_member(name, "ready")
                assert lb.stats()[name].admin == "ready"
                wait_for("every member up again", lambda: _all_up(lb, farm))
            finally:
                driver.revert(undo)
            driver.verify_reverted(undo)
            driver.revert(undo)  # safe twice
            driver.verify_reverted(undo)
            _assert_clean(driver, farm)
            assert lb_files(driver) == files_before
            if not caps.drives_itself:
                operator = driver.ports.operator  # type: ignore[attr-defined]
                assert isinstance(operator, HandOperator)
                assert operator.questions[0].startswith("Are all of these settings entered")

    lab.inside("admin", contract)


class _BrokenHaproxy(HaproxyDriver):
    def render_config(self, desired: FarmSpec) -> str:
        return super().render_config(desired) + "backend broken\n    balance no-such-balance\n"


class _BrokenEngine(EngineDriver):
    def render_farm(self, desired: FarmSpec) -> str:
        return super().render_farm(desired) + "no_such_setting: 1\n"


@pytest.mark.parametrize("kind", ["engine", "haproxy"])
def test_a_refused_config_changes_nothing(kind: str, request: pytest.FixtureRequest) -> None:
    lab = _lab(request, kind)
    loaded, farm = _farm(lab)

    def refused() -> None:
        with HostPool(loaded) as hosts:
            good = make_driver(kind, loaded, hosts)
            broken_class = _BrokenHaproxy if kind == "haproxy" else _BrokenEngine
            assert isinstance(good, LinuxDriver)
            broken = broken_class(good.settings, good.site, good.ports)
            files_before = lb_files(good)
            # on a clean LB: nothing at all happens (no VIP, no file, no service)
            clean = good.read_farm()
            with pytest.raises(StepFailed) as refused_clean:
                broken.apply_farm(farm, clean)
            assert LB_HOST in str(refused_clean.value)
            assert "nothing was replaced" in str(refused_clean.value)
            if kind == "haproxy":  # HAProxy's own words, with the line it refused
                assert "balance only supports" in str(refused_clean.value)
            assert good.read_farm() == clean
            assert lb_files(good) == files_before
            # over a running farm: the old config stays, and still serves
            undo = good.undo_for(clean)
            try:
                good.apply_farm(farm, clean)
                running = good.read_farm()
                installed = lb_files(good)
                with pytest.raises(StepFailed):
                    broken.apply_farm(farm, running)
                assert lb_files(good) == installed
                assert good.read_farm()["view"] == farm.view()
                assert answering(farm.vip, farm.ports) == sorted(farm.ports)
            finally:
                good.revert(undo)
            good.verify_reverted(undo)
            assert lb_files(good) == files_before

    lab.inside("admin", refused)


@pytest.mark.parametrize("kind", ["engine", "haproxy"])
def test_an_lb_host_without_the_lb(kind: str, request: pytest.FixtureRequest) -> None:
    lab = _lab(request, kind)
    loaded, farm = _farm(lab)

    def missing() -> None:
        with HostPool(loaded) as hosts:
            good = make_driver(kind, loaded, hosts)
            assert isinstance(good, LinuxDriver)
            settings = good.settings.model_copy(update={"command": "/nonexistent/bin/lb"})
            driver = type(good)(settings, good.site, good.ports)
            before = good.read_farm()
            with pytest.raises(StepFailed) as read:
                driver.read_farm()
            assert LB_HOST in str(read.value) and "not installed" in str(read.value)
            with pytest.raises(StepFailed) as applied:
                driver.apply_farm(farm, before)
            assert LB_HOST in str(applied.value)
            assert good.read_farm() == before

    lab.inside("admin", missing)


@pytest.mark.parametrize("kind", ["engine", "haproxy"])
def test_an_unreachable_lb_host(kind: str, request: pytest.FixtureRequest) -> None:
    lab = _lab(request, kind)
    loaded, _farm_ = _farm(lab)
    sshd = services.load(lab.state.directory, LB_HOST, "sshd")
    services.stop(lab.state.directory, sshd)
    try:

        def unreachable() -> OcsscaleError:
            with HostPool(loaded) as hosts:
                driver = make_driver(kind, loaded, hosts)
                with pytest.raises((TransportError, StepFailed)) as failed:
                    driver.read_farm()
                return failed.value

        error = lab.inside("admin", unreachable)
        assert LB_HOST in str(error)
        assert "Traceback" not in str(error)
    finally:
        services.start(lab.state.directory, sshd)


SITE_CONFIG = """\
# the site's own HAProxy config, running before ocsscale (no ocsscale socket)
global
    log stdout format raw local0
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend site
    bind {address}:{port}
    default_backend site
backend site
    server local 127.0.0.1:9
"""


def test_haproxy_puts_back_a_running_site_config(request: pytest.FixtureRequest) -> None:
    """Undo over a HAProxy that already ran its own config: that config byte-identical,
    reloaded and serving again, the VIP gone."""
    lab = _lab(request, "haproxy")
    loaded, farm = _farm(lab)
    lb_address = lab.address(LB_HOST)
    port = farm.check_ports[0]  # the port the lab's service runner waits for

    def site() -> None:
        with HostPool(loaded) as hosts:
            driver = make_driver("haproxy", loaded, hosts)
            assert isinstance(driver, HaproxyDriver)
            lbhost = driver._lb()
            path = driver.settings.config_path
            site_config = SITE_CONFIG.format(address=lb_address, port=port).encode()
            lbhost.host.write_file(path, site_config)
            lbhost.service("start")
            try:
                current = driver.read_farm()
                assert current["active"] and current["view"]["members"] == {}
                undo = json.loads(json.dumps(driver.undo_for(current)))
                try:
                    driver.apply_farm(farm, current)
                    assert driver.read_farm()["view"] == farm.view()
                    assert answering(farm.vip, [port]) == [port]
                finally:
                    driver.revert(undo)
                driver.verify_reverted(undo)
                assert lb_files(driver)[path] == site_config
                wait_for("the site's frontend back", lambda: answering(lb_address, [port]))
                assert answering(farm.vip, farm.ports) == []
            finally:
                lbhost.service("stop", check=False)
                lbhost.restore(path, None)
            _assert_clean(driver, farm)

    lab.inside("admin", site)
