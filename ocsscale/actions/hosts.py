"""hosts.pin / hosts.unpin: the tool's lines in a host's hosts file.

Reads: the hosts file's exact bytes (the transport's `hosts_file`, else
/etc/hosts on Linux and C:\\Windows\\System32\\drivers\\etc\\hosts on Windows).
Changes: only the tool's marked block (see transports/hostsfile.py), written
in place after a backup copy on the host (`<path>.ocsscale.bak`).
Undo: the original bytes (base64) and their sha256, journaled before the
write; revert writes them back when the file is still what the step made of
it, and otherwise (someone edited it since) restores only the tool's line for
that name, keeping the other edit. Of several changes of one name's line in
one file, rollback reverts only the oldest (none when they cancel out), and
then removes the backup copy.
Proof: verify reads the file back and compares its sha256 and pins;
verify_reverted compares the sha256 with the original (or, after an edit by
someone else, the tool's line for the name).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import StepFailed, UsageError
from ..transports import hostsfile
from ..transports.base import Host
from ..transports.factory import ADMIN_HOST
from ..transports.hostsfile import BACKUP_SUFFIX
from . import undo_shape as shape
from .args import ActionArgs, Address, DnsName, FilePath, HostName
from .base import Action, Change, Context, Json, register


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


class UnpinArgs(ActionArgs):
    host: HostName
    name: DnsName
    #: the hosts file, instead of the pool file's or the OS's
    path: FilePath | None = None


class PinArgs(UnpinArgs):
    address: Address


def _host_spec(pool: Any, name: str) -> Any:
    """The pool file's spec for `name`; None for the admin machine or when
    there is no pool model at hand (ctx.pool may be the model or the loaded file)."""
    finder = getattr(pool, "host", None)  # the Pool model
    if finder is None:  # a LoadedPool (whose model is .pool)
        finder = getattr(getattr(pool, "pool", None), "host", None)
    if finder is None:
        return None
    try:
        return finder(name)
    except KeyError:
        if name == ADMIN_HOST:
            return None
        raise UsageError(f"no host named '{name}' in the pool file") from None


def hosts_file_path(pool: Any, name: str, host: Host) -> str:
    """Where `name`'s hosts file is: the pool file's `transport.hosts_file`, else
    the transport's own, else the OS default."""
    spec = _host_spec(pool, name)
    override = getattr(spec.transport, "hosts_file", None) if spec is not None else None
    return override or getattr(host, "hosts_file", None) or hostsfile.default_path(host.os)


