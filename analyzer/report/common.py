"""What every writer shares: completing a report, times, quoting the words said, provenance."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from .. import callaudit_version, legal, verdict
from ..types import CATEGORIES, RISK_LEVEL_ZH, SEVERITY_ZH, CallReport, Finding, Segment

CHANNEL_ZH = {0: "左声道", 1: "右声道"}

# Call times from the file's modification time are unreliable (copying resets them): a wrong
# date would pick the wrong version of the law, so such dates count as unknown.
TRUSTED_TIME_SOURCES = frozenset({"filename", "calllog", "user"})


def mmss(seconds: float, round_up: bool = False) -> str:
    """mm:ss (minutes may exceed 59). Starts are floored, ends rounded up, so the shown span
    always covers the finding."""
    s = max(0, math.ceil(seconds) if round_up else math.floor(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


def span(start: float, end: float) -> str:
    return f"{mmss(start)}–{mmss(end, round_up=True)}"


def call_date_of(report: CallReport) -> date | None:
    """The call's date from file-name/call-log metadata (extra["call"]), if trustworthy."""
    call = report.extra.get("call")
    if not isinstance(call, dict) or call.get("source") not in TRUSTED_TIME_SOURCES:
        return None
    started = call.get("started_at")
    try:
        return datetime.fromisoformat(started).date() if isinstance(started, str) else None
    except ValueError:
        return None


def provenance(report: CallReport) -> dict[str, Any]:
    """What produced this report. The pipeline's report.extra["provenance"] wins; missing
    fields are filled from the report itself."""
    base: dict[str, Any] = {
        "callaudit_version": callaudit_version(),
        "asr_model": report.asr.model,
        "asr_model_sha256": report.asr.model_sha256,
        "rules_sha256": None,
        "classifier_sha256": None,
        "legal_sha256": legal.load().sha256,
    }
    given = report.extra.get("provenance")
    if isinstance(given, dict):
        base.update(given)
    return base


def complete(report: CallReport) -> CallReport:
    """A copy with legal basis, verdict and provenance filled in where earlier stages did not
    (legal basis by the date in extra["call"], else as date unknown). The input is unchanged."""
    out = copy.deepcopy(report)
    legal_info = out.extra.get("legal")
    if not isinstance(legal_info, dict) or any(not f.legal_basis for f in out.findings):
        day = call_date_of(out)
        if isinstance(legal_info, dict) and legal_info.get("call_date"):
            day = date.fromisoformat(legal_info["call_date"])
        legal.annotate(out, day)
    if not isinstance(out.extra.get("verdict"), dict):
        verdict.attach(out)
    out.extra["provenance"] = provenance(out)
    return out


def ordered_dict(report: CallReport) -> dict[str, Any]:
    """report.to_dict() with the fixed fields first and the added ones in a stable order."""
    d = report.to_dict()
    fixed = [k for k in d if k not in report.extra]
    added = sorted(k for k in d if k in report.extra)
    return {k: d[k] for k in fixed + added}


# --- quoting the words said --------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """One segment's text with the character spans of the evidence in it."""

    segment: Segment
    marks: list[tuple[int, int]]

    def pieces(self) -> list[tuple[str, bool]]:
        """The text cut into (piece, is_evidence) in order."""
        out, pos = [], 0
        for a, b in self.marks:
            if a > pos:
                out.append((self.segment.text[pos:a], False))
            out.append((self.segment.text[a:b], True))
            pos = b
        if pos < len(self.segment.text):
            out.append((self.segment.text[pos:], False))
        return out

    def marked(self, left: str = "【", right: str = "】") -> str:
        return "".join(f"{left}{p}{right}" if hit else p for p, hit in self.pieces())


def _find_all(text: str, term: str) -> list[tuple[int, int]]:
    """Spans of term in text; spaces in the text are ignored (ASR puts them anywhere)."""
    term = "".join(term.split())
    if not term:
        return []
    kept = [i for i, ch in enumerate(text) if not ch.isspace()]
    squeezed = "".join(text[i] for i in kept)
    spans, at = [], squeezed.find(term)
    while at >= 0:
        spans.append((kept[at], kept[at + len(term) - 1] + 1))
        at = squeezed.find(term, at + len(term))
    return spans


