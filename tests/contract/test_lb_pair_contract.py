"""The pair contract (`load_balancer.pair`), in the lab against real LBs and keepalived.

engine: the bundled engine on lb01 and lb02 (`lab up --lb engine --lb-pair`);
haproxy: Debian's HAProxy on both (`--lb haproxy --lb-pair`); keepalived (Debian's)
on both moves the VIP. Every driver is built as actions build it, from the lab's
pool file, inside the admin host's namespace.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from ocsscale.config.loader import load_pool
from ocsscale.errors import OcsscaleError, StepFailed, TransportError
from ocsscale.providers.lb.base import FarmSpec
from ocsscale.providers.lb.engine import EngineDriver
from ocsscale.providers.lb.haproxy import HaproxyDriver
from ocsscale.providers.lb.pair import NONLOCAL_BIND, PairDriver
from ocsscale.transports.factory import HostPool
from ocsscale_lab import lbhost, services, system

from .conftest import RunningLab
from .lbbench import answering, make_driver, wait_for

pytestmark = pytest.mark.lab

LAB_OF = {"engine": "one_armed_pair_lab", "haproxy": "one_armed_haproxy_pair_lab"}
HOSTS = ("lb01", "lb02")
#: the issue's target: the VIP answers from the standby within 3 s of the LB stopping
TAKEOVER_TARGET = 3.0


def _setup(request: pytest.FixtureRequest, kind: str) -> tuple[RunningLab, Any, FarmSpec]:
    lab: RunningLab = request.getfixturevalue(LAB_OF[kind])
    loaded = load_pool(lab.state.pool_file)
    return lab, loaded, FarmSpec.from_pool(loaded.pool, loaded.profile)


def _files(driver: PairDriver) -> dict[str, bytes | None]:
    """Every file the pair writes, on both hosts, as it is on disk (the lab's hosts
    share this machine's files), backups included."""
    paths: list[str] = []
    for name, single in driver.drivers.items():
        s: Any = single.settings
        paths += [getattr(s, k, None) or "" for k in ("config_path", "state_file", "farm_path")]
        k = driver.keepalived[name]
        paths += [k.config_path, k.track_script]
    found: dict[str, bytes | None] = {}
    for path in filter(None, paths):
        for p in (Path(path), Path(path + ".ocsscale.bak")):
            found[str(p)] = p.read_bytes() if p.exists() else None
    return found


def _holders(lab: RunningLab, vip: str) -> list[str]:
    return [
        h for h in HOSTS if f" {vip}/" in system.ip("-o", "-4", "addr", "show", ns=lab.topo.ns(h))
    ]


def _sysctl(lab: RunningLab, host: str) -> str:
    return system.run(
        ["ip", "netns", "exec", lab.topo.ns(host), "sysctl", "-n", NONLOCAL_BIND]
    ).strip()


def _running(lab: RunningLab, host: str, name: str) -> bool:
    service = services.load(lab.state.directory, host, name)
    return services.pid_of(lab.state.directory, service) is not None


def _lb_service(kind: str) -> str:
    return lbhost.ENGINE_SERVICE if kind == "engine" else lbhost.HAPROXY_SERVICE


def _clean(lab: RunningLab, kind: str, farm: FarmSpec) -> None:
    assert _holders(lab, farm.vip) == []
    for host in HOSTS:
        assert not _running(lab, host, _lb_service(kind))
        assert not _running(lab, host, lbhost.KEEPALIVED_SERVICE)
        assert _sysctl(lab, host) == "0"


@pytest.mark.parametrize("kind", ["engine", "haproxy"])
def test_pair_contract(kind: str, request: pytest.FixtureRequest) -> None:
    lab, loaded, farm = _setup(request, kind)
    member = farm.members[0].name
    _clean(lab, kind, farm)
    takeover: dict[str, float] = {}

    def contract() -> None:
        with HostPool(loaded) as hosts:
            driver = make_driver(kind, loaded, hosts)
            assert isinstance(driver, PairDriver) and driver.capabilities.pair
            assert driver.targets() == list(HOSTS)
            files_before = _files(driver)
            current = driver.read_farm()
            assert current["view"] is None and current["vip_holders"] == []
            undo = json.loads(json.dumps(driver.undo_for(current)))
            driver.check_undo(undo)
            try:
                evidence = driver.apply_farm(farm, current)
                text = json.dumps(evidence)
                assert evidence["vip_holder"] == "lb01"  # the preferred host
                # the secret is in no evidence and in no undo record
                secret = Path(lab.state.secrets_dir / "vrrp-secret").read_text().strip()
                assert secret not in text and secret not in json.dumps(undo)
                # the same farm read back from both hosts
                after = driver.read_farm()
                assert after["vip_holders"] == ["lb01"]
                for name in HOSTS:
                    assert after["hosts"][name]["view"] == farm.view(), name
                wait_for("members up on the active host", lambda: _up(driver, farm))
                assert answering(farm.vip, farm.ports) == sorted(farm.ports)
                # members' admin state goes to both hosts
                driver.set_member(member, "maint")
                for single in driver.drivers.values():
                    assert single.stats()[member].admin == "maint"
                driver.set_member(member, "ready")
                for single in driver.drivers.values():
                    assert single.stats()[member].admin == "ready"
                # the active LB's process stops: the standby holds the VIP within target
                stopped = time.monotonic()
                driver.drivers["lb01"]._lb().service("stop")
                wait_for(
                    "the VIP on lb02",
                    lambda: driver.holders() == ["lb02"],
                    tries=100,
                    pause=0.05,
                )
                takeover["seconds"] = time.monotonic() - stopped
                wait_for("the VIP answering from lb02", lambda: answering(farm.vip, farm.ports))
            finally:
                driver.revert(undo)
            driver.verify_reverted(undo)
            driver.revert(undo)  # safe twice
            driver.verify_reverted(undo)
            assert _files(driver) == files_before
            assert driver.holders() == []
            assert answering(farm.vip, farm.ports) == []

    lab.inside("admin", contract)
    _clean(lab, kind, farm)
    assert takeover["seconds"] <= TAKEOVER_TARGET, takeover


def _up(driver: PairDriver, farm: FarmSpec) -> bool:
    stats = driver.stats()
    return set(stats) == {m.name for m in farm.members} and all(
        s.up_everywhere() for s in stats.values()
    )


class _BrokenHaproxy(HaproxyDriver):
    def render_config(self, desired: FarmSpec) -> str:
        return super().render_config(desired) + "backend broken\n    balance no-such-balance\n"


class _BrokenEngine(EngineDriver):
    def render_farm(self, desired: FarmSpec) -> str:
        return super().render_farm(desired) + "no_such_setting: 1\n"


@pytest.mark.parametrize("kind", ["engine", "haproxy"])
def test_a_farm_refused_on_the_second_host_changes_nothing_on_the_first(
    kind: str, request: pytest.FixtureRequest
) -> None:
    lab, loaded, farm = _setup(request, kind)
    _clean(lab, kind, farm)

    def refused() -> None:
        with HostPool(loaded) as hosts:
            driver = make_driver(kind, loaded, hosts)
            assert isinstance(driver, PairDriver)
            good = driver.drivers["lb02"]
            broken_class = _BrokenHaproxy if kind == "haproxy" else _BrokenEngine
            broken = broken_class(good.settings, good.site, good.ports)  # type: ignore[arg-type]
            broken.floating_vip = True
            driver.drivers["lb02"] = broken
            files_before = _files(driver)
            current = driver.read_farm()
            with pytest.raises(StepFailed) as caught:
                driver.apply_farm(farm, current)
            assert "lb02" in str(caught.value) and "nothing was replaced" in str(caught.value)
            driver.drivers["lb02"] = good
            assert _files(driver) == files_before
            assert driver.read_farm() == current

    lab.inside("admin", refused)
    _clean(lab, kind, farm)


@pytest.mark.parametrize("kind", ["engine", "haproxy"])
def test_an_unreachable_standby(kind: str, request: pytest.FixtureRequest) -> None:
    lab, loaded, farm = _setup(request, kind)
    _clean(lab, kind, farm)
    sshd = services.load(lab.state.directory, "lb02", "sshd")
    services.stop(lab.state.directory, sshd)
    try:

        def unreachable() -> tuple[OcsscaleError, dict[str, bytes | None]]:
            with HostPool(loaded) as hosts:
                driver = make_driver(kind, loaded, hosts)
                assert isinstance(driver, PairDriver)
                before = _files(driver)
                with pytest.raises((TransportError, StepFailed)) as failed:
                    driver.read_farm()
                return failed.value, before

        error, before = lab.inside("admin", unreachable)
        assert "lb02" in str(error)
        assert "Traceback" not in str(error)
    finally:
        services.start(lab.state.directory, sshd)
    # the read that failed changed nothing on either host
    _clean(lab, kind, farm)

    def files() -> dict[str, bytes | None]:
        with HostPool(loaded) as hosts:
            driver = make_driver(kind, loaded, hosts)
            assert isinstance(driver, PairDriver)
            return _files(driver)

    assert lab.inside("admin", files) == before


SITE_KEEPALIVED = (
    b"# the site's own keepalived.conf\nvrrp_instance site {\n    auth_pass sitepw12\n}\n"
)


def test_a_sites_own_keepalived_config_comes_back_unjournaled(
    request: pytest.FixtureRequest,
) -> None:
    lab, loaded, farm = _setup(request, "haproxy")
    _clean(lab, "haproxy", farm)
    conf = lbhost.paths(lab.state, lab.topo, "lb02")["keepalived_conf"]
    conf.write_bytes(SITE_KEEPALIVED)
    conf.chmod(0o640)
    try:

        def run() -> str:
            with HostPool(loaded) as hosts:
                driver = make_driver("haproxy", loaded, hosts)
                assert isinstance(driver, PairDriver)
                current = driver.read_farm()
                undo = json.loads(json.dumps(driver.undo_for(current)))
                try:
                    driver.apply_farm(farm, current)
                    assert conf.read_bytes() != SITE_KEEPALIVED
                    assert conf.stat().st_mode & 0o777 == 0o600  # it holds the secret
                finally:
                    driver.revert(undo)
                driver.verify_reverted(undo)
                return json.dumps(undo)

        journaled = lab.inside("admin", run)
        assert "sitepw12" not in journaled and "site's own" not in journaled
        assert conf.read_bytes() == SITE_KEEPALIVED
        assert conf.stat().st_mode & 0o777 == 0o640
        assert not Path(str(conf) + ".ocsscale.bak").exists()
    finally:
        conf.unlink(missing_ok=True)
    _clean(lab, "haproxy", farm)
