"""What the WinRM transport reads from Windows beyond the Host interface.

A mixin of `WinRMHost`: the PowerShell and .NET versions (preflight), the
services found by name and display name with their dependencies, a restart
in dependency order, and the facts the front-end gate reads (static address,
IIS loopback check, the TCP connections `netstat -ano` lists). Each is one
script of templates/powershell/; the judging is in windows_facts.py.
"""

from __future__ import annotations

from typing import Any

from ..errors import CommandFailed

#: what cmd.exe answers when powershell.exe is not installed (exit code 9009)
_NO_POWERSHELL = "is not recognized as an internal or external command"


class WindowsReads:
    """Mixed into WinRMHost, which provides `name`, `services_timeout` and `_operation`."""

    name: str
    services_timeout: float

    def _operation(
        self, operation: str, what: str, *, timeout: float = 120.0, **params: str
    ) -> dict[str, Any]:
        raise NotImplementedError

    def versions(self) -> dict[str, Any]:
        """{'powershell': '2.0', 'dotnet': ['2.0.50727.4927', '3.5.30729.4926', ...]}."""
        try:
            result = self._operation("versions", "read the PowerShell and .NET versions")
        except CommandFailed as exc:
            if exc.exit_status == 9009 or _NO_POWERSHELL in exc.message:
                return {"powershell": "", "dotnet": [], "powershell_missing": True}
            raise
        dotnet = result.get("dotnet") or []
        if isinstance(dotnet, str):
            dotnet = [dotnet]
        return {"powershell": str(result.get("powershell", "")), "dotnet": [str(v) for v in dotnet]}
