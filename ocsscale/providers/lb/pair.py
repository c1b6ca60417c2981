"""A pair of Linux LB hosts (engine or HAProxy) with the VIP floating over VRRP.

The pool file's `load_balancer.pair`: the same driver runs on both hosts, each
through a single-host driver of its own (engine.py, haproxy.py) whose paths have
`{host}` filled in, and keepalived (Debian's) on both moves the VIP, the back-end
arm and the SNAT addresses together (keepalived.py renders its configuration).

apply: nothing changes on either host until both have accepted their part: each
host gets `net.ipv4.ip_nonlocal_bind=1` (the standby's LB listens on the VIP it
does not hold), then the farm is checked there (`haproxy -c`/`lb check` on a
staged copy) and keepalived's configuration with `keepalived -t`; a refusal on
either host puts the sysctl back on both and changes nothing else. Then the farm
is installed on both (the single-host drivers, without touching the VIP),
keepalived's track script and configuration (0600) are written and keepalived
started (or reloaded) on both; done when exactly one host holds the VIP.
Undo: per host, the single-host driver's record, keepalived's service state, the
sysctl's value, the track script's bytes and only the SHA-256 of keepalived's
previous configuration, whose bytes stay in a backup on the host (a site's own
configuration may hold its own secret: the journal never does).
Members: drain/maint go to both hosts; stats and events are the active host's.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface
from typing import Any, ClassVar, Protocol

from ...config.credentials import resolve_ref
from ...config.lb_settings import KeepalivedSettings, LinuxLbSettings, for_host
from ...errors import StepFailed, UndoRecordError
from ...secrets import Secret
from .. import undo_shape as shape
from ..plugin import Capabilities, Ports
from . import keepalived as ka
from .base import AdminState, FarmSpec, LbDriver, LbSite, MemberStats, PairSite, check_driver
from .linuxhost import BACKUP_SUFFIX, LinuxLbHost, decode, encode

NONLOCAL_BIND = "net.ipv4.ip_nonlocal_bind"
VIP_WAIT = 15.0  # seconds for keepalived to elect a master after it starts


class HostDriver(LbDriver, Protocol):
    """One host's driver of a pair (a LinuxDriver subclass: engine, haproxy)."""

    floating_vip: bool

    @property
    def settings(self) -> LinuxLbSettings: ...

    def _lb(self) -> LinuxLbHost: ...


def _sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


