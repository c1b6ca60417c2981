"""The client load against real pool-member processes on loopback.

Every wait is bounded by a request count or a polling budget; nothing asserts
on how long anything took. Time stamps are only compared with each other
(a failure is seen after the member was stopped, not before).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import pytest

from ocsscale.errors import UsageError
from ocsscale.probes import ProbeEvidence, TlsOptions
from ocsscale.probes.load import LoadRunner, LoadTarget
from ocsscale.probes.load_report import LoadRecorder, LoadReport, Outcome, merge_reports
from tests.probes.conftest import POOL_FQDN, Certs, PoolMemberProcess, StartMember, real_port

POLL_BUDGET = 30.0  # seconds a test may wait for counts to appear before it fails


def server_name(evidence: ProbeEvidence) -> str | None:
    return evidence.server


def sip(member: PoolMemberProcess) -> LoadTarget:
    return LoadTarget(member.address, real_port(5061), "sip-tls", POOL_FQDN)


def runner(certs: Certs, targets: list[LoadTarget], **options: object) -> LoadRunner:
    settings: dict[str, object] = {"rate": 40.0, "duration": 60.0, "timeout": 2.0}
    settings.update(options)
    return LoadRunner(
        targets,
        tls=TlsOptions(ca_bundle=str(certs.ca.files.cert)),
        identify=server_name,
        **settings,  # type: ignore[arg-type]
    )


def poll_until(load: LoadRunner, condition: Callable[[LoadReport], bool]) -> LoadReport:
    deadline = time.monotonic() + POLL_BUDGET
    while time.monotonic() < deadline:
        report = load.snapshot()
        if condition(report):
            return report
        if load.done:
            break
        time.sleep(0.05)
    load.stop()
    raise AssertionError(f"condition not reached; report so far: {load.snapshot().totals}")


def target_tally(report: LoadReport, target: LoadTarget) -> dict[str, object]:
    return report.by_target.get(target.key, {"ok": 0, "failed": 0, "by_server": {}})


def test_load_counts_requests_per_server(certs: Certs, start_member: StartMember) -> None:
    one = start_member(certs.good, name="ocsfe01")
    two = start_member(certs.good, name="ocsfe02")
    load = runner(certs, [sip(one), sip(two)], max_requests=40)
    load.start()
    assert load.wait(POLL_BUDGET)
    report = load.stop()
    assert report.stopped_by == "max_requests"
    assert report.totals["requests"] == 40
    assert report.totals["failed"] == 0, report.failures
    assert report.totals["by_server"] == {"ocsfe01": 20, "ocsfe02": 20}
    assert target_tally(report, sip(one))["by_server"] == {"ocsfe01": 20}
    assert target_tally(report, sip(two))["by_server"] == {"ocsfe02": 20}
    assert sum(b["ok"] for b in report.buckets) == 40
    # plain JSON, and back
    again = LoadReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report


def test_stopped_member_fails_only_after_the_stop_and_only_its_target(
    certs: Certs, start_member: StartMember
) -> None:
    one = start_member(certs.good, name="ocsfe01")
    two = start_member(certs.good, name="ocsfe02")
    load = runner(certs, [sip(one), sip(two)], rate=30.0, max_requests=5000)
    load.start()
    try:
        poll_until(load, lambda r: target_tally(r, sip(two))["ok"] >= 10)  # type: ignore[operator]
        stopped_at = time.time()
        assert two.stop() == 0
        poll_until(load, lambda r: target_tally(r, sip(two))["failed"] >= 5)  # type: ignore[operator]
        poll_until(load, lambda r: target_tally(r, sip(one))["ok"] >= 30)  # type: ignore[operator]
    finally:
        report = load.stop()
    assert report.stopped_by == "caller"
    assert report.failures, "the stopped member's requests must fail"
    assert {f["target"] for f in report.failures} == {sip(two).key}
    assert {f["error"] for f in report.failures} <= {"refused", "closed", "reset", "timeout"}
    # failures are seen after the stop, never before it
    assert all(f["t"] >= round(stopped_at, 3) - 0.001 for f in report.failures)
    assert all(b["t"] >= int(stopped_at) for b in report.failed_seconds())
    assert target_tally(report, sip(one))["failed"] == 0
    # the member that kept running still answered after the other one stopped
    late = [b for b in report.buckets if b["t"] > int(stopped_at)]
    assert sum(b["by_server"].get("ocsfe01", 0) for b in late) > 0


def test_marks_label_the_buckets(certs: Certs, start_member: StartMember) -> None:
    one = start_member(certs.good, name="ocsfe01")
    load = runner(certs, [sip(one)], rate=30.0, max_requests=5000)
    load.mark("before")
    load.start()
    try:
        poll_until(load, lambda r: r.labels.get("before", {}).get("ok", 0) >= 5)
        load.mark("during")
        poll_until(load, lambda r: r.labels.get("during", {}).get("ok", 0) >= 5)
    finally:
        report = load.stop()
    assert [m["label"] for m in report.marks] == ["before", "during"]
    assert set(report.labels) == {"before", "during"}
    assert sum(t["requests"] for t in report.labels.values()) == report.totals["requests"]
    before = [b["t"] for b in report.buckets if b["label"] == "before"]
    during = [b["t"] for b in report.buckets if b["label"] == "during"]
    assert before and during and max(before) <= min(during)
    for label in ("before", "during"):
        in_buckets = sum(b["ok"] + b["failed"] for b in report.buckets if b["label"] == label)
        assert in_buckets == report.labels[label]["requests"]


def test_stops_by_itself_at_the_duration(certs: Certs, start_member: StartMember) -> None:
    one = start_member(certs.good, name="ocsfe01")
    load = runner(certs, [sip(one)], rate=20.0, duration=1.0)
    load.start()
    assert load.wait(POLL_BUDGET), "the load must stop by itself"
    report = load.stop()
    assert report.stopped_by == "duration"
    # the rate is a ceiling: one second at 20/s is at most 21 requests
    assert 0 < report.totals["requests"] <= 21


def test_stops_by_itself_at_max_requests(certs: Certs, start_member: StartMember) -> None:
    one = start_member(certs.good, name="ocsfe01")
    load = runner(certs, [sip(one)], rate=50.0, max_requests=7)
    load.start()
    assert load.wait(POLL_BUDGET)
    report = load.stop()
    assert report.stopped_by == "max_requests"
    assert report.totals["requests"] == 7
    assert report.totals["by_server"] == {"ocsfe01": 7}


def test_resolving_each_request_follows_a_changed_answer(
    certs: Certs, start_member: StartMember
) -> None:
    """A name resolved per request: after the answer changes (a DNS cutover),
    the load goes to the new address."""
    old = start_member(certs.good, name="ocsfe00")
    new = start_member(certs.good, name="ocsfe01")
    answers = {"count": 0}

    def resolve(name: str) -> list[str]:
        assert name == POOL_FQDN
        answers["count"] += 1
        return [old.address] if answers["count"] <= 10 else [new.address]

    target = LoadTarget(POOL_FQDN, real_port(5061), "sip-tls", POOL_FQDN)
    load = runner(certs, [target], max_requests=20, concurrency=1, resolve=resolve)
    load.start()
    assert load.wait(POLL_BUDGET)
    report = load.stop()
    assert report.totals["by_server"] == {"ocsfe00": 10, "ocsfe01": 10}
    assert report.totals["by_address"] == {old.address: 10, new.address: 10}


def test_a_name_that_does_not_resolve_is_a_counted_failure(
    certs: Certs, start_member: StartMember
) -> None:
    def resolve(name: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    target = LoadTarget(POOL_FQDN, real_port(5061), "sip-tls", POOL_FQDN)
    load = runner(certs, [target], max_requests=3, resolve=resolve)
    load.start()
    assert load.wait(POLL_BUDGET)
    report = load.stop()
    assert report.totals["failed"] == 3
    assert {f["error"] for f in report.failures} == {"resolve"}


def test_tls_and_banner_targets_name_the_server(certs: Certs, start_member: StartMember) -> None:
    one = start_member(certs.good, name="ocsfe01")
    targets = [
        LoadTarget(one.address, real_port(444), "tls", POOL_FQDN),
        LoadTarget(one.address, real_port(5065), "tcp", POOL_FQDN, banner=True),
        LoadTarget(one.address, real_port(444), "tcp", POOL_FQDN, banner=True),
    ]

    def by_banner_or_certificate(evidence: ProbeEvidence) -> str | None:
        if evidence.server:
            return evidence.server
        if evidence.certificate and "ocsfe01.contoso.com" in evidence.certificate.san_dns:
            return "ocsfe01"
        return None

    load = LoadRunner(
        targets,
        rate=30.0,
        duration=60.0,
        max_requests=6,
        tls=TlsOptions(ca_bundle=str(certs.ca.files.cert)),
        identify=by_banner_or_certificate,
        timeout=2.0,
    )
    load.start()
    assert load.wait(POLL_BUDGET)
    report = load.stop()
    assert report.by_target[targets[0].key]["by_server"] == {"ocsfe01": 2}
    assert report.by_target[targets[1].key]["by_server"] == {"ocsfe01": 2}
    # 444 speaks TLS and sends no banner: a banner expected there is a failure
    assert report.by_target[targets[2].key]["errors"] == {"no-banner": 2}


def test_merged_reports_add_up(certs: Certs, start_member: StartMember) -> None:
    one = start_member(certs.good, name="ocsfe01")
    reports = {}
    for client in ("client01", "client03"):
        load = runner(certs, [sip(one)], max_requests=4)
        load.mark("step")
        load.start()
        assert load.wait(POLL_BUDGET)
        reports[client] = load.stop()
    merged = merge_reports(reports)
    assert merged["totals"]["requests"] == 8
    assert merged["totals"]["by_server"] == {"ocsfe01": 8}
    assert merged["labels"]["step"]["ok"] == 8
    assert sum(b["ok"] for b in merged["buckets"]) == 8
    assert set(merged["clients"]) == {"client01", "client03"}
    json.dumps(merged)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate": 201.0}, "over the limit of 200"),
        ({"rate": 0.0}, "more than 0"),
        ({"duration": 3601.0}, "over the limit of 3600"),
        ({"duration": -1.0}, "more than 0"),
        ({"max_requests": 0}, "at least 1"),
        ({"concurrency": 5}, "concurrency"),
        ({"timeout": 0.0}, "timeout"),
    ],
)
def test_bounds_are_refused(certs: Certs, options: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        runner(certs, [LoadTarget("127.0.0.1", 5061, "sip-tls", POOL_FQDN)], **options)


def test_no_target_is_refused(certs: Certs) -> None:
    with pytest.raises(UsageError, match="at least one target"):
        runner(certs, [])


@pytest.mark.parametrize(("label_at", "counted_under"), [("start", "fault"), ("finish", "after")])
def test_a_request_is_labelled_when_it_started_or_when_it_ended(
    certs: Certs, label_at: str, counted_under: str
) -> None:
    """The failover drill labels by start: a request sent before the LB took a
    member out belongs to the fault, however late its timeout ends it."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    silent.settimeout(POLL_BUDGET)
    target = LoadTarget("127.0.0.1", silent.getsockname()[1], "tls", POOL_FQDN)
    load = runner(certs, [target], rate=20.0, timeout=1.0, concurrency=1, label_at=label_at)
    load.mark("fault")
    load.start()
    accepted = None
    try:
        accepted, _ = silent.accept()  # the first request is under way: it never gets an answer
        load.mark("after")
        first = poll_until(load, lambda r: r.totals["requests"] >= 1)
    finally:
        load.stop()
        if accepted is not None:
            accepted.close()
        silent.close()
    assert first.failures[0]["error"] == "timeout"
    assert first.failures[0]["label"] == counted_under
    assert first.labels[counted_under]["failed"] >= 1


def test_label_at_must_be_start_or_finish(certs: Certs) -> None:
    with pytest.raises(UsageError, match="label_at"):
        runner(certs, [LoadTarget("127.0.0.1", 5061, "tls", POOL_FQDN)], label_at="sent")


def test_an_outcome_learnt_late_is_labelled_by_when_it_happened() -> None:
    """A Windows client's burst reports its requests at its end: each is counted under
    the step that was current when it finished, not the one current on arrival."""
    recorder = LoadRecorder(100.0, 1.0, [])
    recorder.mark("preflight/check", 100.0)
    recorder.mark("cutover/switch", 105.0)
    assert recorder.label_at(99.0) == ""
    assert recorder.label_at(104.999) == "preflight/check"
    assert recorder.label_at(105.0) == "cutover/switch"
    late = Outcome(103.0, "tls pool:5061", False, "refused", "", 1.0, None, "198.18.0.10")
    recorder.add(late, recorder.label_at(late.finished))
    report = recorder.report(106.0, "caller")
    assert report.labels["preflight/check"]["failed"] == 1
    assert "cutover/switch" not in report.labels
    assert report.failures[0]["label"] == "preflight/check"
