"""A lab host's cable, pulled and plugged at the switch: what the failover drill runs.

    python -m ocsscale_lab.link --lab NAME --host HOST {down|up}

The switch side of the host's veth pairs goes down (or up), as a pulled cable
or a disabled switch port would: the host sees its carrier go, and keeps its
addresses and routes (taking its own interface down would delete its routes,
which no cable does). Exit codes: 0 done, 2 bad arguments or unknown host.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import state as labstate
from .system import LabError, ip


def switch_ends(lab: str, host: str) -> tuple[str, list[str]]:
    """The switch namespace and the switch side of each of `host`'s links."""
    found = labstate.load(lab)
    if found is None:
        raise LabError(f"no lab named {lab!r} is up")
    topo = found.topo()
    target = topo.host(host)
    index = topo.hosts.index(target)
    # as network.build_host names them
    return topo.switch_ns, [f"v{index}{iface.network[0]}" for iface in target.interfaces]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocsscale_lab.link")
    parser.add_argument("--lab", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("state", choices=("down", "up"))
    args = parser.parse_args(argv)
    try:
        switch_ns, ends = switch_ends(args.lab, args.host)
        for end in ends:
            ip("link", "set", end, args.state, ns=switch_ns)
    except (LabError, labstate.UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.host}: link {args.state} at the switch ({', '.join(ends)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
