"""Archive patterns: night calls, >3 answered a day, bursts, >6 attempts a day."""

from datetime import date, datetime, time, timedelta, timezone

import pytest

from analyzer.calllog import CallLogEntry
from analyzer.filenames import CallMeta, parse_filename
from analyzer.patterns import calls_from_reports, find_patterns, in_night

CST = timezone(timedelta(hours=8))
NUM = "13800138000"


def rec(y, mo, d, h, mi, s=0, number=NUM, direction=None, tz=CST):
    t = datetime(y, mo, d, h, mi, s, tzinfo=tz)
    return CallMeta(number, None, t, "miui", "filename", direction,
                    f"{number}_{t:%Y%m%d%H%M%S}.mp3")


def log(y, mo, d, h, mi, kind, number=NUM, s=0):
    return CallLogEntry(number, datetime(y, mo, d, h, mi, s, tzinfo=CST), kind, 0, None,
                        f"calls.xml:{h * 60 + mi}")


def types(patterns, kind=None):
    return [p.type for p in patterns if kind is None or p.type == kind]


@pytest.mark.parametrize("clock,night", [
    (time(21, 59, 59), False),
    (time(22, 0, 0), True),
    (time(23, 30), True),
    (time(0, 0), True),
    (time(7, 59, 59), True),
    (time(8, 0, 0), False),
    (time(12, 0), False),
])
def test_night_boundaries(clock, night):
    call = rec(2026, 3, 1, clock.hour, clock.minute, clock.second)
    found = find_patterns([call])
    assert types(found, "night_call") == (["night_call"] if night else [])


def test_night_window_is_configurable_and_may_not_cross_midnight():
    assert in_night(datetime(2026, 3, 1, 21, 30), ("21:00", "08:00"))
    assert not in_night(datetime(2026, 3, 1, 21, 30), (time(22), time(8)))
    assert in_night(datetime(2026, 3, 1, 3, 0), ("01:00", "06:00"))
    assert not in_night(datetime(2026, 3, 1, 23, 0), ("01:00", "06:00"))
    found = find_patterns([rec(2026, 3, 1, 21, 30)], night=("21:00", "08:00"))
    assert types(found) == ["night_call"]


def test_night_call_belongs_to_the_day_it_starts_on():
    found = find_patterns([rec(2026, 3, 1, 23, 30), rec(2026, 3, 2, 0, 30)])
    nights = [p for p in found if p.type == "night_call"]
    assert [(p.date, p.count) for p in nights] == [(date(2026, 3, 1), 1), (date(2026, 3, 2), 1)]
    d = nights[0].to_dict()
    assert d["date"] == "2026-03-01"
    assert d["times"] == ["2026-03-01T23:30:00+08:00"]
    assert d["files"] == ["13800138000_20260301233000.mp3"]
    assert "22:00" in d["basis"] and "GB/T 45251-2025" in d["basis"]
    assert "中国银行业协会" in d["basis"]
    assert set(d) >= {"type", "number", "date", "count", "files", "times", "threshold", "basis"}


def test_night_uses_analysis_time_zone():
    # 15:30 UTC is 23:30 in Shanghai.
    utc_call = rec(2026, 3, 1, 15, 30, tz=timezone.utc)
    assert types(find_patterns([utc_call])) == ["night_call"]
    assert types(find_patterns([utc_call], tz="UTC")) == []


def test_more_than_three_answered_calls():
    three = [rec(2026, 3, 1, h, 0) for h in (9, 11, 13)]
    assert types(find_patterns(three)) == []
    four = [*three, rec(2026, 3, 1, 15, 0)]
    [p] = find_patterns(four)
    assert p.type == "high_frequency" and p.count == 4 and p.date == date(2026, 3, 1)
    assert len(p.files) == 4
    assert p.to_dict()["threshold"] == {"max_answered_per_day": 3}
    assert "GB/T 45251-2025" in p.basis


def test_answered_calls_are_counted_per_number():
    calls = [rec(2026, 3, 1, 9, 0), rec(2026, 3, 1, 11, 0), rec(2026, 3, 1, 13, 0),
             rec(2026, 3, 1, 15, 0, number="13900139000")]
    assert types(find_patterns(calls)) == []


def test_day_boundary_shanghai_vs_utc():
    # Three daytime calls on 03-01 and one at 2026-03-02 07:30+08 (= 03-01 23:30 UTC).
    calls = [rec(2026, 3, 1, h, 0) for h in (10, 12, 15)] + [rec(2026, 3, 2, 7, 30)]
    in_shanghai = find_patterns(calls)
    assert types(in_shanghai, "high_frequency") == []
    assert [(p.type, p.date) for p in in_shanghai] == [("night_call", date(2026, 3, 2))]
    in_utc = find_patterns(calls, tz="UTC")
    [p] = [p for p in in_utc if p.type == "high_frequency"]
    assert p.date == date(2026, 3, 1) and p.count == 4


def test_number_formats_are_the_same_number():
    names = ["通话录音@催收(+8613800138000)_20260301090000.mp3",
             "0086 138 0013 8000_20260301110000.m4a",
             "138-0013-8000-2603011300.mp3",
             "8613800138000 2026-03-01 15-00-00.amr"]
    calls = [parse_filename(n) for n in names]
    assert {c.number for c in calls} == {NUM}
    assert types(find_patterns(calls)) == ["high_frequency"]


