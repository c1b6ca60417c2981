"""The contract every DNS provider passes, against a real BIND 9 on loopback.

- rfc2136: TSIG-signed updates straight to the primary.
- manual: a scripted operator reads the printed change and makes it itself
  (a signed update), as a person at the DNS console would; the provider
  verifies on the server and never trusts the "done".
- windows-dnscmd / windows-module: pywinrm to the WinRM stand-in, which
  carries the provider's PowerShell out against the same BIND.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import pytest
from bind_server import KEY_NAME, PRIMARY, ZONE, Bind, free_port
from winrm_standin import StandIn, host_for

from ocsscale.config.model import DNS_PROVIDERS, ManualDns
from ocsscale.errors import OcsscaleError, StepFailed, UsageError
from ocsscale.providers.dns import PROVIDERS, DnsConflict, DnsError
from ocsscale.providers.dns.base import ABSENT, RecordSet
from ocsscale.providers.dns.manual import ManualProvider
from ocsscale.providers.dns.rfc2136 import Rfc2136Provider
from ocsscale.providers.dns.windows import WindowsProvider
from ocsscale.providers.plugin import Ports
from ocsscale.secrets import Secret

KINDS = ["rfc2136", "manual", "windows-dnscmd", "windows-module"]
LEGACY, VIP = "10.0.0.30", "198.18.0.40"
WRONG_SECRET = "d3JvbmctYnV0LXdlbGwtZm9ybWVkLWJhc2U2NC1rZXk="


class ConsoleOperator:
    """Plays the person at the DNS console: reads the change the provider
    printed and makes exactly that change on the server (a signed update)."""

    def __init__(self, bind: Bind, *, act: bool = True) -> None:
        self.bind = bind
        self.act = act
        self.told: list[tuple[str, list[str]]] = []
        self.told_data: list[dict[str, object] | None] = []
        self.asked = 0

    def tell(self, title: str, lines: Sequence[str], data: dict[str, object] | None = None) -> None:
        self.told.append((title, list(lines)))
        self.told_data.append(data)

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        self.asked += 1
        if self.act:
            self._do(self._pending())
        return "done"

    def text(self, question: str, default: str = "") -> str:
        raise AssertionError("not asked for text")

    def _pending(self) -> list[str]:
        for title, lines in reversed(self.told):
            if title.startswith("Change DNS record"):
                return lines
        raise AssertionError("asked to confirm a change that was never printed")

    def _do(self, lines: list[str]) -> None:
        adds = [
            re.split(r"\s+", ln.strip()) for ln in lines if ln.strip().startswith(("add ", "keep "))
        ]
        name, ttl, _, rdtype = adds[0][1:5]
        self.bind.set(name.rstrip("."), rdtype, [a[5] for a in adds], int(ttl))


def _rfc2136(bind: Bind, secret: str | None = None, port: int | None = None) -> Rfc2136Provider:
    return Rfc2136Provider(
        ZONE,
        [(PRIMARY, port or bind.port)],
        key_name=KEY_NAME,
        algorithm="hmac-sha256",
        secret=Secret(secret or bind.secret, "file:tsig-secret"),
        timeout=3,
    )


class Rig:
    def __init__(self, kind: str, bind: Bind, standins: dict[str, StandIn] | None) -> None:
        self.kind, self.bind, self.standins = kind, bind, standins
        self.operator = ConsoleOperator(bind)

    def provider(self, *, bad_credential: bool = False, server_down: bool = False) -> Any:
        bind = self.bind
        port = free_port() if server_down else None
        if self.kind == "rfc2136":
            return _rfc2136(bind, WRONG_SECRET if bad_credential else None, port)
        if self.kind == "manual":
            return ManualProvider(
                ZONE, [(PRIMARY, port or bind.port)], self.operator, timeout=3, attempts=2
            )
        assert self.standins is not None
        tool = "dnscmd" if self.kind == "windows-dnscmd" else "dnsserver-module"
        standin = self.standins[tool]
        extra: dict[str, Any] = {}
        if bad_credential:
            extra["password"] = Secret("Wr0ng-horse-battery", "test")
        host = host_for(standin, auth="ntlm", **extra)
        if server_down:
            host.port = free_port()  # nothing listens there: the DNS server is down
        return WindowsProvider(ZONE, host, tool="auto" if tool == "dnsserver-module" else tool)


@pytest.fixture(params=KINDS)
def rig(request: pytest.FixtureRequest, bind: Bind) -> Rig:
    standins = request.getfixturevalue("standins") if "windows" in request.param else None
    return Rig(request.param, bind, standins)


def test_every_provider_of_the_pool_file_is_registered() -> None:
    assert PROVIDERS.names() == sorted(DNS_PROVIDERS) == ["manual", "rfc2136", "windows"]


def test_a_provider_is_built_only_from_its_own_settings() -> None:
    manual = ManualDns(provider="manual", zone=ZONE, servers=["127.0.0.1"])
    built = PROVIDERS.build("manual", manual, Ports())
    assert isinstance(built, ManualProvider) and built.zone == ZONE
    assert not built.capabilities.drives_itself and built.targets() == []
    with pytest.raises(UsageError, match="another one's settings"):
        PROVIDERS.build("rfc2136", manual, Ports())
    with pytest.raises(UsageError, match="no DNS provider 'nsupdate'"):
        PROVIDERS.build("nsupdate", manual, Ports())


def test_lookup_reads_the_authoritative_value_and_ttl(rig: Rig, record_name: str) -> None:
    rig.bind.set(record_name, "A", [LEGACY, "10.0.0.31"], 1800)
    provider = rig.provider()
    assert provider.lookup(record_name, "A") == RecordSet((LEGACY, "10.0.0.31"), 1800)
    assert provider.lookup("absent." + ZONE, "A") == ABSENT


def test_replace_with_the_right_expectation(rig: Rig, record_name: str) -> None:
    rig.bind.set(record_name, "A", [LEGACY], 3600)
    provider = rig.provider()
    undo = provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    assert rig.bind.read(record_name) == ({VIP}, 60)
    assert json.loads(json.dumps(undo)) == undo  # plain JSON, journaled as is
    assert undo["old"] == {"values": [LEGACY], "ttl": 3600}
    assert undo["new"] == {"values": [VIP], "ttl": 60}
    # the same values with only the TTL lowered (the lower-ttl step)
    provider.replace(record_name, "A", [VIP], 30, expect=[VIP])
    assert rig.bind.read(record_name) == ({VIP}, 30)


def test_replace_is_refused_when_the_record_changed_meanwhile(rig: Rig, record_name: str) -> None:
    rig.bind.set(record_name, "A", [LEGACY], 3600)
    provider = rig.provider()
    rig.bind.set(record_name, "A", ["10.0.0.99"], 1200)  # someone else, since the plan
    with pytest.raises(DnsConflict) as caught:
        provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    assert "10.0.0.99" in caught.value.message and "nothing was changed" in caught.value.message
    assert rig.bind.read(record_name) == ({"10.0.0.99"}, 1200)
    assert rig.operator.asked == 0  # nobody is asked to make a change that is refused


def test_revert_restores_value_and_ttl(rig: Rig, record_name: str) -> None:
    rig.bind.set(record_name, "A", [LEGACY], 3600)
    provider = rig.provider()
    undo = provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    assert provider.revert(undo) == RecordSet((LEGACY,), 3600)
    assert rig.bind.read(record_name) == ({LEGACY}, 3600)
    asked = rig.operator.asked
    assert provider.revert(undo) == RecordSet((LEGACY,), 3600)  # twice: nothing to do
    assert rig.operator.asked == asked


def test_revert_refuses_to_overwrite_someone_elses_change(rig: Rig, record_name: str) -> None:
    rig.bind.set(record_name, "A", [LEGACY], 3600)
    provider = rig.provider()
    undo = provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    rig.bind.set(record_name, "A", ["10.0.0.77"], 600)
    with pytest.raises(DnsConflict):
        provider.revert(undo)
    assert rig.bind.read(record_name) == ({"10.0.0.77"}, 600)


def test_a_wrong_credential_is_a_clear_error_without_the_secret(rig: Rig, record_name: str) -> None:
    if rig.kind == "manual":
        pytest.skip("the manual provider holds no credential: the operator makes the change")
    rig.bind.set(record_name, "A", [LEGACY], 3600)
    provider = rig.provider(bad_credential=True)
    with pytest.raises(OcsscaleError) as caught:
        provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    message = caught.value.message + (caught.value.hint or "")
    assert WRONG_SECRET not in message and rig.bind.secret not in message
    assert "Wr0ng-horse-battery" not in message
    if rig.kind == "rfc2136":
        assert "TSIG" in message and "secret does not match" in message
    else:
        assert "rejected the credentials" in message
    assert rig.bind.read(record_name) == ({LEGACY}, 3600)


def test_the_server_down_is_a_clear_error(rig: Rig, record_name: str) -> None:
    provider = rig.provider(server_down=True)
    with pytest.raises(DnsError) as caught:
        provider.lookup(record_name, "A")
    assert "refused the connection" in caught.value.message or "cannot" in caught.value.message
    with pytest.raises(DnsError):
        provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])


def test_a_change_that_does_not_show_is_never_taken_on_trust(bind: Bind, record_name: str) -> None:
    """The manual provider's "done" without the change: asked again, then refused."""
    bind.set(record_name, "A", [LEGACY], 3600)
    operator = ConsoleOperator(bind, act=False)
    provider = ManualProvider(ZONE, [(PRIMARY, bind.port)], operator, timeout=3, attempts=2)
    with pytest.raises(StepFailed) as caught:
        provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    assert operator.asked == 2
    assert f"still reads {LEGACY} (TTL 3600)" in caught.value.message
