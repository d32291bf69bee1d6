"""Configuration is refused at load with a message naming the queue (or agent)
and the problem."""

from __future__ import annotations

import re
from typing import Any

import pytest

from routing.engine import Router
from routing.errors import RoutingConfigError
from routing.model import AgentConfig, OfferCallback, Overflow, QueueConfig, Widen

GOOD = QueueConfig("general", "true")


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        (
            QueueConfig("billing", '"billing" in agent.skills and agent.skills.billing >='),
            "queue 'billing': expression: expected a value after '>=' at column 54 "
            "(found end of expression)",
        ),
        (
            QueueConfig("billing", "true", steps=(Widen(30, "agent.skills.billing >> 3"),)),
            "queue 'billing': step 1 (widen after 30 s): expression: expected a value after "
            "'>' at column 23 (found '>')",
        ),
        (
            QueueConfig("billing", "true", steps=(Overflow(120, "salez"),)),
            "queue 'billing': step 1 (overflow after 120 s): unknown queue 'salez'",
        ),
        (
            QueueConfig("billing", "true", steps=(Overflow(120, "billing"),)),
            "queue 'billing': step 1 (overflow after 120 s): a queue cannot overflow to itself",
        ),
        (
            QueueConfig("billing", "true", steps=(Widen(60, "true"), OfferCallback(30))),
            "queue 'billing': step 2 (callback after 30 s): steps must come in increasing order "
            "of time (the previous step is at 60 s)",
        ),
        (
            QueueConfig("billing", "true", steps=(Overflow(60, "general"), OfferCallback(90))),
            "queue 'billing': step 2 (callback after 90 s): comes after an overflow step and "
            "would never run",
        ),
        (
            QueueConfig("billing", "true", steps=(OfferCallback(0),)),
            "queue 'billing': step 1 (callback): after is 0 (must be more than 0 s)",
        ),
        (
            QueueConfig("billing", "true", steps=("later",)),  # type: ignore[arg-type]
            "queue 'billing': step 1 is 'later' (expected Widen, Overflow or OfferCallback)",
        ),
        (
            QueueConfig("billing", "true", strategy="best_skill"),
            "queue 'billing': strategy best_skill needs strategy_skill (the skill whose level "
            "decides)",
        ),
        (
            QueueConfig("billing", "true", strategy="random"),  # type: ignore[arg-type]
            "queue 'billing': unknown strategy 'random' (expected longest_idle, least_occupied, "
            "best_skill)",
        ),
        (
            QueueConfig("billing", "true", aging_per_second=-1),
            "queue 'billing': aging_per_second is -1 (must be 0 or more)",
        ),
        (
            QueueConfig("billing", "true", reservation_timeout_seconds=0),
            "queue 'billing': reservation_timeout_seconds is 0 (must be more than 0)",
        ),
        (
            QueueConfig("billing", "true", service_level_seconds=float("inf")),
            "queue 'billing': service_level_seconds is inf (expected a finite number)",
        ),
        (
            QueueConfig("billing", "true", wrap_up_seconds="10"),  # type: ignore[arg-type]
            "queue 'billing': wrap_up_seconds is '10' (expected a finite number)",
        ),
        (QueueConfig("", "true"), "a queue id must be a non-empty string (got '')"),
        (GOOD, "queue 'general' is defined twice"),
    ],
)
def test_bad_queue_configuration_is_refused_naming_the_queue(
    queue: QueueConfig, message: str
) -> None:
    with pytest.raises(RoutingConfigError) as error:
        Router([GOOD, queue])
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"capacity": {"voice": -1}},
            "agent 'ann': capacity for 'voice' is -1 (must be 0 or more)",
        ),
        (
            {"capacity": {"fax": 1}},
            "agent 'ann': unknown channel 'fax' in capacity (channels: voice, email, callback, "
            "chat)",
        ),
        (
            {"capacity": {"voice": 1.5}},
            "agent 'ann': capacity for 'voice' is 1.5 (expected a whole number)",
        ),
        ({"skills": {"billing": 0}}, "agent 'ann': skill 'billing' has level 0 (levels are 1-10)"),
        (
            {"skills": {"billing": True}},
            "agent 'ann': skill 'billing' has level True (levels are 1-10)",
        ),
        ({"languages": "en"}, "agent 'ann': languages must be a set of language codes"),
        ({"attributes": {"site": None}}, "agent 'ann': attribute 'site' has value None"),
        ({"auto_accept": "yes"}, "agent 'ann': auto_accept must be true or false"),
    ],
)
def test_bad_agent_configuration_is_refused_naming_the_agent(
    config: dict[str, Any], message: str
) -> None:
    router = Router([GOOD])
    with pytest.raises(RoutingConfigError, match=re.escape(message)):
        router.add_agent(AgentConfig("ann", **config), 0.0)
    assert router.agent_ids() == ()
    router.add_agent(AgentConfig("bob"), 0.0)
    with pytest.raises(RoutingConfigError, match=re.escape(message.replace("'ann'", "'bob'"))):
        router.update_agent("bob", now=0.0, **config)


def test_a_valid_configuration_loads() -> None:
    router = Router(
        [
            QueueConfig(
                "billing",
                '"billing" in agent.skills and agent.skills.billing >= 5 and '
                "task.language in agent.languages",
                steps=(
                    Widen(30, "agent.skills.billing >= 3 and task.language in agent.languages"),
                    OfferCallback(90),
                    Overflow(120, "general"),
                ),
                strategy="best_skill",
                strategy_skill="billing",
                aging_per_second=0.5,
                sticky_agent_seconds=15,
            ),
            GOOD,
        ]
    )
    assert router.queue_ids() == ("billing", "general")