class _HostsFileAction(Action):
    Args: ClassVar[type[UnpinArgs]] = UnpinArgs
    params: UnpinArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.host_name = self.params.host
        self.pin_name = hostsfile.check_name(self.params.name)
        self.path_override = self.params.path

    # -- what the subclasses say -----------------------------------------
    def desired(self, data: bytes, newline: str) -> bytes:
        raise NotImplementedError

    def summary(self, path: str) -> str:
        raise NotImplementedError

    def change_kind(self, current: Json) -> str:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------
    def targets(self) -> list[str]:
        return [self.host_name]

    def revert_targets(self, undo: Json) -> list[str]:
        return [undo["host"]] if isinstance(undo, dict) and "host" in undo else self.targets()

    def check_undo(self, undo: Json) -> None:
        rec = shape.record(undo)
        shape.same(rec, "host", self.host_name, "the step's host")
        shape.text(rec, "path")
        shape.same(rec, "name", self.pin_name, "the name the step pins")
        shape.one_of(rec, "newline", ("\n", "\r\n"))
        shape.b64(rec, "original_b64")
        for key in ("original_sha256", "expected_sha256"):
            shape.text(rec, key)
        shape.address(rec, "original_pin", optional=True)

    def tidy(self, undo: Json) -> Json:
        # the backup the writes left (holding pinned content): after a rollback
        # nothing of the tool remains on the host
        backup = undo["path"] + BACKUP_SUFFIX
        return {"backup": backup, "removed": self.ctx.host(undo["host"]).remove_file(backup)}

    def pinned_after(self) -> str | None:
        """The name's tool line after this step: an address, or None (no pin)."""
        raise NotImplementedError

    def undo_chain(self, undo: Json) -> tuple[str, Json, Json]:
        # the tool's line for one name in one file: reverting the oldest change
        # of it (set_pin to its original) puts back what every later one changed
        what = f"hosts-file {undo['host']} {undo['path']} {undo['name'].lower()}"
        return what, undo["original_pin"], self.pinned_after()

    def _planned_path(self) -> str:
        """The path from the pool file alone (the plan must not connect)."""
        if self.path_override:
            return self.path_override
        spec = _host_spec(self.ctx.pool, self.host_name)
        if spec is None:
            return hostsfile.LINUX_HOSTS_PATH
        override = getattr(spec.transport, "hosts_file", None)
        return override or hostsfile.default_path(spec.os)

    def _path(self, host: Host) -> str:
        return self.path_override or hosts_file_path(self.ctx.pool, self.host_name, host)

    def _host(self) -> Host:
        return self.ctx.host(self.host_name)

    @staticmethod
    def _newline(host: Host) -> str:
        return "\r\n" if host.os == "windows" else "\n"

    def _change(self, kind: str, path: str) -> Change:
        return Change(kind, self.host_name, self.summary(path))  # type: ignore[arg-type]

    def read(self) -> Json:
        host = self._host()
        path = self._path(host)
        data = host.read_file(path)
        return {
            "path": path,
            "content_b64": _b64(data),
            "sha256": hostsfile.sha256(data),
            "pins": hostsfile.pins(data),
            "newline": self._newline(host),
        }

    def diff(self, current: Json) -> list[Change]:
        data = _unb64(current["content_b64"])
        if self.desired(data, current["newline"]) == data:
            return []
        return [self._change(self.change_kind(current), current["path"])]

    def undo_record(self, current: Json) -> Json:
        data = _unb64(current["content_b64"])
        after = self.desired(data, current["newline"])
        return {
            "host": self.host_name,
            "path": current["path"],
            "name": self.pin_name,
            "newline": current["newline"],
            "original_b64": current["content_b64"],
            "original_sha256": hostsfile.sha256(data),
            "original_pin": current["pins"].get(self.pin_name.lower()),
            "expected_sha256": hostsfile.sha256(after),
        }

    def apply(self, current: Json) -> Json:
        host = self._host()
        path = current["path"]
        data = host.read_file(path)
        if hostsfile.sha256(data) != current["sha256"]:
            raise StepFailed(
                f"{self.host_name}: {path} changed between reading and writing it; nothing "
                "was written",
                hint="run again: the step reads the file anew",
            )
        new = self.desired(data, current["newline"])
        backup = host.write_file(path, new, backup_suffix=BACKUP_SUFFIX)
        return {
            "path": path,
            "backup": backup,
            "sha256": hostsfile.sha256(new),
            "pins": hostsfile.pins(new),
            "other_lines_for_name": hostsfile.foreign_entries(new, self.pin_name),
        }

    def verify(self, evidence: Json) -> Json:
        data = self._host().read_file(evidence["path"])
        if hostsfile.sha256(data) != evidence["sha256"]:
            raise StepFailed(
                f"{self.host_name}: {evidence['path']} does not hold what was written "
                f"(sha256 {hostsfile.sha256(data)[:16]}..., expected {evidence['sha256'][:16]}...)"
            )
        return {**evidence, "verified": True}

    def revert(self, undo: Json) -> Json:
        host = self.ctx.host(undo["host"])
        path = undo["path"]
        original = _unb64(undo["original_b64"])
        data = host.read_file(path)
        if data == original:
            return {"path": path, "reverted": "already as before"}
        if hostsfile.sha256(data) == undo["expected_sha256"]:
            host.write_file(path, original, backup_suffix=BACKUP_SUFFIX)
            return {"path": path, "reverted": "original bytes written back"}
        # Someone else edited the file after the step: put back only the
        # tool's line for this name and keep their edit.
        restored = hostsfile.set_pin(
            data, undo["name"], undo["original_pin"], default_newline=undo["newline"]
        )
        if restored != data:
            host.write_file(path, restored, backup_suffix=BACKUP_SUFFIX)
        return {
            "path": path,
            "reverted": f"only the tool's line for {undo['name']} (the file was edited since)",
        }

    def verify_reverted(self, undo: Json) -> Json:
        data = self.ctx.host(undo["host"]).read_file(undo["path"])
        digest = hostsfile.sha256(data)
        if digest == undo["original_sha256"]:
            return {"path": undo["path"], "byte_identical": True, "sha256": digest}
        pinned = hostsfile.pins(data).get(undo["name"].lower())
        if pinned == undo["original_pin"]:
            return {
                "path": undo["path"],
                "byte_identical": False,
                "sha256": digest,
                "note": "edited by someone else since; the tool's line is as it was",
            }
        raise StepFailed(
            f"{undo['host']}: {undo['path']} was not restored: sha256 {digest[:16]}... "
            f"differs from the original and {undo['name']} is pinned to {pinned}, "
            f"not {undo['original_pin']}"
        )


@register
class HostsPin(_HostsFileAction):
    """Pin `name` to `address` in the hosts file of `host` (args: host, name,
    address[, path]). Any other tool line for the name is replaced; foreign
    lines stay, and the block sits above them so the pin wins."""

    name = "hosts.pin"
    parallel = True
    Args = PinArgs
    params: PinArgs

    def __init__(self, ctx: Context, args: Mapping[str, Any]) -> None:
        super().__init__(ctx, args)
        self.address = hostsfile.check_address(self.params.address)

    def desired(self, data: bytes, newline: str) -> bytes:
        return hostsfile.pin(data, self.pin_name, self.address, default_newline=newline)

    def pinned_after(self) -> str | None:
        return self.address

    def summary(self, path: str) -> str:
        return f"pin {self.pin_name} -> {self.address} in {path}"

    def change_kind(self, current: Json) -> str:
        return "change" if self.pin_name.lower() in current["pins"] else "add"

    def describe(self) -> list[Change]:
        return [self._change("add", self._planned_path())]

    def verify(self, evidence: Json) -> Json:
        evidence = super().verify(evidence)
        if evidence["pins"].get(self.pin_name.lower()) != self.address:
            raise StepFailed(f"{self.host_name}: {self.pin_name} is not pinned to {self.address}")
        return evidence


@register
class HostsUnpin(_HostsFileAction):
    """Remove the tool's pin for `name` from the hosts file of `host` (args:
    host, name[, path]); the marked block goes with its last pin, leaving the
    file as it was before the first pin."""

    name = "hosts.unpin"
    parallel = True

    def desired(self, data: bytes, newline: str) -> bytes:
        return hostsfile.unpin(data, self.pin_name)

    def pinned_after(self) -> str | None:
        return None

    def summary(self, path: str) -> str:
        return f"unpin {self.pin_name} in {path}"

    def change_kind(self, current: Json) -> str:
        return "remove"

    def describe(self) -> list[Change]:
        return [self._change("remove", self._planned_path())]

    def verify(self, evidence: Json) -> Json:
        evidence = super().verify(evidence)
        if self.pin_name.lower() in evidence["pins"]:
            raise StepFailed(f"{self.host_name}: {self.pin_name} is still pinned")
        return evidence
