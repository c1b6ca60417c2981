"""A Linux load-balancer host, as the engine and HAProxy drivers drive it.

Files are written in place after a backup on the host and put back byte for
byte (the backup is removed once they are); the service is controlled through
a command template (`systemctl {action} {service}` on a real host, the lab's
service runner in the lab); the VIP is an address on the interface whose
network holds it. Every failure names the host and the cause.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from ipaddress import IPv4Interface, ip_interface
from typing import Any, ClassVar

from ...config.lb_settings import LinuxLbSettings
from ...errors import CommandFailed, StepFailed, TransportError, UndoRecordError, UsageError
from ...transports.base import CommandResult, Host
from ...transports.commands import ShCommand
from .. import undo_shape as shape
from ..plugin import Capabilities, Ports
from .base import FarmSpec, LbSite, check_driver

BACKUP_SUFFIX = ".ocsscale.bak"
SERVICE_ACTIONS = ("start", "stop", "reload", "is-active", "enable", "disable")


def encode(data: bytes | None) -> str | None:
    """File bytes as journal-safe text (None: the file did not exist)."""
    return None if data is None else base64.b64encode(data).decode("ascii")


def decode(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text.encode("ascii"))


class LinuxLbHost:
    def __init__(self, host: Host, *, service_control: str, service: str) -> None:
        if host.os != "linux":
            raise StepFailed(
                f"{host.name}: the load balancer is driven over a Linux host's transport; "
                f"{host.name} is a {host.os} host"
            )
        self.host = host
        self.name = host.name
        self.service_control = service_control
        self.service_name = service

    # -- commands -----------------------------------------------------------------
    def sh(
        self, script: str, *args: str, timeout: float = 60.0, check: bool = True
    ) -> CommandResult:
        """`sh -c SCRIPT` with ARGS as $1..: values are never parsed by the shell."""
        return self.host.run(
            ShCommand.of("sh", "-c", script, "sh", *args), timeout=timeout, check=check
        )

    def has_command(self, command: str) -> bool:
        return self.sh('command -v -- "$1" >/dev/null 2>&1', command, check=False).ok

    # -- files --------------------------------------------------------------------
    def read_optional(self, path: str) -> bytes | None:
        if not self.sh('[ -e "$1" ]', path, check=False).ok:
            return None
        return self.host.read_file(path)

    def write(self, path: str, data: bytes) -> None:
        """In place, after a backup of what was there (path + BACKUP_SUFFIX)."""
        self.sh('mkdir -p -- "$(dirname -- "$1")"', path)
        self.host.write_file(path, data, backup_suffix=BACKUP_SUFFIX)

    def restore(self, path: str, data: bytes | None) -> None:
        """Put `data` back (None: remove the file); the backup goes too."""
        if data is None:
            self.sh('rm -f -- "$1" "$1$2"', path, BACKUP_SUFFIX)
            return
        if self.read_optional(path) != data:
            self.host.write_file(path, data)
        self.sh('rm -f -- "$1$2"', path, BACKUP_SUFFIX)

    # -- the service --------------------------------------------------------------
    def service(self, action: str, *, check: bool = True, timeout: float = 90.0) -> CommandResult:
        if action not in SERVICE_ACTIONS:
            raise ValueError(action)
        command = self.service_control.format(action=action, service=self.service_name)
        try:
            return self.sh(command, timeout=timeout, check=check)
        except CommandFailed as exc:
            raise StepFailed(
                f"{self.name}: `{action}` of the service {self.service_name} failed "
                f"(exit {exc.exit_status}): {exc.stderr.strip()[:300] or 'no message'}"
            ) from None

    def active(self) -> bool:
        return self.service("is-active", check=False).ok

    def start_or_reload(self, running: bool) -> str:
        """Reload a running service, else start and enable it; what was done."""
        if running:
            self.service("reload")
            return "reloaded"
        self.service("start")
        self.service("enable", check=False)
        return "started"

    # -- addresses ----------------------------------------------------------------
    def addresses(self) -> list[tuple[str, str]]:
        """(interface, address/prefix) of every IPv4 address on the host."""
        out = self.sh("ip -4 -o addr show").stdout
        found = []
        for line in out.splitlines():
            fields = line.split()
            if "inet" in fields and len(fields) > fields.index("inet") + 1:
                found.append((fields[1], fields[fields.index("inet") + 1]))
        return found

    def has_address(self, address: str) -> bool:
        return any(a.split("/")[0] == address for _, a in self.addresses())

    def vip_interface(self, vip: str, configured: str | None) -> str:
        """The interface the VIP goes on: `configured`, or the one whose network holds it."""
        if configured:
            return configured
        target = IPv4Interface(vip)
        for ifname, address in self.addresses():
            if ifname != "lo" and IPv4Interface(address).network.overlaps(target.network):
                return ifname
        raise StepFailed(
            f"{self.name}: no interface is on the VIP's network {target.network}; connect the "
            "load balancer's client-side arm, or name it in the driver's vip_interface"
        )

    def add_address(self, address: str, ifname: str) -> bool:
        """Add the VIP, then announce it; whether the announcement went out."""
        try:
            self.sh('ip addr add "$1" dev "$2"', address, ifname)
        except TransportError as exc:
            raise StepFailed(
                f"{self.name}: cannot add the VIP {address} to {ifname}: {exc}"
            ) from None
        return self.announce(address, ifname)

    def announce(self, address: str, ifname: str) -> bool:
        """A gratuitous ARP for the VIP just added, as an LB appliance sends one: a
        neighbour that asked for the address before it existed (the VIP checked
        silent, a client's probe) keeps a FAILED entry and refuses connections ("no
        route to host") until it asks again. Best effort, with iputils' arping when
        the host has it."""
        found = self.sh(
            'command -v arping >/dev/null 2>&1 || exit 3; arping -q -U -c 1 -w 1 -I "$2" "$1"',
            address.split("/")[0],
            ifname,
            check=False,
        )
        return found.ok

    def remove_address(self, address: str, ifname: str) -> None:
        if self.has_address(address.split("/")[0]):
            self.sh('ip addr del "$1" dev "$2"', address, ifname)


def state_of(lbhost: LinuxLbHost, vip: str, files: dict[str, str | None]) -> dict[str, Any]:
    """What revert needs: each file's bytes (or absent), service state, VIP present."""
    return {
        "files": {path: encode(lbhost.read_optional(path)) for path in files if path},
        "active": lbhost.active(),
        "vip_present": lbhost.has_address(vip),
    }


def verify_restored(lbhost: LinuxLbHost, undo: dict[str, Any]) -> dict[str, Any]:
    """After a revert: every file of `undo` byte-identical (or absent), the service
    state and the VIP's presence as before; StepFailed naming what differs."""
    vip = undo["vip"].split("/")[0]
    now = state_of(lbhost, vip, dict.fromkeys(undo["files"]))
    files = undo["files"]
    problems = [
        f"{path} differs from before" for path in files if now["files"][path] != files[path]
    ]
    if now["active"] != undo["active"]:
        problems.append(f"the service is {'running' if now['active'] else 'stopped'}")
    if now["vip_present"] != undo["vip_present"]:
        still = "still" if now["vip_present"] else "no longer"
        problems.append(f"the VIP {vip} is {still} configured")
    if problems:
        raise StepFailed(f"{lbhost.name}: after the rollback " + "; ".join(problems))
    return {"host": lbhost.name, "files": "byte-identical", "active": now["active"]}


class LinuxDriver:
    """What the engine and HAProxy drivers share: the pool file's LB host, reached
    over its transport, the undo record and the read-back of a revert."""

    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities(
        drives_itself=True, drain=True, read_back=True, detects=True, own_host=True
    )
    settings: LinuxLbSettings
    #: the VIP is keepalived's (one host of a pair, pair.py): never added or removed here
    floating_vip: bool = False

    def __init__(self, settings: LinuxLbSettings, site: LbSite, ports: Ports) -> None:
        self.settings = settings
        self.site = site
        self.ports = ports

    @property
    def host_name(self) -> str:
        # refused when the driver is asked for its host, not when it is built: an
        # action may first ask what it can do (and say itself what is missing)
        if self.site.host is None:
            raise UsageError(
                f"the {self.kind} driver needs load_balancer.host: the Linux host the "
                "load balancer runs on"
            )
        return self.site.host

    def _lb(self) -> LinuxLbHost:
        return LinuxLbHost(
            self.ports.host(self.host_name),
            service_control=self.settings.service_control,
            service=self.settings.service,
        )

    def target(self) -> str:
        return self.host_name

    def targets(self) -> list[str]:
        return [self.host_name]

    def plan_note(self, farm: FarmSpec) -> str:
        return ""

    def undo_for(self, current: dict[str, Any]) -> dict[str, Any]:
        """The files as they were (state_of), the service state and the VIP's presence."""
        return {
            "driver": self.kind,
            "host": self.host_name,
            "vip": self.site.farm.vip_interface,
            "vip_interface": self.settings.vip_interface,
            "files": current["files"],
            "active": current["active"],
            "vip_present": current["vip_present"],
        }

    def check_undo(self, undo: Mapping[str, Any]) -> None:
        """The shape of `undo_for`'s record."""
        check_driver(undo, self.kind)
        shape.text(undo, "host")
        vip = shape.text(undo, "vip")
        try:
            ip_interface(vip or "")
        except ValueError:
            raise UndoRecordError("'vip' is not an address with its prefix") from None
        shape.text(undo, "vip_interface", optional=True)
        for path, data in shape.obj(undo, "files").items():
            if not path.startswith("/") or len(path) > shape.MAX_TEXT or not path.isprintable():
                raise UndoRecordError("'files' names a file that is not an absolute path")
            shape.within(
                "files", lambda d: shape.b64({"content": d}, "content", optional=True), data
            )
        shape.flag(undo, "active")
        shape.flag(undo, "vip_present")

    def verify_reverted(self, undo: dict[str, Any]) -> dict[str, Any]:
        return verify_restored(self._lb(), undo)

    def _put_back_files(self, lb: LinuxLbHost, undo: dict[str, Any]) -> None:
        """The first half of a revert: the service stopped and disabled when it was
        not running before, every file as it was."""
        if not undo["active"]:
            lb.service("stop", check=False)
            lb.service("disable", check=False)
        for path, data in undo["files"].items():
            lb.restore(path, decode(data))

    def _remove_vip_if_added(self, lb: LinuxLbHost, undo: dict[str, Any]) -> None:
        if not undo["vip_present"] and not self.floating_vip:
            ifname = lb.vip_interface(undo["vip"], undo.get("vip_interface"))
            lb.remove_address(undo["vip"], ifname)
