"""`Action.check_undo`: every built-in action that reverts from its undo record
accepts the record it makes and refuses one of another shape, saying which key
is wrong and never echoing the value found. Nothing is contacted."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest

from ocsscale.actions.base import Action, Context, registry
from ocsscale.config import load_pool
from ocsscale.errors import TransportError, UndoRecordError
from ocsscale.runner.plugins import load_actions

REPO = Path(__file__).resolve().parents[2]
ROUTED = REPO / "examples" / "two-armed-routed.yaml"
HOSTILE = "HOSTILE-\x1b[31m-VALUE"


def _no_connection(name: str) -> Any:
    raise TransportError(f"no connection in this test (asked for {name})")


@pytest.fixture
def ctx() -> Context:
    load_actions()
    loaded = load_pool(ROUTED)
    return Context(pool=loaded.pool, profile=loaded.profile, host=_no_connection)


HOSTS = base64.b64encode(b"127.0.0.1 localhost\n").decode()
RRSET = {"values": ["10.0.0.30"], "ttl": 3600}
DNS_UNDO = {
    "provider": "rfc2136",
    "zone": "contoso.com",
    "name": "ocspool.contoso.com",
    "type": "A",
    "old": RRSET,
    "new": {"values": ["10.0.0.40"], "ttl": 60},
}

#: action, its arguments, a record as its undo_record makes it, and bad ones:
#: (what is changed, the path to it, the new value or DELETE)
DELETE = object()
CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[tuple[tuple[str, ...], Any]]]] = [
    (
        "hosts.pin",
        {"host": "client01", "name": "ocspool.contoso.com", "address": "10.0.0.40"},
        {
            "host": "client01",
            "path": "/etc/hosts",
            "name": "ocspool.contoso.com",
            "newline": "\n",
            "original_b64": HOSTS,
            "original_sha256": "ab" * 32,
            "original_pin": None,
            "expected_sha256": "cd" * 32,
        },
        [
            (("original_b64",), DELETE),
            (("original_b64",), "not base64 at all!"),
            (("original_b64",), 12),
            (("host",), "client02"),  # the revert would write another host's file
            (("name",), "other.contoso.com"),
            (("newline",), "\r"),
            (("original_pin",), "not-an-address"),
            (("path",), ""),
            (("path",), HOSTILE),
        ],
    ),
    (
        "hosts.unpin",
        {"host": "ocsfe01", "name": "ocspool.contoso.com"},
        {
            "host": "ocsfe01",
            "path": "C:\\Windows\\System32\\drivers\\etc\\hosts",
            "name": "ocspool.contoso.com",
            "newline": "\r\n",
            "original_b64": HOSTS,
            "original_sha256": "ab" * 32,
            "original_pin": "10.0.1.41",
            "expected_sha256": "cd" * 32,
        },
        [(("expected_sha256",), None), (("original_pin",), ["10.0.1.41"])],
    ),
    (
        "host.restart_services",
        {"host": "ocsfe01"},
        {"restarted": ["RTCSRV"], "nothing_to_put_back": True},
        [((), ["not", "an", "object"])],
    ),
    (
        "legacy.stop_services",
        {"legacy": "ocsfe00"},
        {
            "host": "ocsfe00",
            "services": {"RTCSRV": {"active": True, "enabled": True, "start_mode": "Auto"}},
        },
        [
            (("services",), ["RTCSRV"]),
            (("services", "RTCSRV", "active"), "yes"),
            (("services", "RTCSRV"), DELETE),  # fine: an empty set is a shape too
            (("host",), "ocsfe01"),
        ],
    ),
    (
        "dns.lower_ttl",
        {"name": "ocspool.contoso.com", "ttl": 60},
        DNS_UNDO,
        [
            (("old",), DELETE),
            (("old", "values"), "10.0.0.30"),
            (("old", "ttl"), "3600"),
            (("new", "values"), [None]),
            (("name",), "www.contoso.com"),  # the revert would change another record
            (("type",), "AAAA"),
        ],
    ),
    (
        "dns.replace",
        {"name": "ocspool.contoso.com", "address": "10.0.0.40", "expect": "10.0.0.30", "ttl": 60},
        DNS_UNDO,
        [(("new",), None)],
    ),
    (
        "dns.retarget_srv",
        {
            "name": "_sipinternaltls._tcp.contoso.com",
            "from": "ocsfe00.contoso.com",
            "to": "ocspool.contoso.com",
            "ttl": 60,
        },
        {
            **DNS_UNDO,
            "name": "_sipinternaltls._tcp.contoso.com",
            "type": "SRV",
            "old": {"values": ["0 0 5061 ocsfe00.contoso.com."], "ttl": 3600},
            "new": {"values": ["0 0 5061 ocspool.contoso.com."], "ttl": 60},
        },
        [(("type",), "A"), (("name",), "ocspool.contoso.com"), (("new", "ttl"), "60")],
    ),
    (
        "dns.raise_ttl",
        {"name": "ocspool.contoso.com.", "address": "10.0.0.40", "ttl": 3600},
        {**DNS_UNDO, "old": {"values": ["10.0.0.40"], "ttl": 60}},
        [(("old", "ttl"), -1)],
    ),
    (
        "lb.apply_farm",
        {},
        {
            "driver": "engine",
            "host": "lb01",
            "vip": "10.0.0.40/24",
            "vip_interface": None,
            "files": {"/etc/ocsscale-lb/farm.yaml": None, "/etc/x.service": HOSTS},
            "active": False,
            "vip_present": False,
        },
        [
            (("driver",), "manual"),  # the pool file's driver would put back another's record
            (("files", "/etc/x.service"), "%%%"),
            (("files",), {"relative/path": None}),
            (("vip",), "10.0.0.400/24"),
            (("active",), 0),
            (("vip_present",), DELETE),
        ],
    ),
    (
        "lb.drain_restart",
        {"fe": "ocsfe01"},
        {
            "member": "ocsfe01",
            "lb": "lb01",
            "drained": True,
            "admin_before": "ready",
            "restarted": [],
        },
        [(("drained",), "true"), (("member",), "ocsfe02"), (("member",), DELETE)],
    ),
    (
        "lb.failover_drill",
        {"fe": "ocsfe01", "mode": "link"},
        {"fe": "ocsfe01", "mode": "link", "services": []},
        [(("fe",), "ocsfe02"), (("mode",), "service:5061")],
    ),
    (
        "lb.pair_drill",  # with a pair of LBs (_ctx_for)
        {"mode": "link"},
        {"host": "lb01", "mode": "link"},
        [
            (("host",), "dc01"),
            (("host",), HOSTILE),
            (("host",), DELETE),
            (("mode",), "service"),
        ],
    ),
    (
        "lb.isolate",
        {"fe": "ocsfe01"},
        {"admin": {"ocsfe01": "ready", "ocsfe02": "maint"}},
        [(("admin", "ocsfe02"), "gone"), (("admin",), ["ready"])],
    ),
    (
        "routing.enable",
        {"address": "10.0.0.40/24", "backend_address": "10.0.1.40/24"},
        {"host": "lb01", "key": "net.ipv4.ip_forward", "value": "0"},
        [
            (("key",), "kernel.core_pattern"),  # `sysctl -w` of anything else: refused
            (("value",), "0; reboot"),
            (("value",), 0),
            (("host",), "dc01"),
        ],
    ),
]

#: changes that leave a record still usable (an empty service set, say)
STILL_GOOD = {("legacy.stop_services", ("services", "RTCSRV"))}


def _changed(good: dict[str, Any], path: tuple[str, ...], value: Any) -> Any:
    if not path:
        return value
    bad = copy.deepcopy(good)
    *parents, last = path
    where = bad
    for key in parents:
        where = where[key]
    if value is DELETE:
        del where[last]
    else:
        where[last] = value
    return bad


def _action(ctx: Context, name: str, args: dict[str, Any]) -> Action:
    return registry()[name](ctx, args)


@pytest.mark.parametrize(("name", "args", "good", "bad"), CASES, ids=[c[0] for c in CASES])
def test_each_action_accepts_its_record_and_refuses_another_shape(
    ctx: Context,
    name: str,
    args: dict[str, Any],
    good: dict[str, Any],
    bad: list[Any],
    tmp_path: Path,
) -> None:
    if name == "lb.pair_drill":  # an action only a pool file with a pair has
        from tests.actions.test_lb_pair_drill import pair_ctx

        ctx = pair_ctx(tmp_path)
    action = _action(ctx, name, args)
    action.check_undo(copy.deepcopy(good))
    for path, value in bad:
        record = _changed(good, path, value)
        if (name, path) in STILL_GOOD:
            action.check_undo(record)
            continue
        with pytest.raises(UndoRecordError) as caught:
            action.check_undo(record)
        message = caught.value.message
        assert "'" in message or message.startswith("the record is"), message  # names the key
        assert "HOSTILE" not in message and "reboot" not in message and "%%%" not in message
    with pytest.raises(UndoRecordError):
        action.check_undo(None if name != "host.restart_services" else "text")


def test_every_built_in_action_that_reverts_checks_its_record(ctx: Context) -> None:
    """A new action whose revert reads its record must say what shape it needs."""
    unchecked = [
        name
        for name, cls in registry().items()
        if cls.__module__.startswith("ocsscale.")
        and any(getattr(cls, m) is not getattr(Action, m) for m in ("revert", "verify_reverted"))
        and cls.check_undo is Action.check_undo
    ]
    assert unchecked == []
    checked = {c[0] for c in CASES}
    reverting = {
        name
        for name, cls in registry().items()
        if cls.__module__.startswith("ocsscale.")
        and not cls.read_only
        and cls.check_undo is not Action.check_undo
    }
    assert reverting <= checked, reverting - checked
