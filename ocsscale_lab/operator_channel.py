"""The lab's operator answers as a person at another terminal would: through
`ocsscale answer`, run as a command against the lab's pool file.

`AnswerCommand` is the channel `appliance_operator.run_operator` polls: `waiting()`
is `ocsscale answer --json` (None when nothing waits or the question is stale) and
`answer()` is `ocsscale answer VALUE --by NAME --id ID`, so an answer never lands
on a question that replaced the one the operator acted on. `answer` touches only
files beside the pool file: it runs in the machine's own namespace and sends nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .system import LabError

#: `ocsscale answer` reads two small files; anything slower is a hang
COMMAND_TIMEOUT = 30.0


class AnswerCommand:
    def __init__(self, pool: Path) -> None:
        self.pool = pool
        self._last_id = ""

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [sys.executable, "-m", "ocsscale", "answer", "-c", str(self.pool), *args],
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LabError("`ocsscale answer` did not return within 30 s") from None

    def waiting(self) -> dict[str, Any] | None:
        done = self._run("--json")
        if done.returncode != 0:
            raise LabError(
                f"`ocsscale answer --json` exited {done.returncode}: {done.stderr[-300:]}"
            )
        try:
            question = json.loads(done.stdout)
        except ValueError:
            raise LabError("`ocsscale answer --json` printed no JSON") from None
        if not isinstance(question, dict) or question.get("waiting") is False:
            return None
        if question.get("stale"):
            return None  # the run that asked is gone: nobody to answer
        self._last_id = str(question.get("id", ""))
        return question

    def answer(self, value: str, by: str) -> None:
        done = self._run(value, "--by", by, "--id", self._last_id)
        # 1: somebody answered first or the run stopped waiting; the run decides, not us
        if done.returncode not in (0, 1):
            raise LabError(
                f"`ocsscale answer {value}` exited {done.returncode}: {done.stderr[-300:]}"
            )
