"""A plugin module for the runner tests, loaded through OCSSCALE_PLUGINS (the
real plugin hook) by the subprocess tests and imported directly in-process.

The actions work on files of the test's temporary directory only.
"""

from __future__ import annotations

import time
from pathlib import Path

from ocsscale.actions.base import Action, Change, Json, register
from ocsscale.errors import CheckFailed, Refused, StepFailed


def _log(path: str | None, line: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


@register
class Mark(Action):
    """Writes `text` to the file `path`. Undo: the file's previous content (or
    its absence). Every apply and revert appends a line to `log`. When the
    file `fail_revert` exists, a revert removes it and fails (once). With
    `hold_revert`, a revert logs "revert waiting" and waits (60 s at most)
    until that file exists: a rollback a test can kill in the middle of."""

    name = "test.mark"

    def targets(self) -> list[str]:
        return ["admin"]

    def describe(self) -> list[Change]:
        return [Change("add", "admin", f"write {self.args['text']!r} to {self.args['path']}")]

    def read(self) -> Json:
        p = Path(self.args["path"])
        return p.read_text() if p.exists() else None

    def diff(self, current: Json) -> list[Change]:
        return [] if current == self.args["text"] else self.describe()

    def undo_record(self, current: Json) -> Json:
        return {"content": current}

    def apply(self, current: Json) -> Json:
        _log(self.args.get("log"), f"apply {self.args['path']}")
        Path(self.args["path"]).write_text(self.args["text"])
        return {"wrote": self.args["text"]}

    def verify(self, evidence: Json) -> Json:
        if self.read() != self.args["text"]:
            raise StepFailed("mark not written")
        return evidence

    def revert(self, undo: Json) -> Json:
        hold = self.args.get("hold_revert")
        if hold:
            _log(self.args.get("log"), "revert waiting")
            deadline = time.monotonic() + 60
            while not Path(hold).exists():
                if time.monotonic() > deadline:
                    raise StepFailed(f"{hold} did not appear")
                time.sleep(0.05)
        flag = self.args.get("fail_revert")
        if flag and Path(flag).exists():
            Path(flag).unlink()
            raise StepFailed(f"revert of {self.args['path']} failed on purpose")
        _log(self.args.get("log"), f"revert {self.args['path']}")
        p = Path(self.args["path"])
        if undo["content"] is None:
            p.unlink(missing_ok=True)
        else:
            p.write_text(undo["content"])
        return {"restored": undo["content"]}

    def verify_reverted(self, undo: Json) -> Json:
        if self.read() != undo["content"]:
            raise StepFailed("revert did not take")
        return {"ok": True}


@register
class WaitFor(Action):
    """A check that waits until the file `release` exists (at most `timeout`
    seconds): a step a test can kill a run in the middle of."""

    name = "test.wait"
    read_only = True

    def targets(self) -> list[str]:
        return ["admin"]

    def describe(self) -> list[Change]:
        return [Change("check", "admin", f"wait for {self.args['release']}")]

    def apply(self, current: Json) -> Json:
        _log(self.args.get("log"), "wait started")
        deadline = time.monotonic() + float(self.args.get("timeout", 60))
        while not Path(self.args["release"]).exists():
            if time.monotonic() > deadline:
                raise CheckFailed(f"{self.args['release']} did not appear")
            time.sleep(0.05)
        return {"released": True}


@register
class Exists(Action):
    """A check that the file `path` exists."""

    name = "test.exists"
    read_only = True

    def targets(self) -> list[str]:
        return ["admin"]

    def describe(self) -> list[Change]:
        return [Change("check", "admin", f"{self.args['path']} exists")]

    def apply(self, current: Json) -> Json:
        if not Path(self.args["path"]).exists():
            raise CheckFailed(f"{self.args['path']} does not exist")
        return {"exists": True}


def _meet(directory: Path, prefix: str, host: str, expected: int, timeout: float) -> None:
    """Arrive at a rendezvous and wait until `expected` steps have: it is only
    reached when that many steps run at the same time."""
    (directory / f"{prefix}-{host}").touch()
    deadline = time.monotonic() + timeout
    while len(list(directory.glob(f"{prefix}-*"))) < expected:
        if time.monotonic() > deadline:
            raise StepFailed(f"{host}: the other steps never came ({prefix})")
        time.sleep(0.02)


@register
class Meet(Action):
    """Writes the file `dir`/`host` once `meet` steps of its wave (default: all
    of `hosts`) have started at the same time; its revert removes the file
    after the same rendezvous. Fails after `timeout` seconds (default 10)
    alone: steps that run one after the other never meet. With `release`, a
    step that has met waits (60 s at most) until that file exists before it
    writes: a wave a test can interrupt while its steps are under way."""

    name = "test.meet"
    parallel = True

    def targets(self) -> list[str]:
        return [self.args["host"]]

    def describe(self) -> list[Change]:
        return [Change("add", self.args["host"], f"meet in {self.args['dir']}")]

    def _path(self) -> Path:
        return Path(self.args["dir"]) / self.args["host"]

    def read(self) -> Json:
        return self._path().exists()

    def diff(self, current: Json) -> list[Change]:
        return [] if current else self.describe()

    def undo_record(self, current: Json) -> Json:
        return {"existed": current}

    def _wait(self, prefix: str) -> None:
        expected = int(self.args.get("meet", len(self.args.get("hosts", [1]))))
        timeout = float(self.args.get("timeout", 10))
        _meet(Path(self.args["dir"]), prefix, self.args["host"], expected, timeout)

    def apply(self, current: Json) -> Json:
        if self.args.get("fail") == self.args["host"]:
            raise StepFailed(f"{self.args['host']} fails on purpose")
        self._wait("arrived")
        release = self.args.get("release")
        deadline = time.monotonic() + 60
        while release and not Path(release).exists():
            if time.monotonic() > deadline:
                raise StepFailed(f"{release} did not appear")
            time.sleep(0.02)
        self._path().write_text("met")
        return {"met": True}

    def revert(self, undo: Json) -> Json:
        self._wait("revert")
        self._path().unlink(missing_ok=True)
        return {"removed": True}

    def verify_reverted(self, undo: Json) -> Json:
        if self._path().exists():
            raise StepFailed("still there")
        return {"ok": True}


@register
class Fault(Action):
    """Breaks something on purpose, as a failover drill does: the file `broken`
    exists while the fault is in place (put through Context.faults, so it is
    journaled and shielded). `put_delay`/`take_delay` seconds are spent inside
    the shielded moves (a test signals the run then); while it is in place the
    step waits until `release` exists (60 s at most). Each move is logged to `log`.
    Undo: the file removed."""

    name = "test.fault"

    def targets(self) -> list[str]:
        return ["admin"]

    def describe(self) -> list[Change]:
        return [Change("change", "admin", f"break {self.args['broken']} for a while")]

    def undo_record(self, current: Json) -> Json:
        return {"broken": self.args["broken"]}

    def _put(self) -> None:
        _log(self.args.get("log"), "put started")
        time.sleep(float(self.args.get("put_delay", 0)))
        Path(self.args["broken"]).write_text("broken")
        _log(self.args.get("log"), "put done")

    def _take(self) -> None:
        _log(self.args.get("log"), "take started")
        time.sleep(float(self.args.get("take_delay", 0)))
        Path(self.args["broken"]).unlink(missing_ok=True)
        _log(self.args.get("log"), "take done")

    def apply(self, current: Json) -> Json:
        with self.ctx.faults.held(
            "file-broken",
            "admin",
            f"{self.args['broken']} broken (test fault)",
            {"broken": self.args["broken"]},
            put=self._put,
            take_away=self._take,
        ):
            _log(self.args.get("log"), "in place")
            deadline = time.monotonic() + 60
            release = self.args.get("release")
            while release and not Path(release).exists():
                if time.monotonic() > deadline:
                    raise StepFailed(f"{release} did not appear")
                time.sleep(0.05)
        return {"broke": self.args["broken"]}

    def restore_fault(self, kind: str, restore: Json) -> Json:
        _log(self.args.get("log"), f"restore_fault {kind}")
        Path(restore["broken"]).unlink(missing_ok=True)
        return {"restored": restore["broken"]}

    def revert(self, undo: Json) -> Json:
        _log(self.args.get("log"), "revert")
        Path(undo["broken"]).unlink(missing_ok=True)
        return {"reverted": undo["broken"]}

    def verify_reverted(self, undo: Json) -> Json:
        if Path(undo["broken"]).exists():
            raise StepFailed("still broken")
        _log(self.args.get("log"), "verify_reverted")
        return {"ok": True}


@register
class DrillFault(Fault):
    """test.fault whose fault is its only change, as a failover drill's is: once a
    rollback has put the fault right, its revert is proven, not replayed."""

    name = "test.drill_fault"
    fault_restore_reverts = True


@register
class Refuse(Action):
    """A change whose guard refuses it in apply, before anything changed (as
    dns.replace does when someone changed the record): it leaves no undo."""

    name = "test.refuse"

    def targets(self) -> list[str]:
        return ["admin"]

    def describe(self) -> list[Change]:
        return [Change("change", "admin", "a change a guard refuses")]

    def undo_record(self, current: Json) -> Json:
        return {"foreign": "a value someone else wrote"}

    def apply(self, current: Json) -> Json:
        raise Refused("someone changed it since it was planned; nothing was changed")

    def revert(self, undo: Json) -> Json:
        raise StepFailed("a refused change must never be reverted")


@register
class Ask(Action):
    """Tells a checklist (with `data`) and asks the operator done|abort, as a
    manual driver does; the answer is the evidence. Contacts nothing."""

    name = "test.ask"
    read_only = True

    def targets(self) -> list[str]:
        return []

    def describe(self) -> list[Change]:
        return [Change("check", "operator", f"ask: {self.args.get('question', 'done?')}")]

    def apply(self, current: Json) -> Json:
        operator = self.ctx.operator
        operator.tell(
            "Enter these settings",
            ["set the farm's VIP to 198.18.0.40", "add fe01 and fe02"],
            {"kind": "test", "vip": "198.18.0.40", "members": ["fe01", "fe02"]},
        )
        answer = operator.ask(
            str(self.args.get("question", "Type done when entered")), ["done", "abort"]
        )
        if answer != "done":
            raise StepFailed("the operator stopped")
        return {"answer": answer}
