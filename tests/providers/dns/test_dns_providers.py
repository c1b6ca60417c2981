"""What each DNS provider does beyond the shared contract, against the same BIND."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from bind_server import KEY_NAME, PRIMARY, ZONE, Bind
from winrm_standin import StandIn, host_for

from ocsscale.errors import Declined, UsageError
from ocsscale.operator import NoOperator, OperatorUnavailable
from ocsscale.providers.dns import DnsConflict, DnsError
from ocsscale.providers.dns.manual import ManualProvider
from ocsscale.providers.dns.rfc2136 import Rfc2136Provider
from ocsscale.providers.dns.windows import WindowsProvider
from ocsscale.providers.dns.windows_scripts import all_scripts
from ocsscale.secrets import Secret

LEGACY, VIP = "10.0.0.30", "198.18.0.40"


def rfc2136(bind: Bind, **overrides: object) -> Rfc2136Provider:
    settings: dict[str, object] = {
        "key_name": KEY_NAME,
        "algorithm": "hmac-sha256",
        "secret": Secret(bind.secret, "file:tsig-secret"),
        "timeout": 3,
    }
    settings.update(overrides)
    return Rfc2136Provider(ZONE, [(PRIMARY, bind.port)], **settings)  # type: ignore[arg-type]


def test_the_prerequisite_refuses_a_change_made_after_the_read(
    bind: Bind, record_name: str
) -> None:
    """The server itself refuses (RFC 2136 prerequisite), even when the
    provider's own read came before the other change."""
    bind.set(record_name, "A", ["10.0.0.99"], 1200)
    with pytest.raises(DnsConflict) as caught:
        rfc2136(bind)._change(record_name, "A", (VIP,), 60, (LEGACY,))
    assert "10.0.0.99" in caught.value.message
    assert bind.read(record_name) == ({"10.0.0.99"}, 1200)


def test_an_absent_record_is_expected_absent(bind: Bind, record_name: str) -> None:
    provider = rfc2136(bind)
    undo = provider.replace(record_name, "A", [VIP], 60, expect=[])
    assert bind.read(record_name) == ({VIP}, 60) and undo["old"]["values"] == []
    with pytest.raises(DnsConflict):
        provider.replace(record_name, "A", [VIP], 60, expect=[])


def test_an_unknown_key_name_is_named_without_the_secret(bind: Bind, record_name: str) -> None:
    bind.set(record_name, "A", [LEGACY], 3600)
    with pytest.raises(DnsError) as caught:
        rfc2136(bind, key_name="nobody").replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    assert "does not know the TSIG key" in caught.value.message
    assert bind.secret not in caught.value.message


def test_the_wrong_algorithm_is_refused(bind: Bind, record_name: str) -> None:
    bind.set(record_name, "A", [LEGACY], 3600)
    with pytest.raises(DnsError) as caught:
        rfc2136(bind, algorithm="hmac-md5").replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    assert "TSIG" in caught.value.message and bind.secret not in caught.value.message
    assert bind.read(record_name) == ({LEGACY}, 3600)


def test_a_secret_that_is_not_base64_is_a_usage_error_without_it(bind: Bind) -> None:
    with pytest.raises(UsageError) as caught:
        rfc2136(bind, secret=Secret("not base64 at all!!", "env:OCSSCALE_TSIG_SECRET"))
    assert "not base64 at all" not in caught.value.message
    assert "env:OCSSCALE_TSIG_SECRET" in caught.value.message


def test_names_outside_the_zone_are_refused(bind: Bind) -> None:
    with pytest.raises(UsageError):
        rfc2136(bind).replace("ocspool.fabrikam.test", "A", [VIP], 60, expect=[LEGACY])


class Answers:
    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.told: list[tuple[str, list[str]]] = []
        self.told_data: list[dict[str, object] | None] = []

    def tell(self, title: str, lines: Sequence[str], data: dict[str, object] | None = None) -> None:
        self.told.append((title, list(lines)))
        self.told_data.append(data)

    def ask(self, question: str, choices: Sequence[str], default: str | None = None) -> str:
        return self.answers.pop(0)

    def text(self, question: str, default: str = "") -> str:
        raise AssertionError


