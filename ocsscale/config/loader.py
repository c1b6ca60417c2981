"""Read a pool file: YAML with positions, the schema, the profile, the rules.

Nothing is contacted and no secret is resolved here (credentials.py does that
when a transport needs one), so `check` is safe to run anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, ConfigIssue
from ..secrets import note_credential_variables
from ..yamlpos import Position, YamlDocument, load_yaml
from .model import Pool, env_references
from .profiles import Profile, ProfileNotFound, load_profile
from .rules import check_pool
from .validation import validate_document

STATE_DIR_NAME = ".ocsscale"


@dataclass
class LoadedPool:
    """A valid pool file with its profile, and where each of its values was written."""

    path: Path
    pool: Pool
    profile: Profile
    document: YamlDocument = field(repr=False)

    @property
    def state_dir(self) -> Path:
        """The journal and lock live next to the pool file they belong to."""
        return self.path.resolve().parent / STATE_DIR_NAME

    @property
    def base_dir(self) -> Path:
        """Relative paths in the pool file (secret files, profile files) start here."""
        return self.path.resolve().parent

    def position(self, path: tuple[str | int, ...]) -> Position:
        """(line, column) of the value at `path`, both 1-based."""
        return self.document.position(path)


def missing_pool_error(path: Path) -> ConfigError:
    err = ConfigError([ConfigIssue(str(path), 0, 0, "", "file.missing", "no such pool file")])
    err.hint = (
        f"write a commented one with `ocsscale init -o {path}`, or name another with "
        "-c FILE (or OCSSCALE_POOL)"
    )
    return err


def load_pool(path: Path) -> LoadedPool:
    """Validate the pool file at `path`; raise ConfigError with every problem found."""
    path = Path(path)
    if not path.exists():
        raise missing_pool_error(path)
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(
            [doc.issue((), "yaml.not-mapping", "a pool file is a YAML mapping of keys")]
        )
    pool, issues = validate_document(Pool, doc)

    profile: Profile | None = None
    profile_ref = doc.data.get("profile")
    if isinstance(profile_ref, str) and profile_ref.strip():
        try:
            profile = load_profile(profile_ref.strip(), base_dir=path.resolve().parent)
        except ProfileNotFound as exc:
            issues.append(doc.issue(("profile",), "profile.unknown", exc.message))
        except ConfigError as exc:
            issues.extend(exc.issues)
    elif isinstance(profile_ref, str):
        issues.append(doc.issue(("profile",), "profile.unknown", "name a profile"))

    if pool is not None and profile is not None:
        issues.extend(check_pool(pool, profile, doc))
    if issues or pool is None or profile is None:
        raise ConfigError(issues)
    # from now on, commands the tool starts run without these (secrets.child_environment)
    note_credential_variables(env_references(pool))
    return LoadedPool(path=path, pool=pool, profile=profile, document=doc)
