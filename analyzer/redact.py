"""Mask phone, ID-card and bank-card numbers in a report before it is shared.

Whisper writes numbers as digits, full-width digits or Chinese numerals read digit by digit
(一三八零零一三八……, 幺 for 1), often grouped with spaces or dashes. Matching runs on a copy of
the text where every such character is mapped one-to-one to an ASCII digit, so spans found there
are spans of the original. The last 4 digits stay visible (as written); separators are kept.
Local landline numbers without an area code (7–8 digits) are left alone: in speech they cannot
be told apart from amounts.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

from .types import CallReport, Finding, Segment

KEEP_LAST = 4
MASK = "*"

_DIGIT_CHARS = {
    **{str(i): str(i) for i in range(10)},
    **{chr(0xFF10 + i): str(i) for i in range(10)},  # full-width ０-９
    **dict(zip("零〇○一二三四五六七八九幺", "0001234567891", strict=True)),
}
_X_CHARS = frozenset("XxＸｘ")  # check digit of an ID-card number
_SEP_CHARS = frozenset(" \u3000-－‐‑–—")
_PLUS_CHARS = frozenset("+＋")

_S = "-{0,3}"  # a separator between digits: up to 3 spaces/dashes (e.g. "138 - 0013")
_PATTERNS = [
    # ID card: 17 digits + digit or X.
    re.compile(rf"(?<![\dX])\d(?:{_S}\d){{16}}{_S}[\dX](?![\dX])"),
    # Bank card: 16-19 digits.
    re.compile(rf"(?<!\d)\d(?:{_S}\d){{15,18}}(?![\dX])"),
    # Mobile: 1[3-9] + 9 digits, optionally after +86 / 0086 / 86.
    re.compile(rf"(?<!\d)(?:(?:\+|00)?86{_S})?1{_S}[3-9](?:{_S}\d){{9}}(?!\d)"),
    # Landline with area code: 0 + 2-3 digits, then 7-8 digits; the area code may be in ( ).
    re.compile(rf"(?<!\d)\(?0\d{{2,3}}\)?{_S}\d(?:{_S}\d){{6,7}}(?!\d)"),
]


def _shadow(text: str) -> str:
    """Same length as text: digits -> 0-9, X -> X, separators -> '-', '+' -> '+', else '#'."""
    out = []
    for ch in text:
        if ch in _DIGIT_CHARS:
            out.append(_DIGIT_CHARS[ch])
        elif ch in _X_CHARS:
            out.append("X")
        elif ch in _SEP_CHARS:
            out.append("-")
        elif ch in _PLUS_CHARS:
            out.append("+")
        elif ch in "(（":
            out.append("(")
        elif ch in ")）":
            out.append(")")
        else:
            out.append("#")
    return "".join(out)


def redact_text(text: str) -> str:
    """The text with every phone/ID/bank-card number masked except its last 4 digits."""
    if not text:
        return text
    shadow = _shadow(text)
    masked = list(text)
    taken = [False] * len(text)
    for pattern in _PATTERNS:
        for m in pattern.finditer(shadow):
            if any(taken[m.start() : m.end()]):
                continue
            digits = [i for i in range(m.start(), m.end()) if shadow[i].isdigit() or shadow[i] == "X"]
            for i in digits[:-KEEP_LAST]:
                masked[i] = MASK
            for i in range(m.start(), m.end()):
                taken[i] = True
    return "".join(masked)


def _redact_any(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [_redact_any(v) for v in value]
    if isinstance(value, dict):
        return {
            k: v if _keep_key(k) else _redact_any(v) for k, v in value.items()
        }
    return value


def _keep_key(key: Any) -> bool:
    # Hashes and provenance identify files and models, not people; masking them breaks checks.
    return isinstance(key, str) and (key == "provenance" or "sha256" in key)


def _redact_segment(seg: Segment) -> Segment:
    return replace(seg, text=redact_text(seg.text))


def _redact_finding(f: Finding) -> Finding:
    return replace(
        f,
        evidence=[redact_text(e) for e in f.evidence],
        explanation=redact_text(f.explanation),
        source=list(f.source),
        segment_indices=list(f.segment_indices),
        legal_basis=copy.deepcopy(f.legal_basis),
    )


def redact(report: CallReport) -> CallReport:
    """A masked copy of the report: segment texts, evidence, explanations, the file name and
    any text in extra (except provenance and hashes). The original is not modified."""
    extra = _redact_any(copy.deepcopy(report.extra))
    extra["redacted"] = True
    return replace(
        report,
        file=redact_text(report.file),
        segments=[_redact_segment(s) for s in report.segments],
        findings=[_redact_finding(f) for f in report.findings],
        extra=extra,
    )
