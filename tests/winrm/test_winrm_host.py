"""WinRMHost end to end: the real pywinrm client against the WS-Management stand-in."""

from __future__ import annotations

import codecs
import os
import socket

import pytest
from winrm_standin import PASSWORD, Pki, StandIn, TinyDns, host_for

from ocsscale.errors import CommandFailed, TransportError
from ocsscale.secrets import Secret
from ocsscale.transports.commands import PsScript, ShCommand
from ocsscale.transports.winrm import WINDOWS_HOSTS_FILE, WinRMHost
from ocsscale.transports.winrm_scripts import SAFE_COMMAND_LINE, operation_script, plan_script

pytestmark = pytest.mark.timeout(120)


def test_https_basic_reads_the_crlf_hosts_file_and_writes_utf16_in_place(
    https_standin: StandIn, pki: Pki
) -> None:
    host = host_for(https_standin, auth="basic", ca=pki.ca_cert)
    try:
        original = host.read_file(host.hosts_file)
        assert original == https_standin.hosts_file.read_bytes()
        assert b"\r\n" in original and b"\n" not in original.replace(b"\r\n", b"")

        inode = os.stat(https_standin.hosts_file).st_ino
        utf16 = codecs.BOM_UTF16_LE + "198.18.0.10 pool.contoso.com\r\n# \u00e9t\u00e9\r\n".encode(
            "utf-16-le"
        )
        backup = host.write_file(WINDOWS_HOSTS_FILE, utf16, backup_suffix=".ocsscale-bak")

        assert backup == r"C:\Windows\System32\drivers\etc\hosts.ocsscale-bak"
        assert host.read_file(WINDOWS_HOSTS_FILE) == utf16
        assert https_standin.hosts_file.read_bytes() == utf16
        assert os.stat(https_standin.hosts_file).st_ino == inode  # truncated, not replaced
        backup_file = https_standin.hosts_file.with_name("hosts.ocsscale-bak")
        assert backup_file.read_bytes() == original
        assert host.remove_file(backup) is True and not backup_file.exists()
        assert host.remove_file(backup) is False  # safe to repeat

        assert host.write_file(WINDOWS_HOSTS_FILE, original) is None
        assert https_standin.hosts_file.read_bytes() == original
    finally:
        host.close()


def test_ntlm_over_http_encrypts_every_message(http_ntlm_standin: StandIn) -> None:
    # The stand-in refuses plain SOAP over HTTP, so success means pywinrm sealed each message.
    host = host_for(http_ntlm_standin, auth="ntlm")
    try:
        data = b"127.0.0.1 localhost\r\n198.18.1.41 fe1.contoso.com\r\n"
        host.write_file(host.hosts_file, data)
        assert host.read_file(host.hosts_file) == data
        assert host.resolve("FE1.contoso.com") == ["198.18.1.41"]
        assert host._protocol is not None and host._protocol.transport.encryption is not None
    finally:
        host.close()


def test_ntlm_over_https_with_channel_binding(https_standin: StandIn, pki: Pki) -> None:
    host = host_for(https_standin, auth="ntlm", ca=pki.ca_cert)
    try:
        assert host.read_file(host.hosts_file) == https_standin.hosts_file.read_bytes()
    finally:
        host.close()


def test_a_hosts_file_far_over_the_command_line_limit_is_uploaded_in_chunks(
    http_ntlm_standin: StandIn,
) -> None:
    lines = [f"198.18.{i // 250}.{i % 250 + 1} client{i}.contoso.com\r\n" for i in range(1500)]
    big = "".join(lines).encode("ascii")
    script = operation_script(
        "write_file", Path=WINDOWS_HOSTS_FILE, Data="x" * len(big) * 2, BackupSuffix=".bak"
    )
    assert plan_script(script.render()).chunked  # the path this test means to exercise
    host = host_for(http_ntlm_standin, auth="ntlm")
    try:
        host.write_file(host.hosts_file, big, backup_suffix=".bak")
        assert http_ntlm_standin.hosts_file.read_bytes() == big
        assert host.read_file(host.hosts_file) == big  # a large answer comes back whole
        assert host.resolve("client1499.contoso.com") == ["198.18.5.250"]
        # The upload file is deleted once read: nothing stays in %TEMP%.
        assert list((http_ntlm_standin.sandbox / "Windows" / "Temp").iterdir()) == []
    finally:
        host.close()


