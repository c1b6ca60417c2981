"""`ocsscale init`: a commented pool file for a profile and topology.

The file is rendered from templates/pool.yaml.j2, validated exactly as `check`
would, and only then moved into place (temp file + os.replace), so a failed
init never leaves a half-written or invalid pool file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from ..errors import UsageError
from ..resources import resource_path
from .loader import load_pool
from .model import TOPOLOGIES
from .profiles import load_profile, shipped_names

TEMPLATE = "pool.yaml.j2"

# The walkthrough's sample addresses. One-armed: one /16 holds everyone. Two-armed:
# clients and VIP on 10.0.0.0/24, front ends behind the LB on 10.0.1.0/24.
_CLIENTS = [
    {"name": "client01", "address": "10.0.0.101"},
    {"name": "client02", "address": "10.0.0.102"},
]
_FRONT_ENDS = [
    {"name": "ocsfe01", "address": "10.0.1.41"},
    {"name": "ocsfe02", "address": "10.0.1.42"},
]
_NETS: dict[str, dict[str, Any]] = {
    "one-armed": {"vip": "10.0.0.40/16", "backend": None, "snat": "10.0.0.40"},
    "two-armed-routed": {"vip": "10.0.0.40/24", "backend": "10.0.1.40/24", "snat": "10.0.1.40"},
    "two-armed-transparent": {
        "vip": "10.0.0.40/24",
        "backend": "10.0.1.40/24",
        "snat": "10.0.1.40",
    },
}


def render_pool_file(profile_ref: str, topology: str, base_dir: Path | None = None) -> str:
    """The text of a pool file for this profile (name or path) and topology."""
    if topology not in TOPOLOGIES:
        raise UsageError(f"unknown topology '{topology}': one of {', '.join(TOPOLOGIES)}")
    profile = load_profile(profile_ref, base_dir)
    if topology not in profile.supported_topologies:
        raise UsageError(
            f"profile {profile.name} does not support {topology} "
            f"(supported: {', '.join(profile.supported_topologies)})"
        )
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_path("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML
    )
    net = {
        **_NETS[topology],
        "legacy": "10.0.0.30",
        "directory": "10.0.0.10",
        "lb_host": "10.0.0.39",
        "front_ends": _FRONT_ENDS,
        "clients": _CLIENTS,
    }
    # Windows servers are driven over WinRM; a profile without Windows services
    # (a generic service) is more likely on Linux hosts, reached over SSH.
    kind = "winrm" if profile.services.windows else "ssh"
    return env.get_template(TEMPLATE).render(
        profile=profile,
        profile_ref=profile_ref,
        topology=topology,
        kind=kind,
        net=net,
        shipped=shipped_names(),
    )


def write_pool_file(output: Path, profile_ref: str, topology: str, *, force: bool = False) -> Path:
    """Render, validate and atomically write a pool file; refuse to overwrite unless `force`."""
    output = Path(output)
    if output.is_dir():
        raise UsageError(f"{output} is a directory; name the pool file to write")
    if output.exists() and not force:
        raise _exists(output)
    directory = output.resolve().parent
    if not directory.is_dir():
        raise UsageError(f"directory {directory} does not exist")
    if _is_path(profile_ref):
        # Written as an absolute path: relative paths would be read from the
        # pool file's directory, which need not be where init was run.
        profile_ref = str(Path(profile_ref).expanduser().resolve())
    text = render_pool_file(profile_ref, topology)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        load_pool(tmp)  # what init writes, check accepts
        if force:
            os.replace(tmp, output)
        else:
            # link() fails when the name exists: a file that appeared since the
            # check above (another init, an editor) is never replaced
            os.link(tmp, output)
    except FileExistsError:
        raise _exists(output) from None
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return output


def _exists(output: Path) -> UsageError:
    return UsageError(
        f"{output} already exists; not overwritten",
        hint="use --force to replace it, or -o to write another file",
    )


def _is_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml"))
