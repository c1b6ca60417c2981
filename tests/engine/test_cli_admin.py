"""The CLI against a running engine's admin socket, and the raw HTTP API."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from ocsscale.cli.main import app as tool
from ocsscale.engine.cli import app
from ocsscale.engine.client import request

from .conftest import Backends, EngineProc, Net, basic_farm, connect

runner = CliRunner()


def test_cli_operates_a_running_engine(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    for i in range(2):
        backends.open(net.servers[i], 16601, f"fe{i + 1}")
    engine = engine_factory(basic_farm(net, [16601], [1, 1]))
    farm = ["--farm", str(engine.farm_path)]
    sock, name = connect(net.vip, 16601)

    result = runner.invoke(app, ["status", *farm, "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert {s["name"]: s["active"] for s in status["servers"]}[name] == 1

    result = runner.invoke(app, ["drain", "fe1", "--socket", engine.socket])
    assert result.exit_code == 0 and "fe1: drain" in result.output
    assert engine.server("fe1")["admin"] == "drain"
    result = runner.invoke(app, ["status", *farm])
    assert result.exit_code == 0 and "fe1" in result.output and "drain" in result.output

    result = runner.invoke(app, ["events", *farm])
    assert "admin-state [fe1]: fe1: ready -> drain" in result.output
    result = runner.invoke(app, ["ready", "fe1", *farm])
    assert result.exit_code == 0 and engine.server("fe1")["admin"] == "ready"
    result = runner.invoke(app, ["maint", "fe2", *farm, "--json"])
    assert json.loads(result.output)["server"]["admin"] == "maint"

    result = runner.invoke(app, ["reload", *farm])
    assert result.exit_code == 0 and "reloaded" in result.output
    assert engine.server("fe2")["admin"] == "maint"

    # errors are the tool's, rendered by its root command (as `ocsscale lb` does)
    result = runner.invoke(tool, ["lb", "drain", "nope", *farm])
    assert result.exit_code == 1 and "no server named 'nope'" in result.output

    result = runner.invoke(app, ["metrics", *farm])
    assert f'ocsscale_lb_connections_active{{farm="test",server="{name}",port="16601"}} 1' in (
        result.output
    )
    assert 'ocsscale_lb_snat_ports_in_use{farm="test",address="' in result.output
    assert 'ocsscale_lb_events_total{farm="test",kind="admin-state"} 3' in result.output
    sock.close()


def test_cli_without_engine_is_a_clear_error(tmp_path: object) -> None:
    result = runner.invoke(tool, ["lb", "status", "--socket", "/nonexistent/lb.sock"])
    assert result.exit_code == 1
    assert "error: no admin socket at /nonexistent/lb.sock" in result.output
    result = runner.invoke(tool, ["lb", "status"])
    assert result.exit_code == 2 and "--socket PATH or --farm FILE" in result.output


def test_http_api_errors(net: Net, backends: Backends, engine_factory: type[EngineProc]) -> None:
    backends.open(net.servers[0], 16602, "fe1")
    engine = engine_factory(basic_farm(net, [16602], [1]))
    assert request(engine.socket, "GET", "/nothing")[0] == 404
    assert request(engine.socket, "GET", "/servers/fe1/drain")[0] == 405
    status, body = request(engine.socket, "GET", "/metrics")
    assert status == 200 and b"# TYPE ocsscale_lb_server_up gauge" in body


def test_the_api_plumbing_command_answers_as_the_admin_api(
    net: Net, backends: Backends, engine_factory: type[EngineProc]
) -> None:
    """`ocsscale lb api`, what the engine driver runs on the LB host: the real entry
    point in a child process, the engine's own JSON on one line."""
    backends.open(net.servers[0], 16603, "fe1")
    engine = engine_factory(basic_farm(net, [16603], [1]))

    def api(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ocsscale", "lb", "api", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    done = api("POST", "/servers/fe1/drain", "--socket", engine.socket)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["server"]["admin"] == "drain"
    status = api("GET", "/status", "-s", engine.socket)
    assert status.returncode == 0 and len(status.stdout.strip().splitlines()) == 1
    assert {s["name"]: s["admin"] for s in json.loads(status.stdout)["servers"]} == {"fe1": "drain"}
    events = json.loads(api("GET", "/events?since=0", "--socket", engine.socket).stdout)
    assert any(e.get("server") == "fe1" for e in events["events"])

    refused = api("POST", "/servers/nope/drain", "--socket", engine.socket)
    assert refused.returncode == 1 and "no server named 'nope'" in refused.stderr
    for bad in (
        ["DELETE", "/status"],
        ["GET", "status"],
        ["GET", "/status;rm -rf /"],
        ["GET", "//status//"],
        ["POST", "/servers/fe1/../../reload"],
    ):
        wrong = api(*bad, "--socket", engine.socket)
        assert wrong.returncode == 2 and "Traceback" not in wrong.stderr, wrong.stderr
    gone = api("GET", "/status", "--socket", "/nonexistent/lb.sock")
    assert gone.returncode == 1 and "no admin socket" in gone.stderr
    # the same through the engine's full CLI (its --help lists it)
    result = runner.invoke(app, ["api", "GET", "/status", "--socket", engine.socket])
    assert result.exit_code == 0 and json.loads(result.output)["servers"][0]["name"] == "fe1"
