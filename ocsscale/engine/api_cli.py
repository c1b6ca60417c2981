"""`ocsscale lb api METHOD TARGET --socket PATH`: one admin API request, its JSON
answer printed. The engine driver runs it on the LB host for every read and change
of the farm's state (status, drain/ready/maint, events) and polls it while it waits,
so it starts with the standard library alone: about 0.03 s, where a command of the
engine's full CLI (Typer, Rich) takes 0.2 s.

Plumbing, as git has: the answer is the engine's own JSON (the admin API in
engine/README.md), unformatted; errors go to stderr with exit 1, usage errors exit 2.
"""

from __future__ import annotations

import json
import re
import sys

from .client import AdminClientError, call, path_segments

METHODS = ("GET", "POST")
MAX_TARGET = 300
# the query of an admin API path: nothing a shell or HTTP would read otherwise
_QUERY = re.compile(r"[A-Za-z0-9_.~=&%-]*")


def run_api(method: str, target: str, socket: str) -> int:
    """Send the request, print the answer; the exit code."""
    if method not in METHODS:
        print(f"error: METHOD must be one of {', '.join(METHODS)}", file=sys.stderr)
        return 2
    path, _, query = target.partition("?")
    if len(target) > MAX_TARGET or path_segments(path) is None or not _QUERY.fullmatch(query):
        print("error: TARGET must be an admin API path such as /status", file=sys.stderr)
        return 2
    try:
        answer = call(socket, method, target)
    except AdminClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


def fast_path(args: list[str]) -> int | None:
    """`api METHOD TARGET --socket PATH` (arguments after `lb`) run at once; None for
    anything else (--help included), which the engine's full CLI handles."""
    if len(args) != 5 or args[0] != "api" or args[3] not in ("--socket", "-s"):
        return None
    return run_api(args[1], args[2], args[4])
