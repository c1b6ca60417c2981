"""`ocsscale lab down`: remove everything a lab's journal names, newest first.

Works on a half-built lab as well as a complete one: each object is removed
by its recorded name or pid, and one that was never made is skipped. Besides
the recorded pids, any process still inside one of the lab's namespaces (an
SSH session's child, a service restarted over SSH) is stopped: a process in
our own namespace can only be ours.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable

from . import network, services, sshd, system
from . import state as labstate
from .state import LabState

Echo = Callable[[str], None]


def down(name: str, echo: Echo = print) -> bool:
    """Take lab `name` down; False when there was no such lab."""
    system.require_root_linux()
    with labstate.machine_lock():
        state = labstate.load(name)
        if state is None:
            return False
        teardown(state)
    return True


def teardown(state: LabState) -> None:
    """Remove the lab's objects (caller holds the machine lock)."""
    namespaces: list[str] = []
    etc_dirs: list[str] = []
    for entry in reversed(state.objects):
        kind = entry.get("kind")
        if kind == "service":
            _stop_service(state, entry["host"], entry["service"])
        elif kind == "netns":
            namespaces.append(entry["name"])
        elif kind == "etc_netns":
            etc_dirs.append(entry["path"])
    # Namespaces the topology names, in case the journal lost its last entry.
    with contextlib.suppress(labstate.UsageError):
        namespaces += [ns for ns in state.topo().namespaces if ns not in namespaces]
    for ns in namespaces:
        for pid in system.netns_pids(ns):
            system.terminate(pid)
    for ns in namespaces:
        system.netns_delete(ns)
        etc = str(system.ETC_NETNS / ns)
        if etc not in etc_dirs:
            etc_dirs.append(etc)
    for path in etc_dirs:
        network.remove_etc_netns(path)
    shutil.rmtree(state.directory, ignore_errors=True)
    if not labstate.all_labs():
        _remove_shared()


def _stop_service(state: LabState, host: str, name: str) -> None:
    try:
        service = services.load(state.directory, host, name)
    except system.LabError:
        return  # never defined: the netns sweep stops anything that ran
    services.stop(state.directory, service)


def _remove_shared() -> None:
    """The last lab gone: remove what the labs added to the machine itself."""
    network.remove_blackhole()
    network.remove_backup_mount_point()
    network.remove_etc_netns_root()
    marker = labstate.LAB_ROOT / labstate.PRIVSEP_MARKER
    if marker.exists():
        # Not empty, or in use by something else: leave it.
        with contextlib.suppress(OSError):
            sshd.PRIVSEP_DIR.rmdir()
        marker.unlink(missing_ok=True)
    labstate.remove_root_if_unused()
