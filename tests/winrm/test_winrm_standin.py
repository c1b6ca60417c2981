"""The stand-in at the WS-Management level, driven by pywinrm's own Protocol."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import xmltodict
from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError
from winrm.protocol import Protocol
from winrm_standin import DOMAIN, PASSWORD, USER, Pki, StandIn

from ocsscale_lab.winrm_host.server import StandInServer, User
from ocsscale_lab.winrm_host.wsman import CODE_SHELL_NOT_FOUND, CommandOutcome, WsmanService

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def protocol(https_standin: StandIn, pki: Pki) -> Iterator[Protocol]:
    proto = Protocol(
        https_standin.url,
        transport="basic",
        username=f"{DOMAIN}\\{USER}",
        password=PASSWORD,
        ca_trust_path=str(pki.ca_cert),
        proxy=None,
    )
    yield proto
    proto.transport.close_session()


def _run(proto: Protocol, command: str) -> tuple[bytes, bytes, int]:
    shell = proto.open_shell()
    try:
        command_id = proto.run_command(shell, command)
        result = proto.get_command_output(shell, command_id)
        proto.cleanup_command(shell, command_id)
        return result
    finally:
        proto.close_shell(shell, close_session=False)


def test_cmd_ipconfig_flushdns_and_an_unknown_command(
    protocol: Protocol, https_standin: StandIn
) -> None:
    out, err, code = _run(protocol, "ipconfig /flushdns")
    assert code == 0 and b"Successfully flushed the DNS Resolver Cache." in out
    assert (https_standin.sandbox / "dns.log").read_text().strip().endswith(" flush")

    out, err, code = _run(protocol, "dir C:\\")
    assert code == 1 and b"command not supported: 'dir'" in err and out == b""


def test_soap_faults_for_unknown_shells_and_actions(protocol: Protocol) -> None:
    shell = protocol.open_shell()
    protocol.close_shell(shell, close_session=False)
    with pytest.raises(WSManFaultError) as caught:
        protocol.run_command(shell, "ipconfig /flushdns")
    assert caught.value.wsman_fault_code == CODE_SHELL_NOT_FOUND
    assert "shell was not found" in caught.value.reason

    request = {
        "env:Envelope": protocol.build_wsman_header(
            action="http://schemas.xmlsoap.org/ws/2004/09/transfer/Get",
            resource_uri="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd",
        )
    }
    request["env:Envelope"]["env:Body"] = {}
    with pytest.raises(WSManFaultError) as caught:
        protocol.send_message(xmltodict.unparse(request))
    assert caught.value.fault_subcode == "a:ActionNotSupported"


def test_a_slow_command_is_awaited_through_receive_timeouts() -> None:
    release = threading.Event()
    seen: list[str] = []

    def slow(command_line: str) -> CommandOutcome:
        seen.append(command_line)
        release.wait(30)
        return CommandOutcome(b"done\r\n", b"", 3)

    server = StandInServer(
        ("127.0.0.1", 0),
        service=None,
        users=[User("", "u", "p")],
        auth_methods=frozenset({"basic"}),
        allow_unencrypted=True,
    )
    url = f"http://127.0.0.1:{server.server_address[1]}/wsman"
    server.service = WsmanService(slow, url)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        proto = Protocol(
            url,
            transport="basic",
            username="u",
            password="p",
            operation_timeout_sec=1,
            read_timeout_sec=5,
            proxy=None,
            ca_trust_path=None,
        )
        shell = proto.open_shell()
        command_id = proto.run_command(shell, "slow thing")
        receives = 0
        done = False
        while not done:
            try:
                out, err, code, done = proto.get_command_output_raw(shell, command_id)
            except WinRMOperationTimeoutError:  # WS-Man's way of saying "still running"
                receives += 1
                if receives == 2:
                    release.set()
        assert (out, code, receives) == (b"done\r\n", 3, 2)
        assert seen == ["slow thing"]
        proto.cleanup_command(shell, command_id)
        proto.close_shell(shell)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
