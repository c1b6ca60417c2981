"""The failover procedure names how to see the members at this pool's load balancer:
the engine's admin socket, HAProxy's runtime API, or the appliance's product (the
manual driver's vendor, in the words of its checklist file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocsscale.actions.base import Context, registry
from ocsscale.config import load_pool
from ocsscale.runner.plugins import load_actions

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("driver", "named"),
    [
        ("engine", "--socket /run/ocsscale/lb.sock"),
        ("haproxy", "HAProxy's runtime API on /run/haproxy/admin.sock"),
        ("{kind: manual, vendor: F5}", "the F5 BIG-IP LTM's farm screen"),
        ("{kind: manual, vendor: kemp}", "the Kemp LoadMaster's farm screen"),
    ],
)
def test_the_procedure_names_the_load_balancers_view(
    tmp_path: Path, driver: str, named: str
) -> None:
    text = (REPO / "examples" / "one-armed.yaml").read_text(encoding="utf-8")
    written = "  driver: engine "
    assert text.count(written) == 1
    pool = tmp_path / "pool.yaml"
    pool.write_text(text.replace(written, f"  driver: {driver} "), encoding="utf-8")
    load_actions()
    loaded = load_pool(pool)
    ctx = Context(
        pool=loaded.pool,
        profile=loaded.profile,
        host=lambda name: pytest.fail(f"no host is needed (asked for {name})"),
    )
    action = registry()["lb.failover_procedure"](ctx, {})
    lines = action.apply(action.read())["procedure"]
    confirm = [line for line in lines if line.startswith("Confirm at the load balancer (")]
    assert len(confirm) == 1 and named in confirm[0], lines
