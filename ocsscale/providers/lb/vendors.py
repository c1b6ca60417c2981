"""The manual driver's checklists in each appliance's own words.

Each vendor (`load_balancer.driver.vendor`: webmux, f5, kemp, netscaler,
generic) is a data file, `templates/lb-vendors/<vendor>.yaml`, that names its
sources and holds the checklists as Jinja2 templates: configure the farm,
revert it, set a member to ready/drain/maint, routing on and off at a
two-armed routed appliance. They are read with the project's YAML guard and
rendered in the bounded sandbox (ocsscale/sandbox.py) over this pool's values;
the values are data, never template text, so no pool value changes what a
template does.

Beside the lines a person reads, every checklist carries `data`: the same
settings as plain JSON for a machine (ISSUE18_SPEC section 1). `data` is
built here from the farm, not from the rendered lines, and holds everything
an appliance needs; the lines name every value that `data` holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateError
from pydantic import Field, ValidationError

from ...config.lb_settings import VENDORS, Vendor, vendor_choice
from ...config.strict import Strict
from ...errors import ConfigError, UsageError
from ...resources import resource_path
from ...yamlpos import load_yaml
from .base import AdminState, FarmSpec, PairSite

#: what `data["scheduling"]` says of the walkthrough's "weighted least connections"
SCHEDULING = {"wlc": "weighted-least-connections"}
_LISTS = ("members", "ports", "check_ports", "following_ports", "snat_addresses", "front_ends")


# -- the data files ---------------------------------------------------------------


class _Each(Strict):
    """One line per item of a list value (`item` in `text`)."""

    each: Literal[_LISTS]  # type: ignore[valid-type]
    text: str = Field(min_length=1)


Step = str | _Each


class _Section(Strict):
    title: str = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)


class _Member(Strict):
    title: str = Field(min_length=1)
    states: dict[Literal["ready", "drain", "maint"], list[Step]]


class _Routing(Strict):
    enable: _Section
    disable: _Section


class _Source(Strict):
    title: str = Field(min_length=1)
    url: str = Field(pattern=r"^(https?://\S+|walkthrough: \S.*)$")


class VendorFile(Strict):
    vendor: Vendor
    product: str = Field(min_length=1, max_length=60)
    #: where the wording comes from (every file names at least one)
    sources: list[_Source] = Field(min_length=1)
    #: one line for `plan`: the farm in the product's words
    plan: str = Field(min_length=1)
    farm: _Section
    revert: _Section
    member: _Member
    routing: _Routing
    #: a pair of appliances (`load_balancer.pair`): the partner's configuration sync,
    #: the floating VIP, the failover settings
    pair: _Section


def vendors_dir() -> Path:
    return resource_path("templates") / "lb-vendors"


@lru_cache(maxsize=len(VENDORS))
def vendor_file(vendor: str) -> VendorFile:
    """The shipped data file of `vendor` (read once per process)."""
    if vendor not in VENDORS:
        raise UsageError(f"no load-balancer vendor {vendor!r}: one of {', '.join(VENDORS)}")
    path = vendors_dir() / f"{vendor}.yaml"
    try:
        doc = load_yaml(path)
        found = VendorFile.model_validate(doc.data)
    except (ConfigError, ValidationError) as exc:
        # a shipped file: broken only by a bad install or a bad edit
        raise UsageError(f"the checklist file {path} is broken: {exc}") from None
    if found.vendor != vendor:
        raise UsageError(f"the checklist file {path} says it is for {found.vendor}")
    return found


def product(vendor: str) -> str:
    """The product's name as the checklists say it ("F5 BIG-IP LTM")."""
    return vendor_file(vendor).product


# -- rendering ----------------------------------------------------------------------


class _Renderer:
    """Templates of one checklist over one set of values, in one bounded sandbox."""

    def __init__(self, vendor: str, values: Mapping[str, Any]) -> None:
        # here, not at the top: ocsscale.plan imports the actions, which import the drivers
        from ...sandbox import BoundedEnvironment

        self.vendor = vendor
        self.env = BoundedEnvironment(undefined=StrictUndefined, autoescape=False)
        self.values = dict(values)

    def text(self, template: str, **extra: Any) -> str:
        try:
            out = self.env.cached_template(template).render(**self.values, **extra)
        except (TemplateError, TypeError, ValueError, LookupError, AttributeError) as exc:
            # a shipped template's fault; the pool's values are never quoted back
            raise UsageError(
                f"the {self.vendor} checklist did not render ({type(exc).__name__}): "
                f"{vendors_dir() / (self.vendor + '.yaml')} needs fixing"
            ) from None
        return " ".join(out.split())

    def lines(self, steps: Sequence[Step]) -> list[str]:
        out: list[str] = []
        for step in steps:
            if isinstance(step, str):
                line = self.text(step)
                if line:
                    out.append(line)
            else:
                for item in self.values[step.each]:
                    line = self.text(step.text, item=item)
                    if line:
                        out.append(line)
        return out


