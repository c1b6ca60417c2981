"""The FE drill's held connections: a TLS stream whose probe budget has run out is
still read for real, so a connection the LB closed never counts as alive."""

from __future__ import annotations

import socket
import ssl
import time

from ocsscale.actions.lb_drill import _alive
from ocsscale.probes.stream import Deadline
from ocsscale.probes.tlsclient import TlsStream


def _held(peer_closed: bool) -> bool:
    ours, theirs = socket.socketpair()
    try:
        if peer_closed:
            theirs.close()
        context = ssl.create_default_context()
        budget = Deadline(0.01)
        stream = TlsStream(ours, context, "pool.test", budget)  # type: ignore[arg-type]
        time.sleep(0.05)  # the probe's budget is long gone when the drill looks
        return _alive(stream)
    finally:
        ours.close()
        theirs.close()


def test_a_closed_connection_is_not_alive_after_the_budget_ran_out() -> None:
    assert _held(peer_closed=True) is False


def test_an_open_silent_connection_is_alive() -> None:
    assert _held(peer_closed=False) is True
