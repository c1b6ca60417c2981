"""Script generation, chunking and output parsing of the WinRM transport; the stand-in's
recognition of those scripts (no network)."""

from __future__ import annotations

import base64
import json
import random
import re
from pathlib import Path

import pytest

from ocsscale.transports.commands import PsScript
from ocsscale.transports.winrm_scripts import (
    CMD_LINE_LIMIT,
    MARKER_PREFIX,
    OPERATIONS,
    RESULT_PREFIX,
    SAFE_COMMAND_LINE,
    ScriptOutputError,
    decode_clixml,
    operation_script,
    parse_result,
    plan_script,
    powershell_command_line,
    result_string_list,
    script_body,
)
from ocsscale_lab.winrm_host.executor import CommandExecutor, parse_parameters
from ocsscale_lab.winrm_host.sandbox import Sandbox


def _decode_command_line(line: str) -> str:
    encoded = line.rsplit(" ", 1)[1]
    return base64.b64decode(encoded).decode("utf-16-le")


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_template_renders_with_its_marker_and_no_template_syntax_left(
    operation: str,
) -> None:
    body = script_body(operation)
    assert body.startswith(f"{MARKER_PREFIX}{operation}\n")
    assert "{{" not in body and "{%" not in body
    if operation != "run_uploaded":
        assert "Write-OcsscaleResult" in body and RESULT_PREFIX in body


def test_values_are_bound_as_literals_and_survive_the_round_trip() -> None:
    rng = random.Random(7)
    alphabet = "ab$`'\"\u2018\u2019\u201a\u201b;|&\n\r\t()%{}éZ0 "
    for _ in range(300):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        script = operation_script("resolve", Name=value)
        params, body = parse_parameters(script.render())
        assert params == {"Name": value}
        assert body == script_body("resolve")


def test_a_short_script_is_one_encoded_command() -> None:
    text = operation_script("flush_dns").render()
    plan = plan_script(text)
    assert not plan.chunked and plan.cleanup_command() is None
    assert plan.commands == (powershell_command_line(text),)
    assert plan.commands[0].startswith("powershell.exe -NoLogo -NoProfile -NonInteractive ")
    assert _decode_command_line(plan.commands[0]) == text


def test_a_long_script_is_uploaded_in_pieces_then_run_by_a_short_bootstrap() -> None:
    data = base64.b64encode(random.Random(1).randbytes(30_000)).decode()
    text = operation_script("write_file", Path=r"C:\x", Data=data, BackupSuffix="").render()
    assert len(powershell_command_line(text)) > CMD_LINE_LIMIT
    name = "ocsscale-" + "ab" * 16 + ".b64"
    plan = plan_script(text, upload_name=name)

    assert plan.chunked and plan.upload_name == name
    assert all(len(c) <= SAFE_COMMAND_LINE < CMD_LINE_LIMIT for c in plan.commands)
    *pieces, bootstrap = plan.commands
    assert len(pieces) > 1
    pattern = re.compile(r'echo ([A-Za-z0-9+/=]+) >>"%TEMP%\\' + re.escape(name) + '"')
    payload = "".join(pattern.fullmatch(p).group(1) for p in pieces)  # type: ignore[union-attr]
    assert base64.b64decode(payload).decode("utf-8") == text
    params, body = parse_parameters(_decode_command_line(bootstrap))
    assert params == {"UploadName": name} and body == script_body("run_uploaded")
    assert plan.cleanup_command() == f'del /f /q "%TEMP%\\{name}"'


@pytest.mark.parametrize("limit", [2000, 4000, SAFE_COMMAND_LINE])
def test_chunking_respects_any_limit(limit: int) -> None:
    text = operation_script("resolve", Name="n" * 3000).render()
    plan = plan_script(text, limit=limit, piece=limit - 100)
    assert plan.chunked and all(len(c) <= limit for c in plan.commands)


def test_a_limit_too_small_for_the_bootstrap_is_an_error_not_a_long_line() -> None:
    with pytest.raises(ValueError, match="over 300"):
        plan_script("x" * 1000, limit=300, piece=100)


def _result_line(value: object) -> str:
    return RESULT_PREFIX + base64.b64encode(json.dumps(value).encode()).decode()


def test_parse_result_takes_exactly_one_result_line() -> None:
    stdout = "noise\r\n" + _result_line({"a": "\u00e9"}) + "\r\nmore noise\r\n"
    assert parse_result(stdout) == {"a": "\u00e9"}
    with pytest.raises(ScriptOutputError, match="found 0"):
        parse_result("nothing here")
    with pytest.raises(ScriptOutputError, match="found 2"):
        parse_result(_result_line({}) + "\n" + _result_line({}))
    with pytest.raises(ScriptOutputError, match="not base64 JSON"):
        parse_result(RESULT_PREFIX + "!!!")
    with pytest.raises(ScriptOutputError, match="not a JSON object"):
        parse_result(_result_line([1]))


def test_one_element_arrays_powershell_unwraps_are_read_as_lists() -> None:
    assert result_string_list({"a": "1.2.3.4"}, "a") == ["1.2.3.4"]
    assert result_string_list({"a": ["1", "2"]}, "a") == ["1", "2"]
    assert result_string_list({}, "a") == []
    with pytest.raises(ScriptOutputError):
        result_string_list({"a": [1]}, "a")


def test_clixml_errors_are_decoded_and_progress_records_dropped() -> None:
    stderr = (
        "#< CLIXML\r\n"
        '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject'
        '</T></TN><MS><I64 N="SourceId">1</I64></MS></Obj>'
        '<S S="Error">Restart-Service : Cannot find any service with service name '
        "_x0027_X_x0027_._x000D__x000A_</S>"
        '<S S="Error">At line:1 char:1_x000D__x000A_</S></Objs>'
    )
    assert decode_clixml(stderr) == (
        "Restart-Service : Cannot find any service with service name 'X'.\nAt line:1 char:1"
    )
    assert decode_clixml("plain text") == "plain text"


def test_the_stand_in_runs_only_the_templates_exactly(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path, dns_server=("127.0.0.1", 9))
    sandbox.initialise()
    run = CommandExecutor(sandbox)

    good = operation_script("read_file", Path=r"%SystemRoot%\System32\drivers\etc\hosts")
    outcome = run(powershell_command_line(good.render()))
    assert outcome.exit_code == 0
    assert base64.b64decode(parse_result(outcome.stdout.decode())["data"]).startswith(b"# Copy")

    tampered = PsScript(
        good.body.replace("exit 0", "exit 0; Remove-Item C:\\ -Recurse"), good.params
    )
    outcome = run(powershell_command_line(tampered.render()))
    assert outcome.exit_code == 1 and outcome.stderr.startswith(b"#< CLIXML")
    assert "not one of the WinRM transport's templates" in decode_clixml(outcome.stderr.decode())

    for line in ("dir C:\\", "powershell -Command Get-Process", "echo hi > C:\\x"):
        outcome = run(line)
        assert outcome.exit_code == 1 and outcome.stderr, line
    assert run("ipconfig /flushdns").exit_code == 0


def test_the_stand_in_keeps_paths_inside_its_sandbox(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "box", dns_server=("127.0.0.1", 9))
    sandbox.initialise()
    (tmp_path / "outside").write_text("secret")
    run = CommandExecutor(sandbox)
    for path in (r"C:\..\outside", r"D:\outside", "/etc/passwd"):
        outcome = run(powershell_command_line(operation_script("read_file", Path=path).render()))
        assert outcome.exit_code == 1 and b"secret" not in outcome.stdout, path
