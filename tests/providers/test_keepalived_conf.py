"""keepalived.conf for one host of an LB pair: the pure renderer, and Debian's
keepalived's own `--config-test` on what it renders."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from ocsscale.errors import StepFailed
from ocsscale.providers.lb import keepalived as ka
from ocsscale.secrets import Secret

SECRET = Secret("s3cretPWextra", "env:OCS_VRRP_SECRET")

LB01 = ka.VrrpHost(
    instance="ocspool",
    host="lb01",
    interface="eth0",
    source=IPv4Address("198.18.0.37"),
    peer=IPv4Address("198.18.0.38"),
    preferred=True,
    preempt=True,
    router_id=51,
    advert_interval=1,
    floating=(
        ka.Floating(IPv4Interface("198.18.0.40/24"), "eth0"),
        ka.Floating(IPv4Interface("198.19.0.40/24"), "eth1"),
    ),
    track_script="/etc/keepalived/ocsscale-track.sh",
)


def block(text: str, name: str) -> list[str]:
    """The lines of the `name { ... }` block (one level)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(name))
    out = []
    for line in lines[start + 1 :]:
        if line.strip() == "}":
            break
        out.append(line.strip())
    return out


def test_the_preferred_host_is_master_with_the_higher_priority() -> None:
    text = ka.render(LB01, SECRET)
    instance = "\n".join(block(text, "vrrp_instance ocspool"))
    assert "state MASTER" in instance
    assert f"priority {ka.PRIORITY_PREFERRED}" in instance
    assert "virtual_router_id 51" in instance and "advert_int 1" in instance
    assert "unicast_src_ip 198.18.0.37" in instance
    assert "nopreempt" not in instance
    assert block(text, "unicast_peer") == ["198.18.0.38"]
    assert block(text, "virtual_ipaddress") == [
        "198.18.0.40/24 dev eth0",
        "198.19.0.40/24 dev eth1",
    ]
    assert block(text, "track_script") == [ka.TRACK_SCRIPT_NAME]


def test_the_other_host_is_backup_with_the_lower_priority() -> None:
    lb02 = replace(LB01, host="lb02", source=LB01.peer, peer=LB01.source, preferred=False)
    instance = "\n".join(block(ka.render(lb02, SECRET), "vrrp_instance ocspool"))
    assert "state BACKUP" in instance and f"priority {ka.PRIORITY_OTHER}" in instance
    assert "unicast_src_ip 198.18.0.38" in instance


def test_without_preemption_both_start_as_backup_with_nopreempt() -> None:
    # keepalived honours nopreempt only on an instance whose initial state is BACKUP
    text = ka.render(replace(LB01, preempt=False), SECRET)
    instance = block(text, "vrrp_instance ocspool")
    assert "state BACKUP" in instance and "nopreempt" in instance
    assert f"priority {ka.PRIORITY_PREFERRED}" in instance


def test_authentication_takes_the_secrets_first_eight_characters() -> None:
    text = ka.render(LB01, SECRET)
    assert block(text, "authentication") == ["auth_type PASS", "auth_pass s3cretPW"]
    assert "extra" not in text
    masked = ka.masked(text, SECRET)
    assert "s3cretPW" not in masked and "auth_pass ********" in masked


def test_the_track_script_moves_the_vip_within_three_seconds() -> None:
    text = ka.render(LB01, SECRET)
    script = block(text, f"vrrp_script {ka.TRACK_SCRIPT_NAME}")
    assert "script /etc/keepalived/ocsscale-track.sh" in script
    settings = dict(line.split(None, 1) for line in script)
    # worst case: a whole interval before the failing run, its timeout, then the
    # backup's skew (< advert_int) after the master's priority-0 advert
    detection = int(settings["interval"]) * int(settings["fall"]) + int(settings["timeout"])
    assert detection + LB01.advert_interval <= 3


@pytest.mark.parametrize("bad", ["short 1", 'quo"te12', "", "ab#cdefg", "new\nline!"])
def test_a_secret_keepalived_cannot_take_is_refused_unshown(bad: str) -> None:
    with pytest.raises(StepFailed) as caught:
        ka.render(LB01, Secret(bad, "env:X"))
    assert "env:X" in str(caught.value)
    if bad:
        assert bad[:4] not in str(caught.value)


@pytest.mark.parametrize(
    "change",
    [
        {"interface": "eth0; x"},
        {"instance": "a b"},
        {"router_id": 0},
        {"router_id": 256},
        {"peer": IPv4Address("198.18.0.37")},
        {"floating": ()},
        {"track_script": "relative.sh"},
        {"track_script": "/a b.sh"},
    ],
)
def test_values_that_cannot_be_written_safely_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(StepFailed):
        ka.render(replace(LB01, **change), SECRET)  # type: ignore[arg-type]


def test_the_track_script_watches_the_vips_first_port() -> None:
    script = ka.track_script((5061, 444), "198.18.0.40")
    assert script.startswith("#!/bin/sh\n")
    assert '"sport = :5061"' in script and "198.18.0.40:5061" in script
    with pytest.raises(StepFailed):
        ka.track_script((), "198.18.0.40")


@pytest.mark.skipif(not Path("/usr/sbin/keepalived").exists(), reason="keepalived not installed")
def test_keepalived_accepts_what_is_rendered(tmp_path: Path) -> None:
    names = sorted(p.name for p in Path("/sys/class/net").iterdir() if p.name != "lo")
    if not names:
        pytest.skip("no network interface but loopback here")
    ifname = names[0]
    track = tmp_path / "track.sh"
    track.write_text(ka.track_script((5061,), "198.18.0.40"))
    track.chmod(0o755)
    routing = replace(LB01, floating=LB01.floating[1:], track_script=None)
    for host in (LB01, replace(LB01, preferred=False, preempt=False), routing):
        conf = tmp_path / "keepalived.conf"
        # the checker refuses interfaces the machine lacks, and loopback for VRRP
        local = tuple(replace(f, interface=ifname) for f in host.floating)
        conf.write_text(
            ka.render(
                replace(
                    host,
                    interface=ifname,
                    floating=local,
                    track_script=None if host.track_script is None else str(track),
                ),
                SECRET,
            )
        )
        done = subprocess.run(
            ["/usr/sbin/keepalived", "-t", "-n", "-l", "-P", "-f", str(conf)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_routing_phases_instance_floats_the_gateway_and_tracks_nothing() -> None:
    """A two-armed pair's routing phase: the same instance as configure-lb's (name,
    router id, peers), floating only the FEs' gateway, with no track script (no LB
    serves yet): configure-lb's configuration extends it."""
    routing = replace(LB01, floating=LB01.floating[1:], track_script=None)
    text = ka.render(routing, SECRET)
    assert block(text, "virtual_ipaddress") == ["198.19.0.40/24 dev eth1"]
    assert "vrrp_script" not in text and "track_script" not in text
    full = ka.render(LB01, SECRET)
    head = [line for line in block(text, "vrrp_instance ocspool") if "{" not in line]
    assert head == [line for line in block(full, "vrrp_instance ocspool") if "{" not in line]