def test_manual_prints_the_exact_change_and_stops_on_abort(bind: Bind, record_name: str) -> None:
    bind.set(record_name, "A", [LEGACY], 3600)
    operator = Answers("abort")
    provider = ManualProvider(ZONE, [(PRIMARY, bind.port)], operator, timeout=3)
    with pytest.raises(Declined):
        provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    title, lines = operator.told[0]
    assert title == f"Change DNS record {record_name} by hand"
    assert any(re.fullmatch(rf"\s*remove\s+{record_name}\s+A\s+{LEGACY}", ln) for ln in lines)
    assert any(re.fullmatch(rf"\s*add\s+{record_name}\s+60\s+IN\s+A\s+{VIP}", ln) for ln in lines)
    assert bind.read(record_name) == ({LEGACY}, 3600)


def test_manual_without_anyone_at_the_console_refuses(bind: Bind, record_name: str) -> None:
    bind.set(record_name, "A", [LEGACY], 3600)
    provider = ManualProvider(ZONE, [(PRIMARY, bind.port)], NoOperator(), timeout=3)
    with pytest.raises(OperatorUnavailable):
        provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])


def test_windows_with_its_dns_service_down(dns_down_standin: StandIn, record_name: str) -> None:
    provider = WindowsProvider(ZONE, host_for(dns_down_standin, auth="ntlm"), tool="dnscmd")
    with pytest.raises(DnsError) as caught:
        provider.lookup(record_name, "A")
    assert "RPC_S_SERVER_UNAVAILABLE" in caught.value.message
    assert "Windows DNS on win-client" in caught.value.message


def test_windows_auto_picks_dnscmd_where_there_is_no_module(
    standins: dict[str, StandIn], bind: Bind, record_name: str
) -> None:
    bind.set(record_name, "A", [LEGACY], 3600)
    provider = WindowsProvider(ZONE, host_for(standins["dnscmd"], auth="ntlm"), tool="auto")
    assert provider.lookup(record_name, "A").values == (LEGACY,)
    assert provider.tool == "dnscmd"
    module = WindowsProvider(
        ZONE, host_for(standins["dnscmd"], auth="ntlm"), tool="dnsserver-module"
    )
    with pytest.raises(DnsError) as caught:
        module.lookup(record_name, "A")
    assert "not recognized" in caught.value.message


def test_windows_changes_only_the_types_both_tools_handle(standins: dict[str, StandIn]) -> None:
    provider = WindowsProvider(ZONE, host_for(standins["dnscmd"], auth="ntlm"), tool="dnscmd")
    with pytest.raises(UsageError):
        provider.lookup("mail." + ZONE, "MX")


# PowerShell 2.0 (Windows Server 2008 R2) has none of these.
_NOT_IN_PS2 = (
    "ConvertTo-Json",
    "ConvertFrom-Json",
    "[ordered]",
    "[pscustomobject]",
    " -in ",
    " -notin ",
    "Invoke-WebRequest",
    "-Depth",
    "$PSItem",
)


def test_the_windows_scripts_keep_to_powershell_2() -> None:
    for body, (tool, operation) in all_scripts().items():
        for construct in _NOT_IN_PS2:
            assert construct.lower() not in body.lower(), (tool, operation, construct)
        assert "$ErrorActionPreference = 'Continue'" in body  # native stderr must not throw


def test_text_records_keep_their_case(bind: Bind, record_name: str) -> None:
    provider = rfc2136(bind)
    bind.set(record_name, "TXT", ['"Pool Moved"'], 300)
    assert provider.lookup(record_name, "TXT").values == ('"Pool Moved"',)
    provider.replace(record_name, "TXT", ['"Back Again"'], 300, expect=['"Pool Moved"'])
    assert bind.read(record_name, "TXT") == ({'"Back Again"'}, 300)
