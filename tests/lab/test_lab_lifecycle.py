"""`lab up` / `lab down` through the real command line: nothing is left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocsscale_lab import hostsvc, network, services, system
from ocsscale_lab import state as labstate
from ocsscale_lab.topology import build

from .conftest import REPO, RUN_ID, ocsscale_cli, skip_without_lab

pytestmark = pytest.mark.lab


def _leftovers(name: str) -> list[str]:
    """Everything of lab `name` still on the machine."""
    found = [f"netns {ns}" for ns in _namespaces() if ns.startswith(name + "-")]
    etc = Path("/etc/netns")
    if etc.is_dir():
        found += [f"/etc/netns/{p.name}" for p in etc.iterdir() if p.name.startswith(name + "-")]
    if labstate.lab_dir(name).exists():
        found.append(str(labstate.lab_dir(name)))
    return found + [f"process {pid}" for pid in _lab_processes(name)]


def _lab_processes(name: str) -> list[int]:
    """Running (not zombie) processes whose command line names the lab's directory."""
    marker = str(labstate.lab_dir(name)) + "/"
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            argv = system.cmdline(int(entry.name)) or []
            if any(marker in arg for arg in argv) and system.alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


def _machine_is_clean() -> None:
    """With no lab left, nothing the labs share is left on the machine either."""
    if labstate.all_labs():
        return  # another lab (another test run's) still uses them
    assert not network.blackhole_present()
    assert not labstate.LAB_ROOT.exists()
    marker_made = not network.BACKUP_MOUNT_POINT.exists() or (
        network.BACKUP_MOUNT_POINT.stat().st_size > 0
    )
    assert marker_made, f"the empty placeholder {network.BACKUP_MOUNT_POINT} is left behind"


def _namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def _recorded_pids(name: str) -> list[int]:
    directory = labstate.lab_dir(name) / "services"
    pids = []
    for pid_file in directory.glob("*/*.pid"):
        pids.append(int(pid_file.read_text().split()[0]))
    return pids


def test_up_status_second_up_and_down_leave_nothing_behind() -> None:
    skip_without_lab()
    name = f"tcli{RUN_ID}"
    result = ocsscale_cli("lab", "up", "--name", name, "--fes", "1")
    try:
        assert result.returncode == 0, result.stderr
        assert "pool file:" in result.stdout and "ocsscale lab exec admin" in result.stdout
        pids = _recorded_pids(name)
        assert len(pids) >= 8 and all(system.alive(p) for p in pids)
        assert network.blackhole_present()

        again = ocsscale_cli("lab", "up", "--name", name)
        assert again.returncode == 2
        assert "already up" in again.stderr and "lab down" in again.stderr

        status = json.loads(ocsscale_cli("lab", "status", "--name", name, "--json").stdout)
        (info,) = status["labs"]
        assert info["healthy"] and info["blackhole_route"]
        assert {h["name"] for h in info["hosts"]} >= {"admin", "client01", "client02", "ocsfe01"}

        checked = ocsscale_cli(
            "lab", "exec", "admin", "--name", name, "--",
            "ocsscale", "-c", info["pool_file"], "check",
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        gone = ocsscale_cli("lab", "down", "--name", name)
    assert gone.returncode == 0, gone.stderr
    assert _leftovers(name) == []
    assert not any(system.alive(p) for p in pids)
    _machine_is_clean()


def test_down_with_nothing_up_is_a_clear_no_op() -> None:
    skip_without_lab()
    result = ocsscale_cli("lab", "down", "--name", f"tnone{RUN_ID}")
    assert result.returncode == 0
    assert "nothing to do" in result.stdout


def test_exec_on_an_unknown_host_or_lab_is_a_usage_error() -> None:
    skip_without_lab()
    result = ocsscale_cli("lab", "exec", "nohost", "--name", f"tnone{RUN_ID}", "--", "true")
    assert result.returncode == 2
    assert "no lab named" in result.stderr


def test_half_built_lab_is_removed_by_down() -> None:
    """A lab killed half-way: part of the network and one server, no pool file."""
    skip_without_lab()
    name = f"thalf{RUN_ID}"
    topo = build(name, "one-armed", 1)
    with labstate.machine_lock():
        state = labstate.create(name, "one-armed", 1, True)
        network.add_blackhole(state)
        network.build_switch(state, topo)
        dc = topo.host("dc01")
        network.build_host(state, topo, 0, dc)
        service = hostsvc.directory(topo, dc)
        services.define(state.directory, service)
        state.record("service", host=dc.name, service=service.name)
        pid = services.start(state.directory, service)
        # A second process in the namespace that no pid file names (killed
        # between spawn and record): down must find it through the namespace.
        stray = system.spawn(topo.ns("dc01"), ["sleep", "300"], state.directory / "stray.log")
        network.add_namespace(state, topo.ns("admin"))  # recorded and made, nothing else
        state.record("netns", name=topo.ns("client01"))  # recorded, never made
    assert _leftovers(name)

    result = ocsscale_cli("lab", "down", "--name", name)
    assert result.returncode == 0, result.stderr
    assert _leftovers(name) == []
    assert not system.alive(pid) and not system.alive(stray)


def test_dir_without_journal_is_removed_by_down() -> None:
    """Killed right after claiming its directory, before the first journal write."""
    skip_without_lab()
    name = f"tdir{RUN_ID}"
    labstate.lab_dir(name).mkdir(parents=True)
    result = ocsscale_cli("lab", "down", "--name", name)
    assert result.returncode == 0, result.stderr
    assert _leftovers(name) == []


def test_non_root_is_refused_with_a_clear_message() -> None:
    skip_without_lab()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    result = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--",
         sys.executable, "-m", "ocsscale", "lab", "up", "--name", f"tuser{RUN_ID}"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}, cwd="/",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "needs root" in result.stderr
    assert not labstate.lab_dir(f"tuser{RUN_ID}").exists()


