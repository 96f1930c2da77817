"""Strikes and escalation: what a decision costs a member, and when that earns a timeout.

Kept pure so that every backend and every process computes the same outcome from the same
history; storage only has to add a strike and read back the active total atomically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from promptwarden.screening.decision import Decision, Severity, Verdict

DEFAULT_POINTS: Mapping[Verdict, int] = {Verdict.WARN: 1, Verdict.BLOCK: 2}
DEFAULT_THRESHOLDS: tuple[tuple[int, timedelta], ...] = (
    (3, timedelta(hours=1)),
    (5, timedelta(days=1)),
)
DEFAULT_WINDOW = timedelta(days=30)
# Discord refuses member timeouts longer than 28 days.
MAX_TIMEOUT = timedelta(days=28)


@dataclass(frozen=True, slots=True)
class Strike:
    points: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StrikePolicy:
    """Per-guild escalation settings, as plain data."""

    points: Mapping[Verdict, int] = field(default_factory=lambda: dict(DEFAULT_POINTS))
    critical_points: int = 3  # a critical match (e.g. minors) escalates at once
    window: timedelta = DEFAULT_WINDOW
    thresholds: tuple[tuple[int, timedelta], ...] = DEFAULT_THRESHOLDS

    def __post_init__(self) -> None:
        if self.window <= timedelta(0):
            raise ValueError("the strike window must be positive")
        previous = 0
        for points, duration in self.thresholds:
            if points <= previous:
                raise ValueError("strike thresholds must be positive and strictly increasing")
            if not timedelta(0) < duration <= MAX_TIMEOUT:
                raise ValueError("timeouts must be longer than 0 and at most 28 days")
            previous = points

    def points_for(self, decision: Decision) -> int:
        """Points one decision adds; review and remind never cost the member anything."""
        base = self.points.get(decision.verdict, 0)
        if base and decision.severity >= Severity.CRITICAL:
            return max(base, self.critical_points)
        return base

    def active_points(self, strikes: Iterable[Strike], now: datetime) -> int:
        cutoff = now - self.window
        return sum(s.points for s in strikes if s.created_at > cutoff)

    def timeout_for(self, before: int, after: int) -> timedelta | None:
        """The timeout earned by moving from `before` to `after` active points.

        Only a threshold crossed by this step counts, so a member already past 3 points is
        not timed out again for every later strike below the next threshold, and two
        processes racing on the same member agree on at most one timeout.
        """
        earned = [d for points, d in self.thresholds if before < points <= after]
        return max(earned) if earned else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": {v.value: p for v, p in self.points.items()},
            "critical_points": self.critical_points,
            "window_days": self.window.total_seconds() / 86400,
            "thresholds": [[p, d.total_seconds()] for p, d in self.thresholds],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrikePolicy:
        """Build from stored settings; malformed values raise ValueError naming the field."""
        try:
            points = {Verdict(k): int(v) for k, v in data.get("points", {}).items()} or dict(
                DEFAULT_POINTS
            )
            window = timedelta(days=float(data.get("window_days", DEFAULT_WINDOW.days)))
            raw = data.get("thresholds")
            thresholds = (
                tuple((int(p), timedelta(seconds=float(s))) for p, s in raw)
                if raw is not None
                else DEFAULT_THRESHOLDS
            )
            critical = int(data.get("critical_points", 3))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid strike policy setting: {exc}") from None
        if any(p < 0 for p in points.values()):
            raise ValueError("strike points cannot be negative")
        return cls(points=points, critical_points=critical, window=window, thresholds=thresholds)


def strike_detail(points: int, before: int, after: int) -> str:
    """How a strike reads in its incident's history: `+2: 1 -> 3`. For people only: the
    totals themselves are stored on the strike (`points_before`, `points_after`)."""
    return f"+{points}: {before} -> {after}"


def timeout_to_lift(
    policy: StrikePolicy,
    before: int,
    after: int,
    points_now: int,
    *,
    timed_out_until: datetime | None,
    now: datetime,
) -> bool:
    """Whether dismissing an incident should end the timeout its strike earned.

    The strike moved the member from `before` to `after` points; after revoking it they
    have `points_now`. Lift only when the member is still timed out, the timeout does not
    outlast what this step gave (a longer one came from elsewhere: a moderator, a later
    incident), and `points_now` is below every threshold the step crossed, so no part of
    that timeout is still earned. A policy changed since then is read as it is now.
    """
    if timed_out_until is None or timed_out_until <= now:
        return False
    duration = policy.timeout_for(before, after)
    if duration is None or timed_out_until > now + duration:
        return False
    crossed = [points for points, _ in policy.thresholds if before < points <= after]
    return points_now < min(crossed)


@dataclass(frozen=True, slots=True)
class ActionPlan:
    """What the bot does about one decision, decided before any Discord call is made."""

    verdict: Verdict
    record: bool = False  # write an incident
    delete: bool = False
    warn_member: bool = False  # DM explaining the guideline and the matched words
    privacy_notice: bool = False  # DM reminding that the channel is public
    modlog: bool = False
    strike_points: int = 0

    @property
    def acts(self) -> bool:
        return self.record or self.delete or self.warn_member or self.privacy_notice


def plan_actions(
    decision: Decision,
    policy: StrikePolicy,
    *,
    delete_personal_info: bool = False,
) -> ActionPlan:
    """Map a verdict to actions; the harshest verdict has already won inside the decision."""
    v = decision.verdict
    if v is Verdict.BLOCK:
        return ActionPlan(
            v,
            record=True,
            delete=True,
            warn_member=True,
            modlog=True,
            strike_points=policy.points_for(decision),
        )
    if v is Verdict.WARN:
        return ActionPlan(
            v, record=True, warn_member=True, modlog=True, strike_points=policy.points_for(decision)
        )
    if v is Verdict.REVIEW:
        return ActionPlan(v, record=True, modlog=True)
    if v is Verdict.REMIND:
        return ActionPlan(v, record=True, privacy_notice=True, delete=delete_personal_info)
    return ActionPlan(v)
