"""A change to a record never leaves a gap: at no moment does the name have no
record (Windows clients cache that answer). Proved on named's own journal,
replayed update by update (bind.rrset_history), so no moment can slip between
two polls:

- rfc2136: the deletion and the addition travel in one UPDATE, which BIND
  applies as one transaction;
- windows (dnscmd and the DnsServer module): the script adds the new value,
  changes a kept value's TTL in place, and removes the old value last; the
  stand-in carries each of its commands out as an update of its own, in the
  order the script's body runs them, so a script that deleted first would
  show here as a transaction leaving the name empty;
- a change stopped half-way (new added, old still there) is reverted to
  exactly the old RRset, without a gap either.
"""

from __future__ import annotations

import re

import pytest
from bind_server import KEY_NAME, PRIMARY, ZONE, Bind, rrset_history
from winrm_standin import StandIn, host_for

from ocsscale.operator import NoOperator
from ocsscale.providers.dns import DnsError
from ocsscale.providers.dns.base import RecordSet, undo_record
from ocsscale.providers.dns.manual import ManualProvider
from ocsscale.providers.dns.rfc2136 import Rfc2136Provider
from ocsscale.providers.dns.windows import WindowsProvider
from ocsscale.providers.dns.windows_scripts import REPLACE_STEPS, all_scripts
from ocsscale.secrets import Secret

LEGACY, VIP = "10.0.0.30", "198.18.0.40"
KINDS = ["rfc2136", "windows-dnscmd", "windows-module"]


def _provider(
    kind: str, bind: Bind, standins: dict[str, StandIn]
) -> Rfc2136Provider | WindowsProvider:
    if kind == "rfc2136":
        return Rfc2136Provider(
            ZONE,
            [(PRIMARY, bind.port)],
            key_name=KEY_NAME,
            algorithm="hmac-sha256",
            secret=Secret(bind.secret, "file:tsig-secret"),
            timeout=3,
        )
    tool = "dnscmd" if kind == "windows-dnscmd" else "dnsserver-module"
    return WindowsProvider(ZONE, host_for(standins[tool], auth="ntlm"), tool=tool)


@pytest.fixture(params=KINDS)
def provider(
    request: pytest.FixtureRequest, bind: Bind, standins: dict[str, StandIn]
) -> Rfc2136Provider | WindowsProvider:
    return _provider(request.param, bind, standins)


def _after_seed(bind: Bind, name: str) -> list[tuple[frozenset[str], int]]:
    history = rrset_history(bind.journal, name)
    assert history and history[0] == (frozenset({LEGACY}), 3600), history  # the seed
    return history


def test_lower_ttl_cutover_and_both_reverts_never_leave_the_name_empty(
    provider: Rfc2136Provider | WindowsProvider, bind: Bind, record_name: str
) -> None:
    bind.set(record_name, "A", [LEGACY], 3600)
    lowered = provider.replace(record_name, "A", [LEGACY], 60, expect=[LEGACY])  # TTL only
    moved = provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    assert bind.read(record_name) == ({VIP}, 60)
    provider.revert(moved)
    provider.revert(lowered)
    assert bind.read(record_name) == ({LEGACY}, 3600)

    history = _after_seed(bind, record_name)
    empty = [i for i, (values, _) in enumerate(history) if not values]
    assert not empty, history
    states = [values for values, _ in history]
    if provider.kind == "rfc2136":
        # one transaction per change: seed, lower, cut over, back, TTL back
        assert len(history) == 5, history
        assert frozenset({LEGACY, VIP}) not in states
    else:
        # the TTL-only changes touch nothing but the TTL; the value changes go
        # through both values at once (added first), never through none
        assert states.count(frozenset({LEGACY, VIP})) == 2, history
        assert history[1] == (frozenset({LEGACY}), 60), history


def test_a_change_stopped_half_way_is_reverted_to_exactly_the_old_record(
    provider: Rfc2136Provider | WindowsProvider, bind: Bind, record_name: str
) -> None:
    """The new value added, the old one not yet removed, then the run died: the
    undo record (written before the change) puts back exactly the old RRset."""
    bind.set(record_name, "A", [LEGACY], 3600)
    undo = undo_record(
        provider.kind, ZONE, record_name, "A", RecordSet((LEGACY,), 3600), RecordSet((VIP,), 60)
    )
    bind.set(record_name, "A", [LEGACY, VIP], 60)  # where the change stopped
    assert provider.revert(undo) == RecordSet((LEGACY,), 3600)
    assert bind.read(record_name) == ({LEGACY}, 3600)
    assert all(values for values, _ in _after_seed(bind, record_name))


def test_revert_still_refuses_a_value_the_change_never_had(
    provider: Rfc2136Provider | WindowsProvider, bind: Bind, record_name: str
) -> None:
    bind.set(record_name, "A", [LEGACY], 3600)
    undo = provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    bind.set(record_name, "A", [VIP, "10.0.0.99"], 60)  # someone else's value beside ours
    with pytest.raises(Exception) as caught:
        provider.revert(undo)
    assert "10.0.0.99" in str(caught.value)
    assert bind.read(record_name) == ({VIP, "10.0.0.99"}, 60)


def test_a_failed_removal_puts_the_old_record_back_without_a_gap(
    remove_denied_standin: StandIn, bind: Bind, record_name: str
) -> None:
    bind.set(record_name, "A", [LEGACY], 3600)
    provider = WindowsProvider(ZONE, host_for(remove_denied_standin, auth="ntlm"), tool="dnscmd")
    with pytest.raises(DnsError) as caught:
        provider.replace(record_name, "A", [VIP], 60, expect=[LEGACY])
    assert "RecordDelete" in caught.value.message and "put back" in caught.value.message
    assert bind.read(record_name) == ({LEGACY}, 3600)
    history = _after_seed(bind, record_name)
    assert frozenset({LEGACY, VIP}) in [values for values, _ in history]  # the add came first
    assert all(values for values, _ in history), history


def test_every_replace_script_adds_before_it_removes() -> None:
    assert REPLACE_STEPS == ("add", "retime", "remove")
    for body, (tool, operation) in all_scripts().items():
        if operation != "replace":
            continue
        add = body.index("$problem = Add-OcsRecord $v $Ttl")
        retime = body.index("$problem = Set-OcsTtl $p[1] $Ttl")
        remove = body.index("$problem = Remove-OcsRecord $p[1]")
        assert add < retime < remove, tool


def test_manual_tells_the_operator_to_add_first_then_remove() -> None:
    provider = ManualProvider(ZONE, [(PRIMARY, 53)], NoOperator())
    name = f"ocspool.{ZONE}"
    lines = provider.instructions(name, "A", (VIP,), 60, (LEGACY,))
    verbs = [ln.split()[0] for ln in lines[1:3]]
    assert verbs == ["add", "remove"], lines
    assert any("Add the new record first, then remove the old" in ln for ln in lines)
    ttl_only = provider.instructions(name, "A", (LEGACY,), 60, (LEGACY,))
    assert not any(re.match(r"\s*remove\b", ln) for ln in ttl_only), ttl_only
    assert any("never delete the record" in ln for ln in ttl_only)