def _journal_count(name: str, kind: str) -> int:
    try:
        data = json.loads((labstate.lab_dir(name) / labstate.STATE_FILE).read_text())
    except (OSError, ValueError):
        return 0
    return sum(1 for entry in data.get("objects", []) if entry.get("kind") == kind)


@pytest.mark.parametrize(
    ("kind", "count"),
    [("netns", 3), ("service", 4)],
    ids=["while-wiring", "while-starting-servers"],
)
def test_lab_up_killed_with_sigkill_is_removed_by_down(kind: str, count: int) -> None:
    """`lab up` killed (SIGKILL: no handler runs) part-way; `lab down` removes it all."""
    skip_without_lab()
    name = f"tkil{kind[0]}{RUN_ID}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    up = subprocess.Popen(
        [sys.executable, "-m", "ocsscale", "lab", "up", "--name", name, "--fes", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _journal_count(name, kind) < count:
            assert up.poll() is None, f"lab up ended before {count} {kind} entries"
            assert time.monotonic() < deadline, f"lab up never reached {count} {kind} entries"
            time.sleep(0.005)
        os.kill(up.pid, signal.SIGKILL)
    finally:
        if up.poll() is None:
            os.kill(up.pid, signal.SIGKILL)
        up.wait(timeout=30)
        left = _leftovers(name)
        gone = ocsscale_cli("lab", "down", "--name", name)
    assert up.returncode == -signal.SIGKILL, "lab up finished before it could be killed"
    assert left, "the killed lab up had built nothing: the test proves nothing"
    assert gone.returncode == 0, gone.stderr
    assert "nothing left behind" in gone.stdout
    assert _leftovers(name) == []
    _machine_is_clean()

    # the name is free again: a lab up with it works and comes down cleanly
    again = ocsscale_cli("lab", "up", "--name", name, "--fes", "1")
    down_again = ocsscale_cli("lab", "down", "--name", name)
    assert again.returncode == 0, again.stderr
    assert down_again.returncode == 0, down_again.stderr
    assert _leftovers(name) == []
