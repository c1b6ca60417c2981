"""Where the data files (profiles, playbooks, templates) are.

In the repository they live at the top level (`profiles/`, `templates/`...);
a wheel carries them inside the package (`ocsscale/profiles`, see the
force-include in pyproject.toml). Looking in the package first makes an
installed copy use its own files even when run from inside a checkout.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_DIR = _PACKAGE_DIR.parent


def resource_path(kind: str) -> Path:
    """The directory of data files of this kind, e.g. resource_path("profiles")."""
    if not kind or "/" in kind or "\\" in kind or kind.startswith("."):
        raise ValueError(f"not a resource kind: {kind!r}")
    installed = _PACKAGE_DIR / kind
    if installed.is_dir():
        return installed
    return _REPO_DIR / kind
