"""Checks a PowerShell script against PowerShell 2.0 and .NET 3.5, with a real grammar.

`check_script(text)` parses `text` with tree-sitter-powershell and returns the
problems found (an empty list when there are none):
- a syntax error (an ERROR or MISSING node), with its line;
- a command that is neither a PowerShell 2.0 cmdlet, a function the script
  defines, nor an allowed program (ps20_allowlist.yaml);
- a .NET type (type literal, cast, `-is`, New-Object) or a static member
  `[Type]::Member` outside the list of .NET 3.5 types and members;
- a member used on an object (`$x.Member`) whose name is not in the list;
- a WMI class other than the listed ones; PowerShell 3.0 operators and
  automatic variables.

The object a member is used on has no static type in PowerShell, so instance
members are checked by name: a name is listed with the .NET 3.5 type that has
it. Any module that sends PowerShell to Windows can check its scripts with
this function.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_powershell
from ruamel.yaml import YAML

ALLOWLIST = Path(__file__).with_name("ps20_allowlist.yaml")


@dataclass(frozen=True)
class Allowed:
    cmdlets: frozenset[str]
    external: frozenset[str]
    accelerators: dict[str, str]
    types: dict[str, frozenset[str]]
    instance_members: frozenset[str]
    wmi_classes: frozenset[str]
    forbidden_operators: frozenset[str]
    forbidden_variables: frozenset[str]


@cache
def allowed() -> Allowed:
    data: dict[str, Any] = YAML(typ="safe").load(ALLOWLIST.read_text(encoding="utf-8"))
    return Allowed(
        cmdlets=frozenset(c.lower() for c in data["cmdlets"]),
        external=frozenset(e.lower() for e in data["external"]),
        accelerators={k.lower(): v for k, v in data["accelerators"].items()},
        types={t.lower(): frozenset(m.lower() for m in ms) for t, ms in data["types"].items()},
        instance_members=frozenset(m.lower() for m in data["instance_members"]),
        wmi_classes=frozenset(w.lower() for w in data["wmi_classes"]),
        forbidden_operators=frozenset(o.lower() for o in data["forbidden_operators"]),
        forbidden_variables=frozenset(v.lower() for v in data["forbidden_variables"]),
    )


@cache
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def _walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")


def _line(node: tree_sitter.Node) -> int:
    return node.start_point[0] + 1


def dotnet_type(name: str) -> str | None:
    """The allow-list's name of a type as a script writes it, or None when not allowed."""
    bare = name.strip().strip("[]").strip()
    while bare.endswith("[]"):  # arrays of an allowed type are allowed
        bare = bare[:-2]
    key = bare.lower()
    if key.startswith("system."):
        key = key[len("system.") :]
    rules = allowed()
    key = rules.accelerators.get(key, key).lower()
    return key if key in rules.types else None


def check_script(text: str) -> list[str]:
    rules = allowed()
    tree = _parser().parse(text.encode("utf-8"))
    problems: list[str] = []
    nodes = list(_walk(tree.root_node))
    functions = {
        _text(c).lower()
        for n in nodes
        if n.type == "function_statement"
        for c in n.children
        if c.type == "function_name"
    }
    for node in nodes:
        if node.is_error or node.type == "ERROR":
            problems.append(f"line {_line(node)}: syntax error near {_text(node)[:40]!r}")
        elif node.is_missing:
            problems.append(f"line {_line(node)}: syntax error: missing {node.type!r}")
        elif node.type == "command_name":
            problems += _command(node, rules, functions)
        elif node.type == "type_literal":
            spec = next((c for c in node.children if c.type == "type_spec"), None)
            name = _text(spec) if spec is not None else _text(node)
            if dotnet_type(name) is None:
                problems.append(f"line {_line(node)}: .NET type [{name}] is not in .NET 3.5")
        elif node.type == "member_name":
            problems += _member(node, rules)
        elif node.type == "variable":
            name = _text(node).lower().split(":", 1)[0]
            if name in rules.forbidden_variables:
                problems.append(f"line {_line(node)}: {_text(node)} is PowerShell 3.0 or later")
        elif _text(node).lower() in rules.forbidden_operators and node.child_count == 0:
            problems.append(f"line {_line(node)}: operator {_text(node)} is PowerShell 3.0+")
    return problems


def _command(node: tree_sitter.Node, rules: Allowed, functions: set[str]) -> list[str]:
    name = _text(node)
    key = name.lower()
    if key in functions or key in rules.cmdlets or key in rules.external:
        pass
    else:
        return [
            f"line {_line(node)}: command {name!r} is not a PowerShell 2.0 cmdlet,"
            " a function of the script or an allowed program"
        ]
    command = node.parent
    if command is None:
        return []
    elements = next((c for c in command.children if c.type == "command_elements"), None)
    arguments = [
        _text(c) for c in (elements.children if elements is not None else []) if c.is_named
    ]
    arguments = [a for a in arguments if a.strip()]
    problems = []
    if key == "new-object":
        type_name = next((a for a in arguments if not a.startswith("-")), None)
        if "-comobject" in (a.lower() for a in arguments):
            problems.append(f"line {_line(node)}: New-Object -ComObject is not allowed")
        elif type_name is not None and dotnet_type(type_name) is None:
            problems.append(f"line {_line(node)}: New-Object {type_name} is not in .NET 3.5")
    if key == "get-wmiobject":
        classes = [a for a in arguments if not a.startswith("-")]
        for wmi in classes[:1]:
            if wmi.strip("'\"").lower() not in rules.wmi_classes:
                problems.append(f"line {_line(node)}: WMI class {wmi} is not in the allow-list")
    return problems


def _member(node: tree_sitter.Node, rules: Allowed) -> list[str]:
    parent = node.parent
    if parent is None or parent.type not in ("member_access", "invokation_expression"):
        return []
    owner = parent.children[0]
    operator = next((c for c in parent.children if c.type in ("::", ".")), None)
    name = _text(node)
    if owner.type == "type_literal" and operator is not None and operator.type == "::":
        spec = next((c for c in owner.children if c.type == "type_spec"), None)
        type_key = dotnet_type(_text(spec) if spec is not None else _text(owner))
        if type_key is None:
            return []  # the type literal itself is reported
        if name.lower() not in rules.types[type_key]:
            return [f"line {_line(node)}: [{_text(spec or owner)}]::{name} is not in .NET 3.5"]
        return []
    if name.lower() not in rules.instance_members:
        return [f"line {_line(node)}: member .{name} is not in the .NET 3.5 allow-list"]
    return []
