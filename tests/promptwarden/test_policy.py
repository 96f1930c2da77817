from datetime import UTC, datetime, timedelta

import pytest

from promptwarden.policy import (
    ActionPlan,
    Strike,
    StrikePolicy,
    plan_actions,
    strike_detail,
    timeout_to_lift,
)
from promptwarden.screening.decision import Decision, Severity, Verdict

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def decision(verdict: Verdict, severity: Severity = Severity.MEDIUM) -> Decision:
    return Decision(prompt="p", verdict=verdict, severity=severity, categories=("sexual",))


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (Verdict.ALLOW, ActionPlan(Verdict.ALLOW)),
        (Verdict.REMIND, ActionPlan(Verdict.REMIND, record=True, privacy_notice=True)),
        (Verdict.REVIEW, ActionPlan(Verdict.REVIEW, record=True, modlog=True)),
        (
            Verdict.WARN,
            ActionPlan(Verdict.WARN, record=True, warn_member=True, modlog=True, strike_points=1),
        ),
        (
            Verdict.BLOCK,
            ActionPlan(
                Verdict.BLOCK,
                record=True,
                delete=True,
                warn_member=True,
                modlog=True,
                strike_points=2,
            ),
        ),
    ],
)
def test_each_verdict_has_its_actions(verdict: Verdict, expected: ActionPlan) -> None:
    assert plan_actions(decision(verdict), StrikePolicy()) == expected


def test_review_never_touches_the_member() -> None:
    plan = plan_actions(decision(Verdict.REVIEW, Severity.HIGH), StrikePolicy())
    assert not (plan.delete or plan.warn_member or plan.strike_points)


def test_personal_info_deletion_is_a_guild_choice() -> None:
    assert plan_actions(decision(Verdict.REMIND), StrikePolicy(), delete_personal_info=True).delete


def test_critical_block_escalates_at_once() -> None:
    policy = StrikePolicy()
    points = policy.points_for(decision(Verdict.BLOCK, Severity.CRITICAL))
    assert points == 3
    assert policy.timeout_for(0, points) == timedelta(hours=1)


def test_points_expire_after_the_window() -> None:
    policy = StrikePolicy()
    strikes = [
        Strike(2, NOW - timedelta(days=31)),
        Strike(1, NOW - timedelta(days=29)),
        Strike(2, NOW - timedelta(hours=1)),
    ]
    assert policy.active_points(strikes, NOW) == 3


@pytest.mark.parametrize(
    ("before", "after", "timeout"),
    [
        (0, 1, None),
        (1, 2, None),
        (2, 3, timedelta(hours=1)),
        (3, 4, None),  # already past 3: no second hour for a strike below the next threshold
        (4, 5, timedelta(days=1)),
        (0, 6, timedelta(days=1)),  # crossing both at once takes the harsher
        (5, 7, None),
    ],
)
def test_timeout_only_when_a_threshold_is_crossed(
    before: int, after: int, timeout: timedelta | None
) -> None:
    assert StrikePolicy().timeout_for(before, after) == timeout


def test_policy_round_trips_through_plain_data() -> None:
    policy = StrikePolicy(
        points={Verdict.WARN: 2, Verdict.BLOCK: 3},
        window=timedelta(days=7),
        thresholds=((2, timedelta(minutes=10)), (6, timedelta(days=7))),
    )
    assert StrikePolicy.from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"thresholds": [[3, 3600], [2, 7200]]}, "strictly increasing"),
        ({"thresholds": [[3, 30 * 86400]]}, "28 days"),
        ({"window_days": 0}, "window"),
        ({"points": {"warn": -1}}, "negative"),
        ({"points": {"shout": 1}}, "invalid strike policy"),
        ({"window_days": "soon"}, "invalid strike policy"),
    ],
)
def test_malformed_policy_gives_a_clear_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StrikePolicy.from_dict(data)


# ---------------------------------------------------------------- lifting a timeout on dismissal

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before", "after", "points_now", "until", "lift"),
    [
        (2, 3, 2, NOW + timedelta(minutes=50), True),  # the dismissed strike crossed 3
        (2, 3, 3, NOW + timedelta(minutes=50), False),  # other strikes still reach 3
        (1, 5, 2, NOW + timedelta(hours=20), True),  # crossed 3 and 5; below both now
        (1, 5, 4, NOW + timedelta(hours=20), False),  # still past 3: a timeout is earned
        (0, 2, 0, NOW + timedelta(minutes=50), False),  # crossed nothing: not its timeout
        (2, 3, 2, None, False),  # not timed out
        (2, 3, 2, NOW - timedelta(minutes=1), False),  # already over
        (2, 3, 2, NOW + timedelta(hours=5), False),  # longer than 1 h: given by someone else
    ],
)
def test_a_dismissal_lifts_only_the_timeout_its_strike_alone_earned(
    before: int, after: int, points_now: int, until: datetime | None, lift: bool
) -> None:
    policy = StrikePolicy()
    assert (
        timeout_to_lift(policy, before, after, points_now, timed_out_until=until, now=NOW) is lift
    )


def test_the_recorded_strike_step_reads_for_people() -> None:
    assert strike_detail(2, 1, 3) == "+2: 1 -> 3"