def test_the_stand_in_refuses_a_command_line_over_the_cmd_limit(
    http_ntlm_standin: StandIn,
) -> None:
    # What an unchunked long script would meet on Windows: proves the limit is real here.
    host = host_for(http_ntlm_standin, auth="ntlm")
    try:
        with host._library_errors("long line"):
            code, _, err = host._run_in_shell(host._shell(), "echo " + "A" * 8200, 1e12)
        assert code == 1 and "too long" in err
        assert SAFE_COMMAND_LINE < 8191
    finally:
        host.close()


def test_resolve_uses_the_hosts_file_then_dns_with_a_cache_that_flush_clears(
    https_standin: StandIn, pki: Pki, tiny_dns: tuple[TinyDns, tuple[str, int]]
) -> None:
    dns_server, _ = tiny_dns
    dns_server.records["pool.contoso.com"] = "198.18.1.40"
    host = host_for(https_standin, auth="basic", ca=pki.ca_cert)
    try:
        assert host.resolve("pool.contoso.com") == ["198.18.1.40"]
        assert host.resolve("nowhere.contoso.com") == []

        dns_server.records["pool.contoso.com"] = "198.18.1.41"
        assert host.resolve("pool.contoso.com") == ["198.18.1.40"]  # still cached
        host.flush_dns()
        assert host.resolve("pool.contoso.com") == ["198.18.1.41"]

        pinned = host.read_file(host.hosts_file) + b"198.18.1.42 pool.contoso.com # pin\r\n"
        host.write_file(host.hosts_file, pinned)
        assert host.resolve("pool.contoso.com") == ["198.18.1.42"]  # the hosts file wins
        assert (https_standin.sandbox / "dns.log").read_text().count(" flush") == 1
    finally:
        host.close()


def test_tcp_check_connects_from_the_host(http_ntlm_standin: StandIn, tcp_listener: int) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    host = host_for(http_ntlm_standin, auth="ntlm")
    try:
        assert host.tcp_check("127.0.0.1", tcp_listener, timeout=5) is True
        assert host.tcp_check("127.0.0.1", closed_port, timeout=5) is False
        # every port of a probe in one script, each with its own answer
        found = host.tcp_checks("127.0.0.1", [tcp_listener, closed_port], timeout=5)
        assert found[tcp_listener] == (True, "")
        assert found[closed_port][0] is False and "refused" in found[closed_port][1]
        with pytest.raises(TransportError, match="tcp_check"):
            host.connect_tcp("127.0.0.1", tcp_listener)
    finally:
        host.close()


def test_restart_services_records_the_restart(https_standin: StandIn, pki: Pki) -> None:
    host = host_for(https_standin, auth="basic", ca=pki.ca_cert)
    try:
        restarted = host.restart_services(["RTCSRV", "winrm"])
        assert [s["name"] for s in restarted] == ["RTCSRV", "WinRM"]
        log = (https_standin.sandbox / "services.log").read_text().splitlines()
        assert [line.split(" ", 1)[1] for line in log] == [
            "stop RTCSRV",
            "stop WinRM",
            "start WinRM",
            "start RTCSRV",
        ]

        with pytest.raises(CommandFailed, match="Cannot find any service with service name 'Nope'"):
            host.restart_services(["Nope"])
        with pytest.raises(TransportError, match="not a plain service name"):
            host.restart_services(["RTC*"])
    finally:
        host.close()


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_a_wrong_password_is_a_clear_error_without_the_password(
    https_standin: StandIn, pki: Pki, auth: str
) -> None:
    wrong = "Wr0ng-but-secret!"
    host = host_for(https_standin, auth=auth, ca=pki.ca_cert, password=Secret(wrong, "test"))
    with pytest.raises(TransportError) as caught:
        host.read_file(host.hosts_file)
    message = str(caught.value)
    assert "rejected the credentials of LAB\\admin" in message
    assert wrong not in message and PASSWORD not in message


def test_ntlm_wrong_password_over_http(http_ntlm_standin: StandIn) -> None:
    host = host_for(http_ntlm_standin, auth="ntlm", password=Secret("nope-nope", "test"))
    with pytest.raises(TransportError, match="rejected the credentials") as caught:
        host.flush_dns()
    assert "nope-nope" not in str(caught.value)


