"""HAProxy (Debian's) as a pool's load balancer, on a Linux LB host.

Settings (`load_balancer.driver: {kind: haproxy, ...}`): the configuration
file, the service and how it is controlled, the runtime API socket, the
server-state file that keeps drain/maint across reloads, the haproxy command,
and the user/group the workers run as (null: stay root).

The config (templates/haproxy.cfg.j2): one frontend `vip-PORT` and backend
`port-PORT` per profile port (mode tcp, `balance leastconn`, the members'
weights, `timeout client`/`timeout server` = the idle timeout), and each
server's `source` is a SNAT address (MEMBER-sN lines, one per SNAT address,
when the pool needs more than one).
Checks: the walkthrough's "generic TCP" on the check ports that every other
port follows. Chosen: a `health` backend (no frontend) whose server per member
runs a two-port `tcp-check` (`tcp-check connect port 5061` then `... port 444`)
and every port's server `track`s it, so either check failing takes the member
out of EVERY port at once, with one check per member instead of one per port
(a per-backend `check` would let ports disagree). Ports are checked in the
health backend only; the port backends follow it. How often and how strictly:
the pool file's `load_balancer.checks`, as the health servers' `inter`, `fall`
and `rise` and the health backend's own `timeout connect` and `timeout check`
(the port backends keep the defaults' connect timeout for client traffic); read
back from the config, HAProxy's own defaults where a value is not set.

apply: the rendered config is written beside the real one and checked with
`haproxy -c -f` (nothing is replaced when it is refused: the error names the
host and quotes HAProxy); then the VIP is added (when absent), the running
servers' state is dumped into the server-state file (`show servers state`;
the config loads it with `load-server-state-from-file global`), the config is
installed in place after a backup, and the service is started, or reloaded
(master-worker: the new worker takes the listening sockets over through the
`expose-fd listeners` stats socket, no connection is refused). A reload is
done when the runtime API answers from a new worker process.
Undo: the config and the server-state file byte-identical (or absent), the
service state as before (stopped if it was), the VIP removed if it was not there.
Runtime API: `show stat`, `show servers state`, `set server`, `show events`
on the stats socket, through a small `python3 -c` client run on the LB host
(HAProxy hosts have no socat by default); values are passed as arguments.
Events: the workers log server state changes to an in-memory `ring`; a reload
starts a new worker, so `events` covers the time since the last reload.
"""

from __future__ import annotations

import re
import time
from typing import Any, ClassVar

from ...config.lb_settings import HaproxySettings
from ...errors import StepFailed
from ..plugin import fixed
from . import haproxy_text as hx
from .base import DRIVERS, AdminState, FarmSpec, MemberStats
from .linuxhost import LinuxDriver, LinuxLbHost, decode, state_of
from .pair import pair_aware
from .templates import render

_ALERT = re.compile(r"^\[ALERT\]\s*\(\d+\)\s*:\s*(config\s*:\s*)?")
MAX_WEIGHT = 256  # HAProxy's limit

# Talks to HAProxy's stats socket: argv = socket, command(s), timeout[, output file].
# Exit 3: nothing listens there; 4: no answer in time.
_CLIENT = r"""
import socket, sys
path, command, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(timeout)
try:
    s.connect(path)
except OSError as exc:
    sys.stderr.write("cannot connect to %s: %s\n" % (path, exc.strerror or exc))
    sys.exit(3)
chunks = []
try:
    s.sendall(command.encode() + b"\n")
    while True:
        data = s.recv(65536)
        if not data:
            break
        chunks.append(data)
except socket.timeout:
    sys.stderr.write("no answer from %s within %s s\n" % (path, timeout))
    sys.exit(4)
data = b"".join(chunks)
if len(sys.argv) > 4:
    with open(sys.argv[4], "wb") as f:
        f.write(data)
else:
    sys.stdout.buffer.write(data)
"""


