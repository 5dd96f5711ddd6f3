"""Call metadata (number, contact, start time, direction) from a recording's file name.

Phones name call recordings in a handful of fixed schemes (see shared/phone-archives.md).
Names carry device-local time without a zone, except BCR: we read them in `tz`
(default Asia/Shanghai). A name that matches no scheme falls back to the file's
modification time, which copying may have reset, so `source` says which one was used.

parse_filename() is total: it returns a CallMeta for any input and never raises.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import PurePath
from typing import Any
from zoneinfo import ZoneInfo

from .errors import CallauditError

DEFAULT_TZ = "Asia/Shanghai"

# Extensions stripped before matching. Only these: a BCR name without extension
# ("20240903_144043.044+0200_in_1380...") contains a dot that is not an extension.
AUDIO_EXTENSIONS = frozenset(
    "mp3 amr awb m4a aac mp4 3gp 3gpp wav flac ogg oga opus wma webm caf mka".split()
)

MAX_NAME = 255

SCHEMES = ("bcr", "cube_acr", "samsung", "vivo", "miui", "huawei", "oppo")

# MIUI writes a localized prefix and "@" before the display name.
_MIUI_PREFIXES = ("通话录音", "通話錄音", "call recording", "callrecording", "录音")


@dataclass(frozen=True)
class CallMeta:
    """What a recording's name (or, failing that, its mtime) says about the call.

    number: normalized national number ("13800138000", "01012345678"), "+..." for
        foreign numbers, None when the name has none.
    started_at: timezone-aware; None only when neither name nor file gave a time.
    source: "filename", "mtime", or "unknown" (no time at all).
    scheme: one of SCHEMES, or None when no scheme matched.
    direction: "in", "out", "conference" (BCR only), else None.
    """

    number: str | None
    contact: str | None
    started_at: datetime | None
    scheme: str | None
    source: str
    direction: str | None = None
    file: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "contact": self.contact,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "source": self.source,
            "scheme": self.scheme,
            "direction": self.direction,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], file: str = "") -> CallMeta:
        """Rebuild from to_dict() output (e.g. the `call` of a saved report)."""
        started = d.get("started_at")
        try:
            started_at = datetime.fromisoformat(started) if isinstance(started, str) else None
        except ValueError:
            started_at = None
        return cls(
            number=d.get("number"),
            contact=d.get("contact"),
            started_at=started_at,
            scheme=d.get("scheme"),
            source=d.get("source") or ("unknown" if started_at is None else "filename"),
            direction=d.get("direction"),
            file=file,
        )


# --- time zones -----------------------------------------------------------------------

_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def resolve_tz(tz: str | tzinfo | None = DEFAULT_TZ) -> tzinfo:
    """An IANA name ("Asia/Shanghai"), an offset ("+08:00", "UTC+8") or a tzinfo."""
    if tz is None:
        tz = DEFAULT_TZ
    if isinstance(tz, tzinfo):
        return tz
    name = str(tz).strip()
    m = _OFFSET_RE.match(name)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours <= 14 and minutes < 60:
            return timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError on odd keys
        # China has had no daylight saving since 1991: a fixed offset is exact when the
        # system has no tz database (Windows without the tzdata package).
        if name in ("Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC"):
            return timezone(timedelta(hours=8), "CST")
        raise CallauditError(
            f"无法识别的时区：{name}。请使用 IANA 时区名（如 Asia/Shanghai）或偏移（如 +08:00）"
        ) from None


# --- phone numbers ----------------------------------------------------------------------

_SEPARATORS_RE = re.compile(r"[\s\-‐‑–—()（）.·/]")
_PHONE_RE = re.compile(r"^\+?\d{3,20}$")
_CN_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_CN_NO_TRUNK_RE = re.compile(r"^(?:[48]00\d{7}|\d{3,6})$")


def _clean_number(text: str) -> str:
    return _SEPARATORS_RE.sub("", unicodedata.normalize("NFKC", text))


def is_phone_like(text: str) -> bool:
    """True for strings that are a phone number once spaces/dashes are removed."""
    return bool(_PHONE_RE.match(_clean_number(text)))


def normalize_number(text: str) -> str:
    """Bare national form of a phone number.

    "+86 138-0013-8000", "0086138…", "86138…" -> "13800138000"; "010-12345678" ->
    "01012345678"; "+86 10 1234 5678" -> "01012345678" (the trunk 0 comes back);
    "0015551234567" -> "+15551234567" (MIUI writes "+" as "00"). Anything that is not
    phone-like comes back with separators removed.
    """
    s = _clean_number(text)
    if not _PHONE_RE.match(s):
        return s
    if s.startswith("+"):
        intl = s[1:]
    elif s.startswith("00"):
        intl = s[2:]
    else:
        # A bare "86" prefix is only unambiguous in front of an 11-digit mobile number.
        if len(s) == 13 and s.startswith("86") and _CN_MOBILE_RE.match(s[2:]):
            return s[2:]
        return s
    if intl.startswith("86") and len(intl) > 2:
        national = intl[2:]
        if _CN_MOBILE_RE.match(national) or national.startswith("0"):
            return national
        if _CN_NO_TRUNK_RE.match(national):
            return national  # 400/800 service lines and short numbers take no trunk 0
        return "0" + national  # landline: area code without its trunk 0
    return "+" + intl if intl else s


# --- name schemes -------------------------------------------------------------------------

_D8 = r"(?P<Y>\d{4})(?P<M>\d{2})(?P<D>\d{2})"
_T6 = r"(?P<h>\d{2})(?P<m>\d{2})(?P<s>\d{2})"

_BCR_RE = re.compile(
    rf"^{_D8}_{_T6}(?:\.(?P<frac>\d{{1,9}}))?(?P<off>[+-]\d{{4}}|Z)?"
    r"(?:_(?P<dir>in|out|conference))?(?:_sim(?P<sim>\d+))?(?:_(?P<rest>.*))?$",
    re.IGNORECASE,
)
_CUBE_RE = re.compile(rf"^(?P<src>[A-Za-z]+)_{_D8}-{_T6}(?:_(?P<who>.*))?$")
_SAMSUNG_RE = re.compile(
    r"^(?P<who>.*?)_(?P<y>\d{2})(?P<M>\d{2})(?P<D>\d{2})_" + _T6 + r"$"
)
_SAMSUNG_PREFIX_RE = re.compile(r"^(?:call\s*recording|通话录音|通話錄音|录音)\s*", re.IGNORECASE)
_VIVO_RE = re.compile(
    r"^(?P<who>.+?)\s+(?P<Y>\d{4})-(?P<M>\d{2})-(?P<D>\d{2})\s+"
    r"(?P<h>\d{2})-(?P<m>\d{2})-(?P<s>\d{2})$"
)
_MIUI_RE = re.compile(
    r"^(?:(?P<prefix>[^@()（）]*)@)?(?P<display>.*)[(（](?P<number>[^()（）]*)[)）]_"
    + _D8 + _T6 + r"$"
)
_HUAWEI_RE = re.compile(r"^(?:(?P<name>[^@]*)@)?(?P<who>.+?)_" + _D8 + _T6 + r"$")
_OPPO_RE = re.compile(
    r"^(?P<who>.+?)-(?P<y>\d{2})(?P<M>\d{2})(?P<D>\d{2})(?P<h>\d{2})(?P<m>\d{2})$"
)


def _local(tz: tzinfo, year: int, month: int, day: int, h: int, m: int, s: int,
           micro: int = 0) -> datetime | None:
    """A wall-clock time in tz, or None for impossible dates (e.g. month 13)."""
    if year < 1990:
        return None
    try:
        return datetime(year, month, day, h, m, s, micro, tzinfo=tz)
    except ValueError:
        return None


def _g(m: re.Match[str], key: str) -> int:
    return int(m.group(key))


def _who(text: str | None) -> tuple[str | None, str | None]:
    """Split "number or name" into (number, contact)."""
    text = (text or "").strip()
    if not text:
        return None, None
    if is_phone_like(text):
        return normalize_number(text), None
    return None, text


def _numbers_in(text: str) -> str | None:
    """First number of a list (conference calls name several)."""
    for part in re.split(r"[,，;；、&]", text):
        if is_phone_like(part):
            return normalize_number(part)
    return None


def _parse_bcr(stem: str, tz: tzinfo) -> CallMeta | None:
    m = _BCR_RE.match(stem)
    if not m:
        return None
    frac = (m.group("frac") or "0")[:6].ljust(6, "0")
    zone = tz
    off = m.group("off")
    if off and off.upper() != "Z":
        sign = -1 if off[0] == "-" else 1
        delta = timedelta(hours=int(off[1:3]), minutes=int(off[3:5]))
        if delta >= timedelta(hours=24):
            return None
        zone = timezone(sign * delta)
    elif off:
        zone = timezone.utc
    at = _local(zone, _g(m, "Y"), _g(m, "M"), _g(m, "D"), _g(m, "h"), _g(m, "m"), _g(m, "s"),
                int(frac))
    if at is None:
        return None
    number = contact = None
    rest = [p for p in (m.group("rest") or "").split("_") if p]
    if rest and is_phone_like(rest[0]):
        number = normalize_number(rest.pop(0))
    if rest:
        contact = "_".join(rest)
    direction = m.group("dir").lower() if m.group("dir") else None
    return CallMeta(number, contact, at, "bcr", "filename", direction)


def _parse_cube(stem: str, tz: tzinfo) -> CallMeta | None:
    m = _CUBE_RE.match(stem)
    if not m:
        return None
    at = _local(tz, _g(m, "Y"), _g(m, "M"), _g(m, "D"), _g(m, "h"), _g(m, "m"), _g(m, "s"))
    if at is None:
        return None
    number, contact = _who(m.group("who"))
    return CallMeta(number, contact, at, "cube_acr", "filename")


def _parse_samsung(stem: str, tz: tzinfo) -> CallMeta | None:
    m = _SAMSUNG_RE.match(stem)
    if not m:
        return None
    at = _local(tz, 2000 + _g(m, "y"), _g(m, "M"), _g(m, "D"), _g(m, "h"), _g(m, "m"),
                _g(m, "s"))
    if at is None:
        return None
    number, contact = _who(_SAMSUNG_PREFIX_RE.sub("", m.group("who")))
    return CallMeta(number, contact, at, "samsung", "filename")


def _parse_vivo(stem: str, tz: tzinfo) -> CallMeta | None:
    m = _VIVO_RE.match(stem)
    if not m:
        return None
    at = _local(tz, _g(m, "Y"), _g(m, "M"), _g(m, "D"), _g(m, "h"), _g(m, "m"), _g(m, "s"))
    if at is None:
        return None
    number, contact = _who(m.group("who"))
    return CallMeta(number, contact, at, "vivo", "filename")


def _parse_miui(stem: str, tz: tzinfo) -> CallMeta | None:
    m = _MIUI_RE.match(stem)
    if not m:
        return None
    at = _local(tz, _g(m, "Y"), _g(m, "M"), _g(m, "D"), _g(m, "h"), _g(m, "m"), _g(m, "s"))
    if at is None:
        return None
    number = _numbers_in(m.group("number"))
    display = m.group("display").strip()
    d_number, contact = _who(display)
    if number is None:
        number = d_number
    # A display that is just the number, formatted ("176 8831 4515"), is not a contact.
    return CallMeta(number, contact, at, "miui", "filename")


def _parse_huawei(stem: str, tz: tzinfo) -> CallMeta | None:
    m = _HUAWEI_RE.match(stem)
    if not m:
        return None
    at = _local(tz, _g(m, "Y"), _g(m, "M"), _g(m, "D"), _g(m, "h"), _g(m, "m"), _g(m, "s"))
    if at is None:
        return None
    number, contact = _who(m.group("who"))
    name = (m.group("name") or "").strip()
    scheme = "huawei"
    if name.lower() in _MIUI_PREFIXES:
        scheme = "miui"  # old MIUI: "通话录音@13800138000_2018…" without "(number)"
    elif name:
        contact = name
    return CallMeta(number, contact, at, scheme, "filename")


def _parse_oppo(stem: str, tz: tzinfo) -> CallMeta | None:
    m = _OPPO_RE.match(stem)
    if not m:
        return None
    # ColorOS names carry no seconds: the call started within that minute.
    at = _local(tz, 2000 + _g(m, "y"), _g(m, "M"), _g(m, "D"), _g(m, "h"), _g(m, "m"), 0)
    if at is None:
        return None
    number, contact = _who(m.group("who"))
    return CallMeta(number, contact, at, "oppo", "filename")


# Order matters: the more specific shapes first (BCR and Cube start with digits/letters
# in a fixed layout; MIUI needs "(number)" before the same "_yyyyMMddHHmmss" as Huawei).
_PARSERS = (_parse_bcr, _parse_cube, _parse_samsung, _parse_vivo, _parse_miui,
            _parse_huawei, _parse_oppo)


def _stem(name: str) -> str:
    base, dot, ext = name.rpartition(".")
    if dot and base and ext.lower() in AUDIO_EXTENSIONS:
        return base
    return name


def _mtime(path: str, tz: tzinfo) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(os.stat(path).st_mtime), tz)
    except Exception:  # missing file, NUL or unencodable characters, absurd timestamps
        return None


def parse_filename(path: Any, tz: str | tzinfo | None = DEFAULT_TZ) -> CallMeta:
    """Call metadata from a recording's name; the file's mtime when no scheme matches."""
    zone = resolve_tz(tz)
    try:
        raw = os.fsdecode(os.fspath(path))
    except Exception:
        raw = str(path)
    try:
        name = PurePath(raw).name if raw else ""
        # File systems cap names at 255 bytes; the cap also bounds regex backtracking.
        stem = unicodedata.normalize("NFC", _stem(name[:MAX_NAME])).strip()
    except Exception:
        stem = ""
    for parser in _PARSERS:
        try:
            meta = parser(stem, zone)
        except Exception:  # defensive: a scheme must never break the batch
            meta = None
        if meta is not None:
            return CallMeta(meta.number, meta.contact, meta.started_at, meta.scheme,
                            meta.source, meta.direction, raw)
    at = _mtime(raw, zone) if raw else None
    return CallMeta(None, None, at, None, "mtime" if at else "unknown", None, raw)