def test_an_untrusted_certificate_is_refused(rogue_standin: StandIn, pki: Pki) -> None:
    host = host_for(rogue_standin, auth="basic", ca=pki.ca_cert)
    with pytest.raises(TransportError, match="TLS with WinRM at 127.0.0.1") as caught:
        host.read_file(host.hosts_file)
    assert PASSWORD not in str(caught.value)
    # Only an explicit opt-out connects to it.
    unchecked = host_for(rogue_standin, auth="basic", verify_tls=False)
    try:
        assert unchecked.read_file(unchecked.hosts_file).startswith(b"# Copyright")
    finally:
        unchecked.close()


def test_an_unknown_command_is_a_clear_error(https_standin: StandIn, pki: Pki) -> None:
    host = host_for(https_standin, auth="basic", ca=pki.ca_cert)
    token = Secret("tok-3141592", "env:TOKEN")
    try:
        script = PsScript("Get-Process -Name $Name", {"Name": token})
        with pytest.raises(CommandFailed, match="not one of the WinRM transport's templates"):
            host.run(script)
        result = host.run(script, check=False)
        assert result.exit_status == 1
        assert "tok-3141592" not in result.command and "********" in result.command
        with pytest.raises(CommandFailed, match="Could not find file"):
            host.read_file(r"C:\Windows\System32\drivers\etc\missing")
    finally:
        host.close()


def test_a_posix_command_is_refused_on_windows() -> None:
    host = WinRMHost("w", "127.0.0.1", port=1, username="u", password=Secret("p", "test"))
    with pytest.raises(TransportError, match="runs PowerShell"):
        host.run(ShCommand.of("ls", "/"))


def test_basic_over_plain_http_is_refused_before_connecting() -> None:
    with pytest.raises(TransportError, match="in clear"):
        WinRMHost(
            "w",
            "127.0.0.1",
            port=1,
            scheme="http",
            auth="basic",
            username="u",
            password=Secret("p", "test"),
        )


def test_an_unreachable_endpoint_is_a_clear_error() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    host = WinRMHost(
        "w",
        "127.0.0.1",
        port=port,
        scheme="http",
        auth="ntlm",
        username="u",
        password=Secret("p", "test"),
    )
    with pytest.raises(TransportError) as refused:
        host.flush_dns()
    # in the tool's words: no urllib3 repr (HTTPConnectionPool, object at 0x..., Max retries)
    assert refused.value.message == f"w: WinRM at 127.0.0.1:{port} refused the connection"


def test_an_endpoint_that_does_not_answer_is_a_clear_error() -> None:
    # a listener whose backlog is full and that never accepts: the connect times out
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):  # fill the accept queue (bounded)
                s = socket.socket()
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", port))
                fillers.append(s)
            host = WinRMHost(
                "w",
                "127.0.0.1",
                port=port,
                scheme="http",
                auth="ntlm",
                username="u",
                password=Secret("p", "test"),
                operation_timeout=1,
            )
            with pytest.raises(TransportError) as silent:
                host.flush_dns()
        finally:
            for s in fillers:
                s.close()
    text = silent.value.message
    assert text.startswith(f"w: WinRM at 127.0.0.1:{port} ")
    assert "0x" not in text and "Pool" not in text and "Max retries" not in text, text


def test_the_process_writes_its_pidfile_and_stops_on_sigterm(http_ntlm_standin: StandIn) -> None:
    assert int(http_ntlm_standin.pidfile.read_text()) == http_ntlm_standin.process.pid
    http_ntlm_standin.stop()
    assert http_ntlm_standin.process.returncode == 0
    assert not http_ntlm_standin.pidfile.exists()


def test_one_shell_serves_every_operation_and_a_forgotten_one_is_replaced(
    http_ntlm_standin: StandIn,
) -> None:
    host = host_for(http_ntlm_standin, auth="ntlm")
    try:
        original = host.read_file(host.hosts_file)
        shell = host._shell_id
        assert shell is not None
        host.flush_dns()
        assert host.read_file(host.hosts_file) == original
        assert host._shell_id == shell  # kept across operations, not one per script
        # the host forgets it (WinRM's idle timeout, a service restart): the next
        # operation, which has not started, runs in a new shell
        assert host._protocol is not None
        host._protocol.close_shell(shell, close_session=False)
        assert host.read_file(host.hosts_file) == original
        assert host._shell_id not in (None, shell)
    finally:
        host.close()
    assert host._shell_id is None
