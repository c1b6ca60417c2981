"""The commands the stand-in runs, and nothing else.

Supported command lines (cmd.exe level, matched exactly, at most 8191
characters as cmd.exe allows):
  powershell[.exe] [-NoLogo] [-NoProfile] [-NonInteractive] [-ExecutionPolicy P]
      -EncodedCommand <base64 UTF-16LE>    one of the WinRM transport's scripts
      (as PowerShell 1.0, no -ExecutionPolicy: 1.0 takes an unknown switch as the start
      of a command and fails to parse it, as the real one does)
  ipconfig /flushdns
  netstat[.exe] -ano [-p TCP]                        the IPv4 TCP table, as printed
  echo <base64> >>"%TEMP%\\ocsscale-<32 hex>.b64"   a piece of a chunked upload
  del /f /q "%TEMP%\\ocsscale-<32 hex>.b64"          removal of a partial upload

A PowerShell script is run only when, after its `$Name = '...'` parameter
lines, its body is exactly the body of one of the transport's templates
(ocsscale.transports.winrm_scripts); its effect is then carried out in Python
on the sandbox. A Windows DNS provider script goes to the DNS server role
(dnsserver.py) when the stand-in has one. Anything else ends with exit 1 and
a message on stderr (CLIXML for PowerShell, as a real host sends it).

What a console program or cmd.exe prints is in the stand-in's display language
(`locale`, winlocale.py): a German Windows's netstat says HERGESTELLT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from ocsscale.transports.winrm_scripts import (
    CMD_LINE_LIMIT,
    ERROR_PREFIX,
    MARKER_PREFIX,
    OPERATIONS,
    RESULT_PREFIX,
    script_body,
)

from .dnsserver import DnsServerRole, dns_script
from .sandbox import ENVIRONMENT, Sandbox, StandInError
from .winload import load_burst, trust_context
from .winlocale import TEXTS, console, netstat_output
from .winnet import default_gateways, netstat_rows, network_facts, tcp_connections
from .wsman import CommandOutcome

_UPLOAD = r"ocsscale-[0-9a-f]{32}\.b64"
_ECHO_UPLOAD = re.compile(r'echo ([A-Za-z0-9+/=]+) >>"%TEMP%\\(' + _UPLOAD + ')"')
_DEL_UPLOAD = re.compile(r'del /f /q "%TEMP%\\(' + _UPLOAD + ')"', re.I)
_FLUSHDNS = re.compile(r"ipconfig(?:\.exe)? /flushdns", re.I)
_NETSTAT = re.compile(r"netstat(?:\.exe)? -ano(?: -p tcp)?", re.I)
_POWERSHELL = re.compile(r"powershell(?:\.exe)?(?: (.*))?", re.I)
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*) = (['\u2018\u2019\u201a\u201b])")
_QUOTES = "'\u2018\u2019\u201a\u201b"
_SWITCHES = {"-nologo", "-noprofile", "-noninteractive"}
#: what PowerShell 1.0's powershell.exe takes besides those (-ExecutionPolicy, -File,
#: -WindowStyle, -Sta came with 2.0); the stand-in runs none of these, but 1.0 knows them
_SWITCHES_1_0 = {
    "-noexit",
    "-command",
    "-psconsolefile",
    "-version",
    "-inputformat",
    "-outputformat",
}

SUPPORTED = (
    "powershell -EncodedCommand <an ocsscale WinRM script>, ipconfig /flushdns,"
    " netstat -ano [-p TCP],"
    ' echo <base64> >>"%TEMP%\\ocsscale-*.b64", del /f /q "%TEMP%\\ocsscale-*.b64"'
)


class CommandExecutor:
    def __init__(
        self,
        sandbox: Sandbox,
        dns_role: DnsServerRole | None = None,
        trusted_ca: Path | None = None,
        locale: str = "en",
    ) -> None:
        self.sandbox = sandbox
        self.locale = locale  # the display language of what console programs print
        self.dns_role = dns_role  # a Windows DNS server's scripts, against a real DNS server
        #: the machine's trust store (Trusted Root CAs): what a TLS handshake from it trusts
        self.trust = trust_context(trusted_ca)
        self._operations: dict[str, Callable[[dict[str, str]], dict[str, object]]] = {
            "read_file": self._read_file,
            "write_file": self._write_file,
            "remove_file": self._remove_file,
            "resolve": self._resolve,
            "tcp_checks": self._tcp_checks,
            "flush_dns": self._flush_dns,
            "restart_services": self._restart_services,
            "versions": self._versions,
            "hosts_location": lambda p: {
                "database_path": self.sandbox.expand(self.sandbox.database_path)
            },
            "services": self._services,
            "set_service": self._set_service,
            "network_facts": lambda p: network_facts(self.sandbox.network_file, p["Address"]),
            "default_gateways": lambda p: default_gateways(),
            "tcp_connections": lambda p: tcp_connections(p["Ports"]),
            "tcp_hold": self._tcp_hold,
            "load_burst": lambda p: load_burst(self.sandbox, self.trust, p),
        }

    def __call__(self, command_line: str) -> CommandOutcome:
        if len(command_line) > CMD_LINE_LIMIT:
            return CommandOutcome(b"", console(self.locale, "line_too_long"), 1)  # as cmd.exe
        line = command_line.strip()
        if match := _POWERSHELL.fullmatch(line):
            if not self.sandbox.powershell:
                return CommandOutcome(b"", console(self.locale, "no_powershell"), 9009)
            return self._powershell((match.group(1) or "").split())
        if _FLUSHDNS.fullmatch(line):
            self.sandbox.flush_dns()
            return CommandOutcome(console(self.locale, "ipconfig_flushed"), b"", 0)
        if _NETSTAT.fullmatch(line):
            return CommandOutcome(netstat_output(self.locale, netstat_rows()), b"", 0)
        if match := _ECHO_UPLOAD.fullmatch(line):
            with open(self._temp(match.group(2)), "ab") as upload:
                upload.write(match.group(1).encode("ascii") + b" \r\n")  # as echo writes it
            return CommandOutcome(b"", b"", 0)
        if match := _DEL_UPLOAD.fullmatch(line):
            self._temp(match.group(1)).unlink(missing_ok=True)
            return CommandOutcome(b"", b"", 0)
        program = line.split(" ", 1)[0][:60]
        message = (
            f"ocsscale WinRM stand-in: command not supported: {program!r} (supported: {SUPPORTED})"
        )
        return CommandOutcome(b"", message.encode() + b"\r\n", 1)

    # -- PowerShell --------------------------------------------------------------

    def _powershell(self, args: list[str]) -> CommandOutcome:
        encoded = None
        version_1 = self.sandbox.powershell.startswith("1.")
        i = 0
        while i < len(args):
            arg = args[i].lower()
            if arg in _SWITCHES:
                i += 1
            elif version_1 and arg.startswith("-") and not _is_1_0_switch(arg):
                # 1.0 takes the rest of the line as a command, whose first token is a
                # unary minus with nothing after it
                return _clixml_error(_missing_expression(args[i]))
            elif arg == "-executionpolicy" and i + 1 < len(args):
                i += 2
            elif arg in ("-encodedcommand", "-enc", "-ec", "-e") and i + 1 < len(args):
                encoded = args[i + 1]
                i += 2
            else:
                return _clixml_error(f"The stand-in's powershell does not take '{args[i]}'.")
        if encoded is None:
            return _clixml_error("The stand-in runs PowerShell only as -EncodedCommand.")
        try:
            script = base64.b64decode(encoded, validate=True).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError):
            return _clixml_error("The -EncodedCommand value is not base64 of UTF-16LE text.")
        return self.run_script(script)

    def run_script(self, script: str) -> CommandOutcome:
        params, body = parse_parameters(script)
        if (dns_op := dns_script(body)) is not None:
            if self.dns_role is None:
                return _clixml_error("The term 'dnscmd.exe' is not recognized: not a DNS server.")
            try:
                return self.dns_role.run(*dns_op, params, body)
            except KeyError as exc:
                return _clixml_error(f"The variable '${exc.args[0]}' cannot be retrieved.")
        operation = _operation_of(body)
        if operation is None:
            first = next((ln for ln in body.splitlines() if ln.strip()), "")[:80]
            return _clixml_error(
                "ocsscale WinRM stand-in: this script is not one of the WinRM transport's"
                f" templates and is not run (first line: {first!r})."
            )
        if self.sandbox.powershell.startswith("1.") and operation != "versions":
            # PowerShell 1.0 has no try/catch: every other script stops at its first `try`.
            message = TEXTS[self.locale]["term_not_recognized"]
            return _clixml_error(str(message).format(term="try"))
        try:
            if operation == "run_uploaded":
                return self._run_uploaded(params)
            result = self._operations[operation](params)
        except KeyError as exc:
            return _clixml_error(f"The variable '${exc.args[0]}' cannot be retrieved.")
        except (StandInError, OSError, ValueError) as exc:
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return CommandOutcome(b"", f"{ERROR_PREFIX}{message}\r\n".encode(), 1)
        encoded = base64.b64encode(json.dumps(result).encode("utf-8")).decode("ascii")
        return CommandOutcome(f"{RESULT_PREFIX}{encoded}\r\n".encode(), b"", 0)

    def _run_uploaded(self, params: dict[str, str]) -> CommandOutcome:
        name = params["UploadName"]
        if not re.fullmatch(_UPLOAD, name):
            raise StandInError(f"Cannot find path '{name}' because it does not exist.")
        path = self._temp(name)
        try:
            text = base64.b64decode(path.read_bytes()).decode("utf-8")
        except FileNotFoundError:
            raise StandInError(f"Could not find file '{ENVIRONMENT['TEMP']}\\{name}'.") from None
        finally:
            path.unlink(missing_ok=True)
        return self.run_script(text)

    # -- the operations' effects ------------------------------------------------------

    def _read_file(self, p: dict[str, str]) -> dict[str, object]:
        target = self.sandbox.expand(p["Path"])
        data = _read(self.sandbox, target)
        return {"path": target, "length": len(data), "data": base64.b64encode(data).decode()}

    def _write_file(self, p: dict[str, str]) -> dict[str, object]:
        target = self.sandbox.expand(p["Path"])
        try:
            data = base64.b64decode(p["Data"], validate=True)
        except binascii.Error:
            raise StandInError("The input is not a valid Base-64 string.") from None
        local = self.sandbox.to_local(target)
        if not local.parent.is_dir():
            raise StandInError(f"Could not find a part of the path '{target}'.")
        backup = None
        if p["BackupSuffix"] and local.is_file():
            backup = target + p["BackupSuffix"]
            shutil.copyfile(local, self.sandbox.to_local(backup))
        self.sandbox.check_writable(target)
        # FileMode.OpenOrCreate + SetLength(0): same file, same inode, never a rename.
        fd = os.open(local, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        digest = hashlib.sha256(local.read_bytes()).hexdigest().upper()
        return {"path": target, "length": len(data), "sha256": digest, "backup": backup}

    def _remove_file(self, p: dict[str, str]) -> dict[str, object]:
        target = self.sandbox.expand(p["Path"])
        local = self.sandbox.to_local(target)
        removed = local.is_file()
        if removed:
            local.unlink()
        return {"path": target, "removed": removed}

    def _resolve(self, p: dict[str, str]) -> dict[str, object]:
        status, addresses = self.sandbox.resolve(p["Name"])
        return {"name": p["Name"], "status": status, "addresses": addresses}

    def _tcp_checks(self, p: dict[str, str]) -> dict[str, object]:
        results = []
        for item in p["Ports"].split(","):
            port = int(item)  # as [int] does: a bad value fails the script
            connected, reason = self.sandbox.tcp_check(
                p["Address"], port, int(p["TimeoutMs"]) / 1000
            )
            results.append({"port": port, "connected": connected, "reason": reason})
        return {"address": p["Address"], "results": results}

    def _flush_dns(self, p: dict[str, str]) -> dict[str, object]:
        self.sandbox.flush_dns()
        return {"method": "ipconfig /flushdns"}

    def _tcp_hold(self, p: dict[str, str]) -> dict[str, object]:
        port = int(p["Port"])
        held = self.sandbox.tcp_hold(
            p["Address"], port, int(p["TimeoutMs"]) / 1000, int(p["HoldMs"]) / 1000
        )
        return {"address": p["Address"], "port": port, **held}

    def _services(self, p: dict[str, str]) -> dict[str, object]:
        names = [n for n in p["Names"].split("\n") if n]
        patterns = [d for d in p["DisplayNames"].split("\n") if d]
        return {"services": self.sandbox.services.find(names, patterns)}

    def _set_service(self, p: dict[str, str]) -> dict[str, object]:
        """As the script: Stop-Service -Force then Set-Service, or Set-Service then
        Start-Service (which refuses a Disabled service); read back."""
        table = self.sandbox.services
        name, _ = table.status(p["Name"])  # Get-Service: an unknown name fails here
        startup, state = p["StartupType"], p["State"]
        if state == "Stopped":
            table.stop(name)
            table.set_start_mode(name, startup)
        else:
            table.set_start_mode(name, startup)
            table.start(name)
        _, status = table.status(name)
        return {"name": name, "status": status, "start_mode": table.all()[name]["start_mode"]}

    def _restart_services(self, p: dict[str, str]) -> dict[str, object]:
        float(p["TimeoutSeconds"])  # the script casts it; a bad value fails there too
        order = [n for n in p["Names"].split("\n") if n]
        problems = []
        try:
            for name in order:
                self.sandbox.services.stop(name)
        finally:
            order.reverse()  # started in reverse, each even when something failed
            for name in order:
                try:
                    self.sandbox.services.start(name)
                except StandInError as exc:
                    problems.append(f"{name}: {exc}")
        done = []
        for name in order:
            canonical, status = self.sandbox.services.status(name)
            done.append({"name": canonical, "status": status})
        if problems:
            raise StandInError("not started: " + "; ".join(problems))
        return {"services": done}

    def _versions(self, p: dict[str, str]) -> dict[str, object]:
        return {"powershell": self.sandbox.powershell, "dotnet": list(self.sandbox.dotnet)}

    def _temp(self, name: str) -> Path:
        return self.sandbox.to_local(ENVIRONMENT["TEMP"] + "\\" + name)


def parse_parameters(script: str) -> tuple[dict[str, str], str]:
    """Split the `$Name = '<literal>'` lines PsScript puts first from the body."""
    params: dict[str, str] = {}
    pos = 0
    while match := _PARAM.match(script, pos):
        value: list[str] = []
        i = match.end()
        while True:
            if i >= len(script):
                return params, script[pos:]  # unterminated: not ours, let the body check fail
            char = script[i]
            if char in _QUOTES:
                if i + 1 < len(script) and script[i + 1] in _QUOTES:
                    value.append(char)
                    i += 2
                    continue
                break
            value.append(char)
            i += 1
        if script[i + 1 : i + 2] != "\n":
            break
        params[match.group(1)] = "".join(value)
        pos = i + 2
    return params, script[pos:]


def _operation_of(body: str) -> str | None:
    first = body.split("\n", 1)[0]
    if not first.startswith(MARKER_PREFIX):
        return None
    operation = first[len(MARKER_PREFIX) :]
    if operation not in OPERATIONS or body != script_body(operation):
        return None
    return operation


def _read(sandbox: Sandbox, target: str) -> bytes:
    local = sandbox.to_local(target)
    if local.is_dir():
        raise StandInError(f"Access to the path '{target}' is denied.")
    try:
        return local.read_bytes()
    except FileNotFoundError:
        raise StandInError(f"Could not find file '{target}'.") from None


def _is_1_0_switch(arg: str) -> bool:
    if arg in _SWITCHES or arg in _SWITCHES_1_0:
        return True
    # -EncodedCommand and its abbreviations (a prefix of at least -e)
    return len(arg) >= 2 and "-encodedcommand".startswith(arg) or arg == "-ec"


def _missing_expression(token: str) -> str:
    """PowerShell 1.0's parse error for `-Switch ...` taken as a command."""
    return (
        "Missing expression after unary operator '-'.\r\n"
        f"At line:1 char:2\r\n+ -{token[1:2]} <<<< {token[2:]}"
    )


def _clixml_error(message: str) -> CommandOutcome:
    """stderr as powershell.exe writes an error record over WinRM."""
    escaped = (
        message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "_x000D__x000A_"
    )
    document = (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        f'<S S="Error">{escaped}</S></Objs>'
    )
    return CommandOutcome(b"", document.encode("utf-8"), 1)
