"""Plain-text report for a terminal: Chinese, for a layperson, nothing they do not need."""

from __future__ import annotations

from pathlib import PurePath

from ..types import CallReport
from . import common as c

RULE = "═" * 48
MAX_BASIS_PER_FINDING = 3  # the full list is in the 法律依据 section below


def render(report: CallReport) -> str:
    v = report.extra["verdict"]
    lines = [
        RULE,
        f"录音文件：{PurePath(report.file).name}",
        f"通话时长：{c.mmss(report.duration, round_up=True)}",
        f"风险评分：{report.risk.score} / 100（{c.risk_zh(report.risk.level)}）",
    ]
    if report.extra.get("redacted"):
        lines.append("（电话号码、身份证号、银行卡号已脱敏）")
    lines += ["", f"结论：{v['summary']}", ""]

    if report.findings:
        lines.append(f"发现 {len(report.findings)} 处疑似违规：")
        for n, f in enumerate(report.findings, 1):
            lines += [""] + _finding(report, n, f)
        lines += ["", "法律依据："]
        for cat, bases in c.bases_by_category(report).items():
            lines.append(f"  【{c.category_zh(cat)}】")
            for b in bases:
                lines.append(f"    · {_basis_line(b)}")
    else:
        lines.append("未发现违规内容。")
    claims = c.claim_segments(report)
    if claims:
        lines += ["", f"需要核实的自称（{len(claims)} 处）：{c.CLAIM_NOTE}"]
        for claim, segs in claims:
            said = " ".join(s.text for s in segs)
            lines.append(f"  · {c.span(claim['start'], claim['end'])}" + (f"  “{said}”" if said else ""))

    if v["advice"]:
        lines += ["", "建议："] + [f"  · {a}" for a in v["advice"]]
    if v["channels"]:
        lines += ["", "投诉/求助渠道："]
        lines += [f"  · {_channel_name(ch)}：{ch['use']}" for ch in v["channels"]]
    lines += ["", f"说明：{c.lender_right_text(report)}"]
    return "\n".join(lines)


def _finding(report: CallReport, n: int, f) -> list[str]:
    out = [f"{n}. {c.span(f.start, f.end)}  {c.category_zh(f.category)}（{c.severity_zh(f.severity)}）"]
    qs = c.quotes(report, f)
    said = " ".join(q.marked() for q in qs)
    if said:
        out.append(f"   原话：“{said}”")
    missing = c.unmatched_evidence(qs, f.evidence)
    if missing:
        out.append(f"   关键词：{'、'.join(missing)}")
    if f.legal_basis:
        shown = [c.basis_short(b) for b in f.legal_basis[:MAX_BASIS_PER_FINDING]]
        more = " 等" if len(f.legal_basis) > MAX_BASIS_PER_FINDING else ""
        out.append(f"   依据：{'；'.join(shown)}{more}")
    chans = c.category_channels(f.category)
    if chans:
        out.append(f"   投诉：{'、'.join(c.channel_label(ch) for ch in chans)}")
    return out


def _channel_name(ch: dict) -> str:
    return f"{ch['phone']} {ch['name']}" if ch["phone"] else ch["name"]


def _basis_line(b: dict) -> str:
    line = c.basis_short(b)
    if b.get("quote"):
        line += f"：“{b['quote']}”"
    elif b.get("summary"):
        line += f"：{b['summary']}"
    if b.get("note"):
        line += f"（注：{b['note']}）"
    return line


def render_many(reports: list[CallReport]) -> str:
    parts = [render(r) for r in reports]
    if len(reports) > 1:
        flagged = sum(1 for r in reports if r.findings)
        scams = sum(1 for r in reports if r.extra["verdict"]["likely_scam"])
        tail = f"共 {len(reports)} 个录音，其中 {flagged} 个发现疑似违规"
        tail += f"，{scams} 个疑似诈骗。" if scams else "。"
        parts.append(RULE + "\n" + tail)
    return "\n\n".join(parts)
