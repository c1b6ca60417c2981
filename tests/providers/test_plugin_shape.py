"""The one plug-in shape (providers/plugin.py): LB drivers and DNS providers are
built from their own settings plus Ports, say what they support as capability
flags, and come from one kind of registry. The adapter (actions/plugin_ports.py)
builds the ports from an action's Context."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path

import pytest

from ocsscale.actions.base import Context
from ocsscale.actions.plugin_ports import lb_driver, open_provider, ports_from
from ocsscale.config.lb_settings import DRIVER_KINDS, EngineSettings, ManualSettings
from ocsscale.config.loader import load_pool
from ocsscale.config.model import Rfc2136Dns
from ocsscale.errors import UndoRecordError, UsageError
from ocsscale.operator import NoOperator
from ocsscale.providers.dns.rfc2136 import Rfc2136Provider
from ocsscale.providers.lb import DRIVERS, LbSite, open_driver
from ocsscale.providers.lb.engine import EngineDriver
from ocsscale.providers.lb.manual import ManualDriver
from ocsscale.providers.plugin import Ports

REPO = Path(__file__).resolve().parents[2]
POOL = REPO / "examples" / "one-armed.yaml"


def _site() -> LbSite:
    loaded = load_pool(POOL)
    return LbSite.from_pool(loaded.pool, loaded.profile)


def test_every_driver_of_the_pool_file_is_registered() -> None:
    assert DRIVERS.names() == sorted(DRIVER_KINDS)


def test_a_driver_is_built_only_from_its_own_settings() -> None:
    site, ports = _site(), Ports()
    manual = ManualSettings(kind="manual", vendor="kemp")
    assert isinstance(open_driver(manual, site, ports), ManualDriver)
    with pytest.raises(UsageError, match="another one's settings"):
        DRIVERS.build("engine", manual, site, ports)
    with pytest.raises(UsageError, match="no load-balancer driver 'f5'"):
        DRIVERS.build("f5", manual, site, ports)


def test_capabilities_say_what_each_driver_does_itself() -> None:
    site = _site()
    manual = open_driver(ManualSettings(kind="manual"), site, Ports())
    engine = open_driver(EngineSettings(kind="engine"), site, Ports())
    assert not manual.capabilities.drives_itself and not manual.capabilities.drain
    assert not manual.capabilities.read_back and not manual.capabilities.detects
    caps = engine.capabilities
    assert caps.drives_itself and caps.drain and caps.read_back and caps.detects
    assert manual.targets() == [] and engine.targets() == [site.host] == ["lb01"]
    assert (
        "Kemp" in open_driver(ManualSettings(kind="manual", vendor="kemp"), site, Ports()).console()
    )
    assert "--socket /run/ocsscale/lb.sock" in engine.console()
    assert engine.plan_note(site.farm) == "" and manual.plan_note(site.farm)


def test_capabilities_are_known_from_the_settings_without_building_the_plugin() -> None:
    """The registry reads them from the settings alone (the plan and the lease ask
    before any secret is resolved or host reached), as the plug-in declares them."""
    from ocsscale.config.lb_settings import HaproxySettings
    from ocsscale.config.model import ManualDns, WindowsDns
    from ocsscale.providers import dns, lb
    from ocsscale.providers.dns.manual import ManualProvider
    from ocsscale.providers.dns.windows import WindowsProvider
    from ocsscale.providers.dns.windows_scripts import TYPES

    site = _site()
    for settings in (EngineSettings(kind="engine"), ManualSettings(kind="manual")):
        built = open_driver(settings, site, Ports())
        assert lb.capabilities(settings) == built.capabilities
    assert lb.capabilities(EngineSettings(kind="engine")).own_host
    assert lb.capabilities(HaproxySettings(kind="haproxy")).own_host
    assert not lb.capabilities(ManualSettings(kind="manual")).own_host
    with pytest.raises(UsageError, match="another one's settings"):
        DRIVERS.capabilities("engine", ManualSettings(kind="manual"))

    # rfc2136 resolves its TSIG secret when built: its capabilities need none
    tsig = {"name": "k", "secret": {"env": "OCSSCALE_TEST_UNSET_SECRET"}}
    rfc = Rfc2136Dns(provider="rfc2136", zone="example.com", servers=["198.18.0.53"], tsig=tsig)
    caps = dns.capabilities(rfc)
    assert caps.drives_itself and not caps.replicated and caps.record_types is None
    windows = WindowsDns.model_validate(
        {"provider": "windows", "zone": "example.com", "host": {"name": "dc01",
         "address": "198.18.0.10", "transport": {"kind": "winrm", "credentials": "c"}}}
    )  # fmt: skip
    caps = dns.capabilities(windows)
    assert caps == WindowsProvider.capabilities and caps.replicated and caps.record_types == TYPES
    manual = {"provider": "manual", "zone": "example.com", "servers": ["198.18.0.53"]}
    assert dns.capabilities(ManualDns.model_validate(manual)) == ManualProvider.capabilities
    ad = dns.capabilities(ManualDns.model_validate({**manual, "ad_integrated": True}))
    assert ad.replicated and not ad.drives_itself


def test_a_driver_without_its_host_says_so_when_asked_for_it() -> None:
    site = LbSite(fqdn="pool.example.com", farm=_site().farm, host=None)
    engine = EngineDriver(EngineSettings(kind="engine"), site, Ports())
    assert engine.capabilities.drives_itself  # what it can do: asked without a host
    with pytest.raises(UsageError, match="needs load_balancer.host"):
        engine.targets()


def test_each_driver_checks_the_shape_of_its_own_undo_record() -> None:
    site = _site()
    manual = ManualDriver(ManualSettings(kind="manual"), site, Ports())
    record = json.loads(json.dumps(manual.undo_for({})))  # as the journal keeps it
    manual.check_undo(record)
    with pytest.raises(UndoRecordError, match="'ports' is not a list of port numbers"):
        manual.check_undo({**record, "farm": {**record["farm"], "ports": ["443"]}})
    engine = EngineDriver(EngineSettings(kind="engine"), site, Ports())
    with pytest.raises(UndoRecordError):
        engine.check_undo(record)  # the manual record is not the engine's shape


def test_the_adapter_builds_ports_from_the_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCSSCALE_TSIG_SECRET", base64.b64encode(b"k" * 16).decode())
    loaded = load_pool(POOL)
    operator, events = NoOperator(), []
    ctx = Context(
        pool=loaded.pool,
        profile=loaded.profile,
        host=lambda name: pytest.fail(f"no host is reached ({name})"),
        emit=lambda kind, data: events.append(kind),
        operator=operator,
        pool_path=tmp_path / "pool.yaml",
    )
    ports = ports_from(ctx)
    assert ports.base_dir == tmp_path.resolve() and ports.operator is operator
    assert ports.state_dir == tmp_path.resolve() / ".ocsscale"
    ports.emit("checklist", {"title": "t"})
    assert events == ["checklist"]
    driver = lb_driver(ctx)
    assert driver.kind == loaded.pool.load_balancer.driver.kind
    assert open_provider(ctx).kind == loaded.pool.dns.provider


def test_rfc2136_reads_a_relative_secret_file_from_the_pool_files_directory(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "tsig.key"
    secret.write_text(base64.b64encode(b"0123456789abcdef").decode() + "\n")
    secret.chmod(0o600)
    settings = Rfc2136Dns.model_validate(
        {
            "provider": "rfc2136",
            "zone": "example.com",
            "servers": ["127.0.0.1"],
            "tsig": {"name": "ocsscale", "secret": {"file": "tsig.key"}},
        }
    )
    provider = Rfc2136Provider.from_settings(settings, Ports(base_dir=tmp_path))
    assert provider.key_name == "ocsscale" and provider.targets() == []
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(UsageError):
        Rfc2136Provider.from_settings(settings, Ports(base_dir=elsewhere))


# -- guarded, so it stays that way (read from the source, like tests/test_architecture.py)

PACKAGE = REPO / "ocsscale"


def test_the_seam_types_hold_no_any() -> None:
    """Ports, Capabilities, the registry and the LB site say what they carry."""
    seam = [PACKAGE / "providers" / "plugin.py", PACKAGE / "actions" / "plugin_ports.py"]
    tree = ast.parse((PACKAGE / "providers" / "lb" / "base.py").read_text())
    site = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "LbSite")
    found = [
        f"{path.name}:{node.lineno}"
        for path, root in [*((p, ast.parse(p.read_text())) for p in seam), (Path("LbSite"), site)]
        for node in ast.walk(root)
        if (isinstance(node, ast.Name) and node.id == "Any")
        or (isinstance(node, ast.Attribute) and node.attr == "Any")
    ]
    assert found == []


def _kind_of_a_driver(node: ast.expr) -> bool:
    """`<...>.driver.kind` or `driver.kind`: the LB driver's name."""
    if not (isinstance(node, ast.Attribute) and node.attr == "kind"):
        return False
    owner = node.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "driver") or (
        isinstance(owner, ast.Name) and owner.id == "driver"
    )


def test_no_action_branches_on_the_load_balancer_drivers_kind() -> None:
    """Actions ask a driver's capabilities; its kind is a name to show, not to match."""
    found = []
    for path in sorted((PACKAGE / "actions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                _kind_of_a_driver(side) for side in (node.left, *node.comparators)
            ):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []
