"""`check`, `init` and `profiles`: the pool file and the profiles it names.

Only parsing and rendering here; the work is in ocsscale.config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..config import LoadedPool, load_pool
from ..config.init_template import write_pool_file
from ..config.model import TOPOLOGIES
from ..config.profiles import Profile, list_profiles, load_profile, port_requirement
from ..runner.lease import no_place_warning
from .render import handle_errors
from .state import app_state

CHECK_HELP = """\
Validate the pool file; nothing is contacted and no secret is read.

Every problem is reported at once as FILE:LINE:COL: PATH: MESSAGE [RULE],
for example

  pool.yaml:47:9: load_balancer.mode: out-of-path (direct server return)
  is not supported by this profile ... [lb.mode.out-of-path]

The rules come from the walkthrough: supported topologies only, SNAT
required (no DSR, no DNAT-only), two-armed front ends on their own subnet
behind backend_address, unique names and addresses, no host on the VIP,
enough SNAT addresses for the expected peak connections, credentials by
reference only, unknown keys refused.

Exit code 0 when valid, 2 when not. The file is -c/--config, before or
after the command (default ./pool.yaml, or $OCSSCALE_POOL):
`ocsscale -c examples/one-armed.yaml check`, or
`ocsscale check -c examples/one-armed.yaml`.
"""

INIT_HELP = f"""\
Write a commented pool file that `check` accepts, to edit for your network.

It holds the walkthrough's sample (contoso.com, VIP 10.0.0.40, front ends
10.0.1.41 and 10.0.1.42) laid out for the topology you choose:
{", ".join(TOPOLOGIES)}. The file is validated before it is written and
written atomically; an existing file is kept unless --force.

  ocsscale init -o pool.yaml

  ocsscale init --topology two-armed-routed -o pool.yaml

  ocsscale init --profile ./my-profile.yaml -o pool.yaml

Only that one file is written; nothing is contacted.

Exit codes: 0 written; 2 the file exists (without --force), an unknown
profile or topology, or the file cannot be written there.
"""

PROFILES_HELP = """\
List the profiles: what makes a service special (ports, health-check
ports, idle timeout, services to restart, certificate rules).

A pool file names one (`profile: ocs2007r2`) or the path of a profile file
of your own; start from `ocsscale profiles show ocs2007r2`.

  ocsscale profiles

  ocsscale profiles show generic-tls --json

Reads only; changes nothing. Exit codes: 0 shown; 2 no such profile, or
the profile file is invalid (listed as FILE:LINE:COL).
"""


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True, emoji=False)


def _ports(ports: list[int]) -> str:
    return ", ".join(str(p) for p in ports) or "-"


@handle_errors
def check_cmd(ctx: typer.Context) -> None:
    loaded = load_pool(app_state(ctx).config)
    typer.echo(summary(loaded))


def summary(loaded: LoadedPool) -> str:
    pool, profile = loaded.pool, loaded.profile
    lb = pool.load_balancer
    fes = ", ".join(f"{fe.name} {fe.address} (weight {fe.weight})" for fe in pool.front_ends)
    clients = ", ".join(f"{c.name} {c.address}" for c in pool.test_clients)
    lines = [
        f"{loaded.path}: valid",
        f"  pool        {pool.pool.fqdn} (SIP domain {pool.pool.sip_domain})",
        f"  profile     {profile.name}: {len(profile.ports)} ports "
        f"({len(required_ports(loaded))} required here), checks on {_ports(profile.check_ports)}",
        f"  topology    {lb.topology}, {lb.mode}, VIP {lb.vip}"
        + (f", backend {lb.backend_address}" if lb.backend_address else "")
        + f", driver {lb.driver.kind}",
        f"  legacy FE   {pool.legacy_fe.name} {pool.legacy_fe.address}",
        f"  front ends  {len(pool.front_ends)}: {fes}",
        f"  clients     {len(pool.test_clients)}: {clients}",
        f"  SNAT        {len(lb.snat_addresses)} address(es) for "
        f"{lb.expected_peak_connections:,} expected peak connections",
        *_pair_lines(lb),
        *pool_warnings(loaded),
        "Nothing was contacted.",
    ]
    return "\n".join(lines)


def required_ports(loaded: LoadedPool) -> list[int]:
    """The profile's required ports as this pool file has them (`pool.ports`)."""
    pool, profile = loaded.pool, loaded.profile
    return [p for p in profile.ports if port_requirement(pool, profile, p) == "required"]


def pool_warnings(loaded: LoadedPool) -> list[str]:
    """Settings that are valid but weaken what the probes prove."""
    out = []
    legacy = loaded.pool.legacy_tls_servers()
    if legacy:
        names = ", ".join(s.name for s in legacy)
        out.append(
            f"warning: legacy_tls: the probes accept TLS 1.0 and SHA-1 certificates from "
            f"{names} (and through the VIP when a front end is among them); every TLS "
            "finding shows the version and cipher negotiated. Remove it once those servers "
            "speak TLS 1.2."
        )
    lease = no_place_warning(loaded.pool)
    if lease:
        out.append(lease)
    out += winrm_address_warnings(loaded.pool)
    return out


