"""`python -m ocsscale.engine ARGS` is `ocsscale lb ARGS`, through the tool's entry
point: the same fast `api` plumbing, the same rendering of errors and exit codes."""

import sys

from ..cli.entry import run_lb

run_lb(sys.argv[1:], prog_name="python -m ocsscale.engine")
