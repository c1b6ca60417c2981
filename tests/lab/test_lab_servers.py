"""The one-armed lab's real servers, reached from inside lab namespaces.

Every test that sends lab traffic does it from a lab namespace (RunningLab.inside
checks the 198.18.0.0/15 blackhole route first).
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import paramiko
import pytest

from ocsscale.config.profiles import load_profile
from ocsscale_lab import hostsvc, network, services, system
from ocsscale_lab.dns import TSIG_NAME
from ocsscale_lab.poolfile import tsig_secret_file
from ocsscale_lab.topology import POOL_FQDN

from .conftest import RunningLab

pytestmark = pytest.mark.lab
PROFILE = load_profile("ocs2007r2")
DNS_SERVER = "198.18.0.53"


def _ssh(lab: RunningLab, host: str, known_hosts: Path | None = None) -> paramiko.SSHClient:
    """An SSH client opened from the admin namespace, strict host-key checking."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts or lab.state.ssh_dir / "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    address = lab.address(host)
    sock = lab.inside("admin", lambda: socket.create_connection((address, 22), timeout=10))
    key = paramiko.Ed25519Key.from_private_key_file(str(lab.state.ssh_dir / "id_ed25519"))
    client.connect(
        address, username="root", pkey=key, sock=sock, timeout=10,
        allow_agent=False, look_for_keys=False,
    )  # fmt: skip
    return client


def _run(client: paramiko.SSHClient, command: str) -> tuple[int, str]:
    _, stdout, stderr = client.exec_command(command, timeout=30)
    out = stdout.read().decode()
    return stdout.channel.recv_exit_status(), out + stderr.read().decode()


def test_blackhole_route_stands_while_a_lab_is_up(one_armed_lab: RunningLab) -> None:
    assert network.blackhole_present()


def test_sshd_on_every_linux_host_with_lab_known_hosts(one_armed_lab: RunningLab) -> None:
    lab = one_armed_lab
    for host in [h for h in lab.topo.hosts if h.runs_sshd]:
        client = _ssh(lab, host.name)
        try:
            status, out = _run(client, "cat /etc/hosts /etc/resolv.conf")
        finally:
            client.close()
        # The session sees the host's own files (bind-mounted by `ip netns exec`).
        assert status == 0
        assert f"{host.address}\t{host.fqdn}" in out
        assert f"nameserver {DNS_SERVER}" in out


def test_unknown_host_key_is_rejected(one_armed_lab: RunningLab, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException):
        _ssh(one_armed_lab, "ocsfe01", known_hosts=empty)


def test_password_login_is_refused(one_armed_lab: RunningLab) -> None:
    lab = one_armed_lab
    sock = lab.inside("admin", lambda: socket.create_connection((lab.address("lb01"), 22), 10))
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.BadAuthenticationType):
            transport.auth_password("root", "anything")
    finally:
        transport.close()


def _query(lab: RunningLab, name: str, rdtype: str) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    return lab.inside("client01", lambda: dns.query.udp(q, DNS_SERVER, timeout=5))


def test_bind_answers_as_before_the_migration(one_armed_lab: RunningLab) -> None:
    answer = _query(one_armed_lab, POOL_FQDN, "A")
    assert [r.address for r in answer.answer[0]] == ["198.18.0.30"]
    srv = _query(one_armed_lab, "_sipinternaltls._tcp.lab.test", "SRV").answer[0][0]
    assert (srv.port, srv.target.to_text()) == (5061, "ocsfe00.lab.test.")  # the legacy FE
    ptr = _query(one_armed_lab, "41.0.18.198.in-addr.arpa", "PTR").answer[0][0]
    assert ptr.target.to_text() == "ocsfe01.lab.test."


def _update(lab: RunningLab, keyring: dict | None, value: str) -> int:
    update = dns.update.UpdateMessage("lab.test", keyring=keyring, keyalgorithm="hmac-sha256")
    update.replace("tsigtest", 60, "TXT", f'"{value}"')
    response = lab.inside("admin", lambda: dns.query.tcp(update, DNS_SERVER, timeout=5))
    return response.rcode()


def test_bind_takes_tsig_signed_updates_only(one_armed_lab: RunningLab) -> None:
    lab = one_armed_lab
    secret = tsig_secret_file(lab.state).read_text().strip()
    assert tsig_secret_file(lab.state).stat().st_mode & 0o077 == 0
    good = dns.tsigkeyring.from_text({TSIG_NAME: secret})
    wrong = dns.tsigkeyring.from_text({TSIG_NAME: "c2VjcmV0IG5vdCBrbm93bg=="})

    assert _update(lab, None, "unsigned") == dns.rcode.REFUSED
    with pytest.raises(dns.tsig.PeerBadSignature):
        _update(lab, wrong, "wrong-key")
    assert _update(lab, good, "signed") == dns.rcode.NOERROR
    txt = _query(lab, "tsigtest.lab.test", "TXT").answer[0][0]
    assert txt.strings == (b"signed",)


