"""Import a phone's call log: who called when, and whether the call was answered.

Recordings exist only for answered calls; the log also shows missed, rejected and blocked
attempts, which the "more than 6 attempts a day" check needs. Two formats:

- the XML of "SMS Backup & Restore" (calls.xml): `<call number= duration= date= type= .../>`,
  date in epoch milliseconds, type an Android CallLog code;
- a simple CSV `number,time,type,duration` (header optional; time ISO 8601 or
  `yyyy-MM-dd HH:mm:ss`, read in `tz` when it has no offset; type a word or an Android code).

The XML is read with expat directly and any DOCTYPE is refused: the exporter never writes
one, and refusing it rules out entity-expansion attacks without extra dependencies.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any
from xml.parsers import expat

from .errors import InputError
from .filenames import DEFAULT_TZ, is_phone_like, normalize_number, resolve_tz

# Android CallLog.Calls.TYPE codes.
ANDROID_TYPES: dict[int, str] = {
    1: "incoming",
    2: "outgoing",
    3: "missed",
    4: "voicemail",
    5: "rejected",
    6: "blocked",
    7: "answered_externally",
}
CALL_TYPE_ZH: dict[str, str] = {
    "incoming": "已接来电",
    "outgoing": "去电",
    "missed": "未接来电",
    "voicemail": "语音信箱",
    "rejected": "已拒接",
    "blocked": "已拦截",
    "answered_externally": "在其他设备接听",
    "other": "其他",
}
# Calls that reached the user without being answered: what the attempts rule counts.
UNANSWERED_TYPES = frozenset({"missed", "voicemail", "rejected", "blocked"})

_TYPE_WORDS: dict[str, str] = {
    **{w: "incoming" for w in ("incoming", "in", "received", "answered", "来电", "呼入",
                               "已接", "已接来电", "接听")},
    **{w: "outgoing" for w in ("outgoing", "out", "dialed", "去电", "呼出", "已拨",
                               "已拨电话", "拨出")},
    **{w: "missed" for w in ("missed", "unanswered", "未接", "未接来电", "未接听")},
    **{w: "voicemail" for w in ("voicemail", "语音信箱", "语音留言")},
    **{w: "rejected" for w in ("rejected", "declined", "拒接", "已拒接", "拒绝")},
    **{w: "blocked" for w in ("blocked", "拦截", "已拦截", "骚扰拦截")},
}

_CSV_HEADERS: dict[str, tuple[str, ...]] = {
    "number": ("number", "phone", "号码", "电话号码", "电话"),
    "time": ("time", "date", "datetime", "时间", "日期", "通话时间"),
    "type": ("type", "类型", "通话类型"),
    "duration": ("duration", "时长", "通话时长"),
}


@dataclass(frozen=True)
class CallLogEntry:
    """One line of the call log. `ref` is "file:line" for citing it as evidence."""

    number: str | None
    started_at: datetime
    type: str  # a value of ANDROID_TYPES, or "other"
    duration: int  # seconds
    contact: str | None = None
    ref: str = ""

    @property
    def answered(self) -> bool:
        return self.type in ("incoming", "outgoing", "answered_externally")

    @property
    def unanswered(self) -> bool:
        return self.type in UNANSWERED_TYPES

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "started_at": self.started_at.isoformat(),
            "type": self.type,
            "type_zh": CALL_TYPE_ZH.get(self.type, "其他"),
            "duration": self.duration,
            "contact": self.contact,
            "ref": self.ref,
        }


def load_call_log(path: str | Path, tz: str | tzinfo | None = DEFAULT_TZ) -> list[CallLogEntry]:
    """Entries of an SMS Backup & Restore calls.xml or a CSV log, sorted by time.

    Raises errors.InputError naming the file (and line) for a missing or malformed file.
    """
    zone = resolve_tz(tz)
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(str(p), "找不到通话记录文件，请检查路径") from None
    except OSError as e:
        raise InputError(str(p), f"无法读取通话记录文件（{e.strerror or e}）") from None
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if p.suffix.lower() == ".xml" or (p.suffix.lower() != ".csv" and head == b"<"):
        entries = _parse_xml(data, str(p), zone)
    else:
        entries = _parse_csv(data, str(p), zone)
    return sorted(entries, key=lambda e: e.started_at)


def _number(raw: str | None) -> str | None:
    # Android writes "-1"/"-2"/"-3" or "" for unknown, private and payphone numbers.
    if raw and is_phone_like(raw) and not raw.strip().startswith("-"):
        return normalize_number(raw)
    return None


def _type(raw: str) -> str | None:
    s = raw.strip().lower()
    if s.isdigit():
        return ANDROID_TYPES.get(int(s), "other")
    return _TYPE_WORDS.get(s)


# --- XML --------------------------------------------------------------------------------


class _Refused(Exception):
    pass


def _parse_xml(data: bytes, name: str, zone: tzinfo) -> list[CallLogEntry]:
    entries: list[CallLogEntry] = []
    parser = expat.ParserCreate()

    def line() -> int:
        return parser.CurrentLineNumber

    def refuse(*_args: Any) -> None:
        raise _Refused()

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag == "call":
            entries.append(_xml_entry(attrs, name, line(), zone))

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except _Refused:
        raise InputError(
            name, f"第{line()}行：文件含有 DOCTYPE/实体声明，出于安全原因拒绝读取；"
            "请使用 SMS Backup & Restore 原样导出的 calls.xml"
        ) from None
    except expat.ExpatError as e:
        raise InputError(
            name, f"第{e.lineno}行：XML 格式错误（{expat.ErrorString(e.code)}），"
            "文件可能不完整，请重新导出"
        ) from None
    return entries


def _xml_entry(attrs: dict[str, str], name: str, line: int, zone: tzinfo) -> CallLogEntry:
    where = f"第{line}行"
    try:
        ms = int(attrs["date"].strip())
        at = datetime.fromtimestamp(ms / 1000, timezone.utc).astimezone(zone)
    except KeyError:
        raise InputError(name, f"{where}：<call> 缺少 date 属性") from None
    except (ValueError, OverflowError, OSError):
        raise InputError(
            name, f"{where}：date 应为毫秒时间戳，实际为“{attrs['date'][:40]}”"
        ) from None
    kind = _type(attrs.get("type", ""))
    if kind is None:
        raise InputError(name, f"{where}：无法识别的通话类型“{attrs.get('type', '')[:20]}”")
    duration = _duration(attrs.get("duration", ""), name, where)
    contact = (attrs.get("contact_name") or "").strip()
    if contact in ("", "(Unknown)", "null"):
        contact = ""
    return CallLogEntry(_number(attrs.get("number")), at, kind, duration, contact or None,
                        f"{Path(name).name}:{line}")


# --- CSV --------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    # Excel on Chinese Windows saves CSV as GBK; everything else is UTF-8 (maybe with BOM).
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def _parse_csv(data: bytes, name: str, zone: tzinfo) -> list[CallLogEntry]:
    rows = csv.reader(io.StringIO(_decode(data), newline=""))
    columns = {"number": 0, "time": 1, "type": 2, "duration": 3}
    entries: list[CallLogEntry] = []
    first = True
    try:
        for row in rows:
            line = rows.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if first:
                first = False
                header = _header(row, name, line)
                if header is not None:
                    columns = header
                    continue
            entries.append(_csv_entry(row, columns, name, line, zone))
    except csv.Error as e:
        raise InputError(name, f"第{rows.line_num}行：CSV 格式错误（{e}）") from None
    return entries


def _header(row: list[str], name: str, line: int) -> dict[str, int] | None:
    """Column positions from a header row, or None when the first row is data."""
    cells = [c.strip().lower() for c in row]
    found: dict[str, int] = {}
    for key, names in _CSV_HEADERS.items():
        for i, c in enumerate(cells):
            if c in names:
                found[key] = i
                break
    if not found:
        return None
    if "number" not in found or "time" not in found:
        raise InputError(name, f"第{line}行：表头至少需要 number 和 time 两列")
    return found


def _csv_entry(row: list[str], columns: dict[str, int], name: str, line: int,
               zone: tzinfo) -> CallLogEntry:
    where = f"第{line}行"

    def cell(key: str) -> str:
        i = columns.get(key)
        return row[i].strip() if i is not None and i < len(row) else ""

    if len(row) < 2:
        raise InputError(name, f"{where}：应为“号码,时间,类型,时长”四列")
    at = _time(cell("time"), zone)
    if at is None:
        raise InputError(
            name, f"{where}：无法识别的时间“{cell('time')[:40]}”，"
            "请使用 2026-03-01 23:30:00 或 ISO 8601 格式"
        )
    raw_type = cell("type")
    kind = _type(raw_type) if raw_type else "incoming"
    if kind is None:
        raise InputError(
            name, f"{where}：无法识别的通话类型“{raw_type[:20]}”，"
            "可用 incoming/outgoing/missed/voicemail/rejected/blocked 或 1-6"
        )
    duration = _duration(cell("duration"), name, where)
    return CallLogEntry(_number(cell("number")), at, kind, duration, None,
                        f"{Path(name).name}:{line}")


_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M")


def _time(text: str, zone: tzinfo) -> datetime | None:
    if not text:
        return None
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    at: datetime | None = None
    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        for fmt in _TIME_FORMATS:
            try:
                at = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if at is None:
        return None
    return at.replace(tzinfo=zone) if at.tzinfo is None else at.astimezone(zone)


_CLOCK_RE = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})$")


def _duration(text: str, name: str, where: str) -> int:
    """Seconds from "75", "75.4", "1:15" or "0:01:15"; empty means 0."""
    text = text.strip()
    if not text:
        return 0
    m = _CLOCK_RE.match(text)
    if m:
        return int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 10**7:
        raise InputError(name, f"{where}：时长应为秒数，实际为“{text[:20]}”")
    return int(round(seconds))
