"""The PowerShell the WinRM transport sends, and how it travels.

Every operation is a template under `templates/powershell/` whose first line
is a marker (`# ocsscale:op=<name>`), rendered into a `PsScript` whose values
are bound as quoted literals. A script prints exactly one result line,
`OCSSCALE-RESULT <base64 of UTF-8 JSON>`, or one error line on stderr and exits 1.

Delivery: pywinrm runs a command through cmd.exe, whose command line is
limited to 8191 characters, and `-EncodedCommand` carries the script as
base64 of UTF-16LE (about 2.7 characters per script character). A script whose
command line would not fit is uploaded first, in base64 pieces appended to a
file under %TEMP% by short `echo` commands, then a small bootstrap script
reads, deletes and runs it (see `plan_script`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from .commands import Part, PsScript

CMD_LINE_LIMIT = 8191  # cmd.exe, after variable expansion
# Below the hard limit: %TEMP% expands on the host to a path of unknown length.
SAFE_COMMAND_LINE = 7800
UPLOAD_PIECE = 6000

#: only switches PowerShell 1.0's powershell.exe knows (-ExecutionPolicy, -File and
#: -WindowStyle came with 2.0): the version check runs this way, so that a 1.0 host
#: answers "1.0" instead of "Missing expression after unary operator '-'"
POWERSHELL_1 = "powershell.exe -NoLogo -NoProfile -NonInteractive"
#: every other script (2.0 and later): Bypass, because a Restricted policy would stop
#: the modules they load (DnsServer's .ps1xml files) from loading
POWERSHELL = f"{POWERSHELL_1} -ExecutionPolicy Bypass"
#: the operations whose scripts PowerShell 1.0 runs (test_ps20_scripts holds them to it)
POWERSHELL_1_OPERATIONS = frozenset({"versions"})
RESULT_PREFIX = "OCSSCALE-RESULT "
ERROR_PREFIX = "ocsscale: "
MARKER_PREFIX = "# ocsscale:op="

#: every operation, and the parameters its script reads (bound as `$Name = '...'`)
OPERATION_PARAMETERS: dict[str, tuple[str, ...]] = {
    "read_file": ("Path",),
    "write_file": ("Path", "Data", "BackupSuffix"),
    "remove_file": ("Path",),
    "resolve": ("Name",),
    "tcp_checks": ("Address", "Ports", "TimeoutMs"),
    "flush_dns": (),
    "restart_services": ("Names", "TimeoutSeconds"),
    "run_uploaded": ("UploadName",),
    "versions": (),
    "hosts_location": (),
    "services": ("Names", "DisplayNames"),
    "set_service": ("Name", "StartupType", "State"),
    "network_facts": ("Address",),
    "default_gateways": (),
    "tcp_connections": ("Ports",),
    "tcp_hold": ("Address", "Port", "TimeoutMs", "HoldMs"),
    "load_burst": ("Name", "Targets", "Count", "IntervalMs", "DurationMs", "TimeoutMs"),
}
OPERATIONS = tuple(OPERATION_PARAMETERS)

_UPLOAD_NAME = re.compile(r"^ocsscale-[0-9a-f]{32}\.b64\Z")


def templates_dir() -> Path:
    """`templates/` of a source checkout, or the copy a wheel carries in the package."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "templates", here.parents[2] / "templates"):
        if (candidate / "powershell").is_dir():
            return candidate
    raise FileNotFoundError("templates/powershell not found next to the ocsscale package")


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