def evidence_spans(text: str, evidence: list[str]) -> list[tuple[int, int]]:
    """Merged, sorted spans of every evidence term found in text."""
    spans = sorted(s for term in evidence for s in _find_all(text, term))
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def finding_segments(report: CallReport, finding: Finding) -> list[Segment]:
    """The segments a finding was found in (by index; else those overlapping its time)."""
    by_index = {s.index: s for s in report.segments}
    segs = [by_index[i] for i in finding.segment_indices if i in by_index]
    return segs or segments_between(report, finding.start, finding.end, finding.channel)


def segments_between(report: CallReport, start: float, end: float, channel: int | None
                     ) -> list[Segment]:
    """The segments overlapping start-end on the channel (None: any)."""
    return [s for s in report.segments if s.start < end and s.end > start
            and (channel is None or s.channel is None or s.channel == channel)]


def quotes(report: CallReport, finding: Finding) -> list[Quote]:
    return [Quote(s, evidence_spans(s.text, finding.evidence)) for s in finding_segments(report, finding)]


def claim_segments(report: CallReport) -> list[tuple[dict[str, Any], list[Segment]]]:
    """Each unverified claim (a lawyer or legal staff naming themselves, with nothing else
    found: report.extra["unverified_claims"]) with the segments it was said in."""
    return [(claim, segments_between(report, claim["start"], claim["end"], claim.get("channel")))
            for claim in report.extra.get("unverified_claims") or []]


# What a claim to check means, in per-call reports and the dossier alike.
CLAIM_NOTE = ("来电者自称律师、律师事务所或法务人员：属实就不违规，录音无法核实。"
              "可自己查找借款机构的官方客服电话，核实对方是否受其委托。")


def unmatched_evidence(qs: list[Quote], evidence: list[str]) -> list[str]:
    """Evidence terms not found in any quoted segment (shown separately, never lost)."""
    return [e for e in evidence if e.strip() and not any(_find_all(q.segment.text, e) for q in qs)]


def segment_marks(report: CallReport) -> dict[int, list[tuple[int, int]]]:
    """For the transcript view: evidence spans per segment index, over all findings."""
    out: dict[int, list[str]] = {}
    for f in report.findings:
        for s in finding_segments(report, f):
            out.setdefault(s.index, []).extend(f.evidence)
    texts = {s.index: s.text for s in report.segments}
    return {i: evidence_spans(texts[i], ev) for i, ev in out.items()}


# --- short labels --------------------------------------------------------------------------


def category_zh(cat: str) -> str:
    return CATEGORIES.get(cat, cat)


def severity_zh(sev: str) -> str:
    return SEVERITY_ZH.get(sev, sev)


def risk_zh(level: str) -> str:
    return RISK_LEVEL_ZH.get(level, level)


def basis_title(b: dict[str, Any]) -> str:
    """e.g. 《治安管理处罚法》第42条（一）"""
    return f"{b.get('instrument', '')}{b.get('article') or ''}"


def basis_short(b: dict[str, Any]) -> str:
    """e.g. 《治安管理处罚法》第42条（一）〔法律〕"""
    return f"{basis_title(b)}〔{b.get('strength_zh') or b.get('strength', '')}〕"


def category_channels(cat: str) -> list[dict[str, Any]]:
    return legal.channels_for([cat]) if cat in CATEGORIES else []


def channel_label(ch: dict[str, Any]) -> str:
    return ch["phone"] or ch["name"]


def bases_by_category(report: CallReport) -> dict[str, list[dict[str, Any]]]:
    """Each category found, with its citations (no repeats), in order of first finding."""
    out: dict[str, list[dict[str, Any]]] = {}
    for f in report.findings:
        seen = out.setdefault(f.category, [])
        for b in f.legal_basis:
            if b not in seen:
                seen.append(b)
    return out


def lender_right(report: CallReport) -> dict[str, Any]:
    info = report.extra.get("legal")
    if isinstance(info, dict) and isinstance(info.get("lender_right"), dict):
        return info["lender_right"]
    return legal.lender_right()


def lender_right_text(report: CallReport) -> str:
    b = lender_right(report)
    return (
        f"借款机构有权依法要求还款（{basis_title(b)}：“{b.get('quote')}”）。"
        "本报告只评估催收方式是否合法合规，不涉及债务本身。"
    )