@dataclass(frozen=True)
class Checklist:
    """What the operator is told: a title, the lines, and the same as data."""

    title: str
    lines: list[str]
    data: dict[str, Any]


def _members(farm: FarmSpec) -> list[dict[str, Any]]:
    return [{"name": m.name, "address": m.address, "weight": m.weight} for m in farm.members]


def _whole(seconds: float) -> int:
    """Seconds rounded up to a whole second, at least 1 (appliances that count in seconds)."""
    return max(1, math.ceil(seconds - 1e-9))


def _check_values(farm: FarmSpec) -> dict[str, Any]:
    """The farm's check timing, and what appliances that count in milliseconds or whole
    seconds need: a stopped service is out within fall x interval, a cut link within
    fall x (interval + timeout) (config/model.py, LbChecks)."""
    c = farm.checks
    stop, out = c.fall * c.interval, c.fall * (c.interval + c.timeout)
    return {
        # as a person writes them: 2 s, not 2.0 s
        "checks": {
            "interval": f"{c.interval:g}",
            "timeout": f"{c.timeout:g}",
            "fall": c.fall,
            "rise": c.rise,
        },
        "check_ms": {"interval": round(c.interval * 1000), "timeout": round(c.timeout * 1000)},
        "check_s": {
            "interval": _whole(c.interval),
            "timeout": _whole(c.timeout),
            "out": _whole(out),
            # after the first good check, how long until the member is back (rise)
            "up": math.ceil((c.rise - 1) * c.interval - 1e-9) if c.rise > 1 else 0,
        },
        "check_stop_s": f"{stop:g}",
        "check_out_s": f"{out:g}",
    }


def _farm_values(vendor: str, farm: FarmSpec, required: Sequence[int]) -> dict[str, Any]:
    ports = list(farm.ports)
    return {
        **_check_values(farm),
        "vendor": vendor,
        "product": product(vendor),
        "name": farm.name,
        "vip": farm.vip,
        "vip_prefix": farm.vip_prefix,
        "ports": ports,
        "check_ports": list(farm.check_ports),
        "following_ports": [p for p in ports if p not in farm.check_ports],
        "required_ports": [p for p in ports if p in required],
        "optional_ports": [p for p in ports if p not in required],
        "idle_timeout": farm.idle_timeout,
        "idle_minutes": farm.idle_timeout // 60,
        "snat_addresses": list(farm.snat_addresses),
        "members": _members(farm),
        "front_ends": [],
    }


def _checklist(
    vendor: str,
    values: Mapping[str, Any],
    kind: str,
    title: str,
    steps: Sequence[Step],
    **data: Any,
) -> Checklist:
    """`title` and `steps` rendered over `values`; the data is headed by its kind,
    the vendor and the product."""
    render = _Renderer(vendor, values)
    head = {"kind": kind, "vendor": vendor, "product": values["product"]}
    return Checklist(render.text(title), render.lines(steps), {**head, **data})


def _pair_values(pair: PairSite) -> dict[str, Any]:
    preferred = next(h for h in pair.hosts if h.name == pair.preferred)
    return {
        "units": [{"name": h.name, "addresses": list(h.addresses)} for h in pair.hosts],
        "preferred": preferred.name,
        "partner": pair.peer_of(preferred.name).name,
        "preempt": pair.preempt,
        "router_id": pair.router_id,
        "advert_interval": pair.advert_interval,
        "floating": list(pair.floating),
    }


