"""The lab appliance's firmware: a lab service of lb01, in its namespace.

    python -m ocsscale_lab.appliance_firmware --config FILE --view FILE --lab-state FILE

About once a second it health-checks every member of the entered farm with a
TCP connect to each check port (all must pass; a member in maint is not
checked), and applies what the configuration and the checks make of the
appliance: the ruleset (appliance.render_ruleset: a member failing a check
leaves every port at once, and comes back when every check passes), the VIP on
its front interface while a farm is entered, the farm's idle timeout as this
namespace's conntrack timeout for established TCP connections. It writes its
view (view.json): the configuration generation applied, each member's checks,
health, admin state and whether it takes new connections.

It exits on SIGTERM or SIGINT, when the lab's state file is gone (the lab was
taken down), or after --max-seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import appliance
from .system import LabError, ip, run

CHECK_TIMEOUT = 0.5
CONNTRACK_TIMEOUT = "net.netfilter.nf_conntrack_tcp_timeout_established"
KERNEL_DEFAULT_TIMEOUT = "432000"


def check(address: str, port: int, timeout: float = CHECK_TIMEOUT) -> bool:
    """The appliance's "generic TCP" check: the port accepts a connection."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


class Firmware:
    def __init__(self, config_path: Path, view_path: Path) -> None:
        self.config_path = config_path
        self.view_path = view_path
        self.config: dict[str, Any] = appliance.read_json(config_path)
        self.hw = self.config["hardware"]
        self.ns = str(self.hw["ns"])
        self.default_timeout = self._default_timeout()
        self.applied: dict[str, Any] = {}
        self.checks: dict[str, dict[str, bool]] = {}
        self.error: str | None = None
        self.config_mtime = 0.0
        self.pool = ThreadPoolExecutor(max_workers=8)

    # -- one round ---------------------------------------------------------------
    def step(self) -> None:
        """Read the configuration, check the members, apply, write the view."""
        try:
            self.config_mtime = self.config_path.stat().st_mtime
            self.config = appliance.read_json(self.config_path)
        except (OSError, LabError) as exc:
            # keep running on the last good configuration; say so in the view
            self.error = f"configuration unreadable: {exc}"
            self._write_view(applied=False)
            return
        try:
            self.checks = self._check_members()
            self._apply()
            self.error = None
        except (LabError, KeyError, TypeError, ValueError) as exc:
            # a configuration written by hand that the operator would have refused
            self.error = f"{type(exc).__name__}: {exc}"[:500]
        try:
            self._write_view(applied=self.error is None)
        except (KeyError, TypeError, ValueError) as exc:
            print(f"cannot describe the configuration: {exc!r}", file=sys.stderr, flush=True)

    def config_changed(self) -> bool:
        with contextlib.suppress(OSError):
            return self.config_path.stat().st_mtime != self.config_mtime
        return False

    def _check_members(self) -> dict[str, dict[str, bool]]:
        farm = self.config.get("farm")
        if not farm:
            return {}
        admin = self.config.get("admin", {})
        todo = [
            (m["name"], m["address"], int(port))
            for m in farm["members"]
            if admin.get(m["name"], "ready") != "maint"
            for port in farm["check_ports"]
        ]
        results = list(self.pool.map(lambda t: check(t[1], t[2]), todo))
        checks: dict[str, dict[str, bool]] = {}
        for (name, _, port), ok in zip(todo, results, strict=True):
            checks.setdefault(name, {})[str(port)] = ok
        return checks

    def health(self) -> dict[str, bool]:
        return {name: bool(c) and all(c.values()) for name, c in self.checks.items()}

    # -- applying ----------------------------------------------------------------
    def _apply(self) -> None:
        farm = self.config.get("farm")
        ruleset = appliance.render_ruleset(self.config, self.health())
        vip = None
        if farm:
            ifname = appliance.vip_interface(self.hw, farm["vip"])
            if ifname is None:
                raise LabError(f"the VIP {farm['vip']} is on none of the appliance's networks")
            vip = (f"{farm['vip']}/{int(farm['vip_prefix'])}", ifname)
        timeout = str(int(farm["idle_timeout"])) if farm else self.default_timeout
        if self.applied.get("ruleset") != ruleset:
            appliance.nft_apply(self.ns, ruleset)
            self.applied["ruleset"] = ruleset
        if "forwarding" not in self.applied:
            # the kernel forwards; the ruleset's routing chain says what may pass
            for key, value in (
                ("net.ipv4.conf.all.send_redirects", "0"),
                ("net.ipv4.conf.default.send_redirects", "0"),
                *(
                    (f"net.ipv4.conf.{i['ifname']}.send_redirects", "0")
                    for i in self.hw["interfaces"]
                ),
                ("net.ipv4.ip_forward", "1"),
            ):
                self._sysctl_write(key, value)
            self.applied["forwarding"] = True
        if self.applied.get("vip") != vip:
            old = self.applied.get("vip")
            if old:
                ip("addr", "del", old[0], "dev", old[1], ns=self.ns, check=False)
            self.applied["vip"] = None
            if vip:
                if vip[0] not in ip("-o", "addr", "show", "dev", vip[1], ns=self.ns):
                    ip("addr", "add", vip[0], "dev", vip[1], ns=self.ns)
                self.applied["vip"] = vip
        if self.applied.get("timeout") != timeout:
            self._sysctl_write(CONNTRACK_TIMEOUT, timeout)
            self.applied["timeout"] = timeout

    def _default_timeout(self) -> str:
        """What the farm's revert puts back (the kernel's default when conntrack is
        not loaded yet: the first NAT ruleset loads it)."""
        try:
            value = run(["sysctl", "-n", CONNTRACK_TIMEOUT]).strip()
        except LabError:
            return KERNEL_DEFAULT_TIMEOUT
        return value if value.isdigit() else KERNEL_DEFAULT_TIMEOUT

    def _sysctl_write(self, key: str, value: str) -> None:
        # this process lives in the appliance's namespace: its sysctls are the appliance's
        run(["sysctl", "-qw", f"{key}={value}"])

    # -- the view ----------------------------------------------------------------
    def _write_view(self, applied: bool) -> None:
        farm = self.config.get("farm") or {}
        admin = self.config.get("admin", {})
        health = self.health()
        rotation = (
            {m["name"] for m in appliance.in_rotation(farm, admin, health)} if farm else set()
        )
        members = {}
        for m in farm.get("members", []):
            state = admin.get(m["name"], "ready")
            members[m["name"]] = {
                "address": m["address"],
                "weight": m["weight"],
                "admin": state,
                "checks": self.checks.get(m["name"], {}),
                "health": "unchecked"
                if state == "maint"
                else ("up" if health.get(m["name"]) else "down"),
                "in_rotation": m["name"] in rotation,
            }
        vip = self.applied.get("vip")
        view = {
            "pid": os.getpid(),
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            # the generation applied; the one read when it could not be applied
            "generation": int(self.config.get("generation", 0)),
            "applied": applied,
            "error": self.error,
            "routing": bool(self.config.get("routing")),
            "farm": farm.get("vip"),
            "vip": f"{vip[0]} on {vip[1]}" if vip else None,
            "idle_timeout": int(self.applied["timeout"]) if "timeout" in self.applied else None,
            "ruleset_sha256": hashlib.sha256(self.applied.get("ruleset", "").encode()).hexdigest(),
            "members": members,
        }
        try:
            appliance.write_json(self.view_path, view)
        except OSError as exc:
            print(f"cannot write the view: {exc}", file=sys.stderr, flush=True)


def serve(config: Path, view: Path, lab_state: Path, interval: float, max_seconds: float) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    firmware = Firmware(config, view)
    deadline = time.monotonic() + max_seconds
    try:
        while not stop.is_set() and time.monotonic() < deadline and lab_state.exists():
            firmware.step()
            if firmware.error:
                print(f"error: {firmware.error}", file=sys.stderr, flush=True)
            # a changed configuration is taken at once, else the next round in `interval`
            tick = time.monotonic() + interval
            while time.monotonic() < tick and not stop.is_set():
                if firmware.config_changed():
                    break
                stop.wait(0.05)
    finally:
        firmware.pool.shutdown(wait=False, cancel_futures=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocsscale_lab.appliance_firmware")
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--view", required=True, type=Path)
    parser.add_argument("--lab-state", required=True, type=Path)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=7 * 86400.0)
    args = parser.parse_args(argv)
    if not 0.1 <= args.interval <= 60:
        parser.error("--interval must be from 0.1 to 60 seconds")
    try:
        return serve(args.config, args.view, args.lab_state, args.interval, args.max_seconds)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
