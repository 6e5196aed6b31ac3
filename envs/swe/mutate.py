"""SWE-smith-style bug injection with :mod:`ast`: small, local, realistic mutations of real code.

Each :class:`Mutation` rewrites one node on one line (or removes one branch) and splices the new
text into the original source, so the diff is as small as a human's typo and the rest of the
file keeps its formatting and comments.

===============  ==============================================================================
kind             change
===============  ==============================================================================
compare_flip     ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``, ``in`` <-> ``not in``,
                 ``is`` <-> ``is not``
binop_flip       ``+`` <-> ``-``, ``*`` -> ``+``, ``//`` -> ``/``, ``%`` -> ``//``
boolop_flip      ``and`` <-> ``or``
off_by_one       an integer literal ``n`` -> ``n + 1`` (or ``n - 1``)
negate_if        ``if cond:`` -> ``if not cond:``
swap_args        the first two positional arguments of a call swapped
remove_else      the ``else:`` branch of an ``if`` deleted
remove_guard     an ``if`` without ``else`` whose body only returns/raises/continues deleted
===============  ==============================================================================
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from turngym.envs.swe.diff_analysis import parse_python

__all__ = ["Mutation", "find_mutations", "apply_mutation"]

_COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BINOP = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Add,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
}


@dataclass(frozen=True)
class Mutation:
    """One bug: replace lines ``[first, last]`` (1-based, inclusive) of a file by ``text``."""

    kind: str
    function: str
    first: int
    last: int
    text: str  # the replacement lines (may be empty: lines deleted)


def _line_splice(lines: list[str], node: ast.AST, replacement: ast.AST) -> str | None:
    """The node's line with the node's source replaced by ``ast.unparse(replacement)``."""
    if node.lineno != node.end_lineno:
        return None
    line = lines[node.lineno - 1]
    encoded = line.encode()
    new = ast.unparse(replacement)
    return encoded[: node.col_offset].decode() + new + encoded[node.end_col_offset :].decode()


def _expression_mutations(node: ast.AST) -> list[tuple[str, ast.AST]]:
    out: list[tuple[str, ast.AST]] = []
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        out.append(
            (
                "compare_flip",
                ast.Compare(node.left, [_COMPARE[type(node.ops[0])]()], node.comparators),
            )
        )
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP:
        if not (isinstance(node.op, ast.Add) and _is_str(node)):
            out.append(("binop_flip", ast.BinOp(node.left, _BINOP[type(node.op)](), node.right)))
    elif isinstance(node, ast.BoolOp):
        out.append(
            (
                "boolop_flip",
                ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values),
            )
        )
    elif isinstance(node, ast.Constant) and type(node.value) is int and 0 <= node.value <= 8:
        out.append(
            ("off_by_one", ast.Constant(node.value + 1 if node.value < 2 else node.value - 1))
        )
    elif (
        isinstance(node, ast.Call)
        and len(node.args) >= 2
        and not any(isinstance(a, ast.Starred) for a in node.args[:2])
    ):
        if ast.dump(node.args[0]) != ast.dump(node.args[1]):
            out.append(
                (
                    "swap_args",
                    ast.Call(
                        node.func, [node.args[1], node.args[0], *node.args[2:]], node.keywords
                    ),
                )
            )
    return out


def _is_str(node: ast.BinOp) -> bool:
    return any(
        isinstance(side, (ast.Constant, ast.JoinedStr))
        and isinstance(getattr(side, "value", ""), str)
        for side in (node.left, node.right)
    )


def find_mutations(source: str) -> list[Mutation]:
    """Every candidate mutation inside the functions of ``source`` (deterministic order)."""
    tree = parse_python(source)
    lines = source.splitlines()
    found: list[Mutation] = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if node is function:
                continue
            for kind, replacement in _expression_mutations(node):
                text = _line_splice(lines, node, replacement)
                if text is not None:
                    found.append(Mutation(kind, function.name, node.lineno, node.lineno, text))
            if isinstance(node, ast.If):
                found.extend(_branch_mutations(function.name, node, lines))
    unique = {(m.first, m.last, m.text): m for m in found}
    return sorted(unique.values(), key=lambda m: (m.first, m.kind, m.text))


def _branch_mutations(function: str, node: ast.If, lines: list[str]) -> list[Mutation]:
    out = []
    header = lines[node.lineno - 1]
    test = node.test
    if test.lineno == test.end_lineno == node.lineno and header.rstrip().endswith(":"):
        negated = ast.UnaryOp(ast.Not(), test)
        text = _line_splice(lines, test, negated)
        if text is not None:
            out.append(Mutation("negate_if", function, node.lineno, node.lineno, text))
    if node.orelse and not (len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If)):
        else_line = node.orelse[0].lineno - 1
        if lines[else_line - 1].strip() == "else:":
            out.append(Mutation("remove_else", function, else_line, node.orelse[-1].end_lineno, ""))
    elif not node.orelse and all(
        isinstance(s, (ast.Return, ast.Raise, ast.Continue)) for s in node.body
    ):
        if not lines[node.lineno - 1].lstrip().startswith("elif"):
            out.append(Mutation("remove_guard", function, node.lineno, node.end_lineno, ""))
    return out


def apply_mutation(source: str, mutation: Mutation) -> str | None:
    """``source`` with the mutation applied, or None when the result does not compile."""
    lines = source.splitlines(keepends=True)
    ending = "\n" if mutation.text else ""
    new = (
        lines[: mutation.first - 1]
        + ([mutation.text + ending] if mutation.text else [])
        + lines[mutation.last :]
    )
    result = "".join(new)
    try:
        compile(result, "<mutated>", "exec")
    except SyntaxError:
        return None
    return result if result != source else None