def _talk(address: str, port: int, ca: Path) -> str:
    """One exchange with a pool-member port, the way its protocol wants it."""
    sock = socket.create_connection((address, port), timeout=10)
    if port in PROFILE.tls_ports:
        # Chain checked against the lab CA; the name is the walkthrough's (subject =
        # pool FQDN, SANs = the FE and sip.<domain>), which OpenSSL's SAN-only
        # hostname match does not accept for the pool FQDN, so the CN is checked below.
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.check_hostname = False
        sock = ctx.wrap_socket(sock, server_hostname=POOL_FQDN)
        subject = dict(x[0] for x in sock.getpeercert()["subject"])
        assert subject["commonName"] == POOL_FQDN
    sip = (PROFILE.sip_ports.tls, PROFILE.sip_ports.tcp)
    try:
        if port in sip:
            sock.sendall(_OPTIONS.encode())
            end = b"\r\n\r\n"
        elif port in PROFILE.https_ports:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: {POOL_FQDN}\r\n\r\n".encode())
            end = b"pool-resolved="  # the body's second line: the name came before it
        else:
            end = b"\n"  # a one-line banner
        data = b""
        while end not in data and (chunk := sock.recv(4096)):
            data += chunk
        return data.decode(errors="replace")
    finally:
        sock.close()


_OPTIONS = (
    f"OPTIONS sip:{POOL_FQDN} SIP/2.0\r\n"
    "Via: SIP/2.0/TCP 198.18.0.101;branch=z9hG4bK1\r\n"
    "From: <sip:probe@lab.test>;tag=1\r\nTo: <sip:probe@lab.test>\r\n"
    "Call-ID: lab-test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def test_pool_members_answer_on_every_port_from_a_client(one_armed_lab: RunningLab) -> None:
    lab = one_armed_lab
    ca = lab.state.ca_dir / "ca.pem"
    for fe in [h for h in lab.topo.hosts if h.runs_poolmember]:
        for port in PROFILE.ports:
            answer = lab.inside("client01", lambda a=fe.address, p=port: _talk(a, p, ca))
            assert fe.name in answer, f"{fe.name}:{port} answered {answer[:120]!r}"


def test_directory_reachable_on_135_from_every_fe(one_armed_lab: RunningLab) -> None:
    lab = one_armed_lab
    dc = lab.address("dc01")
    for fe in [h for h in lab.topo.hosts if h.runs_poolmember]:
        line = lab.inside(fe.name, lambda: _read_line(dc, 135))
        assert line.startswith("ocsscale-directory server=dc01")
        assert f"peer={fe.address}:" in line  # no NAT between FEs and the directory


def _read_line(address: str, port: int) -> str:
    with socket.create_connection((address, port), timeout=10) as sock:
        return sock.makefile("r").readline().strip()


def test_service_restart_over_ssh_picks_up_a_hosts_file_pin(one_armed_lab: RunningLab) -> None:
    """The pool's service_command restarts the pool member, which re-resolves the pool FQDN."""
    lab = one_armed_lab
    fe = lab.topo.host("ocsfe01")
    service = services.load(lab.state.directory, fe.name, hostsvc.POOLMEMBER)
    old_pid = services.pid_of(lab.state.directory, service)
    assert old_pid is not None
    restart = hostsvc.service_command(lab.state, fe).format(service=hostsvc.POOLMEMBER)
    client = _ssh(lab, fe.name)
    try:
        original = _run(client, "cat /etc/hosts")[1]
        pin = f"{fe.address}\t{POOL_FQDN}\n"
        # In place (truncate + write): /etc/hosts is a bind mount in the session.
        assert _run(client, f"printf '%s' '{original + pin}' > /etc/hosts")[0] == 0
        status, out = _run(client, restart)
        assert status == 0, out
        banner = lab.inside("client01", lambda: _read_line(fe.address, 5065))
        assert f"pool-resolved={fe.address}" in banner
        assert _run(client, f"printf '%s' '{original}' > /etc/hosts")[0] == 0
        assert _run(client, restart)[0] == 0
        banner = lab.inside("client01", lambda: _read_line(fe.address, 5065))
        assert "pool-resolved=198.18.0.30" in banner
        assert _run(client, f"{restart.rsplit(' ', 2)[0]} restart no-such-service")[0] == 2
    finally:
        client.close()
    new_pid = services.pid_of(lab.state.directory, service)
    assert new_pid is not None and new_pid != old_pid
    deadline = time.monotonic() + 10
    while system.alive(old_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not system.alive(old_pid)


def test_windows_client_speaks_winrm_over_https_with_ntlm(one_armed_lab: RunningLab) -> None:
    import winrm
    from winrm.exceptions import InvalidCredentialsError

    lab = one_armed_lab
    password = hostsvc.windows_password_file(lab.state).read_text().strip()
    # by name: the lab's certificate, like a real Windows host's, names the FQDN
    url = f"https://{lab.topo.host('client02').fqdn}:{hostsvc.WINRM_PORT}/wsman"

    def shell(pw: str) -> str:
        protocol = winrm.Protocol(
            url, transport="ntlm", username=hostsvc.WINDOWS_LOGON, password=pw,
            server_cert_validation="validate", ca_trust_path=str(lab.state.ca_dir / "ca.pem"),
        )  # fmt: skip
        shell_id = protocol.open_shell()
        protocol.close_shell(shell_id)
        return shell_id

    assert lab.inside("admin", lambda: shell(password))
    with pytest.raises(InvalidCredentialsError):
        lab.inside("admin", lambda: shell(password + "x"))
