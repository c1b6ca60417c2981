"""How `ocsscale lab load` shows its result: one Rich table per client, the seconds
with failures, and a summary line that says what the numbers mean."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console
from rich.table import Table

from ocsscale.probes.load_report import LoadReport, merge_reports

from .topology import POOL_FQDN, VIP

MAX_FAILED_SECONDS_SHOWN = 30


def _servers(by_server: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(by_server.items())) or "-"


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(errors.items())) or "-"


def _clock(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%H:%M:%S")


def client_table(client: str, report: LoadReport) -> Table:
    addresses = sorted({str(t["address"]) for t in report.targets})
    table = Table(title=f"{client} -> {', '.join(addresses)}", title_justify="left")
    for column in ("request", "requests", "ok", "failed", "answered by", "errors"):
        justify = "right" if column in ("requests", "ok", "failed") else "left"
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for target in report.targets:
        tally: dict[str, Any] = report.by_target.get(target["target"], {})
        table.add_row(
            f"{target['kind']} {target['port']}",
            str(tally.get("requests", 0)),
            str(tally.get("ok", 0)),
            str(tally.get("failed", 0)),
            _servers(tally.get("by_server", {})),
            _errors(tally.get("errors", {})),
        )
    totals = report.totals
    table.add_row(
        "all",
        str(totals.get("requests", 0)),
        str(totals.get("ok", 0)),
        str(totals.get("failed", 0)),
        _servers(totals.get("by_server", {})),
        _errors(totals.get("errors", {})),
        style="bold",
    )
    return table


def failed_seconds_table(client: str, report: LoadReport) -> Table | None:
    seconds = report.failed_seconds()
    if not seconds:
        return None
    table = Table(title=f"{client}: failures per second (UTC)", title_justify="left")
    for column in ("second", "label", "failed", "ok"):
        table.add_column(column, justify="right" if column in ("failed", "ok") else "left")
    for bucket in seconds[:MAX_FAILED_SECONDS_SHOWN]:
        table.add_row(
            _clock(bucket["t"]), bucket["label"] or "-", str(bucket["failed"]), str(bucket["ok"])
        )
    if len(seconds) > MAX_FAILED_SECONDS_SHOWN:
        table.add_row(f"... {len(seconds) - MAX_FAILED_SECONDS_SHOWN} more seconds", "", "", "")
    return table


def summary(reports: dict[str, LoadReport], through: str, windows: list[str]) -> list[str]:
    merged = merge_reports(reports)
    totals = merged["totals"]
    where = f"the pool name {POOL_FQDN}" if through == "name" else f"the VIP {VIP}"
    lines = [
        f"load from {', '.join(reports)} through {where}: {totals['requests']} requests, "
        f"{totals['failed']} failed; answered by {_servers(totals['by_server'])}."
    ]
    if through == "vip" and totals["requests"] and not totals["ok"]:
        lines.append(
            f"Nothing answered on the VIP {VIP}: that is the right result while no load "
            "balancer is configured in this lab (configure-lb configures one), not an error "
            "of the load."
        )
    for client in windows:
        lines.append(f"{client} (Windows, over WinRM) carries no load: WinRM cannot hold a stream.")
    return lines


def render(
    console: Console, reports: dict[str, LoadReport], through: str, windows: list[str]
) -> None:
    for client, report in reports.items():
        console.print(client_table(client, report))
        failed = failed_seconds_table(client, report)
        if failed is not None:
            console.print(failed)
    for line in summary(reports, through, windows):
        console.print(line)
