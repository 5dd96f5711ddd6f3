"""Markdown report, to paste into a complaint or a lawyer's brief: tables of findings with
times, quotes and legal basis; the file's sha256 and what produced the report."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

from ..types import CallReport
from . import common as c

# Backslash-escape every ASCII character Markdown could read as syntax; newlines become spaces
# so a transcript line can never break a table row.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#])")


def esc(text: Any) -> str:
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def code(text: Any) -> str:
    return f"`{str(text).replace('`', '')}`"


def _quote_md(report: CallReport, f) -> str:
    qs = c.quotes(report, f)
    said = " ".join(
        "".join(f"**{esc(p)}**" if hit else esc(p) for p, hit in q.pieces()) for q in qs
    )
    missing = c.unmatched_evidence(qs, f.evidence)
    if missing:
        said += f"（关键词：{esc('、'.join(missing))}）"
    return said or "—"


def render(report: CallReport, heading_level: int = 1) -> str:
    h = "#" * heading_level
    v = report.extra["verdict"]
    prov = report.extra["provenance"]
    call_date = (report.extra.get("legal") or {}).get("call_date")
    rows = [
        ("文件", esc(PurePath(report.file).name)),
        ("SHA-256", code(report.sha256)),
        ("通话时长", c.mmss(report.duration, round_up=True)),
        ("通话日期", esc(call_date) if call_date else "不明"),
        ("风险", f"{report.risk.score} / 100（{c.risk_zh(report.risk.level)}）"),
        ("疑似诈骗", "是" if v["likely_scam"] else "否"),
    ]
    if report.extra.get("redacted"):
        rows.append(("脱敏", "电话号码、身份证号、银行卡号已隐去（保留后4位）"))
    out = [f"{h} 催收通话审查报告：{esc(PurePath(report.file).name)}", ""]
    out += ["| 项目 | 内容 |", "|---|---|"] + [f"| {k} | {val} |" for k, val in rows]
    out += ["", f"{h}# 结论", "", esc(v["summary"]), ""]

    out += [f"{h}# 发现的问题（{len(report.findings)} 处）", ""]
    if report.findings:
        out += ["| # | 时间 | 类别 | 严重程度 | 原话 | 法律依据 |", "|---|---|---|---|---|---|"]
        for n, f in enumerate(report.findings, 1):
            basis = "；".join(esc(c.basis_short(b)) for b in f.legal_basis) or "—"
            out.append(
                f"| {n} | {c.span(f.start, f.end)} | {esc(c.category_zh(f.category))} | "
                f"{esc(c.severity_zh(f.severity))} | {_quote_md(report, f)} | {basis} |"
            )
        out += ["", f"{h}# 法律依据", ""]
        for cat, bases in c.bases_by_category(report).items():
            out += [f"{h}## {esc(c.category_zh(cat))}", ""]
            for b in bases:
                line = f"- {esc(c.basis_title(b))}（{esc(b.get('strength_zh', ''))}）"
                if b.get("quote"):
                    line += f"：“{esc(b['quote'])}”"
                elif b.get("summary"):
                    line += f"：{esc(b['summary'])}"
                if b.get("note"):
                    line += f" *注：{esc(b['note'])}*"
                out.append(line)
            out.append("")
    else:
        out += ["未发现违规内容。", ""]
    claims = c.claim_segments(report)
    if claims:
        out += [f"{h}# 需要核实的自称（{len(claims)} 处）", "", esc(c.CLAIM_NOTE), "",
                "| # | 时间 | 原话 |", "|---|---|---|"]
        for n, (claim, segs) in enumerate(claims, 1):
            said = " ".join(esc(s.text) for s in segs) or "—"
            out.append(f"| {n} | {c.span(claim['start'], claim['end'])} | {said} |")
        out.append("")

    if v["advice"]:
        out += [f"{h}# 建议", ""] + [f"- {esc(a)}" for a in v["advice"]] + [""]
    if v["channels"]:
        out += [f"{h}# 投诉/求助渠道", "", "| 电话 | 机构 | 受理范围 |", "|---|---|---|"]
        out += [
            f"| {esc(ch['phone'] or '—')} | {esc(ch['name'])} | {esc(ch['use'])} |"
            for ch in v["channels"]
        ]
        out.append("")
    out += [f"{h}# 说明", "", esc(c.lender_right_text(report)), ""]

    out += [f"{h}# 通话转写", ""]
    for s in report.segments:
        who = f" {c.CHANNEL_ZH[s.channel]}" if s.channel in c.CHANNEL_ZH else ""
        out.append(f"- \\[{c.span(s.start, s.end)}\\]{who} {esc(s.text)}")
    out += ["", f"{h}# 技术信息", "", "| 项目 | 值 |", "|---|---|"]
    for key, label in (
        ("callaudit_version", "callaudit 版本"),
        ("asr_model", "语音识别模型"),
        ("asr_model_sha256", "语音识别模型 SHA-256"),
        ("rules_sha256", "规则 SHA-256"),
        ("classifier_sha256", "分类器 SHA-256"),
        ("legal_sha256", "法律依据数据 SHA-256"),
    ):
        value = prov.get(key)
        out.append(f"| {label} | {code(value) if value else '—'} |")
    return "\n".join(out) + "\n"


def render_many(reports: list[CallReport]) -> str:
    if len(reports) == 1:
        return render(reports[0])
    out = [f"# 催收通话审查报告（{len(reports)} 个录音）", ""]
    out += ["| # | 文件 | 时长 | 风险 | 发现 | 疑似诈骗 |", "|---|---|---|---|---|---|"]
    for n, r in enumerate(reports, 1):
        out.append(
            f"| {n} | {esc(PurePath(r.file).name)} | {c.mmss(r.duration, round_up=True)} | "
            f"{r.risk.score}（{c.risk_zh(r.risk.level)}） | {len(r.findings)} | "
            f"{'是' if r.extra['verdict']['likely_scam'] else '否'} |"
        )
    out.append("")
    return "\n".join(out) + "\n" + "\n".join(render(r, heading_level=2) for r in reports)
