"""Archive-level checks from call metadata: night calls, too many calls a day, bursts.

Thresholds and their sources are in shared/legal-basis.md. Answered calls come from the
recordings (a recording exists only for an answered call) plus answered call-log entries;
unanswered attempts only from the call log. A recording and its own log entry are the same
call when number and time agree within DEDUPE_WINDOW.

Calls the user placed (BCR direction "out", or matched to an outgoing log entry) are not
collection calls and are left out of every check.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from .calllog import CallLogEntry
from .filenames import DEFAULT_TZ, CallMeta, resolve_tz

DEDUPE_WINDOW = timedelta(minutes=2)

PATTERN_TYPES: dict[str, str] = {
    "night_call": "夜间催收",
    "high_frequency": "单日接通过多",
    "burst": "密集拨打",
    "excessive_attempts": "单日未接通拨打过多",
}

_GBT = "GB/T 45251-2025《互联网金融 个人网络消费信贷 贷后催收风控指引》"
_CBA = "中国银行业协会《金融机构个人消费类贷款催收工作指引（试行）》（2026）"

# (basis, strength) per pattern type; wording follows shared/legal-basis.md.
BASIS: dict[str, tuple[str, str]] = {
    "night_call": (
        f"{_GBT}；{_CBA}：未经债务人同意，每日22:00至次日8:00不得电话催收",
        "推荐性国家标准 + 行业自律",
    ),
    "high_frequency": (
        f"{_GBT}：对同一债务人每日有效（接通的）催收通话不超过3次",
        "推荐性国家标准",
    ),
    "excessive_attempts": (
        f"{_CBA}：债务人电话未接通的，对同一联系方式当天尝试拨打不宜超过6次",
        "行业自律",
    ),
    "burst": (
        "美国 Reg F（12 CFR 1006.14(b)(2)）评注的频繁拨打推定，仅作国际参考，并非中国法规",
        "国际参考",
    ),
}


@dataclass(frozen=True)
class Pattern:
    """One finding about one number on one calendar day (in the analysis time zone)."""

    type: str
    number: str | None
    date: date
    count: int
    times: list[datetime]
    files: list[str]
    threshold: dict[str, Any]
    description: str
    log_refs: list[str] = field(default_factory=list)

    @property
    def basis(self) -> str:
        return BASIS[self.type][0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "type_zh": PATTERN_TYPES[self.type],
            "number": self.number,
            "date": self.date.isoformat(),
            "count": self.count,
            "times": [t.isoformat() for t in self.times],
            "files": list(self.files),
            "log_refs": list(self.log_refs),
            "threshold": dict(self.threshold),
            "description": self.description,
            "basis": self.basis,
            "strength": BASIS[self.type][1],
            "reference_only": self.type == "burst",
        }


@dataclass
class _Event:
    """A call, from a recording, a log entry, or both."""

    number: str | None
    at: datetime  # in the analysis time zone
    answered: bool
    direction: str | None = None
    files: list[str] = field(default_factory=list)
    log_refs: list[str] = field(default_factory=list)


def _hhmm(value: time | str) -> time:
    if isinstance(value, time):
        return value
    return time.fromisoformat(str(value).strip())


def in_night(at: datetime, night: tuple[time | str, time | str]) -> bool:
    """start <= clock < end; the window may cross midnight (22:00-08:00)."""
    start, end = _hhmm(night[0]), _hhmm(night[1])
    clock = at.timetz().replace(tzinfo=None)
    if start <= end:
        return start <= clock < end
    return clock >= start or clock < end


def calls_from_reports(reports: Iterable[dict[str, Any]]) -> list[CallMeta]:
    """CallMeta of each per-call report dict (its `call` and `file`)."""
    metas = []
    for r in reports:
        call = r.get("call")
        if isinstance(call, dict):
            metas.append(CallMeta.from_dict(call, file=str(r.get("file", ""))))
    return metas


def _events(calls: Iterable[CallMeta], attempts: Iterable[CallLogEntry] | None,
            zone: tzinfo) -> list[_Event]:
    def local(at: datetime) -> datetime:
        return at.replace(tzinfo=zone) if at.tzinfo is None else at.astimezone(zone)

    events = [
        _Event(c.number, local(c.started_at), True, c.direction, [c.file] if c.file else [])
        for c in calls
        if c.started_at is not None
    ]
    recorded = list(events)
    matched: set[int] = set()
    for entry in attempts or ():
        at = local(entry.started_at)
        if entry.unanswered:
            events.append(_Event(entry.number, at, False, "in", [], [entry.ref]))
            continue
        if not entry.answered:
            continue
        twin = _twin(recorded, matched, entry.number, at)
        direction = "out" if entry.type == "outgoing" else "in"
        if twin is not None:
            matched.add(id(twin))
            twin.log_refs.append(entry.ref)
            twin.direction = twin.direction or direction
        elif direction == "in":
            events.append(_Event(entry.number, at, True, "in", [], [entry.ref]))
    # The user's own calls are not collection calls.
    events = [e for e in events if e.direction != "out"]
    return sorted(events, key=lambda e: e.at)


def _twin(recorded: list[_Event], matched: set[int], number: str | None,
          at: datetime) -> _Event | None:
    """The unmatched recording of the same number closest in time, within the window."""
    if number is None:
        return None
    best, best_gap = None, DEDUPE_WINDOW
    for e in recorded:
        if e.number == number and id(e) not in matched:
            gap = abs(e.at - at)
            if gap <= best_gap:
                best, best_gap = e, gap
    return best


def _pattern(kind: str, number: str | None, day: date, events: list[_Event],
             threshold: dict[str, Any], description: str) -> Pattern:
    files = list(dict.fromkeys(f for e in events for f in e.files))
    refs = [r for e in events for r in e.log_refs]
    return Pattern(kind, number, day, len(events), [e.at for e in events], files, threshold,
                   description, refs)


def find_patterns(
    calls: Iterable[CallMeta],
    attempts: Iterable[CallLogEntry] | None = None,
    night: tuple[time | str, time | str] = (time(22, 0), time(8, 0)),
    max_answered_per_day: int = 3,
    max_attempts_per_day: int = 6,
    burst_gap_minutes: float = 5,
    burst_max_per_day: int = 7,
    tz: str | tzinfo | None = DEFAULT_TZ,
) -> list[Pattern]:
    """Patterns per number and calendar day (in tz), sorted by number, date, type.

    calls: metadata of the recordings (answered calls). attempts: the phone's call log,
    if any (answered entries merge with their recordings; unanswered ones are attempts).
    A call belongs to the day it starts on.
    """
    zone = resolve_tz(tz)
    start, end = _hhmm(night[0]), _hhmm(night[1])
    window = f"{start:%H:%M}–{end:%H:%M}"
    events = _events(calls, attempts, zone)
    by_day: dict[tuple[str | None, date], list[_Event]] = defaultdict(list)
    for e in events:
        by_day[(e.number, e.at.date())].append(e)

    found: list[Pattern] = []
    for (number, day), day_events in by_day.items():
        nights = [e for e in day_events if in_night(e.at, (start, end))]
        if nights:
            answered = sum(e.answered for e in nights)
            found.append(_pattern(
                "night_call", number, day, nights, {"night": window},
                f"{day} 夜间（{window}）来电 {len(nights)} 次（接通 {answered} 次）",
            ))
        if number is None:
            continue  # counts per number need a number
        answered_events = [e for e in day_events if e.answered]
        if len(answered_events) > max_answered_per_day:
            found.append(_pattern(
                "high_frequency", number, day, answered_events,
                {"max_answered_per_day": max_answered_per_day},
                f"{day} 接通催收通话 {len(answered_events)} 次，超过每日 "
                f"{max_answered_per_day} 次",
            ))
        unanswered = [e for e in day_events if not e.answered]
        if len(unanswered) > max_attempts_per_day:
            found.append(_pattern(
                "excessive_attempts", number, day, unanswered,
                {"max_attempts_per_day": max_attempts_per_day},
                f"{day} 未接通/拒接/拦截的来电 {len(unanswered)} 次，超过每日 "
                f"{max_attempts_per_day} 次",
            ))

    found.extend(_bursts(events, timedelta(minutes=burst_gap_minutes), burst_max_per_day))
    order = {t: i for i, t in enumerate(PATTERN_TYPES)}
    found.sort(key=lambda p: (p.number or "", p.date, order[p.type]))
    return found


def _bursts(events: list[_Event], gap: timedelta, max_per_day: int) -> list[Pattern]:
    """Runs of calls each within `gap` of the previous one, or `max_per_day` in one day.

    Runs are found over the number's whole timeline (a run may cross midnight) and
    belong to the day the run starts on.
    """
    per_number: dict[str, list[_Event]] = defaultdict(list)
    for e in events:
        if e.number is not None:
            per_number[e.number].append(e)
    minutes = gap / timedelta(minutes=1)
    threshold = {"gap_minutes": minutes, "max_per_day": max_per_day}
    found = []
    for number, timeline in per_number.items():
        runs: dict[date, list[_Event]] = defaultdict(list)
        run: list[_Event] = []
        for e in [*timeline, None]:
            if e is not None and run and e.at - run[-1].at <= gap:
                run.append(e)
                continue
            if len(run) >= 2:
                runs[run[0].at.date()].extend(run)
            run = [e] if e is not None else []
        daily: dict[date, list[_Event]] = defaultdict(list)
        for e in timeline:
            daily[e.at.date()].append(e)
        for day in sorted(set(runs) | {d for d, es in daily.items() if len(es) >= max_per_day}):
            reasons = []
            hits = list(runs.get(day, []))
            if hits:
                reasons.append(f"{minutes:g} 分钟内连续来电")
            if len(daily[day]) >= max_per_day:
                reasons.append(f"当天来电 {len(daily[day])} 次")
                hits.extend(daily[day])
            unique = sorted({id(e): e for e in hits}.values(), key=lambda e: e.at)
            found.append(_pattern(
                "burst", number, day, unique, threshold,
                f"{day} 密集拨打：{'；'.join(reasons)}，涉及 {len(unique)} 次（仅作国际参考）",
            ))
    return found
