"""Every PowerShell script the tool can send parses with a real PowerShell grammar and
uses only what PowerShell 2.0 and .NET 3.5 offer (ps20_check.py, ps20_allowlist.yaml).
No Windows needed: this is the proof for Windows Server 2003 SP2 (WMF 2.0) and 2008."""

from __future__ import annotations

import base64
import itertools

import pytest
from ps20_check import allowed, check_script

from ocsscale.transports.winrm_scripts import (
    OPERATION_PARAMETERS,
    OPERATIONS,
    operation_script,
    plan_script,
    powershell_command_line,
    script_body,
)

#: values a parameter may carry that stress the quoting: empty, quotes of every kind,
#: PowerShell's own syntax, newlines, non-ASCII, very long
SHAPES = (
    "",
    "plain",
    "it's \u2018quoted\u2019 \u201a\u201b '' \"double\"",
    "$(Remove-Item C:\\ -Recurse) `n ${x} @(1) ; | & #",
    "line one\nline two\r\nline three",
    "\u00e9t\u00e9 \u4e2d\u6587 \U0001f600",
    "x" * 9000,
)

#: a realistic value for each parameter the scripts read
TYPICAL = {
    "Path": r"%SystemRoot%\System32\drivers\etc\hosts",
    "Data": base64.b64encode(b"127.0.0.1 localhost\r\n").decode(),
    "BackupSuffix": ".ocsscale-bak",
    "Name": "ocspool.contoso.com",
    "Address": "198.18.0.41",
    "Port": "5061",
    "Ports": "5061,444,443",
    "TimeoutMs": "5000",
    "HoldMs": "3000",
    "Targets": "5061:tls,444:tls,5060:tcp",
    "Count": "10",
    "IntervalMs": "500",
    "DurationMs": "5000",
    "Names": "RTCSRV\nW3SVC",
    "TimeoutSeconds": "120.0",
    "DisplayNames": "Office Communications Server*",
    "UploadName": "ocsscale-" + "0" * 32 + ".b64",
    "StartupType": "Automatic",
    "State": "Running",
}


def rendered_scripts() -> list[tuple[str, str]]:
    """(label, text) of every script: each operation with typical values and with each
    parameter in turn given every shape, plus the bootstrap of a chunked upload."""
    out = []
    for operation, names in OPERATION_PARAMETERS.items():
        typical = {n: TYPICAL[n] for n in names}
        out.append((f"{operation}[typical]", operation_script(operation, **typical).render()))
        for name, (i, shape) in itertools.product(names, enumerate(SHAPES)):
            params = dict(typical, **{name: shape})
            out.append((f"{operation}[{name}={i}]", operation_script(operation, **params).render()))
    names = OPERATION_PARAMETERS["write_file"]
    long = operation_script(
        "write_file", **{n: TYPICAL[n] for n in names if n != "Data"}, Data="A" * 20000
    )
    plan = plan_script(long.render())
    assert plan.chunked
    bootstrap = base64.b64decode(plan.commands[-1].rsplit(" ", 1)[1]).decode("utf-16-le")
    out.append(("run_uploaded[bootstrap]", bootstrap))
    return out


SCRIPTS = rendered_scripts()


def test_every_operation_is_rendered_and_every_parameter_has_a_value() -> None:
    assert set(OPERATIONS) == set(OPERATION_PARAMETERS)
    rendered = {label.split("[")[0] for label, _ in SCRIPTS}
    assert rendered == set(OPERATIONS)
    assert all(name in TYPICAL for names in OPERATION_PARAMETERS.values() for name in names)


@pytest.mark.parametrize(("label", "text"), SCRIPTS, ids=[label for label, _ in SCRIPTS])
def test_the_script_parses_and_uses_only_powershell_2_and_dotnet_3_5(label: str, text: str) -> None:
    assert check_script(text) == []


def test_a_script_reading_a_parameter_it_is_not_given_is_refused() -> None:
    with pytest.raises(ValueError, match="takes Path, Data, BackupSuffix"):
        operation_script("write_file", Path="x", Data="")


def test_the_bodies_need_no_parameter_to_parse() -> None:
    for operation in OPERATIONS:
        assert check_script(script_body(operation)) == [], operation


