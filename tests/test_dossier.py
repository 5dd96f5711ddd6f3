"""The archive dossier: summary.json, HTML (inline SVG timeline) and Markdown."""

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from analyzer.calllog import CallLogEntry
from analyzer.dossier import build_summary, render_dossier_html, render_dossier_md, write_dossier
from analyzer.errors import InputError
from analyzer.filenames import parse_filename
from analyzer.patterns import calls_from_reports, find_patterns

CST = timezone(timedelta(hours=8))
NUM = "13800138000"


def finding(category, start, severity, evidence, seg, score=0.9):
    return {
        "category": category, "start": start, "end": start + 3.0, "score": score,
        "severity": severity, "evidence": [evidence], "source": ["lexicon:x"],
        "explanation": "…", "segment_indices": [seg], "channel": None,
        "legal_basis": [{"instrument": "治安管理处罚法", "article": "第42条", "strength": "law"}],
    }


def report(name, sha, findings=(), segments=()):
    return {
        "file": f"rec/{name}", "sha256": sha, "duration": 95.0,
        "call": parse_filename(name).to_dict(),
        "segments": [{"index": i, "start": 0.0, "end": 1.0, "text": t, "channel": None}
                     for i, t in enumerate(segments)],
        "findings": list(findings), "risk": {"score": 80, "level": "high"},
    }


@pytest.fixture
def archive():
    night = report(f"{NUM}({NUM})_20260301233000.mp3", "a" * 64,
                   [finding("threat", 12.0, "high", "去你家找你", 0),
                    finding("threat", 40.0, "medium", "后果自负", 1)],
                   ["你再不还钱我们就去你家找你", "后果自负"])
    day = report(f"{NUM}({NUM})_20260301100000.mp3", "b" * 64,
                 [finding("impersonation", 5.0, "critical", "我是公安局的", 0)],
                 ["我是公安局的<script>alert(1)</script>"])
    clean = report("13900139000_20260302143000.m4a", "c" * 64)
    reports = [night, day, clean]
    attempts = [CallLogEntry(NUM, datetime(2026, 3, 2, 2, 15, tzinfo=CST), "missed", 0,
                             None, "calls.xml:7")]
    patterns = find_patterns(calls_from_reports(reports), attempts)
    errors = [InputError("rec/broken.amr", "无法解码音频，请确认文件完整"),
              ("rec/empty.mp3", "文件为空"), {"file": "rec/x.wav", "reason": "不是音频"}]
    summary = build_summary(reports, patterns, errors, attempts=attempts,
                            generated_at=datetime(2026, 3, 5, 9, 0, tzinfo=CST))
    return summary, reports


def test_summary_calls_patterns_errors(archive):
    summary, _ = archive
    files = [c["file"] for c in summary["calls"]]
    # Sorted by start time.
    assert files == [f"rec/{NUM}({NUM})_20260301100000.mp3",
                     f"rec/{NUM}({NUM})_20260301233000.mp3",
                     "rec/13900139000_20260302143000.m4a"]
    day, night, clean = summary["calls"]
    assert night["findings"] == {"threat": 2}
    assert night["max_severity"] == "high"
    assert night["call_flags"] == ["night_call"]
    assert night["started_at"] == "2026-03-01T23:30:00+08:00"
    assert night["number"] == NUM and night["sha256"] == "a" * 64
    assert day["findings"] == {"impersonation": 1} and day["call_flags"] == []
    assert clean["findings"] == {} and clean["number"] == "13900139000"
    assert [(p["type"], p["date"]) for p in summary["patterns"]] == [
        ("night_call", "2026-03-01"), ("night_call", "2026-03-02")]
    assert summary["errors"] == [
        {"file": "rec/broken.amr", "reason": "无法解码音频，请确认文件完整"},
        {"file": "rec/empty.mp3", "reason": "文件为空"},
        {"file": "rec/x.wav", "reason": "不是音频"},
    ]
    assert summary["totals"]["calls"] == 3
    assert summary["totals"]["calls_with_findings"] == 2
    assert summary["totals"]["findings"] == {"threat": 2, "impersonation": 1}
    assert summary["totals"]["errors"] == 3
    assert summary["night_window"] == ["22:00", "08:00"]
    json.dumps(summary, ensure_ascii=False)  # plain JSON


