"""WinRM connects by FQDN by default (`winrm: {connect_to: fqdn | address}`): a real
Windows certificate names the FQDN, not the address, and Kerberos needs the FQDN.
The stand-in here has the lab's certificate for a WinRM listener, naming only its
FQDN ("localhost", which resolves without DNS): by name it verifies, by address it
does not, as on a real host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from winrm_standin import StandIn, start_standin

from ocsscale.config.model import HostSpec, Pool
from ocsscale.errors import TransportError
from ocsscale.secrets import Secret
from ocsscale.transports.factory import winrm_target
from ocsscale.transports.winrm import WinRMHost
from ocsscale_lab import ca as labca
from ocsscale_lab.hostsvc import issue_host_cert

pytestmark = pytest.mark.timeout(120)


def _spec(fqdn: str | None, **transport: object) -> HostSpec:
    return HostSpec.model_validate(
        {
            "name": "win",
            **({"fqdn": fqdn} if fqdn else {}),
            "address": "127.0.0.1",
            "transport": {"kind": "winrm", "credentials": "w", **transport},
        }
    )


def test_the_fqdn_by_default_the_address_when_asked_or_when_there_is_none() -> None:
    assert winrm_target(_spec("win.lab.test")) == "win.lab.test"
    assert winrm_target(_spec("win.lab.test", connect_to="fqdn")) == "win.lab.test"
    assert winrm_target(_spec("win.lab.test", connect_to="address")) == "127.0.0.1"
    assert winrm_target(_spec(None)) == "127.0.0.1"


def test_the_pool_files_winrm_section_sets_every_host_that_does_not_say(
    tmp_path: Path,
) -> None:
    from ocsscale.config.loader import load_pool

    example = Path(__file__).resolve().parents[2] / "examples" / "one-armed.yaml"
    text = example.read_text()
    text = text.replace(
        "  - name: ocsfe02\n    fqdn: ocsfe02.contoso.com\n    address: 10.0.1.42\n"
        "    weight: 1\n    transport: {kind: winrm, credentials: ocs-admin}",
        "  - name: ocsfe02\n    fqdn: ocsfe02.contoso.com\n    address: 10.0.1.42\n"
        "    weight: 1\n    transport: {kind: winrm, credentials: ocs-admin, connect_to: fqdn}",
    )
    assert "connect_to: fqdn" in text
    (tmp_path / "pool.yaml").write_text(text + "\nwinrm: {connect_to: address}\n")
    pool: Pool = load_pool(tmp_path / "pool.yaml").pool
    assert pool.host("ocsfe01").transport.connect_to == "address"  # type: ignore[union-attr]
    assert winrm_target(pool.host("ocsfe01")) == "10.0.1.41"
    assert winrm_target(pool.host("ocsfe02")) == "ocsfe02.contoso.com"  # its own word wins
    (tmp_path / "pool.yaml").write_text(text)
    default = load_pool(tmp_path / "pool.yaml").pool
    assert winrm_target(default.host("ocsfe01")) == "ocsfe01.contoso.com"
    assert winrm_target(default.host("client01")) == "client01.contoso.com"


@pytest.fixture()
def fqdn_only(tmp_path: Path) -> Iterator[tuple[StandIn, Path]]:
    ca = labca.create_ca(tmp_path / "ca")
    cert = issue_host_cert(ca, tmp_path / "tls", "win-winrm", "localhost")
    standin = start_standin(
        tmp_path / "s",
        tls=(cert.cert, cert.key),
        auth="ntlm",
        extra=("--dns-server", "127.0.0.1:9"),
    )
    yield standin, ca.files.cert
    standin.stop()


def _host(standin: StandIn, ca: Path, target: str) -> WinRMHost:
    from winrm_standin import DOMAIN, PASSWORD, USER

    return WinRMHost(
        "win",
        target,
        port=standin.port,
        username=f"{DOMAIN}\\{USER}",
        password=Secret(PASSWORD, "test"),
        ca_bundle=str(ca),
    )


def test_by_fqdn_the_certificate_verifies_by_address_it_does_not(
    fqdn_only: tuple[StandIn, Path],
) -> None:
    standin, ca = fqdn_only
    by_name = _host(standin, ca, "localhost")
    try:
        assert by_name.versions()["powershell"] == "2.0"
    finally:
        by_name.close()
    by_address = _host(standin, ca, "127.0.0.1")
    try:
        with pytest.raises(TransportError, match="WinRM at 127.0.0.1") as caught:
            by_address.versions()
        assert "certificate" in str(caught.value).lower()
    finally:
        by_address.close()