# -- the check itself can fail ------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("$json = ConvertTo-Json -Compress -InputObject @{ a = 1 }", "'ConvertTo-Json'"),
        ("$h = (Get-FileHash -LiteralPath C:\\x -Algorithm SHA256).Hash", "'Get-FileHash'"),
        ("Clear-DnsClientCache", "'Clear-DnsClientCache'"),
        ("Get-NetTCPConnection -State Established", "'Get-NetTCPConnection'"),
        ("$t = $client.ConnectAsync('a', 1)", "member .ConnectAsync"),
        ("$client.Dispose()", "member .Dispose"),
        ("$o = [pscustomobject]@{ a = 1 }", "[pscustomobject]"),
        ("$o = [ordered]@{ a = 1 }", "[ordered]"),
        ("$v = [Version]::Parse('2.0')", "[Version]::Parse"),
        ("$t = New-Object System.Threading.Tasks.Task", "New-Object System.Threading.Tasks.Task"),
        ("$s = Get-WmiObject Win32_Process", "WMI class Win32_Process"),
        ("if ($a -in $b) { }", "operator -in"),
        ("$x | ForEach-Object { $PSItem }", "$PSItem"),
        ("if ($x { }", "syntax error"),
        ("$a = @(1, 2", "syntax error"),
        ("Invoke-RestMethod -Uri http://127.0.0.1/", "'Invoke-RestMethod'"),
    ],
)
def test_what_powershell_2_lacks_is_reported(script: str, expected: str) -> None:
    problems = check_script(script)
    assert any(expected in p for p in problems), problems


def test_a_script_that_builds_its_json_with_convertto_json_fails_whole() -> None:
    # What the result writer looked like before PowerShell 2.0 support: the test must catch it.
    old = script_body("flush_dns").replace(
        "$json = ConvertTo-OcsscaleJson $Result",
        "$json = ConvertTo-Json -Compress -Depth 4 -InputObject $Result",
    )
    assert old != script_body("flush_dns")
    assert any("ConvertTo-Json" in p for p in check_script(old))


def test_the_allow_list_names_its_sources_and_leaves_out_later_versions() -> None:
    rules = allowed()
    for later in ("convertto-json", "get-filehash", "invoke-restmethod", "get-ciminstance"):
        assert later not in rules.cmdlets
    assert "connectasync" not in rules.instance_members
    assert "dispose" not in rules.instance_members
    assert "get-wmiobject" in rules.cmdlets and "restart-service" in rules.cmdlets


def test_a_command_line_carries_the_script_unchanged() -> None:
    text = operation_script("resolve", Name="x").render()
    encoded = powershell_command_line(text).rsplit(" ", 1)[1]
    assert base64.b64decode(encoded).decode("utf-16-le") == text


def test_the_versions_script_also_parses_as_powershell_1() -> None:
    # It must run where PowerShell 1.0 is all there is, to say so: no try/catch, no
    # -join/-split (2.0), only trap.
    import tree_sitter
    import tree_sitter_powershell

    text = operation_script("versions").render()
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    tree = parser.parse(text.encode())
    kinds: set[str] = set()
    tokens: set[str] = set()
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        kinds.add(node.type)
        if node.child_count == 0 and node.type != "comment":
            tokens.add((node.text or b"").decode().lower())
        stack.extend(node.children)
    assert "try_statement" not in kinds and "trap_statement" in kinds
    assert not tokens & {"-join", "-split", "-in", "-notin"}


def test_only_the_version_check_goes_without_execution_policy() -> None:
    """PowerShell 1.0 knows no -ExecutionPolicy: the version check's command line holds
    only switches 1.0 knows; every other script keeps Bypass."""
    from ocsscale.transports.winrm_scripts import (
        OPERATION_PARAMETERS,
        POWERSHELL_1_OPERATIONS,
        operation_script,
    )

    assert {"versions"} == POWERSHELL_1_OPERATIONS
    line = plan_script(operation_script("versions").render(), powershell_1=True).commands[0]
    switches = [part for part in line.split()[1:] if part.startswith("-")]
    assert switches == ["-NoLogo", "-NoProfile", "-NonInteractive", "-EncodedCommand"]
    for operation, params in OPERATION_PARAMETERS.items():
        text = operation_script(operation, **{p: "x" for p in params}).render()
        assert "-ExecutionPolicy Bypass -EncodedCommand" in plan_script(text).commands[-1]
    with pytest.raises(ValueError, match="PowerShell 1.0 runs must fit one command line"):
        plan_script("x" * 20000, powershell_1=True)


def test_the_versions_script_fits_one_command_line() -> None:
    # PowerShell 1.0 cannot run the chunked upload's bootstrap (try/finally,
    # [ScriptBlock]::Create): the version check must never need it.
    assert not plan_script(operation_script("versions").render()).chunked


def test_the_templates_have_no_here_string_the_compaction_would_change() -> None:
    from ocsscale.transports.winrm_scripts import templates_dir

    for template in (templates_dir() / "powershell").glob("*.ps1.j2"):
        text = template.read_text(encoding="utf-8")
        assert '@"' not in text and "@'" not in text, template.name
