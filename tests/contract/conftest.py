"""The LB contract suite runs in the labs of tests/lab (shared with it: one lab per name);
the DNS and transport suites need no lab."""

from lab.conftest import (
    RunningLab,
    one_armed_haproxy_lab,
    one_armed_haproxy_pair_lab,
    one_armed_lab,
    one_armed_pair_lab,
    two_armed_haproxy_lab,
    two_armed_lab,
)

__all__ = [
    "RunningLab",
    "one_armed_haproxy_lab",
    "one_armed_haproxy_pair_lab",
    "one_armed_lab",
    "one_armed_pair_lab",
    "two_armed_haproxy_lab",
    "two_armed_lab",
]
