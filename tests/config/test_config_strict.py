"""Strict types and real ranges: YAML's `true`, `1e29` or `"2"` are not numbers or
addresses, and the value at fault is never quoted back."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import ONE_ARMED, load_text, only_issue, variant

FE_ADDRESS = "    address: 10.0.1.41\n"
FE_WEIGHT = "    address: 10.0.1.41\n    weight: 1\n"


@pytest.mark.parametrize(
    ("old", "new", "path", "rule"),
    [
        (FE_ADDRESS, "    address: true\n", "front_ends[0].address", "address.not-text"),
        (FE_ADDRESS, "    address: 167772457\n", "front_ends[0].address", "address.not-text"),
        (
            "address: 10.0.0.10\n  port",
            "address: 1\n  port",
            "directory.address",
            "address.not-text",
        ),
        ("[10.0.0.40]", "[true]", "load_balancer.snat_addresses[0]", "address.not-text"),
        ("vip: 10.0.0.40/16", "vip: true", "load_balancer.vip", "address.not-text"),
        ("cutover_ttl: 60 ", "cutover_ttl: true ", "dns.cutover_ttl", "value.not-a-number"),
        ("ttl: 3600 ", "ttl: 2147483648 ", "dns.ttl", "dns.ttl.range"),
        ("cutover_ttl: 60 ", "cutover_ttl: -1 ", "dns.cutover_ttl", "dns.ttl.range"),
        (
            FE_WEIGHT,
            FE_ADDRESS + "    weight: 1e29\n",
            "front_ends[0].weight",
            "value.not-a-number",
        ),
        (
            FE_WEIGHT,
            FE_ADDRESS + "    weight: true\n",
            "front_ends[0].weight",
            "value.not-a-number",
        ),
        (FE_WEIGHT, FE_ADDRESS + "    weight: '2'\n", "front_ends[0].weight", "value.not-a-number"),
        ("port: 135", "port: 70000", "directory.port", "value.port-range"),
        ("port: 135", "port: 0", "directory.port", "value.port-range"),
        ("port: 135", "port: 135.0", "directory.port", "value.not-a-number"),
        (
            "expected_peak_connections: 20000",
            "expected_peak_connections: 1e29",
            "load_balancer.expected_peak_connections",
            "value.not-a-number",
        ),
        (
            "expected_peak_connections: 20000",
            "expected_peak_connections: 1000000000",
            "load_balancer.expected_peak_connections",
            "lb.peak-connections.range",
        ),
        ("version: 1", "version: true", "version", "version.unsupported"),
        (
            "key_file: ~/.ssh/id_ed25519",
            "key_file: ''",
            "credentials.lb-admin.key_file",
            "path.empty",
        ),
        (
            "key_file: ~/.ssh/id_ed25519",
            'key_file: "a\\0b"',
            "credentials.lb-admin.key_file",
            "path.nul",
        ),
        (
            "password: {env: OCS_ADMIN_PASSWORD}",
            'password: {env: "Secret with spaces"}',
            "credentials.ocs-admin.password.env",
            "secret.env-name",
        ),
        (
            "password: {env: OCS_ADMIN_PASSWORD}",
            "password: {env: 9Secret}",
            "credentials.ocs-admin.password.env",
            "secret.env-name",
        ),
        (
            "password: {env: OCS_ADMIN_PASSWORD}",
            "password: {file: '  '}",
            "credentials.ocs-admin.password.file",
            "path.empty",
        ),
    ],
)
def test_refused(tmp_path: Path, old: str, new: str, path: str, rule: str) -> None:
    text = variant(ONE_ARMED, (old, new))
    issue = only_issue(tmp_path, text, rule)
    assert issue.path == path
    assert issue.line > 0
    assert "Secret" not in issue.message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("cutover_ttl: 60 ", "cutover_ttl: 0 "),
        ("ttl: 3600 ", "ttl: 2147483647 "),
        (FE_WEIGHT, FE_ADDRESS + "    weight: 256\n"),
        ("password: {env: OCS_ADMIN_PASSWORD}", "password: {env: _ocs_admin_2}"),
    ],
)
def test_the_edges_of_each_range_are_accepted(tmp_path: Path, old: str, new: str) -> None:
    load_text(tmp_path, variant(ONE_ARMED, (old, new)))