class HaproxyDriver(LinuxDriver):
    kind: ClassVar[str] = "haproxy"
    settings: HaproxySettings

    def console(self) -> str:
        socket = self.settings.runtime_socket
        return f"HAProxy's runtime API on {socket} (`show stat`, `set server`)"

    # -- plumbing -------------------------------------------------------------------
    def _require_installed(self, lb: LinuxLbHost) -> None:
        if not lb.has_command(self.settings.command):
            raise StepFailed(
                f"{self.host_name}: HAProxy is not installed (no `{self.settings.command}` "
                "command): install it on the load-balancer host (apt-get install haproxy) "
                "or set load_balancer.driver.command to its path"
            )

    def _api(
        self, lb: LinuxLbHost, command: str, *, into: str | None = None, quiet: bool = False
    ) -> str | None:
        """HAProxy's answer to `command` on the runtime socket (into a file on the LB
        host with `into`); None when `quiet` and the socket does not answer."""
        args = [self.settings.runtime_socket, command, "10"] + ([into] if into else [])
        result = lb.sh('exec python3 -c "$@"', _CLIENT, *args, timeout=30, check=False)
        if result.ok:
            return result.stdout
        if quiet and result.exit_status in (3, 4):
            return None
        if result.exit_status == 127:
            cause = "python3 is not installed there (the runtime API client needs it)"
        else:
            cause = result.stderr.strip()[-300:] or f"exit {result.exit_status}"
        raise StepFailed(
            f"{self.host_name}: HAProxy's runtime API at {self.settings.runtime_socket} "
            f"did not answer `{command.split(';')[0]}`: {cause}"
        )

    def _worker_pid(self, lb: LinuxLbHost) -> str | None:
        info = self._api(lb, "show info", quiet=True)
        for line in (info or "").splitlines():
            if line.startswith("Pid:"):
                return line.split(":", 1)[1].strip()
        return None

    def _wait_worker(self, lb: LinuxLbHost, old: str | None, what: str) -> str:
        """Wait (bounded) until a worker other than `old` answers the runtime API."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pid = self._worker_pid(lb)
            if pid is not None and pid != old:
                return pid
            time.sleep(0.2)
        raise StepFailed(
            f"{self.host_name}: HAProxy did not {what} within 20 s (no new worker answers "
            f"on {self.settings.runtime_socket}); see its log on the host"
        )

    def _files(self) -> dict[str, str | None]:
        return {self.settings.config_path: None, self.settings.state_file: None}

    # -- the farm -------------------------------------------------------------------
    def read_farm(self) -> dict[str, Any]:
        lb = self._lb()
        self._require_installed(lb)
        vip = self.site.farm.vip
        state = state_of(lb, vip, self._files())
        config = decode(state["files"][self.settings.config_path])
        state["view"] = self._view(lb, config) if state["active"] else None
        return state

    def _view(self, lb: LinuxLbHost, config: bytes | None) -> dict[str, Any]:
        view = hx.config_view((config or b"").decode("utf-8", "replace"))
        answer = self._api(lb, "show servers state", quiet=True)
        if answer is not None:  # what the running HAProxy uses, over what the file says
            view["members"] = hx.runtime_members(hx.servers_state(answer))
        return view

    def render_config(self, desired: FarmSpec) -> str:
        heavy = [m.name for m in desired.members if not 0 <= m.weight <= MAX_WEIGHT]
        if heavy:
            raise StepFailed(
                f"HAProxy weights go from 0 to {MAX_WEIGHT}: {', '.join(heavy)} "
                "(scale the pool file's weights down, keeping their ratio)"
            )
        names = [m.name for m in desired.members]
        if len(desired.snat_addresses) > 1:
            lines = [f"{n}-s{i}" for n in names for i in range(1, len(desired.snat_addresses) + 1)]
            clash = sorted(set(names) & set(lines))
            if clash:
                raise StepFailed(
                    f"member name(s) {', '.join(clash)} clash with the per-SNAT server "
                    "names HAProxy needs (NAME-sN): rename them in the pool file"
                )
        s = self.settings
        return render(
            "haproxy.cfg.j2",
            fqdn=self.site.fqdn,
            vip=desired.vip,
            ports=sorted(desired.ports),
            check_ports=list(desired.check_ports),
            idle_timeout=desired.idle_timeout,
            snat_addresses=list(desired.snat_addresses),
            members=[
                {"name": m.name, "address": m.address, "weight": m.weight} for m in desired.members
            ],
            runtime_socket=s.runtime_socket,
            state_file=s.state_file,
            ring=hx.RING,
            user=s.user,
            group=s.group,
            check_inter=hx.duration_text(desired.checks.interval),
            check_timeout=hx.duration_text(desired.checks.timeout),
            check_fall=desired.checks.fall,
            check_rise=desired.checks.rise,
        )

    def check_config(self, lb: LinuxLbHost, text: bytes) -> None:
        """`haproxy -c` on a staged copy; StepFailed (nothing replaced) when refused."""
        staged = self.settings.config_path + ".ocsscale-new"
        lb.write(staged, text)
        try:
            checked = lb.sh('"$1" -c -f "$2"', self.settings.command, staged, check=False)
        finally:
            lb.restore(staged, None)
        if not checked.ok:
            said = [
                _ALERT.sub("", line.strip())
                for line in (checked.stdout + checked.stderr).splitlines()
                if line.startswith("[ALERT]")
            ]
            raise StepFailed(
                f"{self.host_name}: HAProxy refused the rendered configuration (`haproxy -c`): "
                f"{' | '.join(said)[:600] or f'exit {checked.exit_status}'}; nothing was replaced"
            )

    def check_farm(self, lb: LinuxLbHost, desired: FarmSpec) -> None:
        """The rendered config checked on a staged copy (check_config)."""
        self._require_installed(lb)
        self.check_config(lb, self.render_config(desired).encode())

    def apply_farm(self, desired: FarmSpec, current: dict[str, Any]) -> dict[str, Any]:
        lb = self._lb()
        s = self.settings
        self._require_installed(lb)
        text = self.render_config(desired).encode()
        self.check_config(lb, text)
        evidence: dict[str, Any] = {"host": self.host_name, "config_path": s.config_path}
        if not current["vip_present"] and not self.floating_vip:
            ifname = lb.vip_interface(desired.vip_interface, s.vip_interface)
            announced = lb.add_address(desired.vip_interface, ifname)
            evidence["vip_added"] = f"{desired.vip_interface} on {ifname}"
            evidence["vip_announced"] = announced  # gratuitous ARP (arping on the host)
        running = lb.active()
        old = self._worker_pid(lb) if running else None
        if old is not None:
            self._api(lb, "show servers state", into=s.state_file)
            evidence["server_state"] = f"saved to {s.state_file}"
        lb.write(s.config_path, text)
        evidence["service"] = lb.start_or_reload(running)
        evidence["worker"] = self._wait_worker(lb, old, "reload" if running else "start")
        return evidence

    def revert(self, undo: dict[str, Any]) -> dict[str, Any]:
        lb = self._lb()
        self._put_back_files(lb, undo)
        if undo["active"]:
            config = decode(undo["files"].get(self.settings.config_path)) or b""
            # the config put back may not have our runtime socket (a site's own config):
            # then the reload cannot be watched there
            watch = self.settings.runtime_socket.encode() in config
            old = self._worker_pid(lb) if watch else None
            lb.service("reload" if lb.active() else "start")
            if watch:
                self._wait_worker(lb, old, "reload")
        self._remove_vip_if_added(lb, undo)
        return {"host": self.host_name, "restored": sorted(undo["files"])}

    # -- members --------------------------------------------------------------------
    def _servers(self, lb: LinuxLbHost) -> list[dict[str, str]]:
        return hx.servers_state(self._api(lb, "show servers state") or "")

    def set_member(self, name: str, state: AdminState) -> None:
        lb = self._lb()
        rows = self._servers(lb)
        members = {r["srv_name"] for r in rows if r["be_name"] == hx.HEALTH_BACKEND}
        if name not in members:
            raise StepFailed(f"{self.host_name}: HAProxy has no member {name} in its farm")
        # the port lines first, the health line last: its event is the member's
        lines = [
            f"{r['be_name']}/{r['srv_name']}"
            for r in rows
            if r["be_name"].startswith(hx.PORT_BACKEND)
            and hx.member_of(r["srv_name"], members) == name
        ] + [f"{hx.HEALTH_BACKEND}/{name}"]
        answer = self._api(lb, "; ".join(f"set server {line} state {state}" for line in lines))
        if (answer or "").strip():
            raise StepFailed(
                f"{self.host_name}: HAProxy refused to set {name} to {state}: "
                f"{answer.strip()[:300]}"  # type: ignore[union-attr]
            )

    def stats(self) -> dict[str, MemberStats]:
        lb = self._lb()
        # one request for both: the failover drill polls this to time a member's exit,
        # and each request is a round trip to the LB host
        both = "show servers state;show stat"
        try:
            state, stat_text = hx.state_and_stat(self._api(lb, both) or "")
        except ValueError:
            raise StepFailed(
                f"{self.host_name}: HAProxy's answer to `{both}` could not be read"
            ) from None
        rows = hx.servers_state(state)
        stat = hx.stat_rows(stat_text)
        members = {r["srv_name"] for r in rows if r["be_name"] == hx.HEALTH_BACKEND}
        admin: dict[str, str] = dict.fromkeys(members, "ready")
        for r in rows:
            member = hx.member_of(r["srv_name"], members)
            state = hx.admin_state(int(r.get("srv_admin_state", "0")))
            if member is not None and state != "ready" and admin[member] != "maint":
                admin[member] = state
        health: dict[str, str] = dict.fromkeys(members, "unknown")
        ports: dict[str, dict[int, list[str]]] = {m: {} for m in members}
        active: dict[str, dict[int, int]] = {m: {} for m in members}
        for row in stat:
            backend, server = row.get("pxname", ""), row.get("svname", "")
            member = hx.member_of(server, members)
            if member is None:
                continue
            if backend == hx.HEALTH_BACKEND:
                health[member] = hx.port_health(row.get("status", ""))
            elif backend.startswith(hx.PORT_BACKEND) and backend[len(hx.PORT_BACKEND) :].isdigit():
                port = int(backend[len(hx.PORT_BACKEND) :])
                ports[member].setdefault(port, []).append(hx.port_health(row.get("status", "")))
                active[member][port] = active[member].get(port, 0) + int(row.get("scur") or 0)
        return {
            m: MemberStats(
                name=m,
                health=health[m],  # type: ignore[arg-type]
                admin=admin[m],  # type: ignore[arg-type]
                active=active[m],
                port_health={
                    p: hs[0] if len(set(hs)) == 1 else "mixed" for p, hs in sorted(ports[m].items())
                },
            )
            for m in sorted(members)
        }

    def events(self, since: float) -> list[dict[str, Any]]:
        lb = self._lb()
        answer = self._api(lb, f"show events {hx.RING}", quiet=True) or ""
        return [e for e in hx.events(answer) if e["ts"] >= since]


DRIVERS.add(
    "haproxy",
    HaproxySettings,
    pair_aware(HaproxyDriver),
    capabilities=fixed(HaproxyDriver.capabilities),
)
