"""The failover drill behind an appliance whose view cannot be read (manual driver):
detection measured from outside, on a real client load (LoadRunner) through a fake
VIP on loopback whose answers change as an appliance's would, or ended by the
operator's answer, whichever comes first."""

from __future__ import annotations

import dataclasses
import socket
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from ocsscale.actions.base import Context
from ocsscale.actions.lb import lb_driver
from ocsscale.actions.lb_drill import LbFailoverDrill
from ocsscale.actions.lb_drill_outside import OutsideView
from ocsscale.config import load_pool
from ocsscale.errors import CheckFailed, Declined
from ocsscale.probes.load import LoadRunner, LoadTarget
from ocsscale.probes.load_report import Outcome
from ocsscale.runner.plugins import load_actions

REPO = Path(__file__).resolve().parents[2]
TWO_ARMED = REPO / "examples" / "two-armed-routed.yaml"

pytestmark = pytest.mark.timeout(120)


class FakeVip:
    """A VIP on loopback that behaves as the appliance's farm would, by `state`:
    in     the failed member is still in: every other connection is reset (it
           reaches ocsfe01, whose service is stopped), the rest answer as ocsfe02;
    out    the member is out: every connection answers as ocsfe02;
    back   the member is back: ocsfe01 and ocsfe02 in turn."""

    def __init__(self) -> None:
        self.state = "in"
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = int(self.server.getsockname()[1])
        self._stop = threading.Event()
        self._n = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            self._n += 1
            with conn:
                if self.state == "in" and self._n % 2:
                    # a reset, as a packet-forwarding appliance passes the FE's refusal on
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    continue
                who = "ocsfe01" if self.state == "back" and self._n % 2 else "ocsfe02"
                with suppress(OSError):
                    conn.sendall(f"OCS server={who}\r\n".encode())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close()


@pytest.fixture
def vip() -> Iterator[FakeVip]:
    fake = FakeVip()
    yield fake
    fake.stop()


class Pending:
    def __init__(self, answer: str | None, after: float) -> None:
        self.answer, self.at = answer, time.monotonic() + after
        self.cancelled = False

    def poll(self) -> str | None:
        return self.answer if time.monotonic() >= self.at else None

    def cancel(self) -> None:
        self.cancelled = True


class AskingOperator:
    """Answers `ask_nowait` with `answer` after `after` seconds (None: never)."""

    def __init__(self, answer: str | None, after: float = 0.0) -> None:
        self.answer, self.after = answer, after
        self.questions: list[tuple[str, list[str]]] = []
        self.pending: list[Pending] = []

    def tell(self, title: str, lines: Sequence[str], data: Any = None) -> None:
        pass

    def ask_nowait(self, question: str, choices: Sequence[str]) -> Pending:
        self.questions.append((question, list(choices)))
        self.pending.append(Pending(self.answer, self.after))
        return self.pending[-1]


def _drill(tmp_path: Path, operator: Any = None, timeout: float = 10.0) -> LbFailoverDrill:
    load_actions()
    text = TWO_ARMED.read_text().replace("  driver: engine ", "  driver: manual ")
    path = tmp_path / "pool.yaml"
    path.write_text(text)
    loaded = load_pool(path)
    ctx = Context(pool=loaded.pool, profile=loaded.profile, host=lambda n: None)
    if operator is not None:
        ctx = dataclasses.replace(ctx, operator=operator)
    drill = LbFailoverDrill(ctx, {"fe": "ocsfe01", "mode": "service:5061"})
    drill.drill = drill.drill.model_copy(update={"detect_timeout": timeout})
    return drill


def _load(drill: LbFailoverDrill, vip: FakeVip) -> LoadRunner:
    """The drill's own load (as apply() makes it from the LB's unreadable view),
    against the fake VIP, the banner naming the server."""
    target = LoadTarget("127.0.0.1", vip.port, "tcp", "ocspool.contoso.com", banner=True)
    current = {name: s.to_json() for name, s in lb_driver(drill.ctx).stats().items()}
    return drill._load([target], current, identify_by=lambda evidence: evidence.server)


@contextmanager
def _loaded(drill: LbFailoverDrill, vip: FakeVip) -> Iterator[LoadRunner]:
    """The drill's load against the fake VIP, running for the `with` block."""
    load = _load(drill, vip)
    load.start()
    try:
        yield load
    finally:
        load.stop()


def _later(seconds: float, fn: Any) -> threading.Timer:
    timer = threading.Timer(seconds, fn)
    timer.start()
    return timer


