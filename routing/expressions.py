"""The target-expression language of queues: small, safe, parsed by hand.

    "billing" in agent.skills and agent.skills.billing >= 5
        and task.language in agent.languages

``parse(source)`` tokenizes and parses by recursive descent into an AST of
frozen nodes, then compiles it to nested Python closures. Nothing is ever
handed to ``eval``/``exec``; an expression can only read the attributes listed
below and compare them.

Grammar (keywords are case-insensitive, attribute names are not)::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := primary [ ("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") primary ]
    primary    := STRING | NUMBER | "true" | "false" | list | path | "(" expr ")"
    list       := "[" [ literal ("," literal)* ] "]"
    path       := ("agent" | "task") "." NAME [ "." (NAME | STRING) ]

Attributes (what the evaluated objects must provide, see ``AgentLike`` and
``TaskLike``):

    agent.id  agent.skills[.NAME]  agent.languages  agent.attributes[.NAME]
    agent.capacity[.CHANNEL]
    task.id  task.channel  task.queue  task.priority  task.customer_id  task.language
    task.skills[.NAME] (required skills -> minimum level)  task.attributes[.NAME]

Semantics:

* A missing attribute (a skill the agent lacks, an attribute the IVR did not
  collect, a task without a language) is *absent*. Every comparison involving
  an absent value is false (``==``, ``!=``, ``<``..., ``in`` and ``not in``
  alike); ``not (...)`` is an ordinary negation, so ``not (task.language ==
  "en")`` is true for a task without a language. Nothing ever raises.
  ``agent.capacity.X`` is 0 when the agent has no capacity for channel X.
* Values have kinds: string, number (int or float), boolean. ``==`` between
  different kinds is false (``true == 1`` is false; ``1 == 1.0`` is true) and
  ``!=`` is true; ``<`` ``<=`` ``>`` ``>=`` between different kinds are false.
* ``x in y`` is membership in a set (``agent.languages``), in the keys of a
  map (``agent.skills``, ``task.attributes``) or in a list literal; it is false
  when ``y`` is anything else (no substring search). It uses Python's own
  lookup, so there ``1`` and ``1.0`` (and ``true``) are the same key.
* A bare value used as a condition (``task.attributes.vip``) is true only if
  it is the boolean ``true``.

Errors (``ExpressionError``) give a 1-based column and say what was expected:
``expected a value after '>=' at column 37 (found end of expression)``.

For the router, ``plan(expression)`` splits the top-level ``and`` into the
parts it indexes differently: agent-only conjuncts (precomputed per agent),
task-only conjuncts (computed once per task), one *join* conjunct
(``task.P in agent.Q`` or ``task.P == agent.Q``) used to partition tasks and
agents by key, and the residual conjuncts evaluated per candidate pair.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Final, Protocol, Union

from routing.errors import ExpressionError

__all__ = [
    "ABSENT",
    "AGENT_ATTRIBUTES",
    "TASK_ATTRIBUTES",
    "AgentLike",
    "And",
    "Compare",
    "Cond",
    "Expression",
    "Getter",
    "Join",
    "ListLiteral",
    "Literal",
    "MatchPlan",
    "Node",
    "Not",
    "Or",
    "Path",
    "TaskLike",
    "parse",
    "plan",
    "tokenize",
]

Scalar = str | int | float | bool


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "absent"

    def __bool__(self) -> bool:
        return False


ABSENT: Final = _Absent()

Getter = Callable[[Any, Any], object]  # (agent, task) -> value (may be ABSENT)
Cond = Callable[[Any, Any], bool]  # (agent, task) -> bool


class AgentLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def skills(self) -> Mapping[str, int]: ...
    @property
    def languages(self) -> AbstractSet[str]: ...
    @property
    def attributes(self) -> Mapping[str, Scalar]: ...
    @property
    def capacity(self) -> Mapping[str, int]: ...


class TaskLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def queue_id(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def customer_id(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def required_skills(self) -> Mapping[str, int]: ...
    @property
    def attributes(self) -> Mapping[str, Scalar]: ...


# field -> (kind, Python attribute); kind: "scalar", "optional" (None = absent),
# "set", "map" (a key may follow), "capacity" (a map whose missing keys are 0)
AGENT_ATTRIBUTES: Final[Mapping[str, tuple[str, str]]] = {
    "id": ("scalar", "id"),
    "skills": ("map", "skills"),
    "languages": ("set", "languages"),
    "attributes": ("map", "attributes"),
    "capacity": ("capacity", "capacity"),
}
TASK_ATTRIBUTES: Final[Mapping[str, tuple[str, str]]] = {
    "id": ("scalar", "id"),
    "channel": ("scalar", "channel"),
    "queue": ("scalar", "queue_id"),
    "priority": ("scalar", "priority"),
    "customer_id": ("optional", "customer_id"),
    "language": ("optional", "language"),
    "skills": ("map", "required_skills"),
    "attributes": ("map", "attributes"),
}
_SCHEMA: Final = {"agent": AGENT_ATTRIBUTES, "task": TASK_ATTRIBUTES}

# -- tokens ---------------------------------------------------------------------

_KEYWORDS: Final = frozenset({"and", "or", "not", "in", "true", "false"})
_COMPARE_OPS: Final = frozenset({"==", "!=", "<", "<=", ">", ">="})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "str" "num" "name" "op" "(" ")" "[" "]" "," "." "end"
    value: object
    column: int  # 1-based
    text: str

    def describe(self) -> str:
        return "end of expression" if self.kind == "end" else f"'{self.text}'"

    def keyword(self) -> str | None:
        if self.kind == "name":
            low = str(self.value).lower()
            if low in _KEYWORDS:
                return low
        return None


def _is_name_start(ch: str) -> bool:
    return ch.isascii() and (ch.isalpha() or ch == "_")


def _is_name_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        col = i + 1
        if ch in " \t\r\n":
            i += 1
            continue
        if ch in "\"'":
            quote, j, chars = ch, i + 1, []
            while True:
                if j >= n:
                    raise ExpressionError(f"unterminated string starting at column {col}", col)
                c = source[j]
                if c == "\\" and j + 1 < n:
                    nxt = source[j + 1]
                    chars.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                    j += 2
                    continue
                if c == quote:
                    break
                chars.append(c)
                j += 1
            tokens.append(Token("str", "".join(chars), col, source[i : j + 1]))
            i = j + 1
            continue
        if ch.isdigit() or (ch == "-" and i + 1 < n and source[i + 1].isdigit()):
            j = i + 1
            while j < n and source[j].isdigit():
                j += 1
            is_float = False
            if j + 1 < n and source[j] == "." and source[j + 1].isdigit():
                is_float = True
                j += 1
                while j < n and source[j].isdigit():
                    j += 1
            if j < n and source[j] in "eE":
                k = j + 1
                if k < n and source[k] in "+-":
                    k += 1
                if k < n and source[k].isdigit():
                    is_float = True
                    j = k
                    while j < n and source[j].isdigit():
                        j += 1
            if j < n and (_is_name_char(source[j]) or source[j] == "."):
                end = j
                while end < n and (_is_name_char(source[end]) or source[end] == "."):
                    end += 1
                raise ExpressionError(f"malformed number '{source[i:end]}' at column {col}", col)
            text = source[i:j]
            value: object = float(text) if is_float else int(text)
            tokens.append(Token("num", value, col, text))
            i = j
            continue
        if _is_name_start(ch):
            j = i + 1
            while j < n and _is_name_char(source[j]):
                j += 1
            tokens.append(Token("name", source[i:j], col, source[i:j]))
            i = j
            continue
        two = source[i : i + 2]
        if two in _COMPARE_OPS:
            tokens.append(Token("op", two, col, two))
            i += 2
            continue
        if ch in "<>":
            tokens.append(Token("op", ch, col, ch))
            i += 1
            continue
        if ch == "=":
            raise ExpressionError(f"unexpected '=' at column {col} (did you mean '=='?)", col)
        if ch in "()[],.":
            tokens.append(Token(ch, ch, col, ch))
            i += 1
            continue
        raise ExpressionError(f"unexpected character {ch!r} at column {col}", col)
    tokens.append(Token("end", None, n + 1, ""))
    return tokens


# -- AST ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: Scalar


@dataclass(frozen=True, slots=True)
class ListLiteral:
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Path:
    root: str  # "agent" | "task"
    field: str
    key: str | None
    column: int

    @property
    def text(self) -> str:
        base = f"{self.root}.{self.field}"
        return base if self.key is None else f"{base}.{self.key}"

    @property
    def kind(self) -> str:
        kind = _SCHEMA[self.root][self.field][0]
        if self.key is not None:
            return "scalar"
        return kind


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # == != < <= > >= in "not in"
    left: Node
    right: Node
    column: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Union[Literal, ListLiteral, Path, Compare, Not, And, Or]  # noqa: UP007


def _roots(node: Node) -> frozenset[str]:
    if isinstance(node, Path):
        return frozenset((node.root,))
    if isinstance(node, Compare):
        return _roots(node.left) | _roots(node.right)
    if isinstance(node, Not):
        return _roots(node.operand)
    if isinstance(node, And | Or):
        out: frozenset[str] = frozenset()
        for op in node.operands:
            out |= _roots(op)
        return out
    return frozenset()


def _task_paths(node: Node) -> list[Path]:
    if isinstance(node, Path):
        return [node] if node.root == "task" else []
    if isinstance(node, Compare):
        return _task_paths(node.left) + _task_paths(node.right)
    if isinstance(node, Not):
        return _task_paths(node.operand)
    if isinstance(node, And | Or):
        return [p for op in node.operands for p in _task_paths(op)]
    return []


# -- parser ---------------------------------------------------------------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.pos = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "end":
            self.pos += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression", 1)
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != "end":
            if tok.kind == "op" or tok.keyword() == "in":
                raise ExpressionError(
                    f"comparisons cannot be chained: unexpected {tok.describe()} "
                    f"at column {tok.column} (join them with 'and')",
                    tok.column,
                )
            raise ExpressionError(
                f"unexpected {tok.describe()} at column {tok.column} "
                "(expected 'and', 'or' or the end of the expression)",
                tok.column,
            )
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.peek().keyword() == "or":
            op = self.take()
            items.append(self.parse_and(after=op))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self, after: Token | None = None) -> Node:
        items = [self.parse_not(after)]
        while self.peek().keyword() == "and":
            op = self.take()
            items.append(self.parse_not(op))
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_not(self, after: Token | None = None) -> Node:
        tok = self.peek()
        if tok.keyword() == "not":
            self.take()
            return Not(self.parse_not(tok))
        return self.parse_comparison(after)

    def parse_comparison(self, after: Token | None) -> Node:
        left = self.parse_primary(after)
        tok = self.peek()
        op: str | None = None
        if tok.kind == "op":
            op = str(tok.value)
            self.take()
        elif tok.keyword() == "in":
            op = "in"
            self.take()
        elif tok.keyword() == "not" and self.tokens[self.pos + 1].keyword() == "in":
            op = "not in"
            self.take()
            self.take()
        if op is None:
            return left
        right = self.parse_primary(tok if op != "not in" else Token("op", op, 0, "not in"))
        return Compare(op, left, right, tok.column)

    def _expected_value(self, after: Token | None, found: Token) -> ExpressionError:
        where = f" after '{after.text}'" if after is not None else ""
        return ExpressionError(
            f"expected a value{where} at column {found.column} (found {found.describe()})",
            found.column,
        )

    def parse_primary(self, after: Token | None) -> Node:
        tok = self.peek()
        if tok.kind in ("str", "num"):
            self.take()
            return Literal(tok.value)  # type: ignore[arg-type]
        if tok.kind == "(":
            self.take()
            if self.peek().kind == ")":
                raise self._expected_value(tok, self.peek())
            inner = self.parse_or()
            close = self.peek()
            if close.kind != ")":
                raise ExpressionError(
                    f"expected ')' at column {close.column} to close the '(' at column "
                    f"{tok.column} (found {close.describe()})",
                    close.column,
                )
            self.take()
            return inner
        if tok.kind == "[":
            return self.parse_list()
        if tok.kind == "name":
            kw = tok.keyword()
            if kw in ("true", "false"):
                self.take()
                return Literal(kw == "true")
            if kw is not None:
                raise self._expected_value(after, tok)
            if tok.value in _SCHEMA:
                return self.parse_path()
            raise ExpressionError(
                f"unknown name '{tok.text}' at column {tok.column} (expected agent.<attribute>, "
                "task.<attribute>, a string, a number, true or false)",
                tok.column,
            )
        raise self._expected_value(after, tok)

    def parse_list(self) -> Node:
        open_tok = self.take()
        values: list[Scalar] = []
        if self.peek().kind == "]":
            self.take()
            return ListLiteral(())
        while True:
            tok = self.peek()
            kw = tok.keyword()
            if tok.kind in ("str", "num"):
                values.append(tok.value)  # type: ignore[arg-type]
            elif kw in ("true", "false"):
                values.append(kw == "true")
            else:
                raise ExpressionError(
                    f"expected a string, number, true or false in the list at column "
                    f"{tok.column} (found {tok.describe()})",
                    tok.column,
                )
            self.take()
            sep = self.take()
            if sep.kind == "]":
                return ListLiteral(tuple(values))
            if sep.kind != ",":
                raise ExpressionError(
                    f"expected ',' or ']' at column {sep.column} to continue the list opened "
                    f"at column {open_tok.column} (found {sep.describe()})",
                    sep.column,
                )

    def parse_path(self) -> Node:
        root_tok = self.take()
        root = str(root_tok.value)
        schema = _SCHEMA[root]
        names = ", ".join(schema)
        dot = self.peek()
        if dot.kind != ".":
            raise ExpressionError(
                f"expected '.' and an attribute after '{root}' at column {dot.column} "
                f"({root} has {names})",
                dot.column,
            )
        self.take()
        field_tok = self.take()
        if field_tok.kind != "name":
            raise ExpressionError(
                f"expected an attribute name after '{root}.' at column {field_tok.column} "
                f"({root} has {names})",
                field_tok.column,
            )
        field = str(field_tok.value)
        if field not in schema:
            raise ExpressionError(
                f"unknown attribute '{root}.{field}' at column {root_tok.column} "
                f"({root} has {names})",
                root_tok.column,
            )
        kind = schema[field][0]
        key: str | None = None
        if self.peek().kind == ".":
            dot = self.take()
            if kind not in ("map", "capacity"):
                raise ExpressionError(
                    f"'{root}.{field}' has no attributes: unexpected '.' at column {dot.column}",
                    dot.column,
                )
            key_tok = self.take()
            if key_tok.kind not in ("name", "str"):
                raise ExpressionError(
                    f"expected a name after '{root}.{field}.' at column {key_tok.column} "
                    f"(found {key_tok.describe()})",
                    key_tok.column,
                )
            key = str(key_tok.value)
            if self.peek().kind == ".":
                extra = self.peek()
                raise ExpressionError(
                    f"'{root}.{field}.{key}' has no attributes: unexpected '.' at column "
                    f"{extra.column}",
                    extra.column,
                )
        return Path(root, field, key, root_tok.column)


# -- compilation ----------------------------------------------------------------

_KIND: Final[dict[type, type]] = {bool: bool, int: float, float: float, str: str}


def _eq(x: object, y: object) -> bool:
    if x is ABSENT or y is ABSENT:
        return False
    tx, ty = type(x), type(y)
    if tx is ty:
        return x == y
    return _KIND.get(tx, tx) is _KIND.get(ty, ty) and x == y


def _ordered(x: object, y: object) -> bool:
    tx, ty = type(x), type(y)
    if tx is str:
        return ty is str
    return (tx is int or tx is float) and (ty is int or ty is float)


def _member(x: object, c: object) -> bool:
    if x is ABSENT:
        return False
    tc = type(c)
    if tc is frozenset or tc is set or tc is dict or tc is tuple or tc is list:
        try:
            return x in c  # type: ignore[operator]
        except TypeError:
            return False
    if isinstance(c, Mapping | AbstractSet | Sequence) and not isinstance(c, str | bytes):
        try:
            return x in c
        except TypeError:
            return False
    return False


def _path_getter(path: Path) -> Getter:
    attr = _SCHEMA[path.root][path.field][1]
    key = path.key
    if path.root == "agent":
        if key is None:
            if attr == "id":
                return lambda a, t: a.id
            if attr == "skills":
                return lambda a, t: a.skills
            if attr == "languages":
                return lambda a, t: a.languages
            if attr == "attributes":
                return lambda a, t: a.attributes
            return lambda a, t: a.capacity
        if attr == "skills":
            return lambda a, t: a.skills.get(key, ABSENT)
        if attr == "attributes":
            return lambda a, t: a.attributes.get(key, ABSENT)
        return lambda a, t: a.capacity.get(key, 0)
    if key is None:
        if attr == "id":
            return lambda a, t: t.id
        if attr == "channel":
            return lambda a, t: t.channel
        if attr == "queue_id":
            return lambda a, t: t.queue_id
        if attr == "priority":
            return lambda a, t: t.priority
        if attr == "customer_id":
            return lambda a, t: ABSENT if t.customer_id is None else t.customer_id
        if attr == "language":
            return lambda a, t: ABSENT if t.language is None else t.language
        if attr == "required_skills":
            return lambda a, t: t.required_skills
        return lambda a, t: t.attributes
    if attr == "required_skills":
        return lambda a, t: t.required_skills.get(key, ABSENT)
    return lambda a, t: t.attributes.get(key, ABSENT)


def _compile_value(node: Node) -> Getter:
    if isinstance(node, Literal):
        value = node.value
        return lambda a, t: value
    if isinstance(node, ListLiteral):
        members: object
        try:
            members = frozenset(node.values)
        except TypeError:  # pragma: no cover - literals are always hashable
            members = node.values
        return lambda a, t: members
    if isinstance(node, Path):
        return _path_getter(node)
    return _compile_cond(node)


def _compile_compare(node: Compare) -> Cond:
    lf = _compile_value(node.left)
    rf = _compile_value(node.right)
    op = node.op
    if op == "==":
        if isinstance(node.right, Literal) and type(node.right.value) is str:
            sval = node.right.value

            def eq_str(a: Any, t: Any) -> bool:
                x = lf(a, t)
                return type(x) is str and x == sval

            return eq_str
        return lambda a, t: _eq(lf(a, t), rf(a, t))
    if op == "!=":

        def ne(a: Any, t: Any) -> bool:
            x, y = lf(a, t), rf(a, t)
            return x is not ABSENT and y is not ABSENT and not _eq(x, y)

        return ne
    if op in ("<", "<=", ">", ">="):
        if isinstance(node.right, Literal) and type(node.right.value) in (int, float):
            nval: Any = node.right.value

            def num_cmp(a: Any, t: Any) -> bool:
                x: Any = lf(a, t)
                tx = type(x)
                if tx is not int and tx is not float:
                    return False
                if op == ">=":
                    return bool(x >= nval)
                if op == ">":
                    return bool(x > nval)
                if op == "<=":
                    return bool(x <= nval)
                return bool(x < nval)

            return num_cmp

        def cmp(a: Any, t: Any) -> bool:
            x: Any = lf(a, t)
            y: Any = rf(a, t)
            if not _ordered(x, y):
                return False
            if op == ">=":
                return bool(x >= y)
            if op == ">":
                return bool(x > y)
            if op == "<=":
                return bool(x <= y)
            return bool(x < y)

        return cmp
    if op == "in":
        return lambda a, t: _member(lf(a, t), rf(a, t))

    def not_in(a: Any, t: Any) -> bool:
        x, c = lf(a, t), rf(a, t)
        if x is ABSENT or c is ABSENT:
            return False
        return not _member(x, c)

    return not_in


def _compile_cond(node: Node) -> Cond:
    if isinstance(node, Compare):
        return _compile_compare(node)
    if isinstance(node, Not):
        inner = _compile_cond(node.operand)
        return lambda a, t: not inner(a, t)
    if isinstance(node, And):
        return _all([_compile_cond(op) for op in node.operands])
    if isinstance(node, Or):
        conds = [_compile_cond(op) for op in node.operands]
        if len(conds) == 2:
            c0, c1 = conds
            return lambda a, t: c0(a, t) or c1(a, t)

        def any_of(a: Any, t: Any) -> bool:
            for c in conds:
                if c(a, t):
                    return True
            return False

        return any_of
    getter = _compile_value(node)
    return lambda a, t: getter(a, t) is True


def _all(conds: Sequence[Cond]) -> Cond:
    if len(conds) == 1:
        return conds[0]
    if len(conds) == 2:
        c0, c1 = conds
        return lambda a, t: c0(a, t) and c1(a, t)
    items = tuple(conds)

    def all_of(a: Any, t: Any) -> bool:
        for c in items:
            if not c(a, t):
                return False
        return True

    return all_of


# -- public ---------------------------------------------------------------------


class Expression:
    """A parsed expression. ``matches(agent, task)`` evaluates it."""

    __slots__ = ("_cond", "ast", "roots", "source")

    def __init__(self, source: str, ast: Node) -> None:
        self.source = source
        self.ast = ast
        self.roots = _roots(ast)
        self._cond = _compile_cond(ast)

    def matches(self, agent: Any, task: Any) -> bool:
        return self._cond(agent, task)

    def conjuncts(self) -> tuple[Node, ...]:
        return self.ast.operands if isinstance(self.ast, And) else (self.ast,)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def parse(source: str) -> Expression:
    """Parse ``source``; raise ``ExpressionError`` (with a column) if it is not valid."""
    return Expression(source, _Parser(source).parse())


@dataclass(frozen=True, slots=True)
class Join:
    """``task.P in agent.Q`` / ``task.P == agent.Q``: tasks and agents meet by key."""

    text: str
    task_key: Callable[[Any], Hashable]  # task -> key, or ABSENT (never matches)
    agent_keys: Callable[[Any], frozenset[Hashable]]  # agent -> the keys it matches


@dataclass(frozen=True, slots=True)
class MatchPlan:
    """An expression split for indexing. The expression holds for (agent, task)
    exactly when every present part holds: ``agent_only(agent, None)``,
    ``task_only(None, task)``, ``join.task_key(task) in join.agent_keys(agent)``
    and ``residual(agent, task)``. The residual reads the task only through
    ``residual_task_paths`` (so tasks equal on those paths are equivalent)."""

    expression: Expression
    agent_only: Cond | None
    task_only: Cond | None
    join: Join | None
    residual: Cond | None
    residual_task_paths: tuple[Getter, ...]


def _eq_key(v: object) -> Hashable:
    if v is ABSENT:
        return ABSENT
    return (_KIND.get(type(v), type(v)), v)


def _as_join(node: Node) -> Join | None:
    if not isinstance(node, Compare) or node.op not in ("in", "=="):
        return None
    left, right = node.left, node.right
    if node.op == "==" and isinstance(left, Path) and left.root == "agent":
        left, right = right, left
    if not (isinstance(left, Path) and left.root == "task" and left.kind in ("scalar", "optional")):
        return None
    if not (isinstance(right, Path) and right.root == "agent"):
        return None
    tget = _path_getter(left)
    aget = _path_getter(right)
    text = f"{left.text} {node.op} {right.text}"
    if node.op == "in":
        if right.kind not in ("map", "set", "capacity"):
            return None

        def in_keys(agent: Any) -> frozenset[Hashable]:
            c = aget(agent, None)
            if isinstance(c, Mapping | AbstractSet | list | tuple):
                try:
                    return frozenset(c)
                except TypeError:
                    return frozenset()
            return frozenset()

        def in_key(task: Any) -> Hashable:
            v = tget(None, task)
            try:
                hash(v)
            except TypeError:
                return ABSENT
            return v

        return Join(text, in_key, in_keys)
    if right.kind not in ("scalar", "optional"):
        return None

    def eq_keys(agent: Any) -> frozenset[Hashable]:
        v = aget(agent, None)
        return frozenset() if v is ABSENT else frozenset((_eq_key(v),))

    return Join(text, lambda task: _eq_key(tget(None, task)), eq_keys)


def plan(expression: Expression) -> MatchPlan:
    agent_only: list[Node] = []
    task_only: list[Node] = []
    residual: list[Node] = []
    join: Join | None = None
    for node in expression.conjuncts():
        roots = _roots(node)
        if "task" not in roots:
            agent_only.append(node)
        elif "agent" not in roots:
            task_only.append(node)
        else:
            candidate = _as_join(node) if join is None else None
            if candidate is not None:
                join = candidate
            else:
                residual.append(node)
    paths: dict[str, Getter] = {}
    for node in residual:
        for path in _task_paths(node):
            paths.setdefault(path.text, _path_getter(path))

    def both(nodes: list[Node]) -> Cond | None:
        return _all([_compile_cond(n) for n in nodes]) if nodes else None

    return MatchPlan(
        expression=expression,
        agent_only=both(agent_only),
        task_only=both(task_only),
        join=join,
        residual=both(residual),
        residual_task_paths=tuple(paths.values()),
    )
