"""What the LB contract suite drives: drivers built as actions build them, the
operator who enters a manual driver's checklist into HAProxy by hand, and
probes of the VIP from the admin host."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ocsscale.config.lb_settings import ManualSettings
from ocsscale.config.loader import LoadedPool
from ocsscale.providers.lb import open_driver
from ocsscale.providers.lb.base import CheckTiming, FarmSpec, LbDriver, LbSite, Member
from ocsscale.providers.lb.haproxy import HaproxyDriver
from ocsscale.providers.lb.manual import ManualDriver
from ocsscale.providers.plugin import Ports

T = TypeVar("T")


def answers(address: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def answering(address: str, ports: Sequence[int]) -> list[int]:
    """The ports on which `address` accepts a TCP connection (probed in parallel)."""
    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        found = list(pool.map(lambda p: (p, answers(address, p)), ports))
    return sorted(p for p, ok in found if ok)


def wait_for(what: str, probe: Callable[[], T | None], *, tries: int = 60, pause: float = 0.5) -> T:
    """The first truthy result of `probe`, polled a bounded number of times."""
    last: T | None = None
    for _ in range(tries):
        last = probe()
        if last:
            return last
        time.sleep(pause)
    raise AssertionError(f"{what}: still not the case after {tries} tries (last: {last!r})")


class ConnectLoop:
    """New TCP connections to address:port, one after the other from a thread,
    until the block ends (at most `limit`): how many were refused or failed."""

    def __init__(self, address: str, port: int, limit: int = 3000) -> None:
        self.target = (address, port)
        self.limit = limit
        self.attempts = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and self.attempts < self.limit:
            self.attempts += 1
            try:
                socket.create_connection(self.target, timeout=2.0).close()
            except OSError as exc:
                self.failed.append(type(exc).__name__)
            time.sleep(0.005)

    def __enter__(self) -> ConnectLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


_STATE_OF_WORDS = {"enable it": "ready", "drain it": "drain", "disable it": "maint"}


def farm_from_checklist(lines: Sequence[str]) -> FarmSpec:
    """The farm a person builds from the manual driver's checklist, and from nothing else."""
    text = "\n".join(lines)

    def find(pattern: str) -> str:
        m = re.search(pattern, text, re.M)
        assert m, f"the checklist does not say {pattern!r}:\n{text}"
        return m.group(1)

    vip = find(r"Farm IP \(VIP\) (\S+) \(network /\d+\)")
    prefix = int(find(r"Farm IP \(VIP\) \S+ \(network /(\d+)\)"))
    ports = tuple(int(p) for p in find(r"^Add every TCP port.*: ([\d, ]+)\.$").split(", "))
    checks = tuple(int(p) for p in find(r"^Ports ([\d a-z]+): service").split(" and "))
    assert "weighted least connections" in text
    members = tuple(
        Member(m[1], m[2], int(m[3]))
        for m in re.finditer(
            r"^Real server (\S+): (\S+), weight (\d+), on every port\.$", text, re.M
        )
    )
    # the WebMux's own settings cannot say it: the line states what the pool asks
    timing = re.search(
        r"this pool asks for a check every ([\d.]+) s, ([\d.]+) s to connect, a server out "
        r"after (\d+) failed checks and back after (\d+) good ones",
        text,
    )
    assert timing, f"the checklist does not say the check timing:\n{text}"
    return FarmSpec(
        name="by-hand",
        vip=vip,
        vip_prefix=prefix,
        ports=ports,
        check_ports=checks,
        idle_timeout=int(find(r"^TCP idle timeout: (\d+) s")),
        members=members,
        snat_addresses=tuple(find(r"^SNAT address\(es\): (.+)\.$").split(", ")),
        checks=CheckTiming(float(timing[1]), float(timing[2]), int(timing[3]), int(timing[4])),
    )