@pytest.mark.parametrize("gap,burst", [
    (timedelta(minutes=4, seconds=59), True),
    (timedelta(minutes=5), True),
    (timedelta(minutes=5, seconds=1), False),
])
def test_burst_two_calls_within_five_minutes(gap, burst):
    first = rec(2026, 3, 1, 10, 0)
    second_at = first.started_at + gap
    second = rec(2026, 3, 1, second_at.hour, second_at.minute, second_at.second)
    found = find_patterns([first, second])
    assert types(found) == (["burst"] if burst else [])
    if burst:
        d = found[0].to_dict()
        assert d["count"] == 2 and d["reference_only"] is True
        assert "Reg F" in d["basis"] and "国际参考" in d["basis"]


def test_burst_seven_calls_in_one_day():
    # Hourly: 3 answered recordings and attempts from the log. Neither the answered nor the
    # attempts rule fires, but 7 calls in a day is a burst; 6 is not.
    recs = [rec(2026, 3, 1, h, 0) for h in (9, 10, 11)]
    three = [log(2026, 3, 1, h, 0, "missed") for h in (12, 13, 14)]
    assert types(find_patterns(recs, three)) == []
    four = [*three, log(2026, 3, 1, 15, 0, "rejected")]
    [p] = find_patterns(recs, four)
    assert p.type == "burst" and p.count == 7 and "当天来电 7 次" in p.description
    assert len(p.files) == 3 and len(p.log_refs) == 4


def test_burst_run_across_midnight_belongs_to_its_first_day():
    found = find_patterns([rec(2026, 3, 1, 23, 58), rec(2026, 3, 2, 0, 1)])
    [burst] = [p for p in found if p.type == "burst"]
    assert burst.date == date(2026, 3, 1) and burst.count == 2


def test_more_than_six_attempts():
    kinds = ["missed", "rejected", "blocked", "voicemail", "missed", "rejected"]
    six = [log(2026, 3, 1, 9 + i, 0, k) for i, k in enumerate(kinds)]
    # Answered calls in the log are not attempts.
    answered = [log(2026, 3, 1, 16, 0, "incoming"), log(2026, 3, 1, 17, 0, "outgoing")]
    assert types(find_patterns([], six + answered), "excessive_attempts") == []
    seven = [*six, log(2026, 3, 1, 18, 0, "missed")]
    [p] = [p for p in find_patterns([], seven) if p.type == "excessive_attempts"]
    assert p.count == 7 and p.files == [] and len(p.log_refs) == 7
    assert "6次" in p.basis and "中国银行业协会" in p.basis
    assert p.to_dict()["threshold"] == {"max_attempts_per_day": 6}


def test_attempts_from_two_numbers_do_not_add_up():
    a = [log(2026, 3, 1, 9 + i, 0, "missed") for i in range(4)]
    b = [log(2026, 3, 1, 9 + i, 30, "missed", number="13900139000") for i in range(4)]
    assert types(find_patterns([], a + b), "excessive_attempts") == []


def test_recording_and_its_log_entry_are_one_call():
    # Three recordings, each also in the log (ringing starts up to 2 min before recording).
    recs = [rec(2026, 3, 1, h, 1, 30) for h in (9, 11, 13)]
    entries = [log(2026, 3, 1, h, 0, "incoming") for h in (9, 11, 13)]
    assert types(find_patterns(recs, entries)) == []
    # An answered call in the log without a recording still counts.
    extra = log(2026, 3, 1, 15, 0, "incoming")
    [p] = find_patterns(recs, [*entries, extra])
    assert p.type == "high_frequency" and p.count == 4
    assert len(p.files) == 3 and sorted(p.log_refs) == sorted(e.ref for e in [*entries, extra])


def test_log_entry_three_minutes_away_is_another_call():
    recs = [rec(2026, 3, 1, h, 0) for h in (9, 11, 13)]
    entries = [log(2026, 3, 1, 13, 3, "incoming")]
    assert "high_frequency" in types(find_patterns(recs, entries))


def test_users_own_calls_are_not_collection_calls():
    # Outgoing in the log matches the night recording; BCR says "out" for the other.
    night_rec = rec(2026, 3, 1, 23, 0)
    assert types(find_patterns([night_rec], [log(2026, 3, 1, 22, 59, "outgoing")])) == []
    assert types(find_patterns([rec(2026, 3, 1, 23, 0, direction="out")])) == []
    assert types(find_patterns([rec(2026, 3, 1, 23, 0, direction="in")])) == ["night_call"]


def test_night_attempts_from_the_log_count():
    found = find_patterns([], [log(2026, 3, 1, 23, 15, "rejected")])
    [p] = found
    assert p.type == "night_call" and p.log_refs == ["calls.xml:1395"]


def test_calls_without_time_or_number():
    no_time = CallMeta(NUM, None, None, None, "unknown", None, "x.mp3")
    hidden = [CallMeta(None, None, datetime(2026, 3, 1, h, 0, tzinfo=CST), "cube_acr",
                       "filename", None, f"{h}.amr") for h in (9, 10, 11, 12, 23)]
    found = find_patterns([no_time, *hidden])
    # Per-number counts need a number; a night call is a night call regardless.
    assert [(p.type, p.number) for p in found] == [("night_call", None)]


def test_calls_from_reports_round_trip():
    meta = parse_filename("13800138000(13800138000)_20260301233000.mp3")
    reports = [{"file": "a/13800138000(13800138000)_20260301233000.mp3",
                "call": meta.to_dict()}, {"file": "b.mp3"}]
    [back] = calls_from_reports(reports)
    assert back.started_at == meta.started_at and back.file.startswith("a/")
    [p] = find_patterns([back])
    assert p.files == ["a/13800138000(13800138000)_20260301233000.mp3"]
