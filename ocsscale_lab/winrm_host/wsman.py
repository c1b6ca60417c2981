"""The WS-Management remote-shell operations, as pywinrm sends them ([MS-WSMV]).

Create opens a shell, Command starts a command in it (in a thread, so a
long command does not hold the HTTP connection), Receive returns its output
once done or answers with the WS-Man operation-timeout fault that clients
treat as "still running, ask again", Signal terminates it, Delete closes the
shell. Shells belong to the user that created them. Anything else is a SOAP
fault, as Windows answers.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
}
SHELL = NS["rsp"]
CMD_RESOURCE = SHELL + "/cmd"
TRANSFER = NS["x"]
ACTION_CREATE = TRANSFER + "/Create"
ACTION_DELETE = TRANSFER + "/Delete"
ACTION_COMMAND = SHELL + "/Command"
ACTION_RECEIVE = SHELL + "/Receive"
ACTION_SIGNAL = SHELL + "/Signal"
SIGNAL_TERMINATE = SHELL + "/signal/terminate"
SIGNAL_CTRL_C = SHELL + "/signal/ctrl_c"
STATE_DONE = SHELL + "/CommandState/Done"
STATE_RUNNING = SHELL + "/CommandState/Running"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

# [MS-WSMV] error codes Windows puts in the WSManFault Code attribute.
CODE_TIMED_OUT = 2150858793
CODE_SHELL_NOT_FOUND = 2150858843
CODE_ACTION_NOT_SUPPORTED = 2150858753
CODE_BAD_REQUEST = 2150858817
MAX_RECEIVE_WAIT = 60.0


@dataclass(frozen=True)
class CommandOutcome:
    stdout: bytes
    stderr: bytes
    exit_code: int


Executor = Callable[[str], CommandOutcome]


class WsmanFault(Exception):
    def __init__(self, subcode: str, reason: str, code: int, sender: bool = True) -> None:
        super().__init__(reason)
        self.subcode = subcode
        self.reason = reason
        self.code = code
        self.sender = sender


@dataclass
class RunningCommand:
    id: str
    command_line: str
    done: threading.Event = field(default_factory=threading.Event)
    outcome: CommandOutcome | None = None
    signalled: str | None = None


@dataclass
class Shell:
    id: str
    owner: str
    commands: dict[str, RunningCommand] = field(default_factory=dict)


class WsmanService:
    def __init__(self, executor: Executor, endpoint: str) -> None:
        self._executor = executor
        self._endpoint = endpoint
        self._shells: dict[str, Shell] = {}
        self._lock = threading.Lock()

    def handle(self, body: bytes, user: str) -> tuple[int, bytes]:
        """(HTTP status, SOAP response) for one request body."""
        relates_to = ""
        try:
            try:
                root = ET.fromstring(body)
            except ET.ParseError as exc:
                raise WsmanFault(
                    "w:SchemaValidationError", f"malformed XML: {exc}", CODE_BAD_REQUEST
                ) from None
            relates_to = _text(root, "s:Header/a:MessageID")
            action = _text(root, "s:Header/a:Action")
            resource = _text(root, "s:Header/w:ResourceURI")
            if resource != CMD_RESOURCE:
                raise WsmanFault(
                    "w:DestinationUnreachable",
                    f"The resource URI {resource!r} is not supported by this stand-in.",
                    CODE_ACTION_NOT_SUPPORTED,
                )
            handler = {
                ACTION_CREATE: self._create,
                ACTION_DELETE: self._delete,
                ACTION_COMMAND: self._command,
                ACTION_RECEIVE: self._receive,
                ACTION_SIGNAL: self._signal,
            }.get(action)
            if handler is None:
                raise WsmanFault(
                    "a:ActionNotSupported",
                    f"The action {action!r} is not supported by this stand-in.",
                    CODE_ACTION_NOT_SUPPORTED,
                )
            response_action, response_body = handler(root, user)
            return 200, _envelope(response_action, relates_to, response_body)
        except WsmanFault as fault:
            return 500, _fault(relates_to, fault, self._endpoint)

    # -- operations -------------------------------------------------------------

    def _create(self, root: ET.Element, user: str) -> tuple[str, str]:
        shell = Shell(str(uuid.uuid4()).upper(), user)
        with self._lock:
            self._shells[shell.id] = shell
        body = (
            "<x:ResourceCreated>"
            f"<a:Address>{escape(self._endpoint)}</a:Address>"
            "<a:ReferenceParameters>"
            f"<w:ResourceURI>{CMD_RESOURCE}</w:ResourceURI>"
            f'<w:SelectorSet><w:Selector Name="ShellId">{shell.id}</w:Selector></w:SelectorSet>'
            "</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId>"
            f"<rsp:Owner>{escape(user)}</rsp:Owner>"
            "<rsp:InputStreams>stdin</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"
        )
        return TRANSFER + "/CreateResponse", body

    def _delete(self, root: ET.Element, user: str) -> tuple[str, str]:
        shell = self._shell(root, user)
        with self._lock:
            self._shells.pop(shell.id, None)
        return TRANSFER + "/DeleteResponse", ""

    def _command(self, root: ET.Element, user: str) -> tuple[str, str]:
        shell = self._shell(root, user)
        line = root.find("s:Body/rsp:CommandLine", NS)
        if line is None:
            raise WsmanFault("w:SchemaValidationError", "no rsp:CommandLine", CODE_BAD_REQUEST)
        parts = [_text(line, "rsp:Command")]
        parts += [a.text or "" for a in line.findall("rsp:Arguments", NS)]
        command = RunningCommand(str(uuid.uuid4()).upper(), " ".join(p for p in parts if p))
        with self._lock:
            shell.commands[command.id] = command
        threading.Thread(target=self._run, args=(command,), daemon=True).start()
        return SHELL + "/CommandResponse", (
            f"<rsp:CommandResponse><rsp:CommandId>{command.id}</rsp:CommandId></rsp:CommandResponse>"
        )

    def _run(self, command: RunningCommand) -> None:
        try:
            command.outcome = self._executor(command.command_line)
        except Exception as exc:  # a stand-in bug must still end the command
            command.outcome = CommandOutcome(b"", f"stand-in error: {exc}\r\n".encode(), 1)
        command.done.set()

    def _receive(self, root: ET.Element, user: str) -> tuple[str, str]:
        shell = self._shell(root, user)
        stream = root.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
        command = self._command_of(shell, stream.get("CommandId") if stream is not None else None)
        wait = min(_duration(_text(root, "s:Header/w:OperationTimeout")), MAX_RECEIVE_WAIT)
        if not command.done.wait(wait):
            raise WsmanFault(
                "w:TimedOut",
                "The WS-Management service cannot complete the operation within the time"
                " specified in OperationTimeout.",
                CODE_TIMED_OUT,
                sender=False,
            )
        outcome = command.outcome or CommandOutcome(b"", b"", 1)
        streams = []
        for name, data in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
            attrs = f'Name="{name}" CommandId="{command.id}"'
            if data:
                streams.append(
                    f"<rsp:Stream {attrs}>{base64.b64encode(data).decode()}</rsp:Stream>"
                )
            streams.append(f'<rsp:Stream {attrs} End="true"></rsp:Stream>')
        body = (
            "<rsp:ReceiveResponse>"
            + "".join(streams)
            + f'<rsp:CommandState CommandId="{command.id}" State="{STATE_DONE}">'
            + f"<rsp:ExitCode>{outcome.exit_code}</rsp:ExitCode></rsp:CommandState>"
            + "</rsp:ReceiveResponse>"
        )
        return SHELL + "/ReceiveResponse", body

    def _signal(self, root: ET.Element, user: str) -> tuple[str, str]:
        shell = self._shell(root, user)
        signal = root.find("s:Body/rsp:Signal", NS)
        command = self._command_of(shell, signal.get("CommandId") if signal is not None else None)
        code = _text(signal, "rsp:Code") if signal is not None else ""
        if code not in (SIGNAL_TERMINATE, SIGNAL_CTRL_C):
            raise WsmanFault("w:InvalidParameter", f"unknown signal {code!r}", CODE_BAD_REQUEST)
        # A command thread cannot be killed; its outcome is dropped with the record.
        command.signalled = code
        with self._lock:
            shell.commands.pop(command.id, None)
        return SHELL + "/SignalResponse", "<rsp:SignalResponse/>"

    # -- lookups -----------------------------------------------------------------

    def _shell(self, root: ET.Element, user: str) -> Shell:
        shell_id = ""
        for selector in root.findall("s:Header/w:SelectorSet/w:Selector", NS):
            if selector.get("Name") == "ShellId":
                shell_id = selector.text or ""
        with self._lock:
            shell = self._shells.get(shell_id)
        if shell is None or shell.owner != user:
            raise WsmanFault(
                "w:InvalidSelectors",
                f"The request for the Windows Remote Shell with ShellId {shell_id} failed"
                " because the shell was not found on the server.",
                CODE_SHELL_NOT_FOUND,
            )
        return shell

    def _command_of(self, shell: Shell, command_id: str | None) -> RunningCommand:
        with self._lock:
            command = shell.commands.get(command_id or "")
        if command is None:
            raise WsmanFault(
                "w:InvalidParameter",
                f"The command {command_id} was not found in shell {shell.id}.",
                CODE_SHELL_NOT_FOUND,
            )
        return command


def _text(node: ET.Element, path: str) -> str:
    found = node.find(path, NS)
    return (found.text or "").strip() if found is not None else ""


def _duration(value: str) -> float:
    """Seconds of an xs:duration like PT20S or PT20.000S (20 when absent)."""
    match = re.fullmatch(r"PT(\d+(?:\.\d+)?)S", value)
    return float(match.group(1)) if match else 20.0


_ROOT = (
    '<s:Envelope xml:lang="en-US" xmlns:s="{s}" xmlns:a="{a}" xmlns:x="{x}"'
    ' xmlns:w="{w}" xmlns:rsp="{rsp}">'
).format(**NS)


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    header = (
        f"<s:Header><a:Action>{escape(action)}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
    )
    return (_ROOT + header + f"<s:Body>{body}</s:Body></s:Envelope>").encode("utf-8")


def _fault(relates_to: str, fault: WsmanFault, machine: str) -> bytes:
    role = "s:Sender" if fault.sender else "s:Receiver"
    body = (
        f"<s:Fault><s:Code><s:Value>{role}</s:Value>"
        f"<s:Subcode><s:Value>{escape(fault.subcode)}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.reason)}</s:Text></s:Reason>'
        '<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"'
        f' Code="{fault.code}" Machine={quoteattr(machine)}>'
        f"<f:Message>{escape(fault.reason)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)