def test_detection_from_outside_then_no_request_after_it_fails(
    tmp_path: Path, vip: FakeVip
) -> None:
    drill = _drill(tmp_path)
    driver = lb_driver(drill.ctx)
    assert driver.stats()["ocsfe01"].health == "unknown"  # the appliance's view: unreadable
    load = _load(drill, vip)
    load.start()
    try:
        load.mark("fault")
        began = time.monotonic()
        _later(0.8, lambda: setattr(vip, "state", "out"))
        detect = drill._wait(driver, "down", began)
        assert detect is not None and detect >= 0.8
        how = drill.detection["down"]
        assert how["by"] == "outside" and how["in_a_row"] == 20 and how["restarts"] >= 1
        # only what is sent from now on counts against the drill: none of it fails
        load.mark("after-detection")
        time.sleep(0.5)
        load.mark("restore")
        restored = time.monotonic()
        vip.state = "back"
        back = drill._wait(driver, "up", restored)
        assert back is not None and drill.detection["up"]["by"] == "outside"
        assert drill.detection["up"]["answered_by_member"] == [f"tcp 127.0.0.1:{vip.port}"]
    finally:
        report = load.stop()
    fault, after = report.labels["fault"], report.labels["after-detection"]
    assert fault["failed"] > 0  # refused before the appliance took the member out
    assert after["requests"] >= 20 and after["failed"] == 0
    assert after["by_server"] == {"ocsfe02": after["requests"]}


def test_the_operators_answer_ends_the_wait_first(tmp_path: Path, vip: FakeVip) -> None:
    operator = AskingOperator("down", after=0.3)
    drill = _drill(tmp_path, operator)
    with _loaded(drill, vip):
        detect = drill._wait(lb_driver(drill.ctx), "down", time.monotonic())  # still "in"
    assert detect is not None and 0.3 <= detect < 5.0
    assert drill.detection["down"]["by"] == "operator"
    [(question, choices)] = operator.questions
    assert "ocsfe01 down" in question and choices == ["down", "abort"]
    assert question.startswith("Does the WebMux's farm screen show")  # the vendor's product
    assert operator.pending[0].cancelled  # the question is withdrawn once answered


def test_no_run_and_no_answer_fails_within_the_detect_timeout(tmp_path: Path, vip: FakeVip) -> None:
    drill = _drill(tmp_path, AskingOperator(None), timeout=1.5)
    with _loaded(drill, vip):
        began = time.monotonic()
        with pytest.raises(CheckFailed) as failed:
            drill._wait(lb_driver(drill.ctx), "down", began)
    assert time.monotonic() - began < 5.0
    message = failed.value.message
    assert "did not show ocsfe01 down within 2 s" in message
    assert "no 20 requests in a row" in message and "the operator did not answer" in message


def test_the_operator_may_stop_the_drill(tmp_path: Path, vip: FakeVip) -> None:
    operator = AskingOperator("abort", after=0.1)
    drill = _drill(tmp_path, operator)
    with _loaded(drill, vip), pytest.raises(Declined):
        drill._wait(lb_driver(drill.ctx), "down", time.monotonic())
    assert operator.pending[0].cancelled


def _outcome(ok: bool, server: str | None) -> Outcome:
    return Outcome(time.time(), "t", ok, None if ok else "reset", "", 1.0, server, "127.0.0.1")


def test_the_run_is_read_in_sending_order_and_restarts_after_what_was_seen() -> None:
    issued = [0]
    view = OutsideView("ocsfe01", lambda: issued[0])
    watch = view.down(3)
    issued[0] = 6
    # request 0 is still under way: nothing after it counts yet
    for seq, outcome in enumerate(
        [None, _outcome(True, "ocsfe02"), _outcome(True, "ocsfe02"), _outcome(True, "ocsfe02")]
    ):
        if outcome is not None:
            view.observe(seq, outcome)
    assert not watch.poll() and watch.count == 0
    # it ends in a failure: everything sent before that was seen is disregarded
    view.observe(0, _outcome(False, None))
    assert not watch.poll() and watch.restarts == 1 and watch.next == 6
    view.observe(6, _outcome(True, "ocsfe02"))
    view.observe(7, _outcome(True, "ocsfe01"))  # the member itself still answers
    view.observe(8, _outcome(True, None))  # names no server: proves nothing
    assert not watch.poll() and watch.restarts == 3 and watch.unidentified == 1
    for seq in (9, 10, 11):
        view.observe(seq, _outcome(True, "ocsfe02"))
    assert watch.poll() and watch.first_sent == 9


def test_a_readable_lb_view_is_not_second_guessed_from_outside(tmp_path: Path) -> None:
    drill = _drill(tmp_path)
    target = LoadTarget("127.0.0.1", 9, "tcp", "ocspool.contoso.com")
    view = {"ocsfe01": {"health": "up"}, "ocsfe02": {"health": "up"}}
    load = drill._load([target], view)
    assert drill._outside is None and load._observe is None
    drill._load([target], {"ocsfe01": {"health": "unknown"}, "ocsfe02": {"health": "unknown"}})
    assert drill._outside is not None


def test_the_drill_says_the_checks_it_was_run_against(tmp_path: Path) -> None:
    """Each drill's evidence carries load_balancer.checks and the longest its fault may
    take to show with them (a refused port: fall x interval; a cut link: + timeout)."""
    service = _drill(tmp_path)
    assert service._checks() == {  # type: ignore[attr-defined]
        "interval": 0.5,
        "timeout": 0.3,
        "fall": 2,
        "rise": 2,
        "out_within_s": 1.0,
    }
    link = LbFailoverDrill(service.ctx, {"fe": "ocsfe01", "mode": "link"})
    assert link._checks()["out_within_s"] == 1.6  # type: ignore[attr-defined]
