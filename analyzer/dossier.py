"""The archive dossier: summary.json, a self-contained HTML page and a Markdown file.

Input: the per-call report dicts of `callaudit analyze` (with `call{...}` from
analyzer.filenames and `findings[...]`), the archive patterns (analyzer.patterns), the
files that could not be processed, and optionally the phone's call log. The HTML needs
no network: styles and the timeline chart (inline SVG) are in the page.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, tzinfo
from html import escape
from pathlib import Path
from typing import Any

from .calllog import CALL_TYPE_ZH, UNANSWERED_TYPES, CallLogEntry
from .fileio import atomic_write_text
from .filenames import DEFAULT_TZ, parse_filename, resolve_tz
from .patterns import BASIS, DEDUPE_WINDOW, PATTERN_TYPES, Pattern, in_night
from .report.common import CLAIM_NOTE
from .types import CATEGORIES, SEVERITIES, SEVERITY_ZH

SUMMARY_VERSION = "1.0"
WORST_EXCERPTS = 10
MAX_CHART_NUMBERS = 30

TIME_SOURCE_ZH = {"filename": "文件名", "mtime": "文件修改时间（可能不准）", "unknown": "未知"}

DISCLAIMER = (
    "本汇总由程序根据录音自动生成，语音转写和识别可能有误，请以原始录音为准；不构成法律意见。"
    "出借人依法要求还款的权利受法律保护（《民法典》第675条），但催收方式必须合法。"
)
STRENGTH_NOTE = (
    "依据的效力不同：违反推荐性国家标准或行业自律指引，可向出借机构和监管部门投诉；"
    "涉嫌违反法律（如威胁人身安全、冒充公检法），可向公安机关报案。"
)


def _channels() -> list[tuple[str, str]]:
    """Complaint channels from the legal data (one source for reports and dossiers)."""
    from . import legal

    return [(ch.phone or ch.name, f"{ch.name}：{ch.use}") for ch in legal.load().channels.values()]


# --- summary ----------------------------------------------------------------------------


def build_summary(
    reports: Iterable[dict[str, Any]],
    patterns: Iterable[Pattern | dict[str, Any]],
    errors: Iterable[Any] = (),
    *,
    attempts: Iterable[CallLogEntry] | None = None,
    tz: str | tzinfo | None = DEFAULT_TZ,
    night: tuple[time | str, time | str] = ("22:00", "08:00"),
    generated_at: datetime | None = None,
) -> dict[str, Any]:
    """The content of OUT/summary.json.

    errors: {file, reason} dicts, (file, reason) pairs, or exceptions (InputError keeps
    its path). attempts: the call log, listed so the chart can show unanswered calls.
    """
    zone = resolve_tz(tz)
    reports = list(reports)
    pats = [p.to_dict() if isinstance(p, Pattern) else dict(p) for p in patterns]
    flags: dict[str, list[str]] = defaultdict(list)
    for p in pats:
        for f in p.get("files", []):
            if p["type"] not in flags[f]:
                flags[f].append(p["type"])

    calls = []
    for r in reports:
        file = str(r.get("file", ""))
        call = r.get("call") or parse_filename(file, zone).to_dict()
        findings = r.get("findings") or []
        severities = [f.get("severity") for f in findings if f.get("severity") in SEVERITIES]
        calls.append({
            "file": file,
            "sha256": r.get("sha256"),
            "duration": r.get("duration"),
            "number": call.get("number"),
            "contact": call.get("contact"),
            "started_at": call.get("started_at"),
            "time_source": call.get("source"),
            "scheme": call.get("scheme"),
            "direction": call.get("direction"),
            "findings": dict(Counter(f.get("category", "?") for f in findings)),
            "max_severity": max(severities, key=SEVERITIES.index) if severities else None,
            "risk": r.get("risk"),
            "call_flags": flags.get(file, []),
            # A lawyer or legal staff naming themselves, nothing else found (not a finding).
            "unverified_claims": len(r.get("unverified_claims") or []),
        })
    calls.sort(key=lambda c: (_sort_time(c["started_at"]), c["file"]))

    log = [a.to_dict() for a in attempts or ()]
    errs = [_error(e) for e in errors]
    by_category: Counter[str] = Counter()
    for c in calls:
        by_category.update(c["findings"])
    return {
        "schema_version": SUMMARY_VERSION,
        "generated_at": (generated_at or datetime.now(zone)).isoformat(timespec="seconds"),
        "timezone": str(zone),
        "night_window": [_hhmm(night[0]), _hhmm(night[1])],
        "totals": {
            "calls": len(calls),
            "calls_with_findings": sum(1 for c in calls if c["findings"]),
            "calls_with_unverified_claims": sum(1 for c in calls if c["unverified_claims"]),
            "findings": dict(by_category),
            "patterns": dict(Counter(p["type"] for p in pats)),
            "call_log_entries": len(log),
            "errors": len(errs),
        },
        "calls": calls,
        "patterns": pats,
        "call_log": log,
        "errors": errs,
    }


def _hhmm(value: time | str) -> str:
    t = value if isinstance(value, time) else time.fromisoformat(str(value).strip())
    return t.strftime("%H:%M")


def _sort_time(iso: str | None) -> float:
    at = _parse_time(iso)
    return at.timestamp() if at and at.tzinfo else float("inf")


def _parse_time(iso: Any) -> datetime | None:
    if not isinstance(iso, str):
        return None
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        return None


def _error(e: Any) -> dict[str, str]:
    if isinstance(e, dict):
        return {"file": str(e.get("file", "")), "reason": str(e.get("reason", ""))}
    if isinstance(e, tuple) and len(e) == 2:
        return {"file": str(e[0]), "reason": str(e[1])}
    if isinstance(e, BaseException):
        path = getattr(e, "path", "")
        reason = getattr(e, "problem", None) or str(e)
        return {"file": str(path), "reason": str(reason)}
    return {"file": "", "reason": str(e)}


# --- shared pieces for HTML and Markdown ---------------------------------------------------


def _fmt_offset(seconds: Any) -> str:
    s = int(float(seconds or 0))
    return f"{s // 60:02d}:{s % 60:02d}"


def _events_by_number(summary: dict[str, Any], zone: tzinfo) -> dict[str, list[dict[str, Any]]]:
    """Chart points: recordings and call-log attempts, by number, in the analysis zone."""
    night = tuple(summary.get("night_window") or ("22:00", "08:00"))
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in summary.get("calls", []):
        at = _parse_time(c.get("started_at"))
        if at is None:
            continue
        at = at.astimezone(zone) if at.tzinfo else at.replace(tzinfo=zone)
        if c.get("direction") == "out":
            continue
        label = "、".join(f"{CATEGORIES.get(k, k)}×{v}" for k, v in c["findings"].items())
        out[c.get("number") or "未知号码"].append({
            "at": at, "answered": True, "recording": True, "night": in_night(at, night),
            "findings": bool(c["findings"]),
            "label": f"{Path(c['file']).name}" + (f"（{label}）" if label else ""),
        })
    recorded = {k: [e["at"] for e in v] for k, v in out.items()}
    for a in summary.get("call_log", []):
        at = _parse_time(a.get("started_at"))
        kind = a.get("type")
        if at is None or kind not in UNANSWERED_TYPES | {"incoming"}:
            continue
        at = at.astimezone(zone) if at.tzinfo else at.replace(tzinfo=zone)
        number = a.get("number") or "未知号码"
        if kind == "incoming" and any(abs(at - r) <= DEDUPE_WINDOW
                                      for r in recorded.get(number, [])):
            continue  # the recording already shows this call
        label = CALL_TYPE_ZH.get(kind, kind) + ("（无录音）" if kind == "incoming" else "")
        out[number].append({
            "at": at, "answered": kind == "incoming", "recording": False,
            "night": in_night(at, night),
            "findings": False, "label": f"{label}，{a.get('ref', '')}",
        })
    for events in out.values():
        events.sort(key=lambda e: e["at"])
    return dict(sorted(out.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def _chart_days(events: list[dict[str, Any]]) -> list[date]:
    days = sorted({e["at"].date() for e in events})
    # A short span shows every day so quiet days are visible; a long one only busy days.
    if days and (days[-1] - days[0]).days <= 31:
        return [days[0] + timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
    return days


def _worst(reports: list[dict[str, Any]], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The most serious findings across the archive, with excerpt and clock time."""
    started = {c["file"]: _parse_time(c.get("started_at")) for c in summary.get("calls", [])}
    numbers = {c["file"]: c.get("number") for c in summary.get("calls", [])}
    items = []
    for r in reports:
        file = str(r.get("file", ""))
        segments = {s.get("index"): s for s in r.get("segments") or []}
        for f in r.get("findings") or []:
            texts = [segments[i]["text"] for i in f.get("segment_indices") or []
                     if i in segments and segments[i].get("text")]
            excerpt = " ".join(texts) or "……".join(f.get("evidence") or [])
            at = started.get(file)
            clock = (at + timedelta(seconds=float(f.get("start") or 0))) if at else None
            sev = f.get("severity")
            items.append({
                "file": file, "number": numbers.get(file), "category": f.get("category", ""),
                "severity": sev, "score": float(f.get("score") or 0),
                "start": f.get("start"), "end": f.get("end"), "clock": clock,
                "excerpt": excerpt[:300], "evidence": list(f.get("evidence") or []),
                "legal_basis": f.get("legal_basis") or [],
            })
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    items.sort(key=lambda i: (-rank.get(i["severity"], -1), -i["score"]))
    return items[:WORST_EXCERPTS]


