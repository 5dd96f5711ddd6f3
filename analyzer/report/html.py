"""One self-contained HTML page: audio player, findings (click to hear), transcript, verdict,
legal basis and where to complain. No external scripts, styles, fonts or images; the audio is
embedded as a data URI (or, for large files, linked by relative path). Every piece of
transcript text is escaped, and a Content-Security-Policy allows only the page's own script
(by hash), so even an escaping bug could not run injected code.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from html import escape
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from ..errors import CallauditError
from ..types import CallReport
from . import common as c

AUDIO_MODES = ("auto", "embed", "link", "none")
MAX_BASIS_PER_FINDING = 3  # the full list is in the 法律依据 section
EMBED_LIMIT = 20 * 1024 * 1024  # bytes of audio; above this "auto" links instead of embedding

# Containers/codecs every current browser plays; anything else (AMR, 3GP/AMR, μ-law WAV...) is
# converted to PCM WAV for embedding.
_PLAYABLE = {
    ("wav", "pcm_s16le"): "audio/wav",
    ("wav", "pcm_u8"): "audio/wav",
    ("wav", "pcm_s24le"): "audio/wav",
    ("wav", "pcm_f32le"): "audio/wav",
    ("mp3", "mp3"): "audio/mpeg",
    ("mp3", "mp3float"): "audio/mpeg",
    ("flac", "flac"): "audio/flac",
    ("ogg", "vorbis"): "audio/ogg",
    ("ogg", "opus"): "audio/ogg",
    ("mov,mp4,m4a,3gp,3g2,mj2", "aac"): "audio/mp4",
    ("aac", "aac"): "audio/aac",
}

_SCRIPT = """
(function () {
  "use strict";
  function seek(audio, t) {
    if (audio.readyState >= 1) {
      audio.currentTime = t;
    } else {
      audio.addEventListener("loadedmetadata", function () { audio.currentTime = t; },
                             {once: true});
    }
    var p = audio.play();
    if (p && p.catch) { p.catch(function () {}); }
  }
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest ? ev.target.closest("[data-seek]") : null;
    if (!el) { return; }
    var call = el.closest(".call");
    var audio = call ? call.querySelector("audio") : null;
    if (!audio) { return; }
    ev.preventDefault();
    seek(audio, parseFloat(el.getAttribute("data-seek")));
  });
  Array.prototype.forEach.call(document.querySelectorAll(".call audio"), function (audio) {
    var rows = audio.closest(".call").querySelectorAll(".transcript li[data-start]");
    audio.addEventListener("timeupdate", function () {
      var t = audio.currentTime;
      Array.prototype.forEach.call(rows, function (li) {
        var on = t >= parseFloat(li.getAttribute("data-start")) &&
                 t < parseFloat(li.getAttribute("data-end"));
        li.classList.toggle("now", on);
      });
    });
  });
})();
"""

_CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--red:#b91c1c;--amber:#b45309;--green:#15803d}
*{box-sizing:border-box}
body{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC",
sans-serif;margin:0 auto;max-width:960px;padding:1.5em 1em 3em;color:var(--fg);line-height:1.65}
h1{font-size:1.5em;margin:.2em 0}
h2{font-size:1.3em;border-bottom:2px solid var(--line);padding-bottom:.2em;margin-top:1.6em}
h3{font-size:1.1em;margin:1.4em 0 .5em}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:.5em 0}
.meta dt{color:var(--muted)}.meta dd{margin:0}
.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;word-break:break-all}
.verdict{border-left:5px solid var(--amber);background:#fffbeb;padding:.7em 1em;margin:1em 0}
.verdict.scam{border-color:var(--red);background:#fef2f2}
.verdict.ok{border-color:var(--green);background:#f0fdf4}
.verdict p{margin:.3em 0}
.player{position:sticky;top:0;background:#fff;padding:.5em 0;z-index:1}
audio{width:100%}
.findings{list-style:none;padding:0}
.finding{border:1px solid var(--line);border-radius:6px;padding:.6em .9em;margin:.6em 0}
.finding .head{display:flex;flex-wrap:wrap;gap:.6em;align-items:center}
button.seek{font:inherit;cursor:pointer;border:1px solid #93c5fd;background:#eff6ff;
color:#1d4ed8;border-radius:4px;padding:.05em .5em}
button.seek:hover{background:#dbeafe}
.cat{font-weight:bold}
.sev{font-size:.85em;padding:0 .4em;border-radius:3px;background:#f3f4f6}
.sev-high,.sev-critical{background:#fee2e2;color:var(--red)}
.sev-medium{background:#fef3c7;color:var(--amber)}
blockquote{margin:.5em 0;padding:.3em .8em;border-left:3px solid var(--line);background:#f9fafb}
mark{background:#fecaca;color:inherit;padding:0 .1em}
.small{font-size:.92em;margin:.3em 0}
.transcript{list-style:none;padding:0}
.transcript li{padding:.2em .4em;border-radius:4px}
.transcript li.flagged{background:#fff7ed}
.transcript li.now{outline:2px solid #93c5fd}
.ch,.note,.tag{color:var(--muted);font-size:.88em}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{border:1px solid var(--line);padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f4f6}
@media print{
  audio,.player{display:none}
  button.seek{border:none;background:none;color:inherit;padding:0}
  .call+.call{break-before:page}
  .finding,.verdict,tr{break-inside:avoid}
  body{max-width:none;padding:0}
  a{color:inherit;text-decoration:none}
}
"""