def test_html_has_chart_hashes_and_excerpts(archive):
    summary, reports = archive
    html = render_dossier_html(summary, reports)
    assert html.count("<svg") == 2  # one timeline per number
    # Night calls highlighted: the 23:30 recording and the 02:15 missed call.
    assert len(re.findall(r'class="call night-call', html)) == 2
    assert 'class="night"' in html  # shaded night band
    for h in ("a" * 64, "b" * 64, "c" * 64):
        assert h in html
    assert "<mark>去你家找你</mark>" in html
    assert "2026-03-01 23:30:12" in html  # clock time of the finding (start + 12 s)
    # The most serious excerpt comes first.
    assert html.index("我是公安局的") < html.index("去你家找你")
    assert "治安管理处罚法 第42条" in html and "GB/T 45251-2025" in html
    assert "民法典" in html and "12378" in html
    assert "rec/broken.amr" in html
    # Self-contained and escaped.
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert not re.search(r'(src|href)="', html)


def test_markdown_has_timeline_hashes_and_basis(archive):
    summary, reports = archive
    md = render_dossier_md(summary, reports)
    assert "| 2026-03-01 | 10:00:00、★23:30:00 |" in md
    assert "| 2026-03-02 | ★02:15:00（未接来电） |" in md
    for h in ("a" * 64, "b" * 64, "c" * 64):
        assert f"`{h}`" in md
    assert "夜间催收" in md and "GB/T 45251-2025" in md
    assert "冒充公检法/律师" in md
    assert "“你再不还钱我们就**去你家找你**”" in md


def test_write_dossier_is_atomic_and_complete(archive, tmp_path):
    summary, reports = archive
    out = tmp_path / "out"
    paths = write_dossier(out, summary, reports)
    assert sorted(p.name for p in out.iterdir()) == ["dossier.html", "dossier.md",
                                                      "summary.json"]
    assert json.loads(paths["summary"].read_text(encoding="utf-8")) == summary
    assert "<svg" in paths["html"].read_text(encoding="utf-8")
    # Rewriting replaces the files and leaves no temp files behind.
    write_dossier(out, summary, reports)
    assert len(list(out.iterdir())) == 3


def test_report_without_call_falls_back_to_file_name():
    r = {"file": f"x/{NUM}_20260301233000.m4a", "sha256": "d" * 64, "duration": 3.0,
         "findings": []}
    summary = build_summary([r], [], [])
    [c] = summary["calls"]
    assert c["started_at"] == "2026-03-01T23:30:00+08:00" and c["time_source"] == "filename"


def test_empty_archive_renders():
    summary = build_summary([], [], [])
    assert "没有可确定时间的通话" in render_dossier_html(summary, [])
    assert "未发现" in render_dossier_md(summary, [])


def test_overlapping_evidence_is_marked_once():
    r = report(f"{NUM}_20260301100000.m4a", "e" * 64,
               [{**finding("threat", 1.0, "high", "去你家", 0),
                 "evidence": ["去你家", "去你家找你"]}],
               ["我们去你家找你"])
    html = render_dossier_html(build_summary([r], [], []), [r])
    assert "我们<mark>去你家找你</mark>" in html and html.count("<mark>") == 1


def test_calls_with_only_an_unverified_claim_are_listed_apart(archive):
    summary, reports = archive
    assert summary["totals"]["calls_with_unverified_claims"] == 0
    assert "身份未核实" not in render_dossier_html(summary, reports)
    lawyer = report("13700137000_20260303110000.m4a", "f" * 64)
    lawyer["unverified_claims"] = [
        {"category": "impersonation", "start": 1.0, "end": 6.0, "channel": None}]
    reports = [*reports, lawyer]
    summary = build_summary(reports, [], [])
    assert summary["totals"]["calls_with_unverified_claims"] == 1
    assert summary["totals"]["calls_with_findings"] == 2  # the claim is not a finding
    [c] = [c for c in summary["calls"] if c["unverified_claims"]]
    assert c["number"] == "13700137000"
    for text in (render_dossier_html(summary, reports), render_dossier_md(summary, reports)):
        assert "身份未核实" in text and "官方客服" in text
        part = text[text.index("身份未核实"):]
        assert "13700137000_20260303110000.m4a" in part
