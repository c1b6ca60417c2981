"""Hosts-file text manipulation: the tool's pins live in one marked block.

Pure functions over bytes, so the same code serves /etc/hosts over SSH, the
Windows hosts file over WinRM and a local file. Everything outside the block
is never touched: the file is decoded in a way that round-trips byte for byte
(BOM, UTF-16, CRLF/LF, missing trailing newline, undecodable bytes), and the
block is inserted at the top and removed as whole lines, so removing the last
pin gives back exactly the bytes that were there before the first one.

The block goes at the top because resolvers (glibc `files`, the Windows DNS
client) take the first line that names a host: a pin must win over a foreign
line for the same name further down, without editing that line.
"""

from __future__ import annotations

import codecs
import hashlib
import ipaddress
import re
from dataclasses import dataclass

from ..errors import OcsscaleError, UsageError

BEGIN_MARKER = "# BEGIN ocsscale (do not edit: managed by ocsscale)"
END_MARKER = "# END ocsscale"

#: the copy made on the host before the hosts file is written (hosts.pin / hosts.unpin)
BACKUP_SUFFIX = ".ocsscale.bak"

LINUX_HOSTS_PATH = "/etc/hosts"
WINDOWS_HOSTS_PATH = r"C:\Windows\System32\drivers\etc\hosts"

_NAME = re.compile(r"^(?=.{1,253}\Z)[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_-]{1,63})*\.?\Z")


class HostsFileError(OcsscaleError):
    """A hosts file the tool cannot edit safely (a broken block, odd encoding)."""


def default_path(os_kind: str) -> str:
    return WINDOWS_HOSTS_PATH if os_kind == "windows" else LINUX_HOSTS_PATH


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_name(name: str) -> str:
    if not _NAME.match(name):
        # the name may come from a hostile file: say what is wrong, never echo it
        raise UsageError(
            "a host name for a hosts file is 1-253 characters of letters, digits, '-', '_' "
            "and dots, in labels of at most 63"
        )
    return name


