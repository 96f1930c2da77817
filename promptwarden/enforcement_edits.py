"""Edits of a guild's enforcement settings, one `/enforcement` command each, and the
words `/enforcement show` uses for them.

Every edit builds a new `EnforcementConfig` (and `StrikePolicy`), whose own checks run,
so a command can never save what the watcher would refuse to load.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from itertools import pairwise

from promptwarden.enforcement import MAX_CATCHUP_WINDOW, EnforcementConfig
from promptwarden.policy import MAX_TIMEOUT, StrikePolicy
from promptwarden.screening.decision import Verdict

MAX_POINTS = 100
MAX_WINDOW_DAYS = 365
MAX_THRESHOLDS = 10
NO_TIMEOUTS = ("none", "off")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
_DURATION = re.compile(r"(\d{1,5})([mhd])")


def with_exempt_role(config: EnforcementConfig, role_id: int, exempt: bool) -> EnforcementConfig:
    roles = config.exempt_role_ids | {role_id} if exempt else config.exempt_role_ids - {role_id}
    return replace(config, exempt_role_ids=roles)


def with_exempt_channel(
    config: EnforcementConfig, channel_id: int, exempt: bool
) -> EnforcementConfig:
    channels = (
        config.exempt_channel_ids | {channel_id}
        if exempt
        else config.exempt_channel_ids - {channel_id}
    )
    return replace(config, exempt_channel_ids=channels)


def with_strikes(
    config: EnforcementConfig, warn_points: int, block_points: int, window_days: int
) -> EnforcementConfig:
    """Points a warning and a block add, and how many days each strike counts."""
    for name, value in (("warn points", warn_points), ("block points", block_points)):
        if not 0 <= value <= MAX_POINTS:
            raise ValueError(f"{name} must be between 0 and {MAX_POINTS}, not {value}")
    if not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise ValueError(f"the window must be 1 to {MAX_WINDOW_DAYS} days, not {window_days}")
    policy = config.strike_policy
    points = dict(policy.points)
    points[Verdict.WARN], points[Verdict.BLOCK] = warn_points, block_points
    return replace(
        config,
        strike_policy=replace(policy, points=points, window=timedelta(days=window_days)),
    )


def parse_duration(text: str) -> timedelta:
    """`30m`, `1h`, `1d`, or several parts (`1d12h`); ValueError says what is accepted."""
    value = text.strip().lower()
    parts = _DURATION.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text.strip()!r} is not a duration: use 30m, 1h, 1d or 1d12h")
    return sum((int(n) * _UNITS[u] for n, u in parts), timedelta())


def parse_thresholds(text: str) -> tuple[tuple[int, timedelta], ...]:
    """`3=1h,5=1d`: at 3 active points a 1 hour timeout, at 5 a day; `none` for none."""
    value = text.strip().lower()
    if value in NO_TIMEOUTS:
        return ()
    out: list[tuple[int, timedelta]] = []
    for part in value.replace(";", ",").split(","):
        points, sep, duration = part.partition("=")
        if not sep or not points.strip().isdigit():
            raise ValueError(
                f"{part.strip()!r} is not POINTS=DURATION; write e.g. 3=1h,5=1d (or none)"
            )
        out.append((int(points), parse_duration(duration)))
    if len(out) > MAX_THRESHOLDS:
        raise ValueError(f"at most {MAX_THRESHOLDS} thresholds")
    out.sort(key=lambda t: t[0])
    return tuple(out)


def with_timeouts(config: EnforcementConfig, text: str) -> EnforcementConfig:
    thresholds = parse_thresholds(text)
    if any(points == other for (points, _), (other, _) in pairwise(thresholds)):
        raise ValueError("each number of points may appear once")
    policy = replace(config.strike_policy, thresholds=thresholds)  # StrikePolicy checks
    return replace(config, strike_policy=policy)


def with_catchup_hours(config: EnforcementConfig, hours: int) -> EnforcementConfig:
    limit = int(MAX_CATCHUP_WINDOW.total_seconds() // 3600)
    if not 0 <= hours <= limit:
        raise ValueError(f"catch-up must be 0 to {limit} hours (14 days), not {hours}")
    return replace(config, catchup_window=timedelta(hours=hours))


def duration_text(duration: timedelta) -> str:
    """`1d`, `1h`, `1d12h`, `30m`: the form `parse_duration` reads back."""
    minutes = int(duration.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    text = "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return text or "0m"


def thresholds_text(policy: StrikePolicy) -> str:
    """`3=1h,5=1d`, as `/enforcement timeouts` takes it, or `none`."""
    return ",".join(f"{p}={duration_text(d)}" for p, d in policy.thresholds) or "none"


def settings_lines(config: EnforcementConfig) -> list[str]:
    """The effective settings, role and channel ids left for the cog to name."""
    policy = config.strike_policy
    points = policy.points
    window = policy.window.total_seconds() / 86400
    return [
        f"Moderators (Manage Messages) exempt: {'on' if config.moderators_exempt else 'off'}",
        f"Strike points: warning {points.get(Verdict.WARN, 0)}, block "
        f"{points.get(Verdict.BLOCK, 0)} (critical at least {policy.critical_points}), "
        f"counting for {window:g} days",
        f"Timeouts: {thresholds_text(policy)} (Discord allows at most {MAX_TIMEOUT.days} days)",
        "Delete prompts with personal information: "
        + ("on" if config.delete_personal_info else "off"),
        "Notice in the channel when a warning DM fails: "
        + ("on" if config.dm_failure_notice else "off"),
        f"Catch-up after downtime: {config.catchup_window.total_seconds() / 3600:g} hours",
    ]