@cache
def script_body(operation: str) -> str:
    """The body of one operation's script (parameters are bound separately)."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown WinRM script operation {operation!r}")
    template = _environment().get_template(f"powershell/{operation}.ps1.j2")
    body = _compact(template.render(result_prefix=RESULT_PREFIX, error_prefix=ERROR_PREFIX))
    if not body.startswith(MARKER_PREFIX + operation + "\n"):
        raise ValueError(f"template {operation}.ps1.j2 must start with its marker line")
    return body


def _compact(text: str) -> str:
    """The script without comment lines, indentation and blank lines: what travels is
    base64 of UTF-16 (about 2.7 characters a character) and a short script fits in one
    command line. The templates keep their comments; no template has a here-string,
    the one construct whose lines this would change."""
    lines = text.splitlines()
    kept = [lines[0]] + [
        line.strip() for line in lines[1:] if line.strip() and not line.strip().startswith("#")
    ]
    return "\n".join(kept) + "\n"


def operation_script(operation: str, **params: Part) -> PsScript:
    # Exactly the parameters the script reads: PowerShell would take a missing one as $null.
    expected = OPERATION_PARAMETERS.get(operation)
    if expected is not None and set(params) != set(expected):
        raise ValueError(f"{operation} takes {', '.join(expected) or 'no parameters'}")
    return PsScript(script_body(operation), params)


def powershell_command_line(script_text: str, *, powershell_1: bool = False) -> str:
    """`powershell_1`: the command line PowerShell 1.0 accepts (POWERSHELL_1)."""
    encoded = base64.b64encode(script_text.encode("utf-16-le")).decode("ascii")
    return f"{POWERSHELL_1 if powershell_1 else POWERSHELL} -EncodedCommand {encoded}"


@dataclass(frozen=True)
class CommandPlan:
    """Commands to run in order in one shell; all but the last must exit 0."""

    commands: tuple[str, ...]
    upload_name: str | None = None  # the %TEMP% file a chunked upload writes

    @property
    def chunked(self) -> bool:
        return self.upload_name is not None

    def cleanup_command(self) -> str | None:
        """Removes a partial upload when the run is abandoned before the bootstrap."""
        if self.upload_name is None:
            return None
        return f'del /f /q "%TEMP%\\{self.upload_name}"'


def plan_script(
    script_text: str,
    *,
    limit: int = SAFE_COMMAND_LINE,
    piece: int = UPLOAD_PIECE,
    upload_name: str | None = None,
    powershell_1: bool = False,
) -> CommandPlan:
    direct = powershell_command_line(script_text, powershell_1=powershell_1)
    if len(direct) <= limit:
        return CommandPlan((direct,))
    if powershell_1:  # the upload's bootstrap needs 2.0
        raise ValueError("a script PowerShell 1.0 runs must fit one command line")
    name = upload_name or f"ocsscale-{uuid.uuid4().hex}.b64"
    if not _UPLOAD_NAME.match(name):
        raise ValueError(f"bad upload file name {name!r}")
    payload = base64.b64encode(script_text.encode("utf-8")).decode("ascii")
    # The space before >> matters: `echo ...1>>file` would make cmd read "1>>" as a
    # handle redirection. The decoder ignores the space and the CRLF echo adds.
    commands = [
        f'echo {payload[i : i + piece]} >>"%TEMP%\\{name}"' for i in range(0, len(payload), piece)
    ]
    commands.append(
        powershell_command_line(operation_script("run_uploaded", UploadName=name).render())
    )
    for command in commands:
        if len(command) > limit:
            raise ValueError(f"a planned command is {len(command)} characters, over {limit}")
    return CommandPlan(tuple(commands), name)


class ScriptOutputError(ValueError):
    """A script's stdout does not hold exactly one well-formed result line."""


def parse_result(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if len(lines) != 1:
        raise ScriptOutputError(f"expected one result line, found {len(lines)}")
    encoded = lines[0][len(RESULT_PREFIX) :].strip()
    try:
        value = json.loads(base64.b64decode(encoded, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScriptOutputError(f"result line is not base64 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ScriptOutputError("result is not a JSON object")
    return value


def result_string_list(result: Mapping[str, Any], key: str) -> list[str]:
    """A list field, allowing for PowerShell serialising a one-element array as a scalar."""
    value = result.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ScriptOutputError(f"result field {key!r} is not a list of strings")


_CLIXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def decode_clixml(stderr: str) -> str:
    """The readable text of PowerShell's CLIXML error stream (plain text passes through)."""
    if not stderr.startswith("#< CLIXML"):
        return stderr
    messages: list[str] = []
    for document in re.findall(r"<Objs\b.*?</Objs>", stderr, flags=re.S):
        try:
            root = ET.fromstring(document)
        except ET.ParseError:
            continue
        for node in root.iter():
            if node.tag.endswith("}S") and node.get("S") == "Error" and node.text:
                messages.append(node.text)
    if not messages:
        return stderr
    text = _CLIXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), "".join(messages))
    return text.replace("\r\n", "\n").strip()
