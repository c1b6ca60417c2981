"""The routing phase for a two-armed load-balancer pair (actions/routing_pair.py).

The FEs' gateway (`backend_address`) floats: without it the FEs reach nothing
before configure-lb. So routing turns on `net.ipv4.ip_forward` on both hosts and
starts keepalived on both with the pair's VRRP instance floating only that
address (no VIP: the walkthrough's "no VIPs at this stage"; no track script: no
LB serves yet). configure-lb then rewrites the same instance (same name, same
router id) with the VIP, the SNAT addresses and the track script, keeping this
configuration in its backup; its undo puts it back and reloads keepalived, so a
rollback to routing leaves the gateway floating, and routing's own undo leaves
keepalived as it was before (file bytes, service state) on both hosts.

Undo per host: the sysctl's value, keepalived's service state and only the
SHA-256 of a configuration that was there (its bytes stay in a backup on the
host, as configure-lb does: a site's own configuration may hold its own secret).
"""

from __future__ import annotations

from typing import Any

from ...errors import StepFailed, UndoRecordError
from .. import undo_shape as shape
from .pair import PairDriver, _sha, _write_private, restore_keepalived, wait_one_holder

FORWARDING = "net.ipv4.ip_forward"


class PairRouting:
    """routing.enable's work on a pair (module docstring)."""

    def __init__(self, driver: PairDriver, vip: str, backend: str) -> None:
        self.driver = driver
        self.vip = vip
        self.backend = backend
        if not any(a.split("/")[0] == backend for a in driver.pair.floating):
            raise StepFailed("the pair floats no back-end address (load_balancer.backend_address)")

    def hosts(self) -> list[str]:
        return list(self.driver.drivers)

    def _forwarding(self, name: str) -> str:
        value = self.driver._lb(name).sh('sysctl -n "$1"', FORWARDING).stdout.strip()
        if value not in ("0", "1"):  # never a value revert could not write back
            raise StepFailed(f"{name}: {FORWARDING} reads neither 0 nor 1")
        return value

    def read(self) -> dict[str, Any]:
        hosts: dict[str, Any] = {}
        for name in self.driver.drivers:
            kh = self.driver._keepalived_host(name)
            k = self.driver.keepalived[name]
            hosts[name] = {
                "forwarding": self._forwarding(name),
                "config_sha256": _sha(kh.read_optional(k.config_path)),
                "active": kh.active(),
            }
        return {"hosts": hosts, "holders": self.holders()}

    def holders(self) -> list[str]:
        """The hosts holding the FEs' gateway now."""
        return [n for n in self.driver.drivers if self.driver._lb(n).has_address(self.backend)]

    def vip_holders(self) -> list[str]:
        return [n for n in self.driver.drivers if self.driver._lb(n).has_address(self.vip)]

    def done(self, current: dict[str, Any]) -> bool:
        """Forwarding on, keepalived running on both and one host holds the gateway."""
        hosts = current["hosts"].values()
        return (
            all(h["forwarding"] == "1" and h["active"] for h in hosts)
            and len(current["holders"]) == 1
        )

    def undo_for(self, current: dict[str, Any]) -> dict[str, Any]:
        return {"pair_routing": {n: dict(h) for n, h in current["hosts"].items()}}

    def check_undo(self, undo: dict[str, Any]) -> None:
        records = shape.obj(undo, "pair_routing")
        if sorted(records) != sorted(self.driver.drivers):
            raise UndoRecordError("'pair_routing' does not name the pool file's two LB hosts")
        for record in records.values():
            rec = shape.record(record)
            if shape.text(rec, "forwarding") not in ("0", "1"):
                raise UndoRecordError("'forwarding' is not 0 or 1")
            sha = shape.text(rec, "config_sha256", optional=True)
            if sha is not None and (
                len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha)
            ):
                raise UndoRecordError("'config_sha256' is not a SHA-256 in hex")
            shape.flag(rec, "active")

    def apply(self, current: dict[str, Any]) -> dict[str, Any]:
        secret = self.driver._secret()
        # both hosts accept keepalived's configuration before either changes
        for name in self.driver.drivers:
            self.driver._check_keepalived(name, secret, routing=self.backend)
        done: dict[str, Any] = {}
        for name in self.driver.drivers:
            before = current["hosts"][name]
            lb = self.driver._lb(name)
            lb.sh('sysctl -q -w "$1=1"', FORWARDING)
            conf, _ = self.driver._render(name, secret, routing=self.backend)
            k = self.driver.keepalived[name]
            kh = self.driver._keepalived_host(name)
            _write_private(kh, k.config_path, conf, backup=before["config_sha256"] is not None)
            done[name] = {"forwarding_before": before["forwarding"]}
            done[name]["keepalived"] = kh.start_or_reload(before["active"])
        return {"hosts": done, "gateway_holder": self._wait_one_holder()}

    def _wait_one_holder(self) -> str:
        return wait_one_holder(self.holders, f"the FEs' gateway {self.backend}")

    def verify(self) -> dict[str, Any]:
        now = self.read()
        off = [n for n, h in now["hosts"].items() if h["forwarding"] != "1"]
        if off:
            raise StepFailed(f"{', '.join(off)}: {FORWARDING} is not 1 after setting it")
        if len(now["holders"]) != 1:
            raise StepFailed(
                f"the FEs' gateway {self.backend} is held by "
                f"{', '.join(now['holders']) or 'neither host'} (exactly one must)"
            )
        vip = self.vip_holders()
        if vip:
            raise StepFailed(
                f"{', '.join(vip)}: the VIP {self.vip} is already configured; the walkthrough "
                "enables routing with no VIP at this stage"
            )
        return {"gateway_holder": now["holders"][0], "vip_configured": False}

    def revert(self, undo: dict[str, Any]) -> dict[str, Any]:
        for name, record in undo["pair_routing"].items():
            k = self.driver.keepalived[name]
            kh = self.driver._keepalived_host(name)
            restore_keepalived(name, kh, k.config_path, record)
            self.driver._lb(name).sh('sysctl -q -w "$1=$2"', FORWARDING, record["forwarding"])
        return {"hosts": sorted(undo["pair_routing"])}

    def verify_reverted(self, undo: dict[str, Any]) -> dict[str, Any]:
        now = self.read()
        problems = []
        for name, record in undo["pair_routing"].items():
            for key in ("forwarding", "config_sha256", "active"):
                if now["hosts"][name][key] != record[key]:
                    problems.append(f"{name}: {key} is not as before")
        if problems:
            raise StepFailed("after the rollback " + "; ".join(problems))
        return {"hosts": now["hosts"], "gateway_holders": now["holders"]}
