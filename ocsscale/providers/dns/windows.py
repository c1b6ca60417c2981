"""windows: a Windows DNS server, driven over WinRM with dnscmd or the DnsServer module.

AD-integrated zones accept only secure (GSS-TSIG) updates, which an RFC 2136
client with a shared TSIG key cannot make, and most OCS sites run them. This
provider therefore logs in to a DNS server (the pool file's `dns.host`, a
WinRM host like any other) and runs a script there (windows_scripts.py)
that reads the RRset, compares it with the expected old value, deletes and
adds, and reads it back, all in one script. The tool is the pool file's
`dns.tool`; `auto` asks the server once (the DnsServer module where present,
else dnscmd).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ...config.model import WindowsDns
from ...errors import OcsscaleError, UsageError
from ...transports.commands import PsScript
from ..plugin import Capabilities, Ports, fixed
from .base import PROVIDERS, DnsConflict, DnsError, ProviderBase, RecordSet, conflict, relative_name
from .windows_scripts import (
    ERROR_PREFIX,
    LINE_PREFIX,
    RR_PREFIX,
    TOOLS,
    TYPES,
    default_server,
    script_body,
)


class WindowsProvider(ProviderBase):
    kind = "windows"
    #: its zones are AD-integrated (replicated between the domain's DNS servers), and
    #: its scripts change only the record types they know
    capabilities: ClassVar[Capabilities] = Capabilities(
        drives_itself=True, read_back=True, replicated=True, record_types=TYPES
    )

    def __init__(self, zone: str, host: Any, *, tool: str = "auto", timeout: float = 120.0) -> None:
        if tool not in (*TOOLS, "auto"):
            raise UsageError(f"unknown Windows DNS tool {tool!r}: auto, {', '.join(TOOLS)}")
        self.zone = zone.rstrip(".")
        self.host = host  # a transports.winrm.WinRMHost (anything with run(PsScript))
        self.tool = tool
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: WindowsDns, ports: Ports) -> WindowsProvider:
        return cls(settings.zone, ports.host(settings.host.name), tool=settings.tool)

    def where(self) -> str:
        return f"Windows DNS on {self.host.name}"

    def targets(self) -> list[str]:
        return [self.host.name]

    # -- running the scripts ---------------------------------------------------

    def _run(self, tool: str, operation: str, **params: str) -> list[str]:
        script = PsScript(script_body(tool, operation), params)
        try:
            result = self.host.run(script, timeout=self.timeout, check=False)
        except OcsscaleError as exc:
            raise DnsError(f"{self.where()}: {operation} failed: {exc.message}") from None
        if result.exit_status != 0:
            text = result.stderr.strip()
            text = text[len(ERROR_PREFIX) :] if text.startswith(ERROR_PREFIX) else text
            raise DnsError(
                f"{self.where()}: {operation} failed (exit {result.exit_status}): "
                f"{text[:400] or '(no error text)'}"
            )
        return [line.strip() for line in result.stdout.splitlines() if line.startswith(LINE_PREFIX)]

    def resolved_tool(self) -> str:
        if self.tool == "auto":
            lines = self._run("", "detect")
            found = lines[0].split()[-1] if lines else "none"
            if found not in TOOLS:
                raise DnsError(
                    f"{self.where()}: neither the DnsServer module nor dnscmd.exe is on this "
                    "host: is it a DNS server? (set dns.tool, or use another host)"
                )
            self.tool = found
        return self.tool

    def _records(self, lines: list[str], expected_state: tuple[str, ...]) -> tuple[str, RecordSet]:
        if not lines or lines[-1] != f"{LINE_PREFIX} end":
            raise DnsError(f"{self.where()}: the script's answer is incomplete")
        state = lines[0][len(LINE_PREFIX) :].strip()
        if state not in expected_state:
            raise DnsError(f"{self.where()}: unexpected answer {state!r} from the script")
        values, ttls = [], set()
        for line in lines[1:-1]:
            ttl, _, value = line[len(RR_PREFIX) :].partition(" ")
            if not ttl.isdigit() or not value:
                raise DnsError(f"{self.where()}: unreadable record line from the script")
            values.append(value)
            ttls.add(int(ttl))
        # Windows may hold a TTL per record; resolvers keep the lowest of an RRset
        ttl_value = min(ttls) if ttls else None
        return state, RecordSet(tuple(sorted(v.lower() for v in values)), ttl_value)

    def _params(self, tool: str, name: str, rdtype: str) -> dict[str, str]:
        if rdtype not in TYPES:
            raise UsageError(
                f"the Windows DNS provider changes {', '.join(TYPES)} records, not {rdtype}"
            )
        return {
            "Server": default_server(tool),
            "Zone": self.zone,
            "Node": relative_name(name, self.zone),
            "Type": rdtype,
        }

    # -- the provider interface ---------------------------------------------------

    def lookup(self, name: str, rdtype: str) -> RecordSet:
        rdtype = rdtype.upper()
        tool = self.resolved_tool()
        lines = self._run(tool, "read", **self._params(tool, name, rdtype))
        return _absolute(rdtype, self._records(lines, ("read",))[1])

    def _change(
        self, name: str, rdtype: str, values: tuple[str, ...], ttl: int, expect: tuple[str, ...]
    ) -> None:
        tool = self.resolved_tool()
        params = self._params(tool, name, rdtype)
        params.update(Expect=",".join(expect), Values=",".join(values), Ttl=str(int(ttl)))
        state, found = self._records(self._run(tool, "replace", **params), ("conflict", "done"))
        if state == "conflict":
            raise conflict(self.where(), name, rdtype, _absolute(rdtype, found), expect)


def _absolute(rdtype: str, record: RecordSet) -> RecordSet:
    """CNAME and SRV targets as dnspython writes them (absolute, with the final dot)."""
    if rdtype not in ("CNAME", "SRV"):
        return record
    values = (" ".join(v.split()).rstrip(".") + "." for v in record.values)
    return RecordSet(tuple(sorted(values)), record.ttl)


__all__ = ["DnsConflict", "WindowsProvider"]


PROVIDERS.add(
    "windows",
    WindowsDns,
    WindowsProvider.from_settings,
    capabilities=fixed(WindowsProvider.capabilities),
)