def e(value: Any) -> str:
    return escape(str(value), quote=True)


@dataclass(frozen=True)
class AudioSource:
    src: str | None  # data URI or relative URL; None: no player
    note: str | None = None  # shown to the user when something is off


def _playable_mime(path: Path) -> str | None:
    import av  # only pages with audio need PyAV

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            codec = container.streams.audio[0].codec_context.name
            return _PLAYABLE.get((container.format.name, codec))
    except (av.FFmpegError, OSError, ValueError):
        return None


def _link(path: Path, base_dir: Path | None) -> str:
    try:
        rel = os.path.relpath(path.resolve(), (base_dir or Path.cwd()).resolve())
    except ValueError:  # another drive on Windows
        return path.resolve().as_uri()
    return quote(PurePath(rel).as_posix())


def audio_source(path: Path | None, mode: str = "auto", base_dir: Path | None = None) -> AudioSource:
    """How the page gets its audio. mode: auto (embed up to EMBED_LIMIT, else link), embed,
    link (relative to base_dir, default the current directory) or none."""
    if mode not in AUDIO_MODES:
        raise ValueError(f"未知的音频方式：{mode}（可选 {'、'.join(AUDIO_MODES)}）")
    if mode == "none" or path is None:
        return AudioSource(None)
    if not path.is_file():
        return AudioSource(None, f"找不到录音文件 {path.name}，无法播放。")
    mime = _playable_mime(path)
    cannot_play = None if mime else "浏览器可能无法播放这种录音格式。"
    if mode == "link" or (mode == "auto" and path.stat().st_size > EMBED_LIMIT):
        return AudioSource(_link(path, base_dir), cannot_play)
    if mime:
        data = path.read_bytes()
    else:
        from .. import clips

        try:
            data, mime = clips.wav_bytes(clips.decode(path)), "audio/wav"
        except CallauditError:
            return AudioSource(None, "录音无法解码，无法播放。")
        if mode == "auto" and len(data) > EMBED_LIMIT:
            return AudioSource(_link(path, base_dir), cannot_play)
    return AudioSource(f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}")


def _marked_html(pieces: list[tuple[str, bool]]) -> str:
    return "".join(f"<mark>{e(p)}</mark>" if hit else e(p) for p, hit in pieces)


def _basis_html(b: dict[str, Any]) -> str:
    out = f"<strong>{e(c.basis_title(b))}</strong> <span class=\"tag\">〔{e(b.get('strength_zh', ''))}〕</span>"
    if b.get("quote"):
        out += f"：“{e(b['quote'])}”"
    elif b.get("summary"):
        out += f"：{e(b['summary'])}"
    if b.get("note"):
        out += f" <span class=\"note\">（注：{e(b['note'])}）</span>"
    return out


