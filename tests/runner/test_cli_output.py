"""What `run` and `rollback` print without a terminal (CliRunner), with and
without -v, on real hosts files of the local transport."""

from __future__ import annotations

from typer.testing import CliRunner

from ocsscale.cli.main import app

from .conftest import ORIGINAL_HOSTS, LocalPool
from .test_thin_cli import PLAYBOOK


def test_run_and_rollback_print_a_summary_and_v_every_step(local_pool: LocalPool) -> None:
    playbook = local_pool.dir / "playbook.yaml"
    playbook.write_text(PLAYBOOK)
    runner = CliRunner()
    args = ["-c", str(local_pool.pool)]
    run = ["run", "--yes", "--playbook", str(playbook)]

    done = runner.invoke(app, [*args, *run], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0] == "▶ validate-fe  Validate"
    assert lines[1].startswith("  validate-fe done: 2 steps: 2 changed, in ")
    assert lines[2:] == ["    pin 2✓", lines[-1]] and lines[-1].startswith("run ")
    rolled = runner.invoke(app, [*args, "rollback", "--yes"], env={"COLUMNS": "200"})
    assert rolled.exit_code == 0, rolled.output
    assert rolled.output.splitlines()[:2] == [
        "  ↶ 2 change(s) to revert; `ocsscale status` lists them",
        "  ↶ validate-fe: 2 reverted",
    ]
    assert local_pool.hosts_file("client01").read_bytes() == ORIGINAL_HOSTS

    detailed = runner.invoke(app, [*args, *run, "-v"], env={"COLUMNS": "200"})
    assert detailed.exit_code == 0, detailed.output
    for client in ("client01", "client02"):
        assert f"✓ validate-fe/pin[{client}]  pin pool.lab.test -> 198.18.0.41" in detailed.output
    rolled = runner.invoke(app, [*args, "rollback", "--yes", "-v"], env={"COLUMNS": "200"})
    assert rolled.exit_code == 0, rolled.output
    assert "↶ validate-fe/pin[client01]  pin pool.lab.test" in rolled.output
    assert "✓ reverted validate-fe/pin[client01]" in rolled.output
    assert local_pool.hosts_file("client01").read_bytes() == ORIGINAL_HOSTS