class PairDriver:
    """The LbDriver of a pair (module docstring); `single` builds one host's driver."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        drives_itself=True, drain=True, read_back=True, detects=True, pair=True
    )

    def __init__(
        self,
        single: Callable[[Any, LbSite, Ports], HostDriver],
        settings: LinuxLbSettings,
        site: LbSite,
        ports: Ports,
    ) -> None:
        assert site.pair is not None
        self.pair: PairSite = site.pair
        self.site = site
        self.ports = ports
        self.kind = single(settings, replace(site, host="-", pair=None), ports).kind
        self.drivers: dict[str, HostDriver] = {}
        self.keepalived: dict[str, KeepalivedSettings] = {}
        for host in self.pair.hosts:
            driver = single(for_host(settings, host.name), replace(site, host=host.name), ports)
            driver.floating_vip = True
            self.drivers[host.name] = driver
            self.keepalived[host.name] = for_host(self.pair.keepalived, host.name)

    # -- what it is -----------------------------------------------------------------
    def target(self) -> str:
        return "+".join(self.drivers)

    def targets(self) -> list[str]:
        return list(self.drivers)

    def plan_note(self, farm: FarmSpec) -> str:
        return (
            f"the same farm on {' and '.join(self.drivers)}; keepalived floats "
            f"{', '.join(self.pair.floating)} (router id {self.pair.router_id}, "
            f"{self.pair.preferred} preferred, preempt {'on' if self.pair.preempt else 'off'})"
        )

    def console(self) -> str:
        first = next(iter(self.drivers.values()))
        return f"{first.console()} on the active host ({' or '.join(self.drivers)})"

    # -- plumbing -------------------------------------------------------------------
    def _lb(self, name: str) -> LinuxLbHost:
        return self.drivers[name]._lb()

    def _keepalived_host(self, name: str) -> LinuxLbHost:
        k = self.keepalived[name]
        return LinuxLbHost(
            self.ports.host(name), service_control=k.service_control, service=k.service
        )

    def _secret(self) -> Secret:
        return resolve_ref(self.pair.secret, self.ports.base_dir)

    def holders(self) -> list[str]:
        """The hosts that hold the VIP now (read from each host's addresses)."""
        vip = self.site.farm.vip
        return [name for name in self.drivers if self._lb(name).has_address(vip)]

    def holds_vip(self, name: str) -> bool:
        """Whether host `name` holds the VIP now (read from that host alone)."""
        return self._lb(name).has_address(self.site.farm.vip)

    def lb_service(self, name: str, action: str) -> None:
        """The LB process on host `name`, through its driver's service control
        (start, stop); the LB drill's fault."""
        self._lb(name).service(action)

    def lb_running(self, name: str) -> bool:
        return self._lb(name).active()

    def active(self) -> str:
        """The host holding the VIP; the preferred one when none (or both) do."""
        holders = self.holders()
        return holders[0] if len(holders) == 1 else self.pair.preferred

    # -- the farm -------------------------------------------------------------------
    def read_farm(self) -> dict[str, Any]:
        hosts: dict[str, Any] = {}
        for name, driver in self.drivers.items():
            state = driver.read_farm()
            k = self.keepalived[name]
            kh = self._keepalived_host(name)
            nonlocal_bind = kh.sh('sysctl -n "$1"', NONLOCAL_BIND).stdout.strip()
            if nonlocal_bind not in ("0", "1"):  # never a value revert could not write back
                raise StepFailed(f"{name}: {NONLOCAL_BIND} reads neither 0 nor 1")
            state["keepalived"] = {
                "config_sha256": _sha(kh.read_optional(k.config_path)),
                "track_script": encode(kh.read_optional(k.track_script)),
                "active": kh.active(),
                "nonlocal_bind": nonlocal_bind,
            }
            hosts[name] = state
        views = [state["view"] for state in hosts.values()]
        preferred = hosts[self.pair.preferred]
        return {
            "hosts": hosts,
            # the preferred host's, as a single LB's would be (per host: `hosts`)
            "view": preferred["view"] if all(v == views[0] for v in views) else None,
            "ours": all(state.get("ours", True) for state in hosts.values()),
            "vip_holders": [n for n, s in hosts.items() if s["vip_present"]],
        }

    def undo_for(self, current: dict[str, Any]) -> dict[str, Any]:
        return {
            "driver": self.kind,
            "pair": {
                name: {
                    **driver.undo_for(current["hosts"][name]),
                    "keepalived": dict(current["hosts"][name]["keepalived"]),
                }
                for name, driver in self.drivers.items()
            },
        }

    def check_undo(self, undo: Mapping[str, Any]) -> None:
        check_driver(undo, self.kind)
        records = shape.obj(undo, "pair")
        if sorted(records) != sorted(self.drivers):
            raise UndoRecordError("'pair' does not name the pool file's two LB hosts")
        for name, record in records.items():
            rec = shape.record(record)
            self.drivers[name].check_undo(rec)
            k = shape.record(shape.obj(rec, "keepalived"))
            sha = shape.text(k, "config_sha256", optional=True)
            if sha is not None and (
                len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha)
            ):
                raise UndoRecordError("'config_sha256' is not a SHA-256 in hex")
            shape.b64(k, "track_script", optional=True)
            shape.flag(k, "active")
            if shape.text(k, "nonlocal_bind") not in ("0", "1"):
                raise UndoRecordError("'nonlocal_bind' is not 0 or 1")

    def _render(
        self,
        name: str,
        secret: Secret,
        track_path: str | None = None,
        *,
        routing: str | None = None,
    ) -> tuple[bytes, bytes]:
        """(keepalived.conf, track script) for host `name` (the script at `track_path`,
        default its place). `routing` (the FEs' gateway, `backend_address`): the routing
        phase's configuration, the same instance floating only that address and tracking
        nothing (no LB serves yet); configure-lb's adds the VIP, the SNAT addresses
        and the track script to it."""
        lb = self._lb(name)
        me = next(h for h in self.pair.hosts if h.name == name)
        peer = self.pair.peer_of(name)
        vip = self.pair.floating[0]
        source, other = me.address_on(vip), peer.address_on(vip)
        if source is None or other is None:
            raise StepFailed(f"{name}: the pair's hosts have no own address on the VIP's network")
        settings = self.drivers[name].settings
        interface = lb.vip_interface(vip, settings.vip_interface)
        addresses = self.pair.floating
        if routing is not None:
            addresses = tuple(a for a in addresses if a.split("/")[0] == routing)
            if not addresses:
                raise StepFailed("the pair has no floating back-end address to route through")
        floating = tuple(
            ka.Floating(IPv4Interface(a), interface if a == vip else lb.vip_interface(a, None))
            for a in addresses
        )
        host = ka.VrrpHost(
            instance=self.site.farm.name.replace(".", "_"),
            host=name,
            interface=interface,
            source=IPv4Address(source),
            peer=IPv4Address(other),
            preferred=name == self.pair.preferred,
            preempt=self.pair.preempt,
            router_id=self.pair.router_id,
            advert_interval=self.pair.advert_interval,
            floating=floating,
            track_script=None
            if routing is not None
            else track_path or self.keepalived[name].track_script,
        )
        farm = self.site.farm
        track = ka.track_script(farm.check_ports or farm.ports, farm.vip)
        return ka.render(host, secret).encode(), track.encode()

    def _precheck(self, desired: FarmSpec, current: dict[str, Any], secret: Secret) -> None:
        """Both hosts accept the farm and keepalived's configuration before either
        changes: the sysctl goes back on both when one refuses."""
        touched: list[str] = []
        try:
            for name, driver in self.drivers.items():
                lb = self._lb(name)
                touched.append(name)
                lb.sh('sysctl -q -w "$1=1"', NONLOCAL_BIND)
                self._check_farm(driver, lb, desired)
                self._check_keepalived(name, secret)
        except BaseException:
            for name in touched:
                was = current["hosts"][name]["keepalived"]["nonlocal_bind"]
                self._lb(name).sh('sysctl -q -w "$1=$2"', NONLOCAL_BIND, was, check=False)
            raise

    def _check_farm(self, driver: HostDriver, lb: LinuxLbHost, desired: FarmSpec) -> None:
        check = getattr(driver, "check_farm", None)
        if check is not None:
            check(lb, desired)

    def _check_keepalived(self, name: str, secret: Secret, *, routing: str | None = None) -> None:
        """`keepalived -t` on a staged copy of the configuration and its track script."""
        kh = self._keepalived_host(name)
        if not kh.has_command("keepalived"):
            raise StepFailed(
                f"{name}: keepalived is not installed (apt-get install keepalived): the pair's "
                "VIP floats with it"
            )
        k = self.keepalived[name]
        staged, staged_track = k.config_path + ".ocsscale-new", k.track_script + ".ocsscale-new"
        conf, track = self._render(name, secret, staged_track, routing=routing)
        try:
            _write_private(kh, staged_track, track)
            kh.sh('chmod 0700 "$1"', staged_track)
            _write_private(kh, staged, conf)
            checked = kh.sh('keepalived -t -n -l -P -f "$1"', staged, check=False)
        finally:
            kh.restore(staged, None)
            kh.restore(staged_track, None)
        if not checked.ok:
            said = ka.masked((checked.stdout + checked.stderr).strip(), secret)[:400]
            raise StepFailed(
                f"{name}: keepalived refused the rendered configuration (`keepalived -t`): "
                f"{said or f'exit {checked.exit_status}'}; nothing was changed on either host"
            )

    def apply_farm(self, desired: FarmSpec, current: dict[str, Any]) -> dict[str, Any]:
        secret = self._secret()
        self._precheck(desired, current, secret)
        evidence: dict[str, Any] = {"hosts": {}}
        for name, driver in self.drivers.items():
            evidence["hosts"][name] = driver.apply_farm(desired, current["hosts"][name])
        for name in self.drivers:
            conf, track = self._render(name, secret)
            k = self.keepalived[name]
            kh = self._keepalived_host(name)
            kh.write(k.track_script, track)
            kh.sh('chmod 0755 "$1"', k.track_script)
            before = current["hosts"][name]["keepalived"]
            # a site's own configuration is kept on the host (its bytes are not journaled)
            _write_private(kh, k.config_path, conf, backup=before["config_sha256"] is not None)
            was_active = before["active"]
            evidence["hosts"][name]["keepalived"] = kh.start_or_reload(was_active)
        evidence["vip_holder"] = self._wait_one_holder()
        return evidence

    def _wait_one_holder(self) -> str:
        return wait_one_holder(self.holders, f"the VIP {self.site.farm.vip}")

    def revert(self, undo: dict[str, Any]) -> dict[str, Any]:
        done: dict[str, Any] = {}
        # keepalived first on both: the VIP leaves before the LBs are put back
        for name in self.drivers:
            self._revert_keepalived(name, undo["pair"][name]["keepalived"])
        for name, driver in self.drivers.items():
            done[name] = driver.revert(undo["pair"][name])
            was = undo["pair"][name]["keepalived"]["nonlocal_bind"]
            self._lb(name).sh('sysctl -q -w "$1=$2"', NONLOCAL_BIND, was)
        return {"hosts": done}

    def _revert_keepalived(self, name: str, record: dict[str, Any]) -> None:
        k = self.keepalived[name]
        kh = self._keepalived_host(name)
        restore_keepalived(
            name, kh, k.config_path, record, (k.track_script, record["track_script"])
        )

    def verify_reverted(self, undo: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        problems: list[str] = []
        for name, driver in self.drivers.items():
            found[name] = driver.verify_reverted(undo["pair"][name])
            record = undo["pair"][name]["keepalived"]
            k = self.keepalived[name]
            kh = self._keepalived_host(name)
            if _sha(kh.read_optional(k.config_path)) != record["config_sha256"]:
                problems.append(f"{name}: {k.config_path} differs from before")
            if encode(kh.read_optional(k.track_script)) != record["track_script"]:
                problems.append(f"{name}: {k.track_script} differs from before")
            if kh.active() != record["active"]:
                problems.append(f"{name}: keepalived is {'running' if kh.active() else 'stopped'}")
            now = kh.sh('sysctl -n "$1"', NONLOCAL_BIND).stdout.strip()
            if now != record["nonlocal_bind"]:
                problems.append(f"{name}: {NONLOCAL_BIND} is {now}")
        if problems:
            raise StepFailed("after the rollback " + "; ".join(problems))
        return {"hosts": found, "vip_holders": self.holders()}

    # -- members --------------------------------------------------------------------
    def set_member(self, name: str, state: AdminState) -> None:
        for driver in self.drivers.values():
            driver.set_member(name, state)

    def stats(self) -> dict[str, MemberStats]:
        return self.drivers[self.active()].stats()

    def events(self, since: float) -> list[dict[str, Any]]:
        return self.drivers[self.active()].events(since)


def _write_private(lb: LinuxLbHost, path: str, data: bytes, *, backup: bool = False) -> None:
    """Write a file only root reads (it holds the VRRP secret): created 0600 before a
    byte is written; with `backup`, after a copy of what was there, mode and all
    (path + suffix: revert copies it back)."""
    lb.sh(
        'mkdir -p -- "$(dirname -- "$1")" && '
        '{ [ "$3" = no ] || [ ! -e "$1" ] || cp -p -- "$1" "$1$2"; } && '
        '{ [ -e "$1" ] || (umask 077 && : > "$1"); } && chmod 0600 -- "$1"',
        path,
        BACKUP_SUFFIX,
        "yes" if backup else "no",
    )
    lb.host.write_file(path, data)


def wait_one_holder(holders: Callable[[], list[str]], what: str) -> str:
    """The one host that holds `what` once keepalived has elected a master; StepFailed
    when after VIP_WAIT seconds none or both do."""
    deadline = time.monotonic() + VIP_WAIT
    while True:
        found = holders()
        if len(found) == 1:
            return found[0]
        if time.monotonic() > deadline:
            said = ", ".join(found) or "neither host"
            raise StepFailed(
                f"the pair: {said} holds {what} {VIP_WAIT:.0f} s after keepalived started "
                "(exactly one must): see keepalived's log on both hosts"
            )
        time.sleep(0.3)


def restore_keepalived(
    name: str,
    kh: Any,
    config_path: str,
    record: dict[str, Any],
    track_script: tuple[str, Any] | None = None,
) -> None:
    """keepalived on one host as `record` found it: its service state, its track
    script (path, journaled bytes) when it had one, and its configuration, whose bytes
    were never journaled (they hold the secret) and come back from the backup on the
    host when the SHA-256 says they must."""
    if not record["active"]:
        kh.service("stop", check=False)
        kh.service("disable", check=False)
    if track_script is not None:
        kh.restore(track_script[0], decode(track_script[1]))
    backup = config_path + BACKUP_SUFFIX
    if record["config_sha256"] is None:
        kh.restore(config_path, None)
    elif _sha(kh.read_optional(config_path)) != record["config_sha256"]:
        if _sha(kh.read_optional(backup)) != record["config_sha256"]:
            raise StepFailed(
                f"{name}: keepalived's previous configuration cannot be put back: its "
                f"backup {backup} is missing or differs"
            )
        kh.sh('cp -p -- "$2" "$1"', config_path, backup)
    kh.sh('rm -f -- "$1"', backup)
    if record["active"]:
        kh.service("reload")


def pair_aware(
    single: Callable[[Any, LbSite, Ports], HostDriver],
) -> Callable[[Any, LbSite, Ports], Any]:
    """The factory a Linux driver registers: a pair's driver when the pool file has
    `load_balancer.pair`, else the single host's."""

    def build(settings: Any, site: LbSite, ports: Ports) -> Any:
        if site.pair is not None:
            return PairDriver(single, settings, site, ports)
        return single(settings, site, ports)

    return build
