"""hostsfile.py: pins in one marked block, everything else byte for byte."""

from __future__ import annotations

import codecs

import pytest

from ocsscale.errors import UsageError
from ocsscale.transports import hostsfile as hf

NAME = "ocspool.contoso.com"

SAMPLES = {
    "lf": b"127.0.0.1 localhost\n::1 localhost ip6-localhost\n",
    "crlf": b"# Windows hosts\r\n127.0.0.1 localhost\r\n",
    "no-trailing-newline": b"127.0.0.1 localhost\n10.0.0.30 legacy",
    "empty": b"",
    "utf16-le-bom": codecs.BOM_UTF16_LE
    + "# h\u00f4tes\r\n127.0.0.1 localhost\r\n".encode("utf-16-le"),
    "utf16-be-bom": codecs.BOM_UTF16_BE + "127.0.0.1 localhost\n".encode("utf-16-be"),
    "utf16-le-no-bom": "127.0.0.1 localhost\r\n".encode("utf-16-le"),
    "utf8-bom": codecs.BOM_UTF8 + "# caf\u00e9\n127.0.0.1 localhost\n".encode(),
    "cp1252-bytes": b"# caf\xe9 \xff\n127.0.0.1 localhost\n",
    "foreign-line-same-name": b"127.0.0.1 localhost\n10.0.0.30 ocspool.contoso.com\n",
    "mixed-endings": b"a 1.1.1.1\r\nb\nc\r\n",
    "stray-cr-and-ff": b"127.0.0.1 localhost\r\x0c\n1.2.3.4 x\x85y\n",
}


@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
def test_pin_then_unpin_gives_back_the_same_bytes(sample: bytes) -> None:
    pinned = hf.pin(sample, NAME, "198.18.0.41")
    assert pinned != sample
    assert hf.pins(pinned) == {NAME: "198.18.0.41"}
    repinned = hf.pin(pinned, NAME, "198.18.0.42")
    both = hf.pin(repinned, "sip.contoso.com", "198.18.0.42")
    assert hf.pins(both) == {NAME: "198.18.0.42", "sip.contoso.com": "198.18.0.42"}
    assert hf.unpin(hf.unpin(both, NAME), "sip.contoso.com") == sample


@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
def test_pinned_file_keeps_encoding_and_line_endings(sample: bytes) -> None:
    pinned = hf.pin(sample, NAME, "198.18.0.41", default_newline="\n")
    text = hf.HostsText.decode(pinned)
    assert text.encoding == hf.HostsText.decode(sample).encoding
    bom = text.encoding.bom
    assert pinned.startswith(bom)
    assert pinned.endswith(sample[len(bom) :])  # the block goes on top, the rest is untouched
    if b"\r\x00\n" in sample or (b"\r\n" in sample and b"\x00" not in sample):
        assert all(line.endswith("\r\n") for line in text.lines[:3])
    block = [line.rstrip("\r\n") for line in text.lines[:3]]
    assert block == [hf.BEGIN_MARKER, f"198.18.0.41 {NAME}", hf.END_MARKER]


def test_default_newline_used_for_a_file_without_any() -> None:
    assert hf.pin(b"", NAME, "198.18.0.41", default_newline="\r\n").count(b"\r\n") == 3
    assert hf.pin(b"x", NAME, "198.18.0.41", default_newline="\r\n").endswith(b"\r\nx")


def test_pinning_what_is_pinned_changes_nothing() -> None:
    pinned = hf.pin(SAMPLES["lf"], NAME, "198.18.0.41")
    assert hf.pin(pinned, NAME, "198.18.0.41") is pinned
    assert hf.pin(pinned, NAME.upper(), "198.18.0.41") is pinned


def test_pin_replaces_every_tool_line_for_the_name_and_no_foreign_line() -> None:
    data = (
        b"10.0.0.30 ocspool.contoso.com\n"
        + hf.BEGIN_MARKER.encode()
        + b"\n198.18.0.41 ocspool.contoso.com\n198.18.0.42 OCSPOOL.contoso.com\n"
        + b"198.18.0.43 other.contoso.com\n"
        + hf.END_MARKER.encode()
        + b"\n"
    )
    pinned = hf.pin(data, NAME, "198.18.0.40")
    assert hf.pins(pinned) == {NAME: "198.18.0.40", "other.contoso.com": "198.18.0.43"}
    assert pinned.count(b"198.18.0.4") == 2
    assert pinned.startswith(b"10.0.0.30 ocspool.contoso.com\n")  # the block stays where it is
    assert hf.foreign_entries(pinned, NAME) == ["10.0.0.30 ocspool.contoso.com"]


def test_unpin_of_a_name_not_pinned_is_no_change() -> None:
    assert hf.unpin(SAMPLES["crlf"], NAME) is SAMPLES["crlf"]
    pinned = hf.pin(SAMPLES["crlf"], NAME, "198.18.0.41")
    assert hf.unpin(pinned, "other.contoso.com") is pinned


def test_set_pin_restores_one_name() -> None:
    pinned = hf.pin(SAMPLES["lf"], NAME, "198.18.0.41")
    assert hf.set_pin(pinned, NAME, None) == SAMPLES["lf"]
    assert hf.set_pin(SAMPLES["lf"], NAME, "198.18.0.41") == pinned


def test_foreign_lines_are_not_pins() -> None:
    assert hf.pins(SAMPLES["foreign-line-same-name"]) == {}
    assert hf.foreign_entries(SAMPLES["foreign-line-same-name"], NAME.upper()) == [
        "10.0.0.30 ocspool.contoso.com"
    ]


@pytest.mark.parametrize(
    "broken",
    [
        hf.BEGIN_MARKER.encode() + b"\n1.2.3.4 a\n",
        b"1.2.3.4 a\n" + hf.END_MARKER.encode() + b"\n",
        (hf.END_MARKER + "\n" + hf.BEGIN_MARKER + "\n").encode(),
        (hf.BEGIN_MARKER + "\n" + hf.END_MARKER + "\n").encode() * 2,
    ],
    ids=["no-end", "no-begin", "reversed", "two-blocks"],
)
def test_a_broken_block_is_refused_not_guessed(broken: bytes) -> None:
    with pytest.raises(hf.HostsFileError, match="fix the block by hand"):
        hf.pin(broken, NAME, "198.18.0.41")


def test_odd_length_utf16_is_refused() -> None:
    with pytest.raises(hf.HostsFileError):
        hf.pins(codecs.BOM_UTF16_LE + b"1\x00 ")


@pytest.mark.parametrize("name", ["", "a b", "host#x", "-x.com", "a" * 64 + ".com"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError):
        hf.pin(b"", name, "198.18.0.41")


@pytest.mark.parametrize("address", ["", "198.18.0", "example.com", "1.2.3.4 evil"])
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(UsageError):
        hf.pin(b"", NAME, address)


def test_ipv6_pin() -> None:
    pinned = hf.pin(b"", NAME, "2001:db8::0:1")
    assert hf.pins(pinned) == {NAME: "2001:db8::1"}


def test_default_paths() -> None:
    assert hf.default_path("linux") == "/etc/hosts"
    assert hf.default_path("windows") == r"C:\Windows\System32\drivers\etc\hosts"


def test_a_bad_name_or_address_is_refused_without_echoing_it() -> None:
    for call, value in (
        (hf.check_name, "evil\x1b[31m name"),
        (hf.check_address, "x\n1.2.3.4"),
    ):
        with pytest.raises(UsageError) as err:
            call(value)
        assert value not in str(err.value) and "evil" not in str(err.value)
