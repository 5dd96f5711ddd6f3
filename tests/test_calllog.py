"""Call-log import: SMS Backup & Restore XML and the simple CSV."""

from datetime import datetime, timedelta, timezone

import pytest

from analyzer.calllog import load_call_log
from analyzer.errors import InputError

UTC = timezone.utc
CST = timezone(timedelta(hours=8))


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def calls_xml(*calls: str) -> str:
    # The shape SMS Backup & Restore writes: declaration, stylesheet, <calls>, one <call> a line.
    return (
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n"
        '<?xml-stylesheet type="text/xsl" href="calls.xsl"?>\n'
        f'<calls count="{len(calls)}" backup_set="b" backup_date="1">\n'
        + "".join(f"  {c}\n" for c in calls)
        + "</calls>\n"
    )


def test_xml_types_times_and_numbers(tmp_path):
    t0 = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    rows = [
        f'<call number="+86 138 0013 8000" duration="65" date="{ms(t0)}" type="1" '
        'presentation="1" contact_name="(Unknown)" />',
        f'<call number="13800138000" duration="12" date="{ms(t0 + timedelta(minutes=1))}" '
        'type="2" contact_name="催收" />',
    ] + [
        f'<call number="008613800138000" duration="0" '
        f'date="{ms(t0 + timedelta(minutes=k + 2))}" type="{k}" />'
        for k in (3, 4, 5, 6)
    ] + [f'<call number="" duration="0" date="{ms(t0 + timedelta(minutes=10))}" type="3" />']
    f = tmp_path / "calls.xml"
    f.write_text(calls_xml(*rows), encoding="utf-8")
    log = load_call_log(f)
    assert [e.type for e in log] == [
        "incoming", "outgoing", "missed", "voicemail", "rejected", "blocked", "missed"]
    first = log[0]
    assert first.started_at == datetime(2026, 3, 1, 23, 30, tzinfo=CST)
    assert first.started_at.utcoffset() == timedelta(hours=8)
    assert first.number == "13800138000" and first.duration == 65 and first.contact is None
    assert first.ref == "calls.xml:4"  # line 4 of the file: cite it as evidence
    assert log[1].contact == "催收"
    assert all(e.number == "13800138000" for e in log[:6])
    assert log[-1].number is None  # hidden number
    assert [e.unanswered for e in log] == [False, False, True, True, True, True, True]
    assert log[0].answered and log[1].answered and not log[2].answered


def test_xml_doctype_is_refused(tmp_path):
    f = tmp_path / "evil.xml"
    f.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE calls [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>\n'
        '<calls><call number="&b;" duration="0" date="0" type="1"/></calls>\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="DOCTYPE") as err:
        load_call_log(f)
    assert "evil.xml" in str(err.value)


def test_xml_truncated_file_names_line(tmp_path):
    f = tmp_path / "calls.xml"
    text = calls_xml('<call number="13800138000" duration="1" date="1772379000000" type="1" />')
    f.write_text(text[: text.rindex("</calls>")] + '  <call number="1', encoding="utf-8")
    with pytest.raises(InputError, match=r"第5行") as err:
        load_call_log(f)
    assert "calls.xml" in str(err.value)


@pytest.mark.parametrize("attrs,message", [
    ('number="1" duration="1" date="yesterday" type="1"', "毫秒时间戳"),
    ('number="1" duration="1" type="1"', "date"),
    ('number="1" duration="long" date="1772379000000" type="1"', "时长"),
    ('number="1" duration="1" date="1772379000000" type="incomingish"', "通话类型"),
])
def test_xml_bad_entry_names_line(tmp_path, attrs, message):
    f = tmp_path / "calls.xml"
    f.write_text(calls_xml('<call number="1" duration="1" date="1772379000000" type="1" />',
                           f"<call {attrs} />"), encoding="utf-8")
    with pytest.raises(InputError, match=message) as err:
        load_call_log(f)
    assert "第5行" in str(err.value)


def test_xml_unknown_android_code_is_kept_as_other(tmp_path):
    f = tmp_path / "calls.xml"
    f.write_text(calls_xml('<call number="1" duration="1" date="1772379000000" type="100" />'),
                 encoding="utf-8")
    [entry] = load_call_log(f)
    assert entry.type == "other" and not entry.answered and not entry.unanswered


def test_csv_with_header_words_and_codes(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text(
        "number,time,type,duration\n"
        "+86 138-0013-8000,2026-03-01 23:30:00,incoming,65\n"
        "13800138000,2026-03-01T15:31:00Z,3,0\n"
        "13800138000,2026-03-01T23:32:00+08:00,rejected,\n"
        "\n"
        "010-12345678,2026/03/02 08:00,blocked,0\n"
        "13800138000,2026-03-02 09:00:00,2,1:05\n",
        encoding="utf-8",
    )
    log = load_call_log(f)
    assert [(e.number, e.started_at, e.type, e.duration) for e in log] == [
        ("13800138000", datetime(2026, 3, 1, 23, 30, tzinfo=CST), "incoming", 65),
        ("13800138000", datetime(2026, 3, 1, 23, 31, tzinfo=CST), "missed", 0),
        ("13800138000", datetime(2026, 3, 1, 23, 32, tzinfo=CST), "rejected", 0),
        ("01012345678", datetime(2026, 3, 2, 8, 0, tzinfo=CST), "blocked", 0),
        ("13800138000", datetime(2026, 3, 2, 9, 0, tzinfo=CST), "outgoing", 65),
    ]
    assert log[3].ref == "log.csv:6"


def test_csv_without_header_in_gbk_with_chinese_types(tmp_path):
    f = tmp_path / "通话记录.csv"
    f.write_bytes("13800138000,2026-03-01 10:00:00,未接来电,0\n"
                  "13800138000,2026-03-01 10:05:00,已拒接,0\n".encode("gbk"))
    log = load_call_log(f)
    assert [e.type for e in log] == ["missed", "rejected"]


def test_csv_time_zone_override(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("13800138000,2026-03-01 10:00:00,missed,0\n", encoding="utf-8")
    [entry] = load_call_log(f, tz="UTC")
    assert entry.started_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("row,message", [
    ("13800138000,昨天晚上,missed,0", "时间"),
    ("13800138000,2026-03-01 10:00:00,挂了,0", "通话类型"),
    ("13800138000,2026-03-01 10:00:00,missed,很久", "时长"),
    ("13800138000", "四列"),
])
def test_csv_bad_row_names_file_and_line(tmp_path, row, message):
    f = tmp_path / "log.csv"
    f.write_text(f"number,time,type,duration\n13800138000,2026-03-01 09:00:00,1,3\n{row}\n",
                 encoding="utf-8")
    with pytest.raises(InputError, match=message) as err:
        load_call_log(f)
    assert "第3行" in str(err.value) and "log.csv" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="找不到"):
        load_call_log(tmp_path / "nope.xml")
