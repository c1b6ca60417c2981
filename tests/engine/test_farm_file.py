"""Farm files: the documented shape loads, mistakes are reported with line and column."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
from typer.testing import CliRunner

from ocsscale.cli.main import app
from ocsscale.engine.loader import FarmFileError, parse_farm

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
farm: ocspool
vip: [198.18.0.40]
ports:
  - 5061
  - {port: 8443, backend_port: 443}
balance: wlc
servers:
  - {name: ocsfe01, address: 198.19.0.41, weight: 1, state: ready}
  - {name: ocsfe02, address: 198.19.0.42, weight: 2, state: drain}
health:
  ports: [5061, 444]
  kind: tcp
snat:
  addresses: [198.19.0.40]
timeouts: {idle: 1800, connect: 5, half_close: 30}
admin: {socket: /run/ocsscale/lb-ocspool.sock}
workers: 1
"""


def test_documented_shape_loads_with_defaults() -> None:
    farm = parse_farm(GOOD)
    assert [(p.port, p.target) for p in farm.ports] == [(5061, 5061), (8443, 443)]
    assert farm.servers[1].state == "drain"
    assert (farm.health.inter, farm.health.fall, farm.health.timeout) == (0.25, 2, 0.5)
    minimal = parse_farm("farm: x\nvip: [127.0.0.1]\nports: [1]\n")
    assert minimal.timeouts.idle == 1800 and minimal.admin_socket == "/run/ocsscale/lb-x.sock"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("weight: 2", "weight: -1", "farm.yaml:9:51: servers[1].weight: Input should be greater"),
        ("workers: 1", "workers: 1\nfoo: 1", "farm.yaml:18:1: foo: unknown key"),
        ("  - 5061\n", "  - 70000\n", "farm.yaml:4:5: ports[0].port: Input should be less"),
        ("backend_port: 443}", "backend_port: 443, x: 1}", "farm.yaml:5:37: ports[1].x: unknown"),
        ("198.19.0.41", "fe1.example", "farm.yaml:8:30: servers[0].address: not an IP address"),
        ("  - 5061\n", "  - 8443\n", "farm.yaml:4:3: ports: listen port 8443 appears more"),
        ("state: drain", "state: down", "farm.yaml:9:61: servers[1].state: Input should be"),
        ("[5061, 444]", "[5061, 5061]", "farm.yaml:11:10: health.ports: health ports must be"),
        ("ocsfe02", "ocsfe01", "farm.yaml:8:3: servers: server name 'ocsfe01' appears"),
        ("balance: wlc", "balance: rr", "farm.yaml:6:10: balance: Input should be 'wlc'"),
        ("vip: [198.18.0.40]\n", "", "farm.yaml:1:1: vip: required key is missing"),
        ("kind: tcp", "kind: [", "farm.yaml:14:12: yaml: a [list] not closed with ']'"),
    ],
)
def test_mistakes_name_line_column_and_rule(old: str, new: str, expected: str) -> None:
    with pytest.raises(FarmFileError) as err:
        parse_farm(GOOD.replace(old, new, 1))
    assert str(err.value).splitlines()[0].startswith(expected), str(err.value)


def test_cli_check_exits_2_with_position(tmp_path: Path) -> None:
    bad = tmp_path / "farm.yaml"
    bad.write_text(GOOD.replace("workers: 1", "workers: 0"))
    result = CliRunner().invoke(app, ["lb", "check", "--farm", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:17:10: workers: Input should be greater than or equal to 1" in result.output
    assert "Traceback" not in result.output
    good = tmp_path / "good.yaml"
    # `check` also asks this machine: the VIP and SNAT address must be its own.
    good.write_text(GOOD.replace("198.18.0.40", "127.0.0.1").replace("198.19.0.40", "127.0.0.2"))
    assert CliRunner().invoke(app, ["lb", "check", "--farm", str(good)]).exit_code == 0


def test_template_renders_a_valid_farm() -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO / "templates"), undefined=jinja2.StrictUndefined
    )
    text = env.get_template("engine-farm.yaml.j2").render(
        farm="ocspool",
        vips=["198.18.0.40"],
        ports=[5061, 5060, 135, {"port": 8443, "backend_port": 443}, 444],
        servers=[
            {"name": "fe1", "address": "198.19.0.41", "weight": 1},
            {"name": "fe2", "address": "198.19.0.42", "weight": 3},
        ],
        health_ports=[5061, 444],
        snat_addresses=["198.19.0.40", "198.19.0.39"],
        idle_timeout=1800,
        admin_socket="/run/ocsscale/lb-ocspool.sock",
    )
    farm = parse_farm(text)
    assert [p.target for p in farm.ports] == [5061, 5060, 135, 443, 444]
    assert [s.weight for s in farm.servers] == [1, 3]
    assert farm.health.ports == [5061, 444] and len(farm.snat.addresses) == 2
