"""A pool whose hosts are all driven by the local transport, each with its own
hosts file in the test's temporary directory (nothing is contacted)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).resolve().parent / "testplugin"
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))

import ocsscale_testplugin  # noqa: E402,F401  (registers the test actions)

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"

HOSTS = ("fe00", "fe01", "fe02", "client01", "client02")

# Deliberately unusual bytes: a comment, CRLF on one line, no final newline.
ORIGINAL_HOSTS = b"127.0.0.1\tlocalhost\n# kept as is\r\n198.18.0.53 dns.lab.test"

POOL_YAML = """\
version: 1
pool: {{fqdn: pool.lab.test, sip_domain: lab.test}}
profile: ocs2007r2
legacy_fe:
  name: fe00
  fqdn: fe00.lab.test
  address: 198.18.0.30
  transport: {{kind: local, hosts_file: {d}/hosts-fe00, service_command: "true {{service}}"}}
front_ends:
  - name: fe01
    fqdn: fe01.lab.test
    address: 198.18.0.41
    transport: {{kind: local, hosts_file: {d}/hosts-fe01, service_command: "true {{service}}"}}
  - name: fe02
    fqdn: fe02.lab.test
    address: 198.18.0.42
    transport: {{kind: local, hosts_file: {d}/hosts-fe02, service_command: "true {{service}}"}}
test_clients:
  - name: client01
    address: 198.18.0.101
    transport: {{kind: local, hosts_file: {d}/hosts-client01}}
  - name: client02
    address: 198.18.0.102
    transport: {{kind: local, hosts_file: {d}/hosts-client02}}
directory: {{name: dc01, address: 198.18.0.10}}
load_balancer:
  driver: manual
  topology: one-armed
  vip: 198.18.0.40/24
  snat_addresses: [198.18.0.40]
  expected_peak_connections: 1000
dns: {{provider: manual, zone: lab.test}}
"""


# The head of the one phase most runner playbooks have; each test adds its steps.
VALIDATE_HEAD = """\
version: 1
phases:
  - id: validate-fe
    title: Validate
    section: test
    steps:
"""


@dataclass
class LocalPool:
    dir: Path
    pool: Path

    def hosts_file(self, name: str) -> Path:
        return self.dir / f"hosts-{name}"

    def snapshot(self) -> dict[str, bytes]:
        return {h: self.hosts_file(h).read_bytes() for h in HOSTS}

    @property
    def state_dir(self) -> Path:
        return self.dir / ".ocsscale"


@pytest.fixture
def local_pool(tmp_path: Path) -> LocalPool:
    (tmp_path / "pool.yaml").write_text(POOL_YAML.format(d=tmp_path))
    for h in HOSTS:
        (tmp_path / f"hosts-{h}").write_bytes(ORIGINAL_HOSTS)
    return LocalPool(tmp_path, tmp_path / "pool.yaml")


@pytest.fixture
def plugin_env() -> dict[str, str]:
    """The environment for an `ocsscale` subprocess that loads the test plugin."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PLUGIN_DIR), str(REPO), env.get("PYTHONPATH", "")) if p
    )
    env["OCSSCALE_PLUGINS"] = "ocsscale_testplugin"
    env.pop("OCSSCALE_POOL", None)
    env["COLUMNS"] = "200"
    return env