def farm_checklist(
    vendor: str, farm: FarmSpec, required_ports: Sequence[int], pair: PairSite | None = None
) -> Checklist:
    """Configure the farm: every port, the checks, idle timeout, SNAT, the members;
    with `pair`, then the appliance pair (sync to the partner, floating addresses,
    failover)."""
    values = _farm_values(vendor, farm, required_ports)
    spec = vendor_file(vendor).farm
    steps = list(spec.steps)
    paired: dict[str, Any] = {}
    if pair is not None:
        paired = _pair_values(pair)
        values.update(paired)
        steps += vendor_file(vendor).pair.steps
    return _checklist(
        vendor,
        values,
        "farm",
        spec.title,
        steps,
        name=farm.name,
        vip=farm.vip,
        vip_prefix=farm.vip_prefix,
        ports=values["ports"],
        check_ports=values["check_ports"],
        required_ports=values["required_ports"],
        optional_ports=values["optional_ports"],
        idle_timeout=farm.idle_timeout,
        scheduling=SCHEDULING.get(farm.balance, farm.balance),
        snat=True,
        snat_addresses=values["snat_addresses"],
        members=values["members"],
        checks=farm.checks.view(),
        **({"pair": paired} if paired else {}),
    )


def revert_checklist(vendor: str, farm: FarmSpec) -> Checklist:
    """Remove the farm: the VIP silent on every port, the members out of it."""
    values = _farm_values(vendor, farm, farm.ports)
    spec = vendor_file(vendor).revert
    return _checklist(
        vendor,
        values,
        "farm-revert",
        spec.title,
        spec.steps,
        name=farm.name,
        vip=farm.vip,
        ports=values["ports"],
        members=values["members"],
    )


def member_checklist(vendor: str, farm: FarmSpec, name: str, state: AdminState) -> Checklist:
    """One member's admin state at the appliance (ready, drain, maint)."""
    member = farm.member(name)
    values = _farm_values(vendor, farm, farm.ports)
    values["member"] = {"name": member.name, "address": member.address, "weight": member.weight}
    values["state"] = state
    spec = vendor_file(vendor).member
    return _checklist(
        vendor,
        values,
        "member-state",
        spec.title,
        spec.states[state],
        member=member.name,
        address=member.address,
        state=state,
    )


def plan_words(vendor: str, farm: FarmSpec) -> str:
    """The farm in one line of the product's words, for `plan`."""
    values = _farm_values(vendor, farm, farm.ports)
    return _Renderer(vendor, values).text(vendor_file(vendor).plan)


def _plain(address: Any) -> tuple[str, str, str]:
    """(address, address as given, netmask or "<netmask>") of an address written
    with or without its prefix."""
    text = str(address)
    try:
        iface = IPv4Interface(text)
    except ValueError:
        raise UsageError("routing: an address is not an IPv4 address") from None
    mask = str(iface.netmask) if "/" in text else "<netmask>"
    return str(iface.ip), text, mask


def _front_end(fe: Any) -> dict[str, str]:
    if isinstance(fe, Mapping):
        return {"name": str(fe["name"]), "address": str(fe["address"])}
    return {"name": str(fe.name), "address": str(fe.address)}


def routing_checklist(
    vendor: str,
    *,
    enable: bool,
    backend_address: Any,
    vip: Any,
    front_ends: Sequence[Any],
) -> tuple[list[str], dict[str, Any]]:
    """Routing between the client and the front-end network at a two-armed routed
    appliance, with no VIP (enable), or its revert (enable=False): (lines, data).

    `backend_address` and `vip` may carry their prefix ("198.18.2.1/24"); the
    data holds the bare addresses. `front_ends`: the pool file's front ends, or
    mappings with `name` and `address`. The data's `title` is the checklist's title."""
    choice = vendor_choice(vendor)
    if choice is None:
        raise UsageError(f"no load-balancer vendor {vendor!r}: one of {', '.join(VENDORS)}")
    backend, backend_given, backend_mask = _plain(backend_address)
    vip_address, _, _ = _plain(vip)
    fes = [_front_end(fe) for fe in front_ends]
    values = {
        "vendor": choice,
        "product": product(choice),
        "backend_address": backend,
        "backend_interface": backend_given,
        "backend_netmask": backend_mask,
        "vip": vip_address,
        "front_ends": fes,
        "members": [],
        "ports": [],
        "check_ports": [],
        "following_ports": [],
        "snat_addresses": [],
    }
    section = vendor_file(choice).routing.enable if enable else vendor_file(choice).routing.disable
    render = _Renderer(choice, values)
    data = {
        "kind": "routing",
        "vendor": choice,
        "product": values["product"],
        "title": render.text(section.title),
        "enable": enable,
        "backend_address": backend,
        "vip": vip_address,
        "front_ends": fes,
    }
    return render.lines(section.steps), data