def _highlight(text: str, evidence: list[str], esc: Any, before: str, after: str) -> str:
    """Escape text and wrap each evidence phrase once (longest first, no nesting)."""
    phrases = sorted({x for x in evidence if x}, key=len, reverse=True)
    if not phrases:
        return esc(text)
    pattern = re.compile("|".join(re.escape(x) for x in phrases))
    out, pos = [], 0
    for m in pattern.finditer(text):
        out += [esc(text[pos:m.start()]), before, esc(m.group()), after]
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def _basis_text(b: Any) -> str:
    """One line for a legal-basis entry (see legal.citation_dict)."""
    if isinstance(b, str):
        return b
    if not isinstance(b, dict):
        return str(b)
    name = str(b.get("instrument") or "")
    article = str(b.get("article") or "")
    text = str(b.get("summary") or b.get("quote") or "")
    strength = str(b.get("strength_zh") or b.get("strength") or "")
    line = " ".join(x for x in (name, article) if x)
    if text:
        line = f"{line}：{text}" if line else text
    if strength:
        line += f"（{strength}）"
    return line or json.dumps(b, ensure_ascii=False)


def _category_bases(reports: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in reports:
        for f in r.get("findings") or []:
            lines = out.setdefault(f.get("category", ""), [])
            for b in f.get("legal_basis") or []:
                t = _basis_text(b)
                if t not in lines:
                    lines.append(t)
    return dict(sorted(out.items(), key=lambda kv: list(CATEGORIES).index(kv[0])
                       if kv[0] in CATEGORIES else 99))


CLAIMS_TITLE = "自称律师或法务、没有其他疑似违规的来电（身份未核实）"


def _claimed(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in summary.get("calls", []) if c.get("unverified_claims")]


def _short_time(iso: str) -> str:
    at = _parse_time(iso)
    return at.strftime("%H:%M:%S") if at else str(iso)


# --- HTML -------------------------------------------------------------------------------

_CSS = """
body{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;margin:2em auto;
max-width:1000px;padding:0 1em;color:#1f2937;line-height:1.6}
h1{font-size:1.6em}h2{border-bottom:2px solid #e5e7eb;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border:1px solid #d1d5db;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f4f6}.note{background:#fffbeb;border-left:4px solid #f59e0b;padding:.5em 1em}
.hash{font-family:monospace;font-size:.85em;word-break:break-all}
mark{background:#fecaca}.sev-critical,.sev-high{color:#b91c1c;font-weight:bold}
.chart{margin:1em 0}.ref{color:#6b7280}
"""


def render_dossier_html(summary: dict[str, Any], reports: Iterable[dict[str, Any]]) -> str:
    """A self-contained HTML page (no scripts, no external resources), in Chinese."""
    reports = list(reports)
    zone = resolve_tz(summary.get("timezone") or DEFAULT_TZ)
    t = summary.get("totals", {})
    e = escape
    parts = [
        "<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
        "<title>催收通话证据汇总</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>催收通话证据汇总</h1>",
        f"<p>生成时间：{e(str(summary.get('generated_at', '')))}　时区：{e(str(zone))}<br>"
        f"录音 {t.get('calls', 0)} 个，其中 {t.get('calls_with_findings', 0)} 个含疑似违规内容；"
        f"规律性问题 {len(summary.get('patterns', []))} 项；"
        f"无法处理的文件 {t.get('errors', 0)} 个。</p>",
        f'<p class="note">{e(DISCLAIMER)}<br>{e(STRENGTH_NOTE)}</p>',
    ]

    parts.append("<h2>来电时间分布</h2>")
    events = _events_by_number(summary, zone)
    if not events:
        parts.append("<p>没有可确定时间的通话。</p>")
    night = summary.get("night_window") or ["22:00", "08:00"]
    for i, (number, evs) in enumerate(events.items()):
        if i == MAX_CHART_NUMBERS:
            parts.append(f"<p>另有 {len(events) - i} 个号码未画出（来电较少）。</p>")
            break
        parts.append(f'<div class="chart"><h3>{e(number)}（{len(evs)} 次）</h3>')
        parts.append(timeline_svg(evs, (night[0], night[1])))
        parts.append("</div>")
    if events:
        parts.append(
            '<p class="ref">图例：灰色底为夜间时段（'
            f"{e(night[0])}–{e(night[1])}）；实心圆为有录音的接通来电，红色为夜间来电，"
            "黑框表示录音中识别出疑似违规内容；浅色实心圆为通话记录中接通但没有录音的来电；"
            "空心圆为通话记录中的未接、拒接或拦截来电。</p>"
        )

    parts.append("<h2>规律性问题</h2>")
    pats = summary.get("patterns", [])
    if pats:
        parts.append("<table><tr><th>类型</th><th>号码</th><th>日期</th><th>次数</th>"
                     "<th>时间</th><th>说明</th><th>依据</th></tr>")
        for p in pats:
            times = "、".join(_short_time(x) for x in p.get("times", []))
            parts.append(
                f"<tr><td>{e(PATTERN_TYPES.get(p['type'], p['type']))}</td>"
                f"<td>{e(p.get('number') or '未知号码')}</td><td>{e(p.get('date', ''))}</td>"
                f"<td>{p.get('count', 0)}</td><td>{e(times)}</td>"
                f"<td>{e(p.get('description', ''))}</td>"
                f"<td>{e(p.get('basis', ''))}（{e(p.get('strength', ''))}）</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>未发现夜间催收、单日通话过多或密集拨打。</p>")

    parts.append("<h2>最严重的片段</h2>")
    worst = _worst(reports, summary)
    if worst:
        parts.append("<table><tr><th>文件 / 号码</th><th>时间</th><th>类别</th><th>程度</th>"
                     "<th>内容</th></tr>")
        for w in worst:
            excerpt = _highlight(w["excerpt"], w["evidence"], e, "<mark>", "</mark>")
            clock = w["clock"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if w["clock"] else ""
            offset = f"录音 {_fmt_offset(w['start'])}–{_fmt_offset(w['end'])}"
            sev = w["severity"] or ""
            parts.append(
                f"<tr><td>{e(Path(w['file']).name)}<br>{e(w['number'] or '')}</td>"
                f"<td>{e(clock)}<br>{offset}</td>"
                f"<td>{e(CATEGORIES.get(w['category'], w['category']))}</td>"
                f'<td class="sev-{e(sev)}">{e(SEVERITY_ZH.get(sev, sev))}</td>'
                f"<td>{excerpt}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>录音中未识别出疑似违规内容。</p>")
    if claimed := _claimed(summary):
        parts.append(f"<h2>{e(CLAIMS_TITLE)}</h2><p>{e(CLAIM_NOTE)}</p><ul>")
        parts.extend(f"<li>{e(Path(c['file']).name)}　{e(c.get('number') or '未知号码')}　"
                     f"{e(c.get('started_at') or '时间未知')}</li>" for c in claimed)
        parts.append("</ul>")

    parts.append("<h2>法律与规范依据</h2>")
    bases = _category_bases(reports)
    if bases:
        parts.append("<ul>")
        for cat, lines in bases.items():
            inner = "".join(f"<li>{e(x)}</li>" for x in lines) or "<li>（无）</li>"
            parts.append(f"<li><b>{e(CATEGORIES.get(cat, cat))}</b><ul>{inner}</ul></li>")
        parts.append("</ul>")
    used = list(dict.fromkeys(p["type"] for p in pats if p.get("type") in BASIS))
    if used:
        parts.append("<ul>")
        for kind in used:
            basis, strength = BASIS[kind]
            parts.append(f"<li><b>{e(PATTERN_TYPES[kind])}</b>：{e(basis)}（{e(strength)}）</li>")
        parts.append("</ul>")
    parts.append("<h3>投诉与求助渠道</h3><ul>")
    parts.extend(f"<li><b>{e(n)}</b>：{e(d)}</li>" for n, d in _channels())
    parts.append("</ul>")

    parts.append("<h2>文件清单</h2><table><tr><th>文件</th><th>号码</th><th>开始时间</th>"
                 "<th>时长</th><th>SHA-256</th></tr>")
    for c in summary.get("calls", []):
        src = TIME_SOURCE_ZH.get(c.get("time_source") or "unknown", "")
        dur = c.get("duration")
        parts.append(
            f"<tr><td>{e(c['file'])}</td><td>{e(c.get('number') or '')}</td>"
            f"<td>{e(c.get('started_at') or '')}<br><span class=\"ref\">来源：{e(src)}</span></td>"
            f"<td>{_fmt_offset(dur) if dur is not None else ''}</td>"
            f'<td class="hash">{e(c.get("sha256") or "")}</td></tr>'
        )
    parts.append("</table>")

    errs = summary.get("errors", [])
    if errs:
        parts.append("<h2>无法处理的文件</h2><ul>")
        parts.extend(f"<li>{e(x['file'])}：{e(x['reason'])}</li>" for x in errs)
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def timeline_svg(events: list[dict[str, Any]], night: tuple[str, str]) -> str:
    """Days (rows) by hour of day (columns); night hours shaded, night calls red."""
    left, top, hour_w, row_h = 92, 22, 26, 20
    days = _chart_days(events)
    width, height = left + 24 * hour_w + 8, top + row_h * len(days) + 6

    def x(hours: float) -> float:
        return left + hours * hour_w

    start = time.fromisoformat(night[0])
    end = time.fromisoformat(night[1])
    s_h = start.hour + start.minute / 60
    e_h = end.hour + end.minute / 60
    bands = [(s_h, e_h)] if s_h < e_h else [(s_h, 24.0), (0.0, e_h)] if s_h > e_h else []
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="来电时间分布" '
        'font-size="11" font-family="sans-serif">'
    ]
    for a, b in bands:
        out.append(f'<rect class="night" x="{x(a):.1f}" y="{top}" width="{(b - a) * hour_w:.1f}" '
                   f'height="{row_h * len(days)}" fill="#e5e7eb"/>')
    for h in range(25):
        out.append(f'<line x1="{x(h):.1f}" y1="{top}" x2="{x(h):.1f}" '
                   f'y2="{top + row_h * len(days)}" stroke="#d1d5db" stroke-width="0.5"/>')
        if h % 2 == 0 and h < 24:
            out.append(f'<text x="{x(h):.1f}" y="{top - 6}" text-anchor="middle">{h}时</text>')
    row = {d: i for i, d in enumerate(days)}
    for d, i in row.items():
        y = top + i * row_h
        out.append(f'<text x="{left - 6}" y="{y + row_h - 5}" text-anchor="end">{d}</text>')
        out.append(f'<line x1="{left}" y1="{y + row_h}" x2="{x(24):.1f}" y2="{y + row_h}" '
                   'stroke="#f3f4f6"/>')
    for ev in events:
        at: datetime = ev["at"]
        cx = x(at.hour + at.minute / 60 + at.second / 3600)
        cy = top + row[at.date()] * row_h + row_h / 2
        color = "#dc2626" if ev["night"] else "#2563eb"
        tip = escape(f"{at:%Y-%m-%d %H:%M:%S} {ev['label']}")
        cls = "call night-call" if ev["night"] else "call"
        if ev["answered"]:
            stroke = ' stroke="#111827" stroke-width="2"' if ev["findings"] else ""
            faint = "" if ev["recording"] else ' fill-opacity="0.4"'
            out.append(f'<circle class="{cls}" cx="{cx:.1f}" cy="{cy:.1f}" r="5" '
                       f'fill="{color}"{faint}{stroke}><title>{tip}</title></circle>')
        else:
            out.append(f'<circle class="{cls} attempt" cx="{cx:.1f}" cy="{cy:.1f}" r="4" '
                       f'fill="none" stroke="{color}" stroke-width="1.5"><title>{tip}</title>'
                       "</circle>")
    out.append("</svg>")
    return "".join(out)


# --- Markdown ----------------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_dossier_md(summary: dict[str, Any], reports: Iterable[dict[str, Any]]) -> str:
    """The same content as the HTML, as Markdown (the timeline as a table)."""
    reports = list(reports)
    zone = resolve_tz(summary.get("timezone") or DEFAULT_TZ)
    t = summary.get("totals", {})
    night = summary.get("night_window") or ["22:00", "08:00"]
    lines = [
        "# 催收通话证据汇总", "",
        f"生成时间：{summary.get('generated_at', '')}　时区：{zone}", "",
        f"录音 {t.get('calls', 0)} 个，其中 {t.get('calls_with_findings', 0)} 个含疑似违规内容；"
        f"规律性问题 {len(summary.get('patterns', []))} 项；无法处理的文件 {t.get('errors', 0)} 个。",
        "", f"> {DISCLAIMER}", ">", f"> {STRENGTH_NOTE}", "",
        "## 来电时间分布", "",
        f"★ 表示夜间（{night[0]}–{night[1]}）来电；（未接）等表示通话记录中未接通的来电。", "",
    ]
    for number, evs in _events_by_number(summary, zone).items():
        lines += [f"### {_md(number)}（{len(evs)} 次）", "", "| 日期 | 来电时间 |", "|---|---|"]
        per_day: dict[date, list[str]] = defaultdict(list)
        for ev in evs:
            mark = "★" if ev["night"] else ""
            kind = "" if ev["recording"] else f"（{_md(ev['label'].split('，')[0])}）"
            per_day[ev["at"].date()].append(f"{mark}{ev['at']:%H:%M:%S}{kind}")
        lines += [f"| {d} | {'、'.join(ts)} |" for d, ts in sorted(per_day.items())]
        lines.append("")

    lines += ["## 规律性问题", ""]
    pats = summary.get("patterns", [])
    if pats:
        lines += ["| 类型 | 号码 | 日期 | 次数 | 时间 | 依据 |", "|---|---|---|---|---|---|"]
        for p in pats:
            times = "、".join(_short_time(x) for x in p.get("times", []))
            lines.append(
                f"| {PATTERN_TYPES.get(p['type'], p['type'])} | {_md(p.get('number') or '未知号码')} "
                f"| {p.get('date', '')} | {p.get('count', 0)} | {times} "
                f"| {_md(p.get('basis', ''))}（{_md(p.get('strength', ''))}） |"
            )
    else:
        lines.append("未发现夜间催收、单日通话过多或密集拨打。")
    lines += ["", "## 最严重的片段", ""]
    worst = _worst(reports, summary)
    for w in worst:
        clock = w["clock"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if w["clock"] else "时间未知"
        sev = w["severity"] or ""
        excerpt = _highlight(w["excerpt"], w["evidence"], _md, "**", "**")
        lines.append(
            f"- **{CATEGORIES.get(w['category'], w['category'])}**（{SEVERITY_ZH.get(sev, sev)}）"
            f" {clock}，{Path(w['file']).name} 录音 {_fmt_offset(w['start'])}–"
            f"{_fmt_offset(w['end'])}：“{excerpt}”"
        )
    if not worst:
        lines.append("录音中未识别出疑似违规内容。")
    if claimed := _claimed(summary):
        lines += ["", f"## {CLAIMS_TITLE}", "", CLAIM_NOTE, ""]
        lines += [f"- {_md(Path(c['file']).name)}　{_md(c.get('number') or '未知号码')}　"
                  f"{c.get('started_at') or '时间未知'}" for c in claimed]
    lines += ["", "## 法律与规范依据", ""]
    for cat, items in _category_bases(reports).items():
        lines.append(f"- **{CATEGORIES.get(cat, cat)}**")
        lines += [f"  - {_md(x)}" for x in items]
    for kind in dict.fromkeys(p["type"] for p in pats if p.get("type") in BASIS):
        basis, strength = BASIS[kind]
        lines.append(f"- **{PATTERN_TYPES[kind]}**：{basis}（{strength}）")
    lines += ["", "### 投诉与求助渠道", ""]
    lines += [f"- **{n}**：{d}" for n, d in _channels()]
    lines += ["", "## 文件清单", "", "| 文件 | 号码 | 开始时间（来源） | SHA-256 |",
              "|---|---|---|---|"]
    for c in summary.get("calls", []):
        src = TIME_SOURCE_ZH.get(c.get("time_source") or "unknown", "")
        lines.append(f"| {_md(c['file'])} | {_md(c.get('number') or '')} "
                     f"| {c.get('started_at') or ''}（{src}） | `{c.get('sha256') or ''}` |")
    errs = summary.get("errors", [])
    if errs:
        lines += ["", "## 无法处理的文件", ""]
        lines += [f"- {_md(x['file'])}：{_md(x['reason'])}" for x in errs]
    return "\n".join(lines) + "\n"


# --- writing ----------------------------------------------------------------------------


def write_dossier(out_dir: str | Path, summary: dict[str, Any],
                  reports: Iterable[dict[str, Any]]) -> dict[str, Path]:
    """OUT/summary.json, OUT/dossier.html and OUT/dossier.md, each written atomically."""
    reports = list(reports)
    out = Path(out_dir)
    paths = {
        "summary": out / "summary.json",
        "html": out / "dossier.html",
        "md": out / "dossier.md",
    }
    atomic_write_text(paths["summary"],
                      json.dumps(summary, ensure_ascii=False, indent=2, default=str) + "\n")
    atomic_write_text(paths["html"], render_dossier_html(summary, reports))
    atomic_write_text(paths["md"], render_dossier_md(summary, reports))
    return paths