def check_address(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise UsageError("a hosts-file entry needs an IPv4 or IPv6 address") from None


@dataclass(frozen=True)
class _Encoding:
    bom: bytes
    codec: str
    errors: str


def _sniff_encoding(data: bytes) -> _Encoding:
    if data.startswith(codecs.BOM_UTF8):
        return _Encoding(codecs.BOM_UTF8, "utf-8", "surrogateescape")
    if data.startswith(codecs.BOM_UTF16_LE):
        return _Encoding(codecs.BOM_UTF16_LE, "utf-16-le", "surrogatepass")
    if data.startswith(codecs.BOM_UTF16_BE):
        return _Encoding(codecs.BOM_UTF16_BE, "utf-16-be", "surrogatepass")
    # UTF-16 without a BOM (Notepad can write it): ASCII text leaves every
    # other byte zero.
    if len(data) >= 2 and len(data) % 2 == 0 and b"\x00" in data:
        even, odd = data[0::2], data[1::2]
        if odd.count(0) > len(odd) * 0.9:
            return _Encoding(b"", "utf-16-le", "surrogatepass")
        if even.count(0) > len(even) * 0.9:
            return _Encoding(b"", "utf-16-be", "surrogatepass")
    # surrogateescape keeps any legacy code-page byte as it was.
    return _Encoding(b"", "utf-8", "surrogateescape")


@dataclass(frozen=True)
class HostsText:
    """A decoded hosts file that encodes back to the very same bytes."""

    encoding: _Encoding
    lines: tuple[str, ...]  # each with its own line ending ("" only for a last line without one)

    @classmethod
    def decode(cls, data: bytes) -> HostsText:
        enc = _sniff_encoding(data)
        body = data[len(enc.bom) :]
        try:
            text = body.decode(enc.codec, enc.errors)
        except UnicodeDecodeError as exc:
            raise HostsFileError(f"hosts file is not valid {enc.codec}: {exc.reason}") from None
        # Split on LF only: a stray CR, form feed or U+2028 stays inside its line.
        decoded = cls(enc, tuple(re.findall(r"[^\n]*\n|[^\n]+\Z", text)))
        if decoded.encode() != data:
            raise HostsFileError(
                f"hosts file does not round-trip through {enc.codec}; refusing to edit it"
            )
        return decoded

    def encode(self) -> bytes:
        return self.encoding.bom + "".join(self.lines).encode(
            self.encoding.codec, self.encoding.errors
        )

    def newline(self, default: str) -> str:
        for line in self.lines:
            if line.endswith("\r\n"):
                return "\r\n"
            if line.endswith("\n"):
                return "\n"
        return default


def _bare(line: str) -> str:
    return line.rstrip("\r\n")


def _find_block(lines: tuple[str, ...]) -> tuple[int, int] | None:
    """(index of BEGIN, index of END) or None; refuses broken or repeated blocks."""
    begins = [i for i, line in enumerate(lines) if _bare(line).strip() == BEGIN_MARKER]
    ends = [i for i, line in enumerate(lines) if _bare(line).strip() == END_MARKER]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise HostsFileError(
            f"hosts file has {len(begins)} '{BEGIN_MARKER}' and {len(ends)} "
            f"'{END_MARKER}' lines in the wrong shape; fix the block by hand",
            hint="the tool edits only one well-formed block and leaves everything else alone",
        )
    return begins[0], ends[0]


def _parse_entry(line: str) -> tuple[str, list[str]] | None:
    text = _bare(line).split("#", 1)[0].split()
    if len(text) < 2:
        return None
    return text[0], text[1:]


def pins(data: bytes) -> dict[str, str]:
    """The tool's pins in this file: lower-cased name -> address."""
    hosts = HostsText.decode(data)
    block = _find_block(hosts.lines)
    if block is None:
        return {}
    found: dict[str, str] = {}
    for line in hosts.lines[block[0] + 1 : block[1]]:
        entry = _parse_entry(line)
        if entry:
            for name in entry[1]:
                found.setdefault(name.lower(), entry[0])
    return found


def foreign_entries(data: bytes, name: str) -> list[str]:
    """Lines outside the tool's block that also map `name` (kept untouched)."""
    hosts = HostsText.decode(data)
    block = _find_block(hosts.lines)
    inside = range(block[0], block[1] + 1) if block else range(0)
    out = []
    for i, line in enumerate(hosts.lines):
        entry = _parse_entry(line)
        if i not in inside and entry and name.lower() in (n.lower() for n in entry[1]):
            out.append(_bare(line))
    return out


def _with_entries(
    hosts: HostsText, entries: list[tuple[str, str]], default_newline: str
) -> HostsText:
    """Replace the block's contents with `entries`; drop the block when empty."""
    lines = list(hosts.lines)
    block = _find_block(hosts.lines)
    if block is not None:
        del lines[block[0] : block[1] + 1]
        at = block[0]
    else:
        at = 0
    if entries:
        nl = hosts.newline(default_newline)
        new_block = [BEGIN_MARKER + nl] + [f"{a} {n}{nl}" for a, n in entries] + [END_MARKER + nl]
        lines[at:at] = new_block
    return HostsText(hosts.encoding, tuple(lines))


def _block_entries(hosts: HostsText) -> list[tuple[str, str]]:
    block = _find_block(hosts.lines)
    if block is None:
        return []
    entries: list[tuple[str, str]] = []
    for line in hosts.lines[block[0] + 1 : block[1]]:
        entry = _parse_entry(line)
        if entry:
            entries.extend((entry[0], n) for n in entry[1])
    return entries


def pin(data: bytes, name: str, address: str, *, default_newline: str = "\n") -> bytes:
    """`data` with `name` pinned to `address`; any other tool line for the name
    goes. Returns `data` itself when that is already so."""
    check_name(name)
    address = check_address(address)
    hosts = HostsText.decode(data)
    entries = _block_entries(hosts)
    kept = [(a, n) for a, n in entries if n.lower() != name.lower()]
    mine = [a for a, n in entries if n.lower() == name.lower()]
    if mine == [address]:
        return data
    return _with_entries(hosts, kept + [(address, name)], default_newline).encode()


def unpin(data: bytes, name: str) -> bytes:
    """`data` without the tool's pin for `name`; the block goes with its last pin."""
    hosts = HostsText.decode(data)
    entries = _block_entries(hosts)
    kept = [(a, n) for a, n in entries if n.lower() != name.lower()]
    if len(kept) == len(entries):
        return data
    return _with_entries(hosts, kept, "\n").encode()


def set_pin(data: bytes, name: str, address: str | None, *, default_newline: str = "\n") -> bytes:
    """Pin when `address` is given, else unpin: restores one name's tool line."""
    if address is None:
        return unpin(data, name)
    return pin(data, name, address, default_newline=default_newline)
