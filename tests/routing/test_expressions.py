"""The target-expression language: parsing (with exact error messages),
semantics (absent values, kinds, membership) and the split the router indexes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from routing.errors import ExpressionError
from routing.expressions import ABSENT, parse, plan, tokenize


@dataclass
class A:
    id: str = "a1"
    skills: dict[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    attributes: dict[str, Any] = field(default_factory=dict)
    capacity: dict[str, int] = field(default_factory=dict)


@dataclass
class T:
    id: str = "t1"
    channel: str = "voice"
    queue_id: str = "billing"
    priority: int = 0
    customer_id: str | None = None
    language: str | None = None
    required_skills: dict[str, int] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


BRIEF = (
    '"billing" in agent.skills and agent.skills.billing >= 5 and task.language in agent.languages'
)


def holds(source: str, agent: A | None = None, task: T | None = None) -> bool:
    return parse(source).matches(agent or A(), task or T())


def test_the_example_from_the_issue() -> None:
    good = A(skills={"billing": 7}, languages=frozenset({"en", "fr"}))
    assert holds(BRIEF, good, T(language="fr"))
    assert not holds(BRIEF, good, T(language="de"))
    assert not holds(BRIEF, A(skills={"billing": 4}, languages=frozenset({"en"})), T(language="en"))
    assert not holds(BRIEF, A(languages=frozenset({"en"})), T(language="en"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("true", True),
        ("false", False),
        ("TRUE and not FALSE", True),
        ("1 == 1.0", True),
        ("true == 1", False),
        ("true != 1", True),
        ('"a" < "b"', True),
        ('"a" < 1', False),
        ("2 >= 2 and 2 <= 2 and 1 < 2 and 3 > 2", True),
        ("-1 < 0", True),
        ("1e3 == 1000", True),
        ('"en" in ["en", "fr"]', True),
        ('"de" not in ["en", "fr"]', True),
        ("1 in []", False),
        ('"a" in "abc"', False),  # no substring search
        ("not (1 == 2) or false", True),
        ("true or false and false", True),  # and binds tighter
        ("(true or false) and false", False),
        ("'it\\'s' == \"it's\"", True),
    ],
)
def test_literals_and_operators(source: str, expected: bool) -> None:
    assert holds(source) is expected


def test_agent_and_task_attributes() -> None:
    agent = A(
        id="ann",
        skills={"billing": 6, "tier-2": 1},
        languages=frozenset({"en"}),
        attributes={"site": "north", "senior": True},
        capacity={"voice": 1},
    )
    task = T(
        id="t9",
        channel="email",
        queue_id="billing",
        priority=4,
        customer_id="c1",
        language="en",
        required_skills={"billing": 3},
        attributes={"vip": True, "segment": "smb", "amount": 120.5},
    )
    for source in [
        'agent.id == "ann"',
        "agent.skills.billing == 6",
        'agent.skills."tier-2" == 1',
        '"tier-2" in agent.skills',
        '"en" in agent.languages',
        'agent.attributes.site == "north"',
        "agent.attributes.senior",
        "agent.capacity.voice == 1 and agent.capacity.email == 0",
        'task.id == "t9" and task.channel == "email" and task.queue == "billing"',
        "task.priority > 3",
        'task.customer_id == "c1" and task.language == "en"',
        "task.skills.billing == 3",
        '"billing" in task.skills',
        "task.attributes.vip",
        'task.attributes.segment in ["smb", "consumer"]',
        "task.attributes.amount > 100",
        '"vip" in task.attributes',
        "agent.skills.billing >= task.skills.billing",
    ]:
        assert holds(source, agent, task), source


def test_a_missing_attribute_is_absent_and_every_comparison_with_it_is_false() -> None:
    agent, task = A(), T()
    for source in [
        "agent.skills.billing >= 5",
        "agent.skills.billing < 5",
        "agent.skills.billing == 0",
        "agent.skills.billing != 0",
        "task.language in agent.languages",
        "task.language not in agent.languages",
        'task.language == "en"',
        'task.language != "en"',
        "task.attributes.vip == false",
        "task.attributes.vip",
        '"x" in agent.attributes.missing',
        '"x" not in agent.attributes.missing',
    ]:
        assert not holds(source, agent, task), source
    assert holds('not (task.language == "en")', agent, task)
    assert holds("not task.attributes.vip", agent, task)


def test_only_the_boolean_true_counts_as_a_condition() -> None:
    assert not holds("task.attributes.flag", task=T(attributes={"flag": 1}))
    assert not holds("task.attributes.flag", task=T(attributes={"flag": "true"}))
    assert holds("task.attributes.flag", task=T(attributes={"flag": True}))


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("", "empty expression", 1),
        ("   ", "empty expression", 1),
        (
            "agent.skills.billing >=",
            "expected a value after '>=' at column 24 (found end of expression)",
            24,
        ),
        (
            "agent.skills.billing >= and true",
            "expected a value after '>=' at column 25 (found 'and')",
            25,
        ),
        ("true and", "expected a value after 'and' at column 9 (found end of expression)", 9),
        ("not", "expected a value after 'not' at column 4 (found end of expression)", 4),
        ("or true", "expected a value at column 1 (found 'or')", 1),
        (
            "(true or false",
            "expected ')' at column 15 to close the '(' at column 1 (found end of expression)",
            15,
        ),
        ("()", "expected a value after '(' at column 2 (found ')')", 2),
        (
            "true)",
            "unexpected ')' at column 5 (expected 'and', 'or' or the end of the expression)",
            5,
        ),
        (
            "true true",
            "unexpected 'true' at column 6 (expected 'and', 'or' or the end of the expression)",
            6,
        ),
        (
            "agent.skills.a == 1 == 2",
            "comparisons cannot be chained: unexpected '==' at column 21 (join them with 'and')",
            21,
        ),
        ("agent.id = 'x'", "unexpected '=' at column 10 (did you mean '=='?)", 10),
        ("agent.id == 'x", "unterminated string starting at column 13", 13),
        ("agent.id $ 1", "unexpected character '$' at column 10", 10),
        ("12abc == 1", "malformed number '12abc' at column 1", 1),
        (
            "agnt.skills.x == 1",
            "unknown name 'agnt' at column 1 (expected agent.<attribute>, task.<attribute>, "
            "a string, a number, true or false)",
            1,
        ),
        (
            "agent.skil.x == 1",
            "unknown attribute 'agent.skil' at column 1 "
            "(agent has id, skills, languages, attributes, capacity)",
            1,
        ),
        (
            "task == 1",
            "expected '.' and an attribute after 'task' at column 6 (task has id, channel, "
            "queue, priority, customer_id, language, skills, attributes)",
            6,
        ),
        (
            "agent.languages.en",
            "'agent.languages' has no attributes: unexpected '.' at column 16",
            16,
        ),
        (
            "agent.skills.a.b == 1",
            "'agent.skills.a' has no attributes: unexpected '.' at column 15",
            15,
        ),
        (
            "agent.skills. == 1",
            "expected a name after 'agent.skills.' at column 15 (found '==')",
            15,
        ),
        (
            '"x" in ["a" "b"]',
            "expected ',' or ']' at column 13 to continue the list opened at column 8 "
            "(found '\"b\"')",
            13,
        ),
        (
            '"x" in [agent.id]',
            "expected a string, number, true or false in the list at column 9 (found 'agent')",
            9,
        ),
    ],
)
def test_bad_expressions_say_where_and_what_was_expected(
    source: str, message: str, column: int
) -> None:
    with pytest.raises(ExpressionError) as error:
        parse(source)
    assert str(error.value) == message
    assert error.value.column == column


def test_the_language_cannot_reach_python() -> None:
    for source in [
        "__import__('os').system('true')",
        "agent.__class__ == 1",
        "task.attributes.__class__",  # a key, looked up in the map: absent
        "agent.skills.get('x') == 1",
    ]:
        try:
            expr = parse(source)
        except ExpressionError:
            continue
        assert expr.matches(A(), T()) is False


def test_tokens_carry_columns() -> None:
    tokens = tokenize('agent.skills.x >= 5 and "y"')
    assert [(t.kind, t.column) for t in tokens] == [
        ("name", 1),
        (".", 6),
        ("name", 7),
        (".", 13),
        ("name", 14),
        ("op", 16),
        ("num", 19),
        ("name", 21),
        ("str", 25),
        ("end", 28),
    ]


def test_plan_splits_the_target_for_indexing() -> None:
    p = plan(
        parse(
            '"billing" in agent.skills and agent.skills.billing >= 5 and '
            'task.language in agent.languages and task.channel == "voice" and '
            "(task.attributes.vip == false or agent.skills.billing >= 8)"
        )
    )
    assert p.agent_only is not None and p.task_only is not None and p.residual is not None
    assert p.join is not None and p.join.text == "task.language in agent.languages"
    agent = A(skills={"billing": 6}, languages=frozenset({"en", "fr"}))
    assert p.agent_only(agent, None)
    assert p.join.agent_keys(agent) == {"en", "fr"}
    assert p.join.task_key(T(language="fr")) == "fr"
    assert p.join.task_key(T()) is ABSENT
    assert p.task_only(None, T(channel="voice")) and not p.task_only(None, T(channel="email"))
    assert [g(None, T(attributes={"vip": True})) for g in p.residual_task_paths] == [True]


def test_equality_join_keys_respect_kinds() -> None:
    p = plan(parse("agent.attributes.team == task.attributes.team"))
    assert p.join is not None
    assert p.join.task_key(T(attributes={"team": 1})) in p.join.agent_keys(
        A(attributes={"team": 1.0})
    )
    assert p.join.task_key(T(attributes={"team": True})) not in p.join.agent_keys(
        A(attributes={"team": 1})
    )
    assert p.join.agent_keys(A()) == frozenset()


def test_plan_agrees_with_the_whole_expression() -> None:
    source = (
        "agent.skills.s >= 3 and task.language in agent.languages and "
        "agent.skills.s >= task.attributes.min and task.priority >= 0"
    )
    expr, p = parse(source), plan(parse(source))
    agents = [
        A(skills={"s": n}, languages=frozenset(ls))
        for n in (1, 3, 6)
        for ls in ({"en"}, {"fr", "en"}, set())
    ]
    tasks = [
        T(language=lang, attributes=attrs)
        for lang in ("en", "fr", None)
        for attrs in ({"min": 2}, {"min": 5}, {})
    ]
    for a in agents:
        for t in tasks:
            split = (
                (p.agent_only is None or p.agent_only(a, None))
                and (p.task_only is None or p.task_only(None, t))
                and (p.join is None or p.join.task_key(t) in p.join.agent_keys(a))
                and (p.residual is None or p.residual(a, t))
            )
            assert split == expr.matches(a, t)
