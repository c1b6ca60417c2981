"""The POSIX quoting every command sent over SSH goes through (transports/commands.py)."""

from __future__ import annotations

import shlex

import pytest

from ocsscale.transports.commands import ShCommand, sh_quote


@pytest.mark.parametrize("word", ["a\n", "a\nid", "x;id", "$(id)", "a b", "", "it's", "ok\r"])
def test_a_word_reaches_the_shell_as_one_word(word: str) -> None:
    # "$" in a pattern matches before a final newline: "a\n" must still be quoted
    assert shlex.split(sh_quote(word)) == [word]


def test_a_trailing_newline_cannot_start_a_second_command() -> None:
    rendered = ShCommand.of("echo", "a\n", "id").render()
    assert shlex.split(rendered) == ["echo", "a\n", "id"]
    assert "\n id" not in rendered


def test_plain_words_stay_unquoted() -> None:
    assert sh_quote("/etc/hosts") == "/etc/hosts"


@pytest.mark.parametrize("name", ["ocspool.lab.test\n", "ocspool.lab.test\n198.18.0.9 evil"])
def test_a_hosts_file_name_with_a_newline_is_refused(name: str) -> None:
    # a validator ending in "$" would take "name\n" and write a second hosts line
    from ocsscale.errors import OcsscaleError
    from ocsscale.transports import hostsfile

    with pytest.raises(OcsscaleError):
        hostsfile.check_name(name)
