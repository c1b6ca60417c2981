"""2003-era Windows in one lab: ocsfe01 is a Windows Server 2003 front end without the
AES update (`--fault ocsfe01:tls10-3des`: TLS 1.0 with DES-CBC3-SHA only, SHA-1
certificate), and client02's registry keeps its hosts file elsewhere
(`--fault client02:hosts-moved`: DataBasePath = %SystemDrive%\\NetConfig).

validate-fe fails naming the cipher and `legacy_tls`; with `legacy_tls` on ocsfe01 it
passes, the findings show the cipher, and client02's pins went to the file its
registry names (its probes resolve the pool through it). WinRM reaches client02 by
FQDN (its certificate names nothing else); by address it fails validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RUN_ID, RunningLab, bring_up
from .fe_support import (
    entries,
    error_line,
    fe_pool,
    hosts_files,
    output,
    pool_copy,
    rollback_leaves_nothing,
    tool,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab_3des() -> Iterator[RunningLab]:
    yield from bring_up(
        f"t3d{RUN_ID}", "one-armed", 1, faults=["ocsfe01:tls10-3des", "client02:hosts-moved"]
    )


def test_3des_front_end_fails_validate_fe_naming_the_cipher(
    lab_3des: RunningLab, tmp_path: Path
) -> None:
    lab = lab_3des
    pool = fe_pool(lab, tmp_path, "ocsfe01")
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--through", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 1, output(result)
    error = error_line(output(result))
    assert "configure-fe/gate[ocsfe01]" in error
    assert "the server will speak only TLS 1.0 with DES-CBC3-SHA" in error
    assert "`legacy_tls` would allow it" in error
    rollback_leaves_nothing(lab, pool, before)


def test_3des_front_end_passes_validate_fe_with_legacy_tls_showing_the_cipher(
    lab_3des: RunningLab, tmp_path: Path
) -> None:
    lab = lab_3des
    pool = fe_pool(lab, tmp_path, "ocsfe01", legacy_tls=True)
    before = hosts_files(lab)
    result = tool(lab, pool, "run", "--through", "validate-fe", "--yes", "--no-hold")
    assert result.returncode == 0, output(result)
    done = {e["step_id"]: e["evidence"] for e in entries(pool) if e["status"] == "done"}
    gate = done["configure-fe/gate[ocsfe01]"]["findings"]
    assert all(f["ok"] for f in gate), gate
    trust = next(f for f in gate if f["check"] == "cert.trust")
    assert "(TLSv1, DES-CBC3-SHA, legacy_tls on)" in trust["message"], trust
    probes = [k for k in done if k.startswith("validate-fe/probe[ocsfe01@")]
    assert probes, sorted(done)
    for key in probes:
        tls_ports = [p for p in done[key]["ports"] if p["kind"] in ("sip-tls", "https", "tls")]
        assert tls_ports, done[key]["ports"]
        for port in tls_ports:
            assert port["ok"], port
            assert port["tls"] == "TLSv1, DES-CBC3-SHA, legacy_tls on", port
            assert port["evidence"]["cipher"] == "DES-CBC3-SHA"
    # client02 resolved the pool name through the pin in C:\\NetConfig\\hosts
    pin = done["validate-fe/pin[ocsfe01@client02]"]
    assert pin["path"] == "C:\\NetConfig\\hosts", pin
    rollback_leaves_nothing(lab, pool, before)


def test_winrm_by_address_fails_certificate_validation_by_fqdn_it_works(
    lab_3des: RunningLab, tmp_path: Path
) -> None:
    lab = lab_3des
    by_name = pool_copy(lab, tmp_path / "fqdn", test_clients=["client02"])
    result = tool(lab, by_name, "run", "--phase", "preflight", "--yes")
    assert result.returncode == 0, output(result)
    by_address = pool_copy(lab, tmp_path / "address", test_clients=["client02"])
    text = by_address.read_text()
    by_address.write_text(text + "\nwinrm: {connect_to: address}\n")
    checked = tool(lab, by_address, "check")
    assert "warning: winrm: client02 is reached by address" in checked.stdout, output(checked)
    result = tool(lab, by_address, "run", "--phase", "preflight", "--yes")
    assert result.returncode == 1, output(result)
    error = error_line(output(result))
    assert "client02" in error and "certificate" in error.lower(), error
