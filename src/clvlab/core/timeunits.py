"""Time units of RFM summaries.

Every duration in clvlab (recency, T, a prediction horizon) is a number of *time units*.  A unit is a
fixed number of seconds, so that durations from different engines agree to the last bit:

========  =====================================================================
``"h"``   hour, 3,600 s
``"D"``   day, 86,400 s
``"W"``   week, 7 days
``"M"``   month: the mean Gregorian month, 365.2425 / 12 = 30.436875 days (2,629,746 s).
          Calendar months differ in length (28-31 days); a fixed month keeps "one month"
          the same amount of exposure for every customer.
========  =====================================================================
"""

from __future__ import annotations

from clvlab.core.errors import ClvlabError

__all__ = ["UNIT_SECONDS", "UNIT_NAMES", "normalize_time_unit", "unit_seconds", "unit_name"]

UNIT_SECONDS: dict[str, int] = {"h": 3_600, "D": 86_400, "W": 604_800, "M": 2_629_746}

#: each unit in words, plural ("weeks"), for messages and metric names
UNIT_NAMES: dict[str, str] = {"h": "hours", "D": "days", "W": "weeks", "M": "months"}

_ALIASES = {
    "h": "h", "H": "h", "hour": "h", "hours": "h",
    "D": "D", "d": "D", "day": "D", "days": "D",
    "W": "W", "w": "W", "week": "W", "weeks": "W",
    "M": "M", "month": "M", "months": "M",
}


def normalize_time_unit(time_unit: str) -> str:
    """Return the canonical code ("h", "D", "W" or "M") of a time unit or raise a ClvlabError."""
    try:
        return _ALIASES[time_unit]
    except (KeyError, TypeError):
        raise ClvlabError(
            f"time_unit {time_unit!r} is not supported; use one of 'h' (hours), 'D' (days), "
            f"'W' (weeks) or 'M' (months of 30.436875 days)"
        ) from None


def unit_seconds(time_unit: str) -> int:
    """Length of one time unit in seconds."""
    return UNIT_SECONDS[normalize_time_unit(time_unit)]


def unit_name(unit: str) -> str:
    """A unit in words with its code, as messages name it: "weeks ('W')"."""
    return f"{UNIT_NAMES.get(unit, unit)} ({unit!r})"
