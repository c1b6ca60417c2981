"""`lab up --lb appliance`: lb01 forwards packets with nftables NAT, driven only by the
lab's operator from checklist data (as the manual driver's answers would be).

Every test enters its farm through appliance_operator and reverts it, so the shared
lab's appliance is left with no farm. Connections are attributed to a front end by
the FE's own connection table (`ss` in its namespace): SNAT keeps the client's source
port, so each held connection is found on exactly one FE, with the peer it sees.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ocsscale.config.loader import load_pool
from ocsscale.probes import tcp_probe
from ocsscale.providers.lb.base import FarmSpec
from ocsscale_lab import appliance, hostsvc, services, system, up
from ocsscale_lab import down as labdown
from ocsscale_lab.appliance_operator import ApplianceDataError, LabAppliance, act, run_operator

from .conftest import RUN_ID, RunningLab, bring_up, ocsscale_cli, skip_without_lab

pytestmark = pytest.mark.lab

VIP = "198.18.0.40"
WEIGHTS = {"ocsfe01": 2, "ocsfe02": 1, "ocsfe03": 1}


@pytest.fixture(scope="module")
def appliance_lab() -> Iterator[RunningLab]:
    """One-armed, 3 FEs, the appliance on lb01; ocsfe01 refuses 5060 (not a check port)."""
    yield from bring_up(
        f"t1p{RUN_ID}", "one-armed", 3, faults=["ocsfe01:close:5060"], lb="appliance"
    )


def farm_data(lab: RunningLab, weights: dict[str, int]) -> dict[str, Any]:
    """The farm checklist's data (spec shape) for the lab's pool file, with `weights`."""
    loaded = load_pool(lab.state.pool_file)
    farm = FarmSpec.from_pool(loaded.pool, loaded.profile)
    return {
        "kind": "farm",
        "vendor": "webmux",
        "vip": farm.vip,
        "vip_prefix": farm.vip_prefix,
        "ports": list(farm.ports),
        "check_ports": list(farm.check_ports),
        "idle_timeout": farm.idle_timeout,
        "scheduling": "weighted-least-connections",
        "snat": True,
        "snat_addresses": list(farm.snat_addresses),
        "members": [
            {"name": m.name, "address": m.address, "weight": weights[m.name]} for m in farm.members
        ],
    }


def question(data: dict[str, Any] | None, qid: str = "q") -> dict[str, Any]:
    """A question as waiting.json holds it."""
    return {
        "id": qid,
        "run_pid": 1,
        "asked_at": "2026-01-01T00:00:00+00:00",
        "step": "configure-lb/farm",
        "question": "Are all of these settings entered and applied?",
        "choices": ["done", "abort"],
        "notes": False,
        "checklist": {"title": "checklist", "lines": ["..."], "data": data},
    }


def revert_data(data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "farm-revert", **{k: data[k] for k in ("vendor", "vip", "ports", "members")}}


def member_state(name: str, address: str, state: str) -> dict[str, Any]:
    return {
        "kind": "member-state",
        "vendor": "webmux",
        "member": name,
        "address": address,
        "state": state,
    }


@pytest.fixture
def farm(appliance_lab: RunningLab) -> Iterator[dict[str, Any]]:
    """The 2:1:1 farm entered; reverted afterwards whatever the test did."""
    box = LabAppliance.of(appliance_lab.state)
    data = farm_data(appliance_lab, WEIGHTS)
    assert act(box, question(data)) == "done"
    try:
        yield data
    finally:
        act(box, question(revert_data(data)))


# -- helpers -------------------------------------------------------------------------


def hold(lab: RunningLab, count: int, port: int, source: str = "client01") -> list[socket.socket]:
    def connect() -> socket.socket:
        return socket.create_connection((VIP, port), timeout=3)

    return [lab.inside(source, connect) for _ in range(count)]


def established(lab: RunningLab, fe: str, port: int) -> list[tuple[str, int]]:
    """(peer address, peer port) of the FE's established connections on `port`."""
    out = subprocess.run(
        ["ip", "netns", "exec", lab.topo.ns(fe), "ss", "-Htn", "state", "established",
         f"( sport = :{port} )"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip
    found = []
    for line in out.splitlines():
        peer = line.split()[-1]
        address, _, peer_port = peer.rpartition(":")
        found.append((address, int(peer_port)))
    return found


def landed(
    lab: RunningLab, socks: list[socket.socket], port: int
) -> tuple[dict[str, int], set[str]]:
    """How many of the held connections each FE holds, and the peers they see."""
    counts = {fe: 0 for fe in WEIGHTS}
    peers: set[str] = set()
    tables = {fe: established(lab, fe, port) for fe in WEIGHTS}
    for sock in socks:
        local_port = sock.getsockname()[1]
        holders = [fe for fe, table in tables.items() if any(p == local_port for _, p in table)]
        assert len(holders) == 1, (local_port, tables)
        counts[holders[0]] += 1
        peers |= {a for a, p in tables[holders[0]] if p == local_port}
    return counts, peers


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def split(lab: RunningLab, count: int, port: int = 5061) -> tuple[dict[str, int], set[str]]:
    socks = hold(lab, count, port)
    try:
        return landed(lab, socks, port)
    finally:
        close_all(socks)


def view_until(
    box: LabAppliance, test: Callable[[dict[str, Any]], bool], timeout: float = 10.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = box.read_view()
        if test(view):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def vip_on_lb(lab: RunningLab) -> bool:
    return f" {VIP}/" in system.ip("-o", "addr", "show", ns=lab.topo.ns("lb01"))


# -- tests ---------------------------------------------------------------------------


def test_lab_up_appliance_pool_file_and_appliance_at_rest(appliance_lab: RunningLab) -> None:
    lab = appliance_lab
    loaded = load_pool(lab.state.pool_file)
    lb = loaded.pool.load_balancer
    assert lb.driver.kind == "manual" and lb.driver.vendor == "webmux"
    assert lb.host is None
    result = ocsscale_cli("-c", str(lab.state.pool_file), "check")
    assert result.returncode == 0, result.stdout + result.stderr
    # no proxy: the LB namespace listens on no farm port; the firmware runs
    lb_ns = lab.topo.ns("lb01")
    listening = system.run(["ip", "netns", "exec", lb_ns, "ss", "-Htln"])
    assert not any(f":{p} " in listening for p in (443, 444, 5061)), listening
    firmware = services.load(lab.state.directory, "lb01", appliance.FIRMWARE_SERVICE)
    assert services.pid_of(lab.state.directory, firmware) is not None
    view = LabAppliance.of(lab.state).read_view()
    assert view["farm"] is None and view["vip"] is None and view["error"] is None
    assert not vip_on_lb(lab)
    assert not lab.inside("admin", lambda: tcp_probe(VIP, 5061, timeout=1.0)).ok


def test_farm_splits_held_connections_by_weight_with_snat_and_idle_timeout(
    appliance_lab: RunningLab, farm: dict[str, Any]
) -> None:
    lab = appliance_lab
    box = LabAppliance.of(lab.state)
    view = box.read_view()
    assert view["vip"] == f"{VIP}/24 on eth0"
    assert {n: m["in_rotation"] for n, m in view["members"].items()} == dict.fromkeys(WEIGHTS, True)
    counts, peers = split(lab, 8)
    assert counts == {"ocsfe01": 4, "ocsfe02": 2, "ocsfe03": 2}
    assert peers == {VIP}  # SNAT: the FE sees the SNAT address, never the client's
    counts, _ = split(lab, 12, port=443)  # every port of the farm, the same split
    assert counts == {"ocsfe01": 6, "ocsfe02": 3, "ocsfe03": 3}
    timeout = system.run(
        ["ip", "netns", "exec", lab.topo.ns("lb01"), "sysctl", "-n",
         "net.netfilter.nf_conntrack_tcp_timeout_established"],
    ).strip()  # fmt: skip
    assert timeout == str(farm["idle_timeout"]) == "1800"
    assert "numgen inc mod 4" in appliance.nft_list(lab.topo.ns("lb01"))


def test_an_fe_refusal_reaches_the_client_as_a_reset(
    appliance_lab: RunningLab, farm: dict[str, Any]
) -> None:
    """ocsfe01 (weight 2 of 4) refuses 5060: 4 new connections are 2 resets, 2 accepted."""

    def attempt() -> tuple[str, float]:
        started = time.monotonic()
        try:
            with socket.create_connection((VIP, 5060), timeout=3):
                return "connected", time.monotonic() - started
        except ConnectionRefusedError:
            return "reset", time.monotonic() - started
        except OSError as exc:
            return type(exc).__name__, time.monotonic() - started

    results = [appliance_lab.inside("client01", attempt) for _ in range(4)]
    assert sorted(r for r, _ in results) == ["connected", "connected", "reset", "reset"], results
    assert all(took < 1.0 for r, took in results if r == "reset"), results


def test_firmware_takes_a_member_out_on_every_port_and_back(
    appliance_lab: RunningLab, farm: dict[str, Any]
) -> None:
    lab = appliance_lab
    box = LabAppliance.of(lab.state)
    fe = services.load(lab.state.directory, "ocsfe02", hostsvc.POOLMEMBER)  # 5061, not 444
    services.stop(lab.state.directory, fe)
    try:
        view = view_until(box, lambda v: not v["members"]["ocsfe02"]["in_rotation"])
        assert view["members"]["ocsfe02"]["health"] == "down"
        assert view["members"]["ocsfe02"]["checks"] == {"444": True, "5061": False}
        counts, _ = split(lab, 6, port=444)  # its 444 still answers: out on every port
        assert counts == {"ocsfe01": 4, "ocsfe02": 0, "ocsfe03": 2}
    finally:
        services.start(lab.state.directory, fe)
    view = view_until(box, lambda v: v["members"]["ocsfe02"]["in_rotation"])
    assert view["members"]["ocsfe02"]["health"] == "up"
    counts, _ = split(lab, 8)
    assert counts == {"ocsfe01": 4, "ocsfe02": 2, "ocsfe03": 2}


def test_drain_and_maint_from_member_state_data(
    appliance_lab: RunningLab, farm: dict[str, Any]
) -> None:
    lab = appliance_lab
    box = LabAppliance.of(lab.state)
    held = hold(lab, 4, 5061)  # one on ocsfe03 at least (slots 0-1, 2, 3)
    try:
        before, _ = landed(lab, held, 5061)
        assert before["ocsfe03"] == 1
        address = lab.address("ocsfe03")
        assert act(box, question(member_state("ocsfe03", address, "drain"))) == "done"
        assert box.read_view()["members"]["ocsfe03"]["admin"] == "drain"
        counts, _ = split(lab, 6)
        assert counts == {"ocsfe01": 4, "ocsfe02": 2, "ocsfe03": 0}
        # established connections continue on the drained member
        assert landed(lab, held, 5061)[0] == before
        act(box, question(member_state("ocsfe02", lab.address("ocsfe02"), "maint")))
        view = box.read_view()
        assert view["members"]["ocsfe02"]["health"] == "unchecked"
        assert split(lab, 3)[0] == {"ocsfe01": 3, "ocsfe02": 0, "ocsfe03": 0}
        for name in ("ocsfe02", "ocsfe03"):
            act(box, question(member_state(name, lab.address(name), "ready")))
        view = view_until(box, lambda v: all(m["in_rotation"] for m in v["members"].values()))
        assert split(lab, 8)[0] == {"ocsfe01": 4, "ocsfe02": 2, "ocsfe03": 2}
    finally:
        close_all(held)
    with pytest.raises(ApplianceDataError, match="not a real server"):
        act(box, question(member_state("ocsfe03", lab.address("ocsfe02"), "drain")))


def test_farm_revert_leaves_the_vip_silent(appliance_lab: RunningLab) -> None:
    lab = appliance_lab
    box = LabAppliance.of(lab.state)
    data = farm_data(lab, WEIGHTS)
    act(box, question(data))
    assert lab.inside("admin", lambda: tcp_probe(VIP, 5061, timeout=2.0)).ok
    assert act(box, question(revert_data(data))) == "done"
    assert not vip_on_lb(lab)
    assert "vip_dnat" not in appliance.nft_list(lab.topo.ns("lb01"))

    def silent(port: int) -> str:
        try:
            with socket.create_connection((VIP, port), timeout=2.0):
                return "answered"
        except ConnectionRefusedError:
            return "refused"
        except OSError:
            return "silent"

    # what the manual driver's verify_reverted needs: no port connects, not even a reset
    assert {lab.inside("admin", lambda p=p: silent(p)) for p in (443, 5061)} == {"silent"}
    assert box.read_view()["idle_timeout"] == 432000


def test_incomplete_checklist_data_fails_and_changes_nothing(appliance_lab: RunningLab) -> None:
    box = LabAppliance.of(appliance_lab.state)
    generation = box.read_config()["generation"]
    data = farm_data(appliance_lab, WEIGHTS)
    for key in ("idle_timeout", "check_ports", "snat_addresses", "vip_prefix", "scheduling"):
        partial = {k: v for k, v in data.items() if k != key}
        with pytest.raises(ApplianceDataError, match=repr(key)):
            act(box, question(partial))
    no_weight = dict(data, members=[{"name": "ocsfe01", "address": lab_address(appliance_lab)}])
    with pytest.raises(ApplianceDataError, match="'weight'"):
        act(box, question(no_weight))
    assert act(box, question(None)) is None  # a person's checklist: not the appliance's
    assert box.read_config()["generation"] == generation
    assert box.read_config()["farm"] is None


def lab_address(lab: RunningLab) -> str:
    return lab.address("ocsfe01")


class ListChannel:
    """A stand-in for the answer channel: the run's questions in turn, the answers kept."""

    def __init__(self, questions: list[dict[str, Any]]) -> None:
        self.questions = list(questions)
        self.answers: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def waiting(self) -> dict[str, Any] | None:
        with self.lock:
            return dict(self.questions[0]) if self.questions else None

    def answer(self, value: str, by: str) -> None:
        with self.lock:
            asked = self.questions.pop(0)
            self.answers.append((asked["id"], value, by))


def test_operator_loop_answers_through_a_channel(appliance_lab: RunningLab) -> None:
    lab = appliance_lab
    box = LabAppliance.of(lab.state)
    data = farm_data(lab, WEIGHTS)
    channel = ListChannel(
        [
            question(data, "q1"),
            question(member_state("ocsfe01", lab.address("ocsfe01"), "drain"), "q2"),
        ]
    )
    stop = threading.Event()
    result: dict[str, Any] = {}

    def loop() -> None:
        try:
            result["handled"] = run_operator(channel, stop, by="lab-op", appliance=box)
        except Exception as exc:  # noqa: BLE001 - handed to the test's thread
            result["error"] = exc

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        _drive_loop(lab, box, channel, data, thread, result)
    finally:
        stop.set()
        thread.join(10)
        if box.read_config()["farm"] is not None:
            act(box, question(revert_data(data)))


def _drive_loop(  # type: ignore[no-untyped-def]
    lab: RunningLab, box: LabAppliance, channel: ListChannel, data, thread, result
) -> None:
    unrelated = dict(question(None, "q0"), checklist=None, choices=["passed", "failed"])
    deadline = time.monotonic() + 30
    while channel.waiting() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert channel.answers == [("q1", "done", "lab-op"), ("q2", "done", "lab-op")]
    assert box.read_view()["members"]["ocsfe01"]["admin"] == "drain"
    assert split(lab, 4)[0] == {"ocsfe01": 0, "ocsfe02": 2, "ocsfe03": 2}
    # not the appliance's question: left for whoever it is for
    with channel.lock:
        channel.questions.append(unrelated)
    time.sleep(0.6)
    assert channel.waiting() == unrelated and len(channel.answers) == 2
    with channel.lock:
        channel.questions[:] = [question(revert_data(data), "q3")]
    while channel.waiting() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert box.read_config()["farm"] is None
    # a checklist lacking what the appliance needs: "abort", and the loop fails
    broken = {k: v for k, v in data.items() if k != "members"}
    with channel.lock:
        channel.questions.append(question(broken, "q4"))
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(result.get("error"), ApplianceDataError), result
    assert channel.answers[-1] == ("q4", "abort", "lab-op")


# -- two-armed, brought up and taken down here ------------------------------------------


def _reaches(lab_ns: str, address: str, port: int) -> str | None:
    """The directory's banner (server and the peer it saw), or None when unreachable."""

    def connect() -> str:
        with socket.create_connection((address, port), timeout=1.0) as sock:
            return sock.makefile("r").readline().strip()

    try:
        return system.in_namespace(lab_ns, connect)
    except OSError:
        return None


def test_two_armed_appliance_routing_split_snat_and_lab_down_leaves_nothing() -> None:
    skip_without_lab()
    name = f"t2p{RUN_ID}"
    state = up.up(
        name, "two-armed-routed", 3, lb="appliance", lb_forwarding=False, echo=lambda _: None
    )
    lab = RunningLab(state)
    try:
        box = LabAppliance.of(state)
        firmware = services.load(state.directory, "lb01", appliance.FIRMWARE_SERVICE)
        firmware_pid = services.pid_of(state.directory, firmware)
        assert firmware_pid is not None
        fe_ns = lab.topo.ns("ocsfe01")
        dc = lab.address("dc01")
        assert _reaches(fe_ns, dc, 135) is None  # routing off at the appliance
        fes = [{"name": n, "address": lab.address(n)} for n in WEIGHTS]
        routing = {
            "kind": "routing",
            "vendor": "webmux",
            "enable": True,
            "backend_address": "198.19.0.40",
            "vip": VIP,
            "front_ends": fes,
        }
        assert act(box, question(routing)) == "done"
        banner = _reaches(fe_ns, dc, 135)
        assert banner and "peer=198.19.0.41" in banner, banner  # routed, not translated
        assert "default via 198.19.0.40" in system.ip("route", ns=fe_ns)

        data = farm_data(lab, WEIGHTS)
        assert data["snat_addresses"] == ["198.19.0.40"]
        act(box, question(data))
        counts, peers = split(lab, 8)
        assert counts == {"ocsfe01": 4, "ocsfe02": 2, "ocsfe03": 2}
        assert peers == {"198.19.0.40"}

        act(box, question(dict(routing, enable=False)))
        assert _reaches(fe_ns, dc, 135) is None
        counts, _ = split(lab, 4)  # the farm's traffic is forwarded whatever routing says
        assert counts == {"ocsfe01": 2, "ocsfe02": 1, "ocsfe03": 1}
        act(box, question(revert_data(data)))
        assert not lab.inside("admin", lambda: tcp_probe(VIP, 5061, timeout=1.0)).ok
    finally:
        labdown.down(name, echo=lambda _: None)
    left = [ns for ns in system.run(["ip", "netns", "list"]).split() if ns.startswith(name + "-")]
    assert left == []
    assert not system.alive(firmware_pid)
    assert not state.directory.exists()
