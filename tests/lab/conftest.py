"""Lab fixtures: one lab per topology, brought up once and shared by the tests.

Lab tests need root, `ip netns`, sshd and named; without them they are skipped
with the reason. Lab names carry the test run's pid, so a run never touches a
lab somebody brought up by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from ocsscale_lab import down, network, system, up
from ocsscale_lab.state import LabState
from ocsscale_lab.topology import Topology

T = TypeVar("T")
RUN_ID = os.getpid() % 100000
REPO = Path(__file__).resolve().parents[2]


def lab_unavailable() -> str | None:
    """Why lab tests cannot run here, or None."""
    if sys.platform != "linux":
        return "the lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, sshd, named)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "`ip netns` is not available here"
    for program, package in up.REQUIRED_PROGRAMS.items():
        if not os.access(program, os.X_OK):
            return f"{package} is not installed ({program})"
    return None


def skip_without_lab() -> None:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)


class RunningLab:
    """A lab that is up, with helpers to act from inside its namespaces."""

    def __init__(self, state: LabState) -> None:
        self.state = state
        self.topo: Topology = state.topo()

    def inside(self, host: str, fn: Callable[[], T]) -> T:
        """Run fn in host's network namespace, after checking no lab packet can leave."""
        assert network.blackhole_present(), "the 198.18.0.0/15 blackhole route is missing"
        return system.in_namespace(self.topo.ns(self.topo.host(host).name), fn)

    def address(self, host: str) -> str:
        return self.topo.host(host).address


#: labs that are up, by name, with how many fixtures use them: tests/contract
#: imports these fixtures too, and pytest then holds a second copy of each;
#: both copies must share the one lab of that name
_UP: dict[str, list[RunningLab | int]] = {}


def bring_up(
    name: str,
    kind: str,
    fes: int,
    faults: list[str] | None = None,
    lb: str = "engine",
    **options: object,
) -> Iterator[RunningLab]:
    """A lab for the duration of a fixture (faults: `lab up --fault` specs; lb: the
    load balancer installed on lb01, `lab up --lb`)."""
    skip_without_lab()
    entry = _UP.get(name)
    if entry is None:
        state = up.up(
            name,
            kind,  # type: ignore[arg-type]
            fes,
            fault_specs=faults,
            lb=lb,
            echo=lambda _line: None,
            **options,  # type: ignore[arg-type]
        )
        entry = _UP[name] = [RunningLab(state), 0]
    entry[1] += 1  # type: ignore[operator]
    try:
        yield entry[0]  # type: ignore[misc]
    finally:
        entry[1] -= 1  # type: ignore[operator]
        if entry[1] == 0:
            del _UP[name]
            down.down(name, echo=lambda _line: None)


@pytest.fixture(scope="session")
def one_armed_lab() -> Iterator[RunningLab]:
    yield from bring_up(f"t1a{RUN_ID}", "one-armed", 2)


@pytest.fixture(scope="session")
def two_armed_lab() -> Iterator[RunningLab]:
    yield from bring_up(f"t2a{RUN_ID}", "two-armed-routed", 2)


@pytest.fixture(scope="session")
def one_armed_haproxy_lab() -> Iterator[RunningLab]:
    """lb01 has Debian's HAProxy installed (a lab service), unconfigured."""
    yield from bring_up(f"t1h{RUN_ID}", "one-armed", 2, lb="haproxy")


@pytest.fixture(scope="session")
def two_armed_haproxy_lab() -> Iterator[RunningLab]:
    """Two-armed (routed), with HAProxy on lb01, unconfigured."""
    yield from bring_up(f"t2h{RUN_ID}", "two-armed-routed", 2, lb="haproxy")


@pytest.fixture(scope="session")
def one_armed_pair_lab() -> Iterator[RunningLab]:
    """lb01 and lb02 with the engine and keepalived installed, unconfigured."""
    yield from bring_up(f"tpe{RUN_ID}", "one-armed", 2, lb_pair=True)


@pytest.fixture(scope="session")
def two_armed_haproxy_pair_lab() -> Iterator[RunningLab]:
    """Two-armed (routed): lb01 and lb02 with HAProxy and keepalived, unconfigured."""
    yield from bring_up(f"tqh{RUN_ID}", "two-armed-routed", 2, lb="haproxy", lb_pair=True)


@pytest.fixture(scope="session")
def two_armed_pair_lab() -> Iterator[RunningLab]:
    """Two-armed (routed): lb01 and lb02 with the engine and keepalived, unconfigured."""
    yield from bring_up(f"tqe{RUN_ID}", "two-armed-routed", 2, lb_pair=True)


@pytest.fixture(scope="session")
def one_armed_haproxy_pair_lab() -> Iterator[RunningLab]:
    """lb01 and lb02 with HAProxy and keepalived installed, unconfigured."""
    yield from bring_up(f"tph{RUN_ID}", "one-armed", 2, lb="haproxy", lb_pair=True)


def ocsscale_cli(
    *args: str, check: bool = False, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `ocsscale` command line (as a subprocess, as a user would);
    `env` is added to the environment."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = str(REPO) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run(
        [sys.executable, "-m", "ocsscale", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=check,
    )
