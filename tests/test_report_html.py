"""The HTML page: self-contained, audio embedded (or linked), findings seekable, text escaped."""

from __future__ import annotations

import base64
import hashlib
import re
import wave
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from audiofiles import tone, write_audio
from test_report import sample_report

from analyzer.report import html as html_writer
from analyzer.report import render, render_many, write_report
from analyzer.types import Segment


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    pcm = (np.sin(np.arange(int(seconds * rate)) * 2 * np.pi * 300 / rate) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.scripts += tag == "script"


def _parse(page: str) -> _Collect:
    p = _Collect()
    p.feed(page)
    return p


def test_page_is_self_contained_with_embedded_audio(tmp_path):
    wav = write_wav(tmp_path / "call.wav", 3.0)
    page = render(sample_report(str(wav)), "html")
    tags = _parse(page).tags
    # Nothing loaded from elsewhere: no src/href except data: URIs and in-page anchors.
    for tag, attrs in tags:
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith(("data:", "#")), (tag, attrs[key][:60])
        assert not (tag == "link" and attrs.get("rel") == "stylesheet")
    audio = [a for t, a in tags if t == "audio"]
    assert len(audio) == 1
    src = audio[0]["src"]
    assert src.startswith("data:audio/wav;base64,")
    assert base64.b64decode(src.split(",", 1)[1]) == wav.read_bytes()
    assert "@import" not in page and "url(" not in page


def test_findings_are_seek_buttons_at_their_start(tmp_path):
    page = render(sample_report(str(write_wav(tmp_path / "c.wav", 1.0))), "html")
    tags = _parse(page).tags
    findings = [a for t, a in tags if t == "li" and "finding" in a.get("class", "")]
    assert [f["data-category"] for f in findings] == ["threat", "insult"]
    seeks = [a["data-seek"] for t, a in tags if t == "button" and "data-seek" in a]
    assert seeks[:2] == ["95.30", "110.00"]  # the findings, then the transcript rows
    assert "01:35–01:42" in page and "威胁恐吓" in page and "<mark>上门找你</mark>" in page


def test_transcript_text_is_escaped():
    rep = sample_report()
    rep.segments.append(Segment(3, 120.0, 121.0, '"><script>alert(1)</script><img src=x onerror=alert(2)>'))
    page = render(rep, "html", audio="none")
    p = _parse(page)
    assert p.scripts == 1  # only the page's own script
    assert not any(t == "img" for t, _ in p.tags)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;不要脸&lt;/b&gt;" in page


def test_csp_allows_only_the_pages_own_script():
    page = render(sample_report(), "html", audio="none")
    csp = unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)[1])
    assert "default-src 'none'" in csp
    script = re.search(r"<script>(.*)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp


def test_chinese_ui_with_verdict_basis_and_channels():
    page = render(sample_report(), "html", audio="none")
    assert '<html lang="zh-CN">' in page
    for text in ("结论", "发现的问题（2 处）", "法律依据", "投诉/求助渠道", "通话转写", "12378",
                 "第675条", "《治安管理处罚法》"):
        assert text in page, text


def test_audio_link_mode_uses_a_relative_path(tmp_path):
    rec = tmp_path / "rec" / "通话 1.wav"
    rec.parent.mkdir()
    write_wav(rec, 1.0)
    path = write_report(sample_report(str(rec)), "html", tmp_path / "out", audio="link")
    src = next(a["src"] for t, a in _parse(path.read_text(encoding="utf-8")).tags if t == "audio")
    assert src == "../rec/%E9%80%9A%E8%AF%9D%201.wav"


def test_auto_mode_links_large_files(tmp_path, monkeypatch):
    wav = write_wav(tmp_path / "big.wav", 2.0)
    monkeypatch.setattr(html_writer, "EMBED_LIMIT", 1000)
    src = html_writer.audio_source(wav, "auto", tmp_path).src
    assert src == "big.wav"


def test_unplayable_format_is_converted_to_wav(tmp_path):
    amr = write_audio(tmp_path / "call.amr", tone(2.0, rate=8000), 8000, "amr")
    src = html_writer.audio_source(amr, "embed").src
    assert src.startswith("data:audio/wav;base64,")
    data = base64.b64decode(src.split(",", 1)[1])
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def test_missing_audio_gives_a_note_not_an_error(tmp_path):
    page = render(sample_report(str(tmp_path / "gone.wav")), "html")
    assert "<audio" not in page and "找不到录音文件 gone.wav" in page


def test_redacted_report_plays_the_original_audio(tmp_path):
    from analyzer.redact import redact

    wav = write_wav(tmp_path / "13800138000.wav", 1.0)
    page = render(redact(sample_report(str(wav))), "html", audio_path=wav)
    assert "13800138000" not in page and "data:audio/wav;base64," in page


def test_several_calls_on_one_page_each_with_its_player(tmp_path):
    a, b = write_wav(tmp_path / "a.wav", 1.0), write_wav(tmp_path / "b.wav", 1.0)
    page = render_many([sample_report(str(a)), sample_report(str(b))], "html")
    p = _parse(page)
    assert sum(t == "audio" for t, _ in p.tags) == 2
    assert sum(t == "section" for t, _ in p.tags) == 2


def test_unknown_audio_mode_is_refused():
    with pytest.raises(ValueError, match="未知的音频方式"):
        render(sample_report(), "html", audio="stream")
