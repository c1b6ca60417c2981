"""What only this machine can tell about a farm file: `serve` refuses a VIP or SNAT
address that is not one of its own, and an admin socket path it cannot create,
so `check` (run on the load balancer, in its network namespace) refuses them too.
Nothing is left behind: an address is tried with a bind to port 0 and closed."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

from ..errors import ConfigIssue
from ..yamlpos import YamlDocument
from .farm import Farm


def host_issues(farm: Farm, doc: YamlDocument) -> list[ConfigIssue]:
    issues = []
    for i, vip in enumerate(farm.vip):
        why = _not_local(vip)
        if why is not None:
            issues.append(
                doc.issue(
                    ("vip", i),
                    "farm.vip-not-local",
                    f"not an address of this machine ({why}): serve could not listen on it",
                )
            )
    for i, address in enumerate(farm.snat.addresses):
        why = _not_local(address)
        if why is not None:
            issues.append(
                doc.issue(
                    ("snat", "addresses", i),
                    "farm.snat-not-local",
                    f"not an address of this machine ({why}): no server connection could"
                    " leave from it",
                )
            )
    why = _socket_path_problem(Path(farm.admin_socket))
    if why is not None:
        issues.append(doc.issue(("admin", "socket"), "farm.admin-socket", why))
    return issues


def _not_local(address: str) -> str | None:
    """None when this machine can bind `address`, else the kernel's reason."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, 0))
        except OSError as err:
            return err.strerror or type(err).__name__
    return None


def _socket_path_problem(path: Path) -> str | None:
    """Why serve could not create its admin socket at `path`, or None."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        return "a parent of the path is not a directory"
    except OSError as err:
        return f"cannot be examined ({err.strerror})"
    if mode is not None:
        if stat.S_ISDIR(mode):
            return "names a directory: give the path of the socket file to create"
        if not stat.S_ISSOCK(mode):
            return "names an existing file that is not a socket; serve will not replace it"
        return None  # a socket: a stale one is replaced, a live one is reported by serve
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # serve creates the missing directories
    if not parent.is_dir():
        return "a parent of the path is not a directory"
    return None