def _finding_html(report: CallReport, n: int, call: int, f) -> str:
    qs = c.quotes(report, f)
    said = " ".join(_marked_html(q.pieces()) for q in qs)
    missing = c.unmatched_evidence(qs, f.evidence)
    shown = f.legal_basis[:MAX_BASIS_PER_FINDING]
    basis = "；".join(e(c.basis_short(b)) for b in shown)
    if len(f.legal_basis) > len(shown):
        basis += ' 等（见下方“法律依据”）'
    chans = "、".join(e(c.channel_label(ch)) for ch in c.category_channels(f.category))
    context = (
        f' <a href="#c{call}-s{qs[0].segment.index}" class="note">在转写中查看</a>' if qs else ""
    )
    parts = [
        f'<li class="finding" id="c{call}-f{n}" data-category="{e(f.category)}">',
        '<div class="head">',
        f'<button type="button" class="seek" data-seek="{f.start:.2f}" '
        f'title="从这里播放">▶ {c.span(f.start, f.end)}</button>',
        f'<span class="cat">{e(c.category_zh(f.category))}</span>',
        f'<span class="sev sev-{e(f.severity)}">{e(c.severity_zh(f.severity))}</span>',
        f"{context}</div>",
    ]
    if said:
        parts.append(f"<blockquote>{said}</blockquote>")
    if missing:
        parts.append(f'<p class="small">关键词：{e("、".join(missing))}</p>')
    if f.explanation:
        parts.append(f'<p class="small note">{e(f.explanation)}</p>')
    if basis:
        parts.append(f'<p class="small">依据：{basis}</p>')
    if chans:
        parts.append(f'<p class="small">投诉：{chans}</p>')
    parts.append("</li>")
    return "".join(parts)


