"""Probes fed malformed answers: each ends in ok=False evidence, never an exception.

The server side is a scripted in-memory stream (no socket at all): it answers
whatever the probe sent with a fixed reply built from the request's Via line.
"""

from __future__ import annotations

import pytest

from ocsscale.probes import Stream, sip_options_probe
from ocsscale.probes.https import _read_response
from ocsscale.probes.session import ProbeFailed
from ocsscale.probes.stream import Deadline


class ScriptedStream:
    """A stream that answers the first request with `reply(request)`."""

    def __init__(self, reply: str, encoding: str = "utf-8") -> None:
        self._reply = reply
        self._encoding = encoding
        self._sent = b""
        self._pending: bytes | None = None

    def sendall(self, data: bytes) -> None:
        self._sent += data

    def recv(self, n: int) -> bytes:
        if self._pending is None:
            lines = self._sent.decode("ascii").split("\r\n")
            via = next((line for line in lines if line.startswith("Via:")), "")
            self._pending = self._reply.replace("{via}", via).encode(self._encoding)
        chunk, self._pending = self._pending[:n], self._pending[n:]
        return chunk

    def close(self) -> None:
        pass

    def settimeout(self, timeout: float | None) -> None:
        pass


def _connector(reply: str):  # noqa: ANN202 - a Connector
    def connect(host: str, port: int, timeout: float) -> Stream:
        return ScriptedStream(reply)

    return connect


SIP_HEAD = "{via}\r\nCSeq: 1 OPTIONS\r\n"


@pytest.mark.parametrize(
    "reply",
    [
        # "²" is a digit to str.isdigit() but not to int()
        "SIP/2.0 ²00 OK\r\n" + SIP_HEAD + "Content-Length: 0\r\n\r\n",
        "SIP/2.0 200 OK\r\n" + SIP_HEAD + "Content-Length: ²\r\n\r\n",
        "SIP/2.0 200 OK\r\n" + SIP_HEAD + "Content-Length: -1\r\n\r\n",
        "HELLO\r\n\r\n",
    ],
)
def test_a_malformed_sip_answer_is_failed_evidence(reply: str) -> None:
    evidence = sip_options_probe(
        "198.18.0.41", 5060, "ocspool.lab.test", transport="tcp", connect=_connector(reply)
    )
    assert not evidence.ok and evidence.failure == "protocol", evidence


def test_a_well_formed_sip_answer_is_accepted_by_the_scripted_server() -> None:
    reply = "SIP/2.0 200 OK\r\n" + SIP_HEAD + "Server: fe1\r\nContent-Length: 0\r\n\r\n"
    evidence = sip_options_probe(
        "198.18.0.41", 5060, "ocspool.lab.test", transport="tcp", connect=_connector(reply)
    )
    assert evidence.ok and evidence.server == "fe1", evidence


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("HTTP/1.1 ²00 OK\r\nContent-Length: 0\r\n\r\n", None),
        ("HTTP/1.1 200 OK\r\nContent-Length: ²\r\n\r\nbody\r\n", 200),
    ],
)
def test_a_malformed_http_answer_is_refused_or_read_safely(reply: str, status: int | None) -> None:
    # The HTTPS probe's reader on a plain stream (the TLS layer is not the point here).
    stream = ScriptedStream(reply, "iso-8859-1")  # how HTTP heads are decoded
    stream.sendall(b"GET / HTTP/1.1\r\n\r\n")
    if status is None:
        with pytest.raises(ProbeFailed) as failed:
            _read_response(stream, Deadline(5.0))
        assert failed.value.failure == "protocol"
    else:
        assert _read_response(stream, Deadline(5.0))[1] == status