def farm_from_data(data: dict[str, Any]) -> FarmSpec:
    """The farm a machine builds from the checklist's `data` (kind "farm")."""
    assert data["kind"] == "farm" and data["scheduling"] == "weighted-least-connections"
    assert data["snat"] is True
    return FarmSpec(
        name="by-hand",
        vip=data["vip"],
        vip_prefix=data["vip_prefix"],
        ports=tuple(data["ports"]),
        check_ports=tuple(data["check_ports"]),
        idle_timeout=data["idle_timeout"],
        members=tuple(Member(m["name"], m["address"], m["weight"]) for m in data["members"]),
        snat_addresses=tuple(data["snat_addresses"]),
        checks=CheckTiming(**data["checks"]),
    )


class HandOperator:
    """Plays the person at the console for the manual driver: reads what it is
    shown and enters it into the lab's HAProxy through the haproxy driver (the
    appliance's own tool, for this person), then answers "done"."""

    def __init__(self, haproxy: HaproxyDriver) -> None:
        self.haproxy = haproxy
        self.told: list[tuple[str, list[str]]] = []
        self.told_data: list[dict[str, Any] | None] = []
        self.undo: dict[str, Any] | None = None
        self.questions: list[str] = []

    def tell(self, title: str, lines: Sequence[str], data: dict[str, Any] | None = None) -> None:
        self.told.append((title, list(lines)))
        self.told_data.append(data)

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        self.questions.append(question)
        title, lines = self.told[-1]
        data = self.told_data[-1]
        if title.startswith("Enter these settings"):
            current = self.haproxy.read_farm()
            if self.undo is None:
                self.undo = self.haproxy.undo_for(current)
            farm = farm_from_checklist(lines)
            # the machine's copy says what the person read, no more, no less
            assert data is not None and farm_from_data(data).view() == farm.view()
            self.haproxy.apply_farm(farm, current)
        elif "real server" in title:
            named, _, words = lines[0].partition(": ")
            name = named.split(" (", 1)[0]  # "ocsfe01 (198.18.2.11)"
            state = next(s for w, s in _STATE_OF_WORDS.items() if words.startswith(w))
            assert data is not None and (data["member"], data["state"]) == (name, state)
            self.haproxy.set_member(name, state)  # type: ignore[arg-type]
        elif title.startswith("Revert"):
            assert self.undo is not None, "asked to revert a farm that was never entered"
            assert data is not None and data["kind"] == "farm-revert"
            self.haproxy.revert(self.undo)
        else:
            raise AssertionError(f"unexpected instructions {title!r}")
        assert "done" in choices
        return "done"

    def text(self, question: str, default: str = "") -> str:
        raise AssertionError(f"unexpected question {question!r}")


def make_driver(kind: str, loaded: LoadedPool, hosts: Callable[[str], Any]) -> LbDriver:
    """The driver as actions build it (the pool file's driver); manual: a
    ManualDriver whose operator configures the lab's HAProxy by hand."""
    site = LbSite.from_pool(loaded.pool, loaded.profile)
    driver = open_driver(loaded.pool.load_balancer.driver, site, Ports(host=hosts))
    if kind != "manual":
        assert driver.kind == kind
        return driver
    assert isinstance(driver, HaproxyDriver)
    settings = ManualSettings(kind="manual", vendor="webmux")
    return ManualDriver(settings, site, Ports(host=hosts, operator=HandOperator(driver)))


def observer(driver: LbDriver) -> LbDriver:
    """Whose stats and events show the LB's own view: the driver itself, or for
    the manual driver the HAProxy its operator configured."""
    if isinstance(driver, ManualDriver):
        operator = driver.ports.operator
        assert isinstance(operator, HandOperator)
        return operator.haproxy
    return driver


def lb_files(driver: LbDriver) -> dict[str, bytes | None]:
    """The LB's files as they are on disk (the lab's hosts share this machine's
    files): checked by the test itself, not only by verify_reverted."""
    from pathlib import Path

    settings: Any = observer(driver).settings  # type: ignore[attr-defined]
    paths = [getattr(settings, k, None) for k in ("config_path", "state_file", "farm_path")]
    found = {}
    for path in filter(None, paths):
        p = Path(path)
        found[path] = p.read_bytes() if p.exists() else None
    return found
