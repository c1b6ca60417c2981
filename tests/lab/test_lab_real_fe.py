"""What real OCS 2007 R2 front ends do that the stand-ins did not: TLS 1.0 with a
SHA-1 certificate (`--fault FE:tls10`), and ports that are not always there.

One lab: ocsfe01 speaks only TLS 1.0 with a SHA-1 signed certificate, as
Windows Server 2003/2008 does; ocsfe02 has no Monitoring Server, so nothing
listens on 5069 (`--fault FE:close:5069`). Each test runs on a copy of the
lab's pool file listing only the front end it is about.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RUN_ID, RunningLab, bring_up
from .fe_support import (
    assert_untouched,
    entries,
    error_line,
    fe_pool,
    hosts_files,
    output,
    rollback_leaves_nothing,
    tool,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def real_fe_lab() -> Iterator[RunningLab]:
    yield from bring_up(
        f"trf{RUN_ID}", "one-armed", 2, faults=["ocsfe01:tls10", "ocsfe02:close:5069"]
    )


def test_tls10_front_end_is_refused_naming_the_setting(
    real_fe_lab: RunningLab, tmp_path: Path
) -> None:
    lab = real_fe_lab
    pool = fe_pool(lab, tmp_path, "ocsfe01")
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--through", "configure-fe", "--yes")
    assert result.returncode == 1, output(result)
    error = error_line(output(result))
    assert "configure-fe/gate[ocsfe01]" in error
    assert "cert: cannot read the certificate: TLS handshake with" in error
    assert "service.5061: port 5061 (sip-tls) does not answer" in error
    assert "the server will speak only TLS 1.0 with " in error
    assert "`legacy_tls` would allow it" in error
    assert "set `legacy_tls: true` on this server in the pool file" in error
    rollback_leaves_nothing(lab, pool, before)


def test_tls10_front_end_passes_with_legacy_tls_and_says_what_was_negotiated(
    real_fe_lab: RunningLab, tmp_path: Path
) -> None:
    lab = real_fe_lab
    pool = fe_pool(lab, tmp_path, "ocsfe01", legacy_tls=True)
    checked = tool(lab, pool, "check")
    assert checked.returncode == 0, output(checked)
    assert "warning: legacy_tls" in checked.stdout
    assert "certificates from ocsfe01 " in checked.stdout

    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--through", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 0, output(result)
    done = {e["step_id"]: e["evidence"] for e in entries(pool) if e["status"] == "done"}
    gate = done["configure-fe/gate[ocsfe01]"]["findings"]
    assert all(f["ok"] for f in gate), gate
    trust = next(f for f in gate if f["check"] == "cert.trust")
    assert "(TLSv1, " in trust["message"] and ", legacy_tls on)" in trust["message"]
    for client in ("client01", "client02"):
        probe = done[f"validate-fe/probe[ocsfe01@{client}]"]
        tls_ports = [p for p in probe["ports"] if p["kind"] in ("sip-tls", "https", "tls")]
        assert tls_ports, probe["ports"]
        for port in tls_ports:
            assert port["ok"], port
            assert port["tls"].startswith("TLSv1, ") and port["tls"].endswith("legacy_tls on")
            assert port["evidence"]["tls_version"] == "TLSv1"
    rollback_leaves_nothing(lab, pool, before)


def test_an_optional_port_that_does_not_listen_never_fails_the_run(
    real_fe_lab: RunningLab, tmp_path: Path
) -> None:
    lab = real_fe_lab
    pool = fe_pool(lab, tmp_path, "ocsfe02", ports={8404: "absent"})
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--through", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 0, output(result)
    text = output(result)
    assert "i port 5069 (banner): optional port, nothing listens: " in text
    assert "(it listens only when a Monitoring Server is deployed)" in text
    assert "i port 8404 (banner): not probed: absent on this pool" in text
    done = {e["step_id"]: e["evidence"] for e in entries(pool) if e["status"] == "done"}
    for client in ("client01", "client02"):
        probe = done[f"validate-fe/probe[ocsfe02@{client}]"]
        assert probe["not_listening"] == [5069] and probe["absent"] == [8404], probe
        ports = {p["port"]: p for p in probe["ports"]}
        assert ports[5069]["ok"] and ports[5069]["requirement"] == "optional"
        # the other optional ports listen in the lab, and are held to the same proof
        assert ports[5060]["answered_by"] == ports[80]["answered_by"] == "ocsfe02"
    rollback_leaves_nothing(lab, pool, before)


def test_a_port_the_pool_file_requires_fails_the_run_when_closed(
    real_fe_lab: RunningLab, tmp_path: Path
) -> None:
    lab = real_fe_lab
    pool = fe_pool(lab, tmp_path, "ocsfe02", ports={5069: "required"})
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--phase", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 1, output(result)
    error = error_line(output(result))
    assert "validate-fe/probe[ocsfe02@client01]" in error
    assert "client01: 1 of 10 required ports failed through ocspool.lab.test to ocsfe02" in error
    assert "port 5069 (banner): connect to 198.18.0.42:5069" in error
    assert_untouched(lab, before)  # the phase's cleanup removed the pins
    rollback_leaves_nothing(lab, pool, before)