def _call_html(report: CallReport, call: int, audio: AudioSource) -> str:
    v = report.extra["verdict"]
    prov = report.extra["provenance"]
    name = PurePath(report.file).name
    call_date = (report.extra.get("legal") or {}).get("call_date")
    kind = "scam" if v["likely_scam"] else ("ok" if not report.findings else "")
    out = [f'<section class="call" id="call-{call}">', f"<h2>{e(name)}</h2>", '<dl class="meta">']
    meta = [
        ("通话时长", e(c.mmss(report.duration, round_up=True))),
        ("通话日期", e(call_date) if call_date else "不明"),
        ("风险", f"{report.risk.score} / 100（{e(c.risk_zh(report.risk.level))}）"),
        ("SHA-256", f'<span class="hash">{e(report.sha256)}</span>'),
    ]
    if report.extra.get("redacted"):
        meta.append(("脱敏", "电话号码、身份证号、银行卡号已隐去（保留后4位）"))
    out += [f"<dt>{k}</dt><dd>{val}</dd>" for k, val in meta] + ["</dl>"]
    title = "结论：很可能是诈骗" if v["likely_scam"] else "结论"
    out.append(f'<div class="verdict {kind}"><strong>{title}</strong><p>{e(v["summary"])}</p></div>')

    if audio.src:
        out.append(
            f'<div class="player"><audio controls preload="auto" src="{e(audio.src)}"></audio></div>'
        )
    if audio.note:
        out.append(f'<p class="note">{e(audio.note)}</p>')

    out.append(f"<h3>发现的问题（{len(report.findings)} 处）</h3>")
    if report.findings:
        if audio.src:
            out.append('<p class="note">点击时间即可从该处播放录音。</p>')
        out.append('<ol class="findings">')
        out += [_finding_html(report, n, call, f) for n, f in enumerate(report.findings, 1)]
        out.append("</ol>")
    else:
        out.append("<p>未发现违规内容。</p>")
    claims = c.claim_segments(report)
    if claims:
        out.append(f"<h3>需要核实的自称（{len(claims)} 处）</h3>")
        out.append(f'<p class="note">{e(c.CLAIM_NOTE)}</p><ol class="claims">')
        for claim, segs in claims:
            said = " ".join(e(s.text) for s in segs)
            out.append(
                f'<li class="claim"><button type="button" class="seek" '
                f'data-seek="{claim["start"]:.2f}">▶ {c.span(claim["start"], claim["end"])}</button> '
                f'<span class="cat">{e(c.category_zh(claim["category"]))}</span>'
                + (f"<blockquote>{said}</blockquote>" if said else "") + "</li>")
        out.append("</ol>")

    if v["advice"]:
        out += ["<h3>建议</h3>", "<ul>"] + [f"<li>{e(a)}</li>" for a in v["advice"]] + ["</ul>"]
    if v["channels"]:
        out += ["<h3>投诉/求助渠道</h3>", "<table><tr><th>电话</th><th>机构</th><th>受理范围</th></tr>"]
        out += [
            f"<tr><td>{e(ch['phone'] or '—')}</td><td>{e(ch['name'])}</td><td>{e(ch['use'])}</td></tr>"
            for ch in v["channels"]
        ]
        out.append("</table>")

    bases = c.bases_by_category(report)
    if bases:
        out.append("<h3>法律依据</h3>")
        for cat, items in bases.items():
            out.append(f"<h4>{e(c.category_zh(cat))}</h4><ul>")
            out += [f"<li>{_basis_html(b)}</li>" for b in items]
            out.append("</ul>")
    out.append(f'<p class="small">{e(c.lender_right_text(report))}</p>')

    marks = c.segment_marks(report)
    out += ["<h3>通话转写</h3>", '<ol class="transcript">']
    for s in report.segments:
        flagged = s.index in marks
        pieces = c.Quote(s, marks.get(s.index, [])).pieces()
        who = f' <span class="ch">{e(c.CHANNEL_ZH[s.channel])}</span>' if s.channel in c.CHANNEL_ZH else ""
        cls = ' class="flagged"' if flagged else ""
        out.append(
            f'<li id="c{call}-s{s.index}" data-start="{s.start:.2f}" data-end="{s.end:.2f}"{cls}>'
            f'<button type="button" class="seek" data-seek="{s.start:.2f}">{c.mmss(s.start)}</button>'
            f"{who} {_marked_html(pieces)}</li>"
        )
    out.append("</ol>")

    out += ["<h3>技术信息</h3>", "<table>"]
    for key, label in (
        ("callaudit_version", "callaudit 版本"),
        ("asr_model", "语音识别模型"),
        ("asr_model_sha256", "语音识别模型 SHA-256"),
        ("rules_sha256", "规则 SHA-256"),
        ("classifier_sha256", "分类器 SHA-256"),
        ("legal_sha256", "法律依据数据 SHA-256"),
    ):
        value = prov.get(key)
        out.append(f'<tr><th>{label}</th><td class="hash">{e(value) if value else "—"}</td></tr>')
    out += ["</table>", "</section>"]
    return "\n".join(out)


def _page(title: str, body: str) -> str:
    script_hash = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{script_hash}'; media-src data: blob: 'self' file:"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>催收通话审查报告</h1>\n{body}\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


def render_many(
    reports: list[CallReport],
    audio: str = "auto",
    audio_paths: list[Path | None] | None = None,
    base_dir: Path | None = None,
) -> str:
    """reports must be complete (see common.complete). audio_paths default to each report's
    file (pass the originals when the reports were redacted: their names are masked)."""
    paths = audio_paths or [Path(r.file) for r in reports]
    sections = [
        _call_html(r, n, audio_source(p, audio, base_dir))
        for n, (r, p) in enumerate(zip(reports, paths, strict=True), 1)
    ]
    if len(reports) == 1:
        title = f"催收通话审查报告 - {PurePath(reports[0].file).name}"
    else:
        title = f"催收通话审查报告（{len(reports)} 个录音）"
    return _page(title, "\n".join(sections))