def winrm_address_warnings(pool: Any) -> list[str]:
    """WinRM hosts reached by address, where a real host's certificate or Kerberos
    would need the FQDN."""
    from ..transports.factory import winrm_target

    out = []
    for _, spec in pool.all_hosts():
        t = spec.transport
        if t.kind != "winrm" or winrm_target(spec) == spec.fqdn:
            continue
        why = "connect_to: address" if spec.fqdn else "no fqdn in its entry"
        needs = []
        if t.scheme == "https" and t.verify_tls:
            needs.append("its certificate must name that address (Windows names the FQDN)")
        if t.auth == "kerberos":
            needs.append("Kerberos needs the FQDN and will fail")
        if needs:
            out.append(
                f"warning: winrm: {spec.name} is reached by address ({why}): " + "; ".join(needs)
            )
    return out


@handle_errors
def init_cmd(
    ctx: typer.Context,
    profile: str = typer.Option(
        "ocs2007r2", "--profile", "-p", help="A shipped profile name, or a profile file."
    ),
    topology: str = typer.Option(
        "one-armed", "--topology", "-t", help=f"One of: {', '.join(TOPOLOGIES)}."
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Where to write it (default: the -c/--config path)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing file."),
) -> None:
    target = output if output is not None else app_state(ctx).config
    written = write_pool_file(target, profile, topology, force=force)
    typer.echo(f"wrote {written} ({topology}, profile {profile})")
    typer.echo(f"next: edit it, then `ocsscale -c {written} check`")


def profile_dict(profile: Profile) -> dict[str, Any]:
    data = profile.model_dump(mode="json")
    data["following_ports"] = profile.following_ports()
    data["port_notes"] = {str(p.port): p.note for p in profile.port_list if p.note}
    data["source"] = profile.source
    return data


profiles_app = typer.Typer(
    help=PROFILES_HELP, rich_markup_mode=None, no_args_is_help=False, add_completion=False
)


@profiles_app.callback(invoke_without_command=True)
@handle_errors
def profiles_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON document instead of a table."),
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    profiles = list_profiles()
    if as_json:
        typer.echo(json.dumps([profile_dict(p) for p in profiles], indent=2))
        return
    table = Table(title="Profiles", show_lines=False)
    for column in ("name", "ports", "check ports", "idle timeout", "description"):
        table.add_column(column)
    for p in profiles:
        table.add_row(
            p.name, _ports(p.ports), _ports(p.check_ports), f"{p.idle_timeout} s", p.description
        )
    _out().print(table)
    typer.echo("Details: ocsscale profiles show NAME")


@profiles_app.command("show")
@handle_errors
def profiles_show(
    name: str = typer.Argument(..., help="A shipped profile name or a profile file."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
) -> None:
    """Everything a profile says: ports, checks, services, certificate rules.

    NAME is a shipped profile (ocs2007r2, generic-tls) or a profile file.

      ocsscale profiles show ocs2007r2

    Exit codes: 0 shown; 2 no such profile, or the profile file is invalid.
    """
    profile = load_profile(name, Path.cwd())
    if as_json:
        typer.echo(json.dumps(profile_dict(profile), indent=2))
        return
    sip = profile.sip_ports
    cert = profile.certificate
    lines = [
        f"{profile.name}: {profile.description}",
        f"  file               {profile.source}",
        f"  ports              {_ports(profile.ports)}",
        f"  optional ports     {_ports(profile.optional_ports)}"
        + (" (probed; nothing listening there is not a failure)" if profile.optional_ports else ""),
        f"  check ports        {_ports(profile.check_ports)}"
        + (" (every other port follows them)" if profile.others_follow_checks else ""),
        f"  idle timeout       {profile.idle_timeout} s",
        f"  balance            {profile.balance} (weighted least connections)",
        f"  SNAT               {profile.snat_connections_per_address:,} connections per address",
        f"  topologies         {', '.join(profile.supported_topologies)}",
        f"  modes              {', '.join(profile.supported_modes)}",
        f"  TLS ports          {_ports(profile.tls_ports)}",
        f"  SIP ports          tls {sip.tls or '-'}, tcp {sip.tcp or '-'}",
        f"  HTTPS ports        {_ports(profile.https_ports)}",
        f"  services (windows) {', '.join(profile.services.windows) or '-'}"
        + "".join(f", display name like {d!r}" for d in profile.services.windows_display_names),
        f"  services (linux)   {', '.join(profile.services.linux) or '-'}",
        f"  certificate        subject {cert.subject}; SAN {', '.join(cert.san)}; "
        f"wildcard {'allowed' if cert.wildcard else 'refused'}; EKU {cert.eku}",
    ]
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    app.command("check", help=CHECK_HELP)(check_cmd)
    app.command("init", help=INIT_HELP)(init_cmd)
    app.add_typer(profiles_app, name="profiles")


def _pair_lines(lb: Any) -> list[str]:
    """A load-balancer pair in `check`'s summary (the secret by its reference only)."""
    pair = lb.pair
    if pair is None:
        return []
    hosts = ", ".join(
        f"{h.name} ({', '.join(a.with_prefixlen for a in h.addresses)})" for h in pair.hosts
    )
    floating = ", ".join(str(a) for a in lb.floating())
    return [
        f"  LB pair     {hosts}; {pair.preferred} preferred, preempt "
        f"{'on' if pair.preempt else 'off'}, VRRP router id {pair.router_id}, "
        f"advert {pair.advert_interval} s, secret "
        f"{pair.secret.describe() if pair.secret else 'missing'}",
        f"  floating    {floating} (keepalived moves them together)",
    ]
