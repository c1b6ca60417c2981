"""Fixtures for the DNS provider tests: BIND on loopback (primary and
secondary), WinRM stand-ins acting as Windows DNS servers against it, and
every provider built against them."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from bind_server import PRIMARY, ZONE, Bind, bind_unavailable, free_port

sys.path.insert(0, str(Path(__file__).resolve().parent / "winrm"))  # the stand-in helpers
from winrm_standin import StandIn, start_standin  # noqa: E402

_names = itertools.count(1)


@pytest.fixture(scope="session")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    reason = bind_unavailable()
    if reason:
        pytest.skip(reason)
    server = Bind(tmp_path_factory.mktemp("bind")).start()
    yield server
    server.stop()


@pytest.fixture()
def record_name(bind: Bind) -> Iterator[str]:
    """A fresh name for one test (tests never share a record), removed afterwards:
    the BIND of the session is shared, and the cutover's inventory reads the whole zone."""
    name = f"t{next(_names)}.{ZONE}"
    yield name
    bind.clear(name)


def _standin(
    workdir: Path, bind: Bind, tools: str, primary: str | None = None, *fault: str
) -> StandIn:
    return start_standin(
        workdir,
        tls=None,
        auth="ntlm",
        extra=(
            "--dns-server",
            "127.0.0.1:9",  # the resolver is never asked here
            "--dns-primary",
            primary or f"{PRIMARY}:{bind.port}",
            "--dns-tsig-file",
            str(bind.secret_file),
            "--dns-tools",
            tools,
            *fault,
        ),
    )


@pytest.fixture(scope="session")
def standins(tmp_path_factory: pytest.TempPathFactory, bind: Bind) -> Iterator[dict[str, StandIn]]:
    """One stand-in per Windows tool: Server 2008 R2 (dnscmd) and 2016 (module)."""
    started = {
        "dnscmd": _standin(tmp_path_factory.mktemp("win-dnscmd"), bind, "dnscmd"),
        "dnsserver-module": _standin(
            tmp_path_factory.mktemp("win-module"), bind, "dnsserver-module,dnscmd"
        ),
    }
    yield started
    for standin in started.values():
        standin.stop()


@pytest.fixture()
def dns_down_standin(tmp_path: Path, bind: Bind) -> Iterator[StandIn]:
    """A Windows DNS server whose DNS service cannot be reached."""
    standin = _standin(tmp_path / "down", bind, "dnscmd", primary=f"{PRIMARY}:{free_port()}")
    yield standin
    standin.stop()


@pytest.fixture()
def remove_denied_standin(tmp_path: Path, bind: Bind) -> Iterator[StandIn]:
    """A Windows DNS server (dnscmd) where the account may add records but not remove them."""
    standin = _standin(tmp_path / "denied", bind, "dnscmd", None, "--dns-remove-denied")
    yield standin
    standin.stop()
