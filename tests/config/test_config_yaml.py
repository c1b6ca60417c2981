from __future__ import annotations

from pathlib import Path

import pytest

from ocsscale.config import load_pool
from ocsscale.errors import ConfigError
from ocsscale.yamlpos import format_path, parse_yaml


def test_positions_of_keys_values_and_items() -> None:
    doc = parse_yaml("a:\n  b: [10, 20]\n  c: {d: x}\n", "f.yaml")
    assert doc.data == {"a": {"b": [10, 20], "c": {"d": "x"}}}
    assert doc.key_position(("a", "b")) == (2, 3)
    assert doc.position(("a", "b")) == (2, 6)
    assert doc.position(("a", "b", 1)) == (2, 11)
    assert doc.position(("a", "c", "d")) == (3, 10)
    # a missing node points at its nearest existing parent
    assert doc.position(("a", "c", "missing")) == (3, 6)


def test_format_path() -> None:
    assert format_path(("front_ends", 1, "address")) == "front_ends[1].address"
    assert format_path(()) == ""


def test_syntax_error_has_a_position() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: 1\nb: [1, 2\nc: 3\n", "f.yaml")
    (issue,) = caught.value.issues
    assert issue.rule == "yaml.syntax"
    assert issue.file == "f.yaml"
    assert issue.line >= 2


def test_duplicate_key_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    (issue,) = caught.value.issues
    assert issue.rule == "yaml.duplicate-key"
    assert issue.line == 3


def test_a_pool_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError) as caught:
        load_pool(path)
    assert [i.rule for i in caught.value.issues] == ["yaml.not-mapping"]


def test_missing_pool_file_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_pool(tmp_path / "nope.yaml")
    assert caught.value.exit_code == 2
    assert [i.rule for i in caught.value.issues] == ["file.missing"]
    assert caught.value.hint is not None and "ocsscale init" in caught.value.hint


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", (3, 2), "a [list] not closed with ']'"),
        ("a:\n  b: 1\n c: 2\n", (3, 2), "indentation does not line up"),
        ("a: *Secret42\n", (1, 4), "an alias (*name) with no anchor"),
        ("a: 'Secret42\n", (2, 1), "the file ends inside a quoted value"),
        ("[a, Secret42]]\n", (1, 14), "more after the end of the document"),
    ],
)
def test_syntax_errors_are_in_our_words(text: str, where: tuple[int, int], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, "f.yaml")
    (issue,) = caught.value.issues
    assert (issue.line, issue.column) == where
    assert issue.message.startswith(words)
    assert "Secret42" not in issue.render()
