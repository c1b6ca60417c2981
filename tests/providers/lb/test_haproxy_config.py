"""The haproxy.cfg the HAProxy driver renders, checked by Debian's own `haproxy -c`
(no lab: nothing binds, nothing is sent). The lab suite (tests/contract/test_lb_contract.py)
runs it."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from ocsscale.config.lb_settings import HaproxySettings
from ocsscale.config.loader import load_pool
from ocsscale.errors import StepFailed
from ocsscale.providers.lb import haproxy_text as hx
from ocsscale.providers.lb.base import CheckTiming, FarmSpec, LbSite, Member, view_diff
from ocsscale.providers.lb.haproxy import HaproxyDriver
from ocsscale.providers.plugin import Ports

REPO = Path(__file__).resolve().parents[3]
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def _no_host(name: str) -> None:
    raise AssertionError(f"rendering a config must not connect to {name}")


@pytest.fixture
def driver(tmp_path: Path) -> HaproxyDriver:
    loaded = load_pool(REPO / "examples" / "one-armed.yaml")
    settings = HaproxySettings(
        kind="haproxy",
        config_path=str(tmp_path / "haproxy.cfg"),
        runtime_socket=str(tmp_path / "admin.sock"),
        state_file=str(tmp_path / "server-state"),
        user=None,
        group=None,
    )
    return HaproxyDriver(settings, LbSite.from_pool(loaded.pool, loaded.profile), Ports(_no_host))


def _farm(driver: HaproxyDriver, snat: tuple[str, ...]) -> FarmSpec:
    farm = driver.site.farm
    members = (Member("fe1", "10.0.0.41", 3), Member("fe2", "10.0.0.42", 1))
    return dataclasses.replace(farm, snat_addresses=snat, members=members)


def _haproxy_check(path: Path) -> subprocess.CompletedProcess[str]:
    if not Path(HAPROXY).exists():
        pytest.skip("HAProxy is not installed (apt-get install haproxy)")
    return subprocess.run(
        [HAPROXY, "-c", "-q", "-f", str(path)], capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize("snat", [("10.0.0.40",), ("10.0.0.40", "10.0.0.43")])
def test_the_rendered_config_is_valid_and_reads_back(
    driver: HaproxyDriver, tmp_path: Path, snat: tuple[str, ...]
) -> None:
    farm = _farm(driver, snat)
    text = driver.render_config(farm)
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    checked = _haproxy_check(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert hx.config_view(text) == farm.view()
    servers = [
        words
        for keyword, name, lines in hx.sections(text)
        if keyword == "backend" and name.startswith(hx.PORT_BACKEND)
        for words in lines
        if words[0] == "server"
    ]
    # every port's server follows the two-port health check; one line per SNAT address
    assert len(servers) == len(farm.ports) * len(farm.members) * len(snat)
    assert all(w[w.index("track") + 1] in ("health/fe1", "health/fe2") for w in servers)
    assert {w[w.index("source") + 1] for w in servers} == set(snat)
    names = {hx.member_of(w[1], {"fe1", "fe2"}) for w in servers}
    assert names == {"fe1", "fe2"}
    assert "tcp-check connect port 5061\n    tcp-check connect port 444" in text


def test_refusals_before_anything_is_written(driver: HaproxyDriver) -> None:
    farm = _farm(driver, ("10.0.0.40", "10.0.0.43"))
    heavy = dataclasses.replace(farm, members=(Member("fe1", "10.0.0.41", 300),))
    with pytest.raises(StepFailed, match="0 to 256"):
        driver.render_config(heavy)
    clash = dataclasses.replace(
        farm, members=(Member("fe1", "10.0.0.41", 1), Member("fe1-s2", "10.0.0.42", 1))
    )
    with pytest.raises(StepFailed, match="fe1-s2"):
        driver.render_config(clash)


def test_events_from_haproxy_lines() -> None:
    # lines as HAProxy 2.6 writes them to the ring (format iso)
    ring = "\n".join(
        [
            "2026-11-30T19:01:17.570509+00:00 Server health/fe1 is DOWN, reason: Layer4 "
            'connection problem, info: "Connection refused at step 2 of tcp-check (connect '
            'port 444)", check duration: 0ms. 1 active and 0 backup servers left. 0 sessions '
            "active, 0 requeued, 0 remaining in queue.",
            "2026-11-30T19:01:17.570536+00:00 Server port-5061/fe1 is DOWN via health/fe1. 2 "
            "active and 0 backup servers left.",
            "2026-11-30T19:01:23.628164+00:00 Server health/fe1 is going DOWN for maintenance. "
            "1 active and 0 backup servers left.",
            "2026-11-30T19:01:46.908132+00:00 Server health/fe1 is UP/READY (leaving forced "
            "maintenance).",
        ]
    )
    found = hx.events(ring)
    assert [(e["server"], e["kind"]) for e in found] == [
        ("fe1", "server-down"),
        ("fe1", "admin-state"),
        ("fe1", "admin-state"),
    ]
    assert "connect port 444" in found[0]["reason"]
    assert [e["reason"] for e in found[1:]] == ["maint", "ready"]


def _health_servers(text: str) -> list[list[str]]:
    return [
        words
        for keyword, name, lines in hx.sections(text)
        if keyword == "backend" and name == hx.HEALTH_BACKEND
        for words in lines
        if words[0] == "server"
    ]


def test_check_timing_is_rendered_valid_and_read_back(
    driver: HaproxyDriver, tmp_path: Path
) -> None:
    farm = dataclasses.replace(
        _farm(driver, ("10.0.0.40",)),
        checks=CheckTiming(interval=0.75, timeout=0.3, fall=3, rise=4),
    )
    text = driver.render_config(farm)
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    checked = _haproxy_check(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for words in _health_servers(text):
        opts = hx.server_options(words)
        assert (opts["inter"], opts["fall"], opts["rise"], opts["check"]) == ("750ms", "3", "4", "")
    health = next(lines for k, n, lines in hx.sections(text) if n == hx.HEALTH_BACKEND)
    assert ["timeout", "connect", "300ms"] in health and ["timeout", "check", "300ms"] in health
    # client traffic keeps the defaults' connect timeout: only the checks are hurried
    defaults = next(lines for k, n, lines in hx.sections(text) if k == "defaults")
    assert ["timeout", "connect", "5s"] in defaults
    assert not [
        w
        for k, n, lines in hx.sections(text)
        if n.startswith(hx.PORT_BACKEND)
        for w in lines
        if w[0] == "timeout"
    ]
    view = hx.config_view(text)
    assert view["checks"] == {"interval": 0.75, "timeout": 0.3, "fall": 3, "rise": 4}
    assert view == farm.view()


def _edit(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


def test_drift_in_the_check_values_is_shown(driver: HaproxyDriver) -> None:
    farm = _farm(driver, ("10.0.0.40",))
    text = driver.render_config(farm)
    assert view_diff(farm.view(), hx.config_view(text)) == []
    # the config of an ocsscale before issue 20: HAProxy's defaults everywhere
    old = _edit(text, "inter 500ms fall 2 rise 2", "inter 2s fall 3 rise 2")
    old = _edit(old, "    timeout connect 300ms\n    timeout check 300ms\n", "")
    assert view_diff(farm.view(), hx.config_view(old)) == [
        "checks fall: 3 on the LB, 2 planned",
        "checks interval: 2.0 on the LB, 0.5 planned",
        # no `timeout check`: HAProxy lets a check take `inter`
        "checks timeout: 2.0 on the LB, 0.3 planned",
    ]
    # nothing said at all on the server lines: HAProxy's own defaults, still drift
    bare = _edit(text, " inter 500ms fall 2 rise 2", "")
    assert hx.config_view(bare)["checks"] == {
        "interval": 2.0,
        "timeout": 0.3,
        "fall": 3,
        "rise": 2,
    }
    # a hand edit of one timeout, of one member's line, or a value that is no number
    lines = view_diff(
        farm.view(), hx.config_view(_edit(text, "timeout check 300ms", "timeout check 5s"))
    )
    assert lines == ["checks timeout: 'connect 0.3 s, check 5.0 s' on the LB, 0.3 planned"]
    one = text.replace("fall 2", "fall 5", 1)
    assert view_diff(farm.view(), hx.config_view(one)) == [
        "checks fall: [2, 5] on the LB, 2 planned"
    ]
    junk = text.replace("rise 2", "rise lots", 1)
    assert "checks rise: [2, 'lots'] on the LB, 2 planned" in view_diff(
        farm.view(), hx.config_view(junk)
    )


def test_server_options_read_flags_and_values() -> None:
    words = "server fe1 10.0.0.41:5061 weight 3 check inter 400ms fall 2 rise 2 source 10.0.0.40"
    assert hx.server_options(words.split()) == {
        "weight": "3",
        "check": "",
        "inter": "400ms",
        "fall": "2",
        "rise": "2",
        "source": "10.0.0.40",
    }
    assert hx.duration("400ms") == 0.4 and hx.duration("2s") == 2.0 and hx.duration("1500") == 1.5
    assert hx.duration("soon") is None and hx.duration_text(0.25) == "250ms"
    # a number no duration can be is no duration (never an overflow)
    assert hx.duration("9" * 400 + "ms") is None and hx.seconds("9" * 400) is None


# `show servers state;show stat` as HAProxy 2.6 answers it in one request (columns cut)
BOTH = (
    "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n"
    "2 health 1 fe1 10.0.0.41 0 0 1\n3 port-5061 1 fe1 10.0.0.41 0 0 1\n\n"
    "# pxname,svname,scur,status,\nhealth,fe1,0,DOWN,\nport-5061,fe1,3,DOWN,\n\n"
)


def test_one_request_answers_both_state_and_stat() -> None:
    state, stat = hx.state_and_stat(BOTH)
    assert [r["srv_name"] for r in hx.servers_state(state)] == ["fe1", "fe1"]
    rows = hx.stat_rows(stat)
    assert [(r["pxname"], r["status"], r["scur"]) for r in rows] == [
        ("health", "DOWN", "0"),
        ("port-5061", "DOWN", "3"),
    ]
    # an answer without `show stat`'s header is refused, never read as no members
    with pytest.raises(ValueError):
        hx.state_and_stat(BOTH.split("# pxname")[0])
