"""The bundled engine as a pool's load balancer, on a Linux LB host.

Settings (`load_balancer.driver: {kind: engine, ...}`): where the farm file
goes, the service that runs `ocsscale lb serve`, how that service is
controlled, where the engine's admin socket is, and the engine command on
the LB host.

apply: the farm is rendered from templates/engine-farm.yaml.j2, written
beside the real one and checked there with `ocsscale lb check` (nothing is
replaced, and no VIP added, if the check refuses it); the VIP is added to the
client-side interface (when absent) and the farm installed in place after a
backup; on a systemd host the
unit is written from templates/engine.service.j2; the service is started, or
reloaded when it runs (SIGHUP: no connection refused). The pool file's
`load_balancer.checks` are the farm's `health` inter (and downinter: a member
that is out is checked as often), timeout, fall and rise; the engine's
fastinter (0.1 s after a failed round) is its own. Read back from the running
engine's status.
Undo: the farm file and unit byte-identical (or absent), the service state as
before (stopped if it was), the VIP removed if it was not there.
Members: `ocsscale lb status|drain|ready|maint|events` on the LB host, which
talk to the engine's admin socket.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

from ...config.lb_settings import EngineSettings
from ...errors import CommandFailed, StepFailed
from ..plugin import fixed
from .base import DRIVERS, AdminState, FarmSpec, MemberStats
from .linuxhost import LinuxDriver, LinuxLbHost, decode, state_of
from .pair import pair_aware
from .templates import render


def _epoch(ts: str) -> float:
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return 0.0


class EngineDriver(LinuxDriver):
    kind: ClassVar[str] = "engine"
    settings: EngineSettings

    def console(self) -> str:
        return f"`ocsscale lb status|drain|maint|ready NAME --socket {self.settings.admin_socket}`"

    # -- plumbing -------------------------------------------------------------------
    def _api(self, method: str, target: str, timeout: float = 30.0) -> Any:
        """One request to the engine's admin API on the LB host, through its plumbing
        command `ocsscale lb api` (quick to start: it is polled); the JSON answer."""
        lb = self._lb()
        what = f"{method} {target}"
        try:
            out = lb.sh(
                '"$@"',
                self.settings.command,
                "lb",
                "api",
                method,
                target,
                "--socket",
                self.settings.admin_socket,
                timeout=timeout,
            ).stdout
        except CommandFailed as exc:
            raise StepFailed(
                f"{self.host_name}: the engine's admin API did not answer `{what}`: "
                f"{exc.stderr.strip()[:300] or f'exit {exc.exit_status}'}"
            ) from None
        try:
            return json.loads(out)
        except ValueError:
            raise StepFailed(
                f"{self.host_name}: the engine's admin API gave an unreadable answer to `{what}`"
            ) from None

    def _files(self) -> dict[str, str | None]:
        return {self.settings.farm_path: None, self.settings.unit_path or "": None}

    # -- the farm -------------------------------------------------------------------
    def read_farm(self) -> dict[str, Any]:
        lb = self._lb()
        if not lb.has_command(self.settings.command):
            raise StepFailed(
                f"{self.host_name}: the engine is not installed (no `{self.settings.command}` "
                "command): install ocsscale on the load-balancer host (pip install ocsscale) "
                "or set load_balancer.driver.command to its path"
            )
        vip = self.site.farm.vip
        state = state_of(lb, vip, self._files())
        state["view"] = self._view(lb) if state["active"] else None
        farm = decode(state["files"].get(self.settings.farm_path))
        # the template's first comment line: a farm we wrote may be replaced
        state["ours"] = farm is None or b"Written by ocsscale" in farm[:200]
        return state

    def _view(self, lb: LinuxLbHost) -> dict[str, Any] | None:
        status = self._api("GET", "/status")
        farm_text = lb.read_optional(self.settings.farm_path)
        farm = _farm_data(farm_text)
        listeners = status.get("listeners", [])
        return {
            "vip": ",".join(sorted({str(x["vip"]) for x in listeners})),
            "ports": sorted({int(x["port"]) for x in listeners}),
            "check_ports": sorted(int(p) for p in farm.get("health", {}).get("ports", [])),
            "idle_timeout": int(farm.get("timeouts", {}).get("idle", 0)),
            "balance": farm.get("balance", "wlc"),
            "snat_addresses": sorted(str(a) for a in status.get("snat", {}).get("addresses", [])),
            "members": {
                s["name"]: {"address": s["address"], "weight": int(s["weight"])}
                for s in status.get("servers", [])
            },
            # what the running checker uses (an engine from before it said: the file)
            "checks": check_view(status.get("health") or farm.get("health") or {}),
        }

    def render_farm(self, desired: FarmSpec) -> str:
        return render(
            "engine-farm.yaml.j2",
            farm=desired.name,
            vips=[desired.vip],
            ports=list(desired.ports),
            servers=[
                {"name": m.name, "address": m.address, "weight": m.weight} for m in desired.members
            ],
            health_ports=list(desired.check_ports),
            checks=desired.checks.view(),
            snat_addresses=list(desired.snat_addresses),
            idle_timeout=desired.idle_timeout,
            admin_socket=self.settings.admin_socket,
            workers=self.settings.workers,
        )

    def check_farm(self, lb: LinuxLbHost, desired: FarmSpec) -> None:
        """`lb check` on a staged copy of the rendered farm (StepFailed when refused:
        nothing replaced). The VIP must be bindable there (an address of the host, or
        ip_nonlocal_bind on a pair's host)."""
        s = self.settings
        staged = s.farm_path + ".ocsscale-new"
        lb.write(staged, self.render_farm(desired).encode())
        try:
            checked = lb.sh('"$1" lb check --farm "$2"', s.command, staged, check=False)
        finally:
            lb.restore(staged, None)
        if not checked.ok:
            raise StepFailed(
                f"{self.host_name}: the engine refused the rendered farm file "
                f"(`lb check`): {(checked.stdout + checked.stderr).strip()[:400]}; nothing was "
                "replaced"
            )

    def apply_farm(self, desired: FarmSpec, current: dict[str, Any]) -> dict[str, Any]:
        lb = self._lb()
        s = self.settings
        evidence: dict[str, Any] = {"host": self.host_name, "farm_path": s.farm_path}
        text = self.render_farm(desired).encode()
        # the VIP first: `lb check` refuses a VIP that is not an address of the host
        # (serve could not listen on it); a refused farm takes the VIP away again
        ifname = lb.vip_interface(desired.vip_interface, s.vip_interface)
        announced = None
        adds_vip = not current["vip_present"] and not self.floating_vip
        if adds_vip:
            announced = lb.add_address(desired.vip_interface, ifname)
        try:
            self.check_farm(lb, desired)
        except StepFailed:
            if adds_vip:
                lb.remove_address(desired.vip_interface, ifname)
            raise
        if adds_vip:
            evidence["vip_added"] = f"{desired.vip_interface} on {ifname}"
            evidence["vip_announced"] = announced  # gratuitous ARP (arping on the host)
        lb.write(s.farm_path, text)
        if s.unit_path:
            unit = render(
                "engine.service.j2",
                command=s.command,
                farm_path=s.farm_path,
                description=f"ocsscale load balancer for {self.site.fqdn}",
                vip=desired.vip_interface,
                vip_interface=ifname,
            )
            lb.write(s.unit_path, unit.encode())
            lb.sh("systemctl daemon-reload")
        evidence["service"] = lb.start_or_reload(current["active"])
        return evidence

    def revert(self, undo: dict[str, Any]) -> dict[str, Any]:
        lb = self._lb()
        self._put_back_files(lb, undo)
        if self.settings.unit_path and self.settings.unit_path in undo["files"]:
            lb.sh("systemctl daemon-reload", check=False)
        if undo["active"]:
            lb.service("reload")
        self._remove_vip_if_added(lb, undo)
        return {"host": self.host_name, "restored": sorted(undo["files"])}

    # -- members --------------------------------------------------------------------
    def set_member(self, name: str, state: AdminState) -> None:
        self._api("POST", f"/servers/{quote(name, safe='')}/{state}")

    def stats(self) -> dict[str, MemberStats]:
        status = self._api("GET", "/status")
        found = {}
        for s in status.get("servers", []):
            found[s["name"]] = MemberStats(
                name=s["name"],
                health="up" if s.get("healthy") else "down",
                admin=s.get("admin", "ready"),
                active={int(p): int(n) for p, n in (s.get("per_port") or {}).items()},
            )
        return found

    def events(self, since: float) -> list[dict[str, Any]]:
        found = []
        for event in self._api("GET", "/events?since=0").get("events", []):
            ts = _epoch(str(event.get("ts", "")))
            if ts >= since and "server" in event:  # member changes only, as the protocol says
                found.append({**event, "ts": ts})
        return found


def check_view(health: dict[str, Any]) -> dict[str, Any]:
    """The engine's `health` settings in the pool file's terms (FarmSpec.checks' view);
    the engine's own default for what they do not set."""
    # here, not at the top: `plan` and `check` load this driver and must not load the engine
    from ...engine.farm import Health

    defaults = Health()

    def get(key: str) -> Any:
        return health.get(key, getattr(defaults, key))

    return {
        "interval": get("inter"),
        "timeout": get("timeout"),
        "fall": get("fall"),
        "rise": get("rise"),
    }


def _farm_data(text: bytes | None) -> dict[str, Any]:
    """The farm file's own settings (health ports, timeouts) as data; {} when unreadable."""
    if not text:
        return {}
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(text[:1_000_000])
    except YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


DRIVERS.add(
    "engine",
    EngineSettings,
    pair_aware(EngineDriver),
    capabilities=fixed(EngineDriver.capabilities),
)
