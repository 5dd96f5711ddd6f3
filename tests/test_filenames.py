"""File-name metadata: every scheme and every real-world example of shared/phone-archives.md."""

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer.errors import CallauditError
from analyzer.filenames import CallMeta, normalize_number, parse_filename, resolve_tz

SH = ZoneInfo("Asia/Shanghai")


def at(y, mo, d, h, mi, s=0, tz=SH, us=0):
    return datetime(y, mo, d, h, mi, s, us, tzinfo=tz)


# (name, number, contact, started_at, scheme, direction), read off the names by hand.
EXAMPLES = [
    ("通话录音@176 8831 4515(17688314515)_20180814153840.mp3",
     "17688314515", None, at(2018, 8, 14, 15, 38, 40), "miui", None),
    ("通话录音@博彦面试1(18757143260)_20171222200305.mp3",
     "18757143260", "博彦面试1", at(2017, 12, 22, 20, 3, 5), "miui", None),
    ("15882033521(15882033521)_20230506192735.mp3",
     "15882033521", None, at(2023, 5, 6, 19, 27, 35), "miui", None),
    ("134 1096 1780_20220425103455.amr",
     "13410961780", None, at(2022, 4, 25, 10, 34, 55), "huawei", None),
    ("张三@13800138000_20240301123045.m4a",
     "13800138000", "张三", at(2024, 3, 1, 12, 30, 45), "huawei", None),
    ("10987654321-2203021149.mp3",
     "10987654321", None, at(2022, 3, 2, 11, 49), "oppo", None),
    ("010-12345678-2203021149.mp3",
     "01012345678", None, at(2022, 3, 2, 11, 49), "oppo", None),
    ("19145520861 2019-05-16 10-06-40.amr",
     "19145520861", None, at(2019, 5, 16, 10, 6, 40), "vivo", None),
    ("16621092548 2022-07-12 16-40-50.m4a",
     "16621092548", None, at(2022, 7, 12, 16, 40, 50), "vivo", None),
    ("Call recording +15551234567_200605_114902.m4a",
     "+15551234567", None, at(2020, 6, 5, 11, 49, 2), "samsung", None),
    ("20240903_144043.044+0200_in_13800138000",
     "13800138000", None, at(2024, 9, 3, 14, 40, 43, timezone(timedelta(hours=2)), 44000),
     "bcr", "in"),
    ("mic_20260327-052816.amr",
     None, None, at(2026, 3, 27, 5, 28, 16), "cube_acr", None),
]


@pytest.mark.parametrize("name,number,contact,started,scheme,direction", EXAMPLES)
def test_real_world_examples(name, number, contact, started, scheme, direction):
    meta = parse_filename(name)
    assert meta.number == number
    assert meta.contact == contact
    assert meta.started_at == started
    assert meta.started_at.utcoffset() == started.utcoffset()
    assert meta.scheme == scheme
    assert meta.direction == direction
    assert meta.source == "filename"


@pytest.mark.parametrize("name,number,contact,started,scheme,direction", [
    # Old MIUI without "(number)": prefix@number_time.
    ("通话录音@13800138000_20180814153840.mp3",
     "13800138000", None, at(2018, 8, 14, 15, 38, 40), "miui", None),
    # MIUI writes "+" as "00"; the display name is a contact.
    ("通话录音@李四(008613912345678)_20240102030405.mp3",
     "13912345678", "李四", at(2024, 1, 2, 3, 4, 5), "miui", None),
    # A contact name with parentheses of its own: the last group is the number.
    ("王五(公司)(13800138000)_20240102030405.mp3",
     "13800138000", "王五(公司)", at(2024, 1, 2, 3, 4, 5), "miui", None),
    # Conference call: several numbers, the first is kept.
    ("通话录音@会议(13800138000,13900139000)_20240102030405.mp3",
     "13800138000", "会议", at(2024, 1, 2, 3, 4, 5), "miui", None),
    # Huawei without a number (contact only) and an upper-case extension.
    ("催收公司_20240301123045.AMR",
     None, "催收公司", at(2024, 3, 1, 12, 30, 45), "huawei", None),
    ("平安普惠-2203021149.mp3",
     None, "平安普惠", at(2022, 3, 2, 11, 49), "oppo", None),
    ("张三 2019-05-16 10-06-40.amr",
     None, "张三", at(2019, 5, 16, 10, 6, 40), "vivo", None),
    ("通话录音 13800138000_240301_123045.m4a",
     "13800138000", None, at(2024, 3, 1, 12, 30, 45), "samsung", None),
    ("20240903_224043.044+0800_out_sim2_+8613800138000_张_三.flac",
     "13800138000", "张_三", at(2024, 9, 3, 22, 40, 43, timezone(timedelta(hours=8)), 44000),
     "bcr", "out"),
    ("20240903_144043.044+0000_conference_sim1.ogg",
     None, None, at(2024, 9, 3, 14, 40, 43, timezone.utc, 44000), "bcr", "conference"),
    ("voip_20260327-052816_王经理.amr",
     None, "王经理", at(2026, 3, 27, 5, 28, 16), "cube_acr", None),
    ("mic_20260327-052816_+86 138 0013 8000.amr",
     "13800138000", None, at(2026, 3, 27, 5, 28, 16), "cube_acr", None),
])
def test_scheme_variants(name, number, contact, started, scheme, direction):
    meta = parse_filename(name)
    assert (meta.number, meta.contact, meta.started_at, meta.scheme, meta.direction) == (
        number, contact, started, scheme, direction)


