"""fe.checklist: the walkthrough's manual checklist for one new front end.

Args: `fe` (a front end's name), optional `checklist` (the name of a file in
`templates/checklists/`, default `<profile>-configure-fe`).

Installing a front end is done by hand ("Follow the standard setup procedure
for an Enterprise Edition server"); the tool prints what to do with this
pool's exact values: the FE's address and FQDN, the pool FQDN, the
certificate's subject and SANs (from the profile's certificate rules), the
DNS records to add, the directory server, the other front ends.

Reads: the pool file and the profile only (no host is contacted). Changes
nothing: no undo record, nothing to revert. Proof: the rendered checklist is
emitted as a `checklist` event (the CLI prints it) and kept as the step's
evidence in the journal; `fe.gate` then checks what can be checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from ..errors import UsageError
from ..resources import resource_path
from .args import ActionArgs, HostName, TemplateName
from .base import Action, Change, Context, Json, register


class FeArgs(ActionArgs):
    #: the front end of the pool file the step is for
    fe: HostName


class ChecklistArgs(FeArgs):
    #: a checklist of templates/checklists (default: the profile's configure-fe one)
    checklist: TemplateName | None = None


CHECKLIST_EVENT = "checklist"


def front_end(pool: Any, name: str, action: str) -> Any:
    for fe in pool.front_ends:
        if fe.name == name:
            return fe
    known = ", ".join(fe.name for fe in pool.front_ends)
    raise UsageError(f"{action}: {name} is not a front end of the pool file (front ends: {known})")


def certificate_names(pool: Any, profile: Any, fe: Any) -> tuple[str, list[str]]:
    """The certificate subject and SANs the profile asks of `fe`."""
    values = {
        "pool-fqdn": pool.pool.fqdn,
        "fe-fqdn": fe.fqdn,
        "sip.<domain>": f"sip.{pool.pool.sip_domain}",
    }
    return values[profile.certificate.subject], [values[t] for t in profile.certificate.san]


def checklist_path(name: str) -> Path:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise UsageError(f"fe.checklist: {name!r} is not a checklist name")
    return resource_path("templates") / "checklists" / f"{name}.yaml"


def render_checklist(pool: Any, profile: Any, fe: Any, name: str) -> dict[str, Any]:
    """{title, steps, requirements} with this pool's values filled in."""
    subject, sans = certificate_names(pool, profile, fe)
    values = {
        "fe": fe.model_dump(mode="json"),
        "others": [o.model_dump(mode="json") for o in pool.front_ends if o.name != fe.name],
        "pool": pool.pool.model_dump(mode="json"),
        "legacy_fe": pool.legacy_fe.model_dump(mode="json"),
        "directory": pool.directory.model_dump(mode="json"),
        "dns": pool.dns.model_dump(mode="json", exclude={"tsig"}),
        "certificate": {"subject": subject, "sans": sans},
    }
    return render_checklist_with(name, values)


def render_checklist_with(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """A checklist of templates/checklists, rendered over `values`."""
    path = checklist_path(name)
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except OSError:
        raise UsageError(
            f"fe.checklist: no checklist {name} ({path} is missing)",
            hint="name one with the step's `checklist` argument",
        ) from None
    except YAMLError as exc:
        raise UsageError(f"fe.checklist: {path} is not valid YAML: {exc}") from None
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)

    def text(template: str) -> str:
        try:
            return " ".join(env.from_string(str(template)).render(**values).split())
        except jinja2.TemplateError as exc:
            raise UsageError(f"fe.checklist: {path}: {exc}") from None

    try:
        return {
            "title": text(data["title"]),
            "steps": [text(s) for s in data["steps"]],
            "requirements": [text(r) for r in data.get("requirements", [])],
        }
    except (KeyError, TypeError):
        raise UsageError(f"fe.checklist: {path} needs `title` and a list of `steps`") from None


@register
class FeChecklist(Action):
    """Prints the install checklist of one front end (see the module docstring)."""

    name = "fe.checklist"
    read_only = True
    Args = ChecklistArgs
    params: ChecklistArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.fe = front_end(ctx.pool, self.params.fe, self.name)
        self.checklist = self.params.checklist or f"{ctx.profile.name}-configure-fe"
        if not checklist_path(self.checklist).is_file():
            raise UsageError(
                f"{self.name}: no checklist {self.checklist} in templates/checklists",
                hint="name one with the step's `checklist` argument",
            )

    def targets(self) -> list[str]:
        return [self.fe.name]

    def describe(self) -> list[Change]:
        subject, sans = certificate_names(self.ctx.pool, self.ctx.profile, self.fe)
        return [
            Change(
                "check",
                self.fe.name,
                f"print the install checklist: address {self.fe.address}, name {self.fe.fqdn}, "
                f"certificate subject {subject} with SANs {', '.join(sans)}",
            )
        ]

    def apply(self, current: Json) -> Json:
        rendered = render_checklist(self.ctx.pool, self.ctx.profile, self.fe, self.checklist)
        evidence = {"fe": self.fe.name, "checklist": self.checklist, **rendered}
        self.ctx.emit(CHECKLIST_EVENT, evidence)
        return evidence