def test_path_with_folders_uses_the_name():
    meta = parse_filename("/sdcard/MIUI/sound_recorder/call_rec/15882033521(15882033521)"
                          "_20230506192735.mp3")
    assert meta.number == "15882033521"
    assert meta.file.endswith("_20230506192735.mp3")


def test_oppo_has_no_seconds():
    meta = parse_filename("10987654321-2203021149.mp3")
    assert (meta.started_at.hour, meta.started_at.minute, meta.started_at.second) == (11, 49, 0)


@pytest.mark.parametrize("raw,expected", [
    ("+86 138 0013 8000", "13800138000"),
    ("+8613800138000", "13800138000"),
    ("0086-138-0013-8000", "13800138000"),
    ("8613800138000", "13800138000"),
    ("138 0013 8000", "13800138000"),
    ("138-0013-8000", "13800138000"),
    ("１３８００１３８０００", "13800138000"),  # full-width digits
    ("010-12345678", "01012345678"),
    ("0755 1234 5678", "075512345678"),
    ("+86 10 1234 5678", "01012345678"),  # landline in international form: trunk 0 back
    ("0086 21 87654321", "02187654321"),
    ("+86 400 123 4567", "4001234567"),  # service number: no trunk 0
    ("95188", "95188"),
    ("12378", "12378"),
    ("+1 (555) 123-4567", "+15551234567"),
    ("0015551234567", "+15551234567"),  # MIUI's "00" for "+"
    ("86123", "86123"),  # too short to be +86: left alone
])
def test_normalize_number(raw, expected):
    assert normalize_number(raw) == expected


def test_mtime_fallback(tmp_path):
    f = tmp_path / "新录音 1.mp3"
    f.write_bytes(b"ID3")
    stamp = datetime(2026, 3, 1, 15, 30, tzinfo=timezone.utc).timestamp()  # 23:30 in Shanghai
    os.utime(f, (stamp, stamp))
    meta = parse_filename(f)
    assert meta.source == "mtime"
    assert meta.scheme is None
    assert meta.started_at == at(2026, 3, 1, 23, 30)
    assert meta.started_at.utcoffset() == timedelta(hours=8)
    assert meta.to_dict()["started_at"] == "2026-03-01T23:30:00+08:00"


def test_name_beats_mtime(tmp_path):
    f = tmp_path / "13800138000_20240301123045.m4a"
    f.write_bytes(b"x")
    os.utime(f, (0, 0))
    assert parse_filename(f).started_at == at(2024, 3, 1, 12, 30, 45)


def test_impossible_date_is_not_a_match(tmp_path):
    # Month 13: no scheme may accept it; the missing file has no mtime either.
    meta = parse_filename(tmp_path / "13800138000_20241341123045.m4a")
    assert meta.scheme is None
    assert meta.started_at is None
    assert meta.source == "unknown"


def test_time_zone_override():
    meta = parse_filename("19145520861 2019-05-16 10-06-40.amr", tz="UTC")
    assert meta.started_at == datetime(2019, 5, 16, 10, 6, 40, tzinfo=timezone.utc)
    meta = parse_filename("19145520861 2019-05-16 10-06-40.amr", tz="+09:00")
    assert meta.started_at.utcoffset() == timedelta(hours=9)
    # BCR carries its own offset, whatever the default.
    bcr = parse_filename("20240903_144043.044+0200_in_13800138000", tz="UTC")
    assert bcr.started_at.utcoffset() == timedelta(hours=2)


def test_unknown_time_zone_is_a_clear_error():
    with pytest.raises(CallauditError, match="时区"):
        resolve_tz("Mars/Olympus")


def test_to_dict_and_back():
    meta = parse_filename("20240903_144043.044+0200_in_13800138000_张三.flac")
    d = meta.to_dict()
    assert d == {
        "number": "13800138000",
        "contact": "张三",
        "started_at": "2024-09-03T14:40:43.044000+02:00",
        "source": "filename",
        "scheme": "bcr",
        "direction": "in",
    }
    back = CallMeta.from_dict(d, file="a.flac")
    assert back.started_at == meta.started_at
    assert back.number == meta.number and back.direction == "in" and back.file == "a.flac"


@pytest.mark.parametrize("weird", [
    "", ".", "..", "/", "\x00", "a\x00b.mp3", "\ud800.mp3", "(", ")_", "@", "@(_",
    "_20240301123045", "-2203021149", "x" * 5000, "通话录音@(" * 100, b"\xff\xfe.mp3",
    Path("nope/none.mp3"), None, 12345,
])
def test_never_raises_on_odd_input(weird):
    meta = parse_filename(weird)
    assert meta.source in ("filename", "mtime", "unknown")


@given(st.text(max_size=120))
def test_total_on_any_text(text):
    meta = parse_filename(text)
    assert meta.source in ("filename", "mtime", "unknown")
    assert meta.started_at is None or meta.started_at.tzinfo is not None
    meta.to_dict()
