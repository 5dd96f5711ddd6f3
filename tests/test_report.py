"""Writers text / json / md and write_report, on reports built by hand; JSON against the schema."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import jsonschema
import pytest

from analyzer import legal
from analyzer.report import FORMATS, render, render_many, report_filename, write_report
from analyzer.types import AsrInfo, CallReport, Finding, Risk, Segment

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "analyzer" / "data" / "report.schema.json"
RULES_SHA = "1" * 64
MODEL_SHA = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def sample_report(file: str = "/calls/张三@13800138000_20240301123045.wav") -> CallReport:
    """A 2:15 call: a threat at 95.3-101.2 s and an insult at 110.0-112.4 s (used by the
    html tests too)."""
    segs = [
        Segment(0, 0.0, 4.0, "你好，我是某某消费金融的催收专员。", None, -0.2, 0.01),
        Segment(1, 95.3, 101.2, "你再不还钱，我就上门找你。", None, -0.3, 0.02),
        Segment(2, 110.0, 112.4, "你这个废物，<b>不要脸</b> | x", None, -0.4, 0.05),
    ]
    findings = [
        Finding("threat", 95.3, 101.2, 0.91, "high", ["上门找你"], ["lexicon:threat.door"],
                "命中“上门找你”：威胁上门", [1]),
        Finding("insult", 110.0, 112.4, 0.7, "medium", ["废物"], ["lexicon:insult.trash"],
                "命中“废物”", [2]),
    ]
    rep = CallReport(file, "ab" * 32, 135.0, 1, AsrInfo("base", MODEL_SHA), segs, findings,
                     Risk(78, "high"))
    rep.extra["provenance"] = {
        "callaudit_version": "9.9.9",
        "asr_model": "base",
        "asr_model_sha256": MODEL_SHA,
        "rules_sha256": RULES_SHA,
        "classifier_sha256": None,
    }
    return rep


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


# --- text ------------------------------------------------------------------------------------


def test_text_for_a_layperson():
    out = render(sample_report(), "text")
    assert "录音文件：张三@13800138000_20240301123045.wav" in out
    assert "通话时长：02:15" in out
    assert "78 / 100（高）" in out
    # Findings: time (start floored, end rounded up), Chinese name, severity, marked words.
    assert "01:35–01:42  威胁恐吓（严重）" in out
    assert "“你再不还钱，我就【上门找你】。”" in out
    assert "01:50–01:53  辱骂侮辱（中等）" in out
    assert "【废物】" in out
    assert re.search(r"依据：《治安管理处罚法》第42条（一）〔法律〕", out)
    assert "投诉：110、12378" in out
    assert "结论：" in out and "第675条" in out
    assert "threat" not in out and "lexicon:" not in out  # no internal ids for a layperson


def test_text_finding_order_and_count():
    out = render(sample_report(), "text")
    assert "发现 2 处疑似违规" in out
    assert out.index("1. 01:35") < out.index("2. 01:50")


def test_text_lawful_call():
    rep = sample_report()
    rep.findings = []
    rep.risk = Risk(0, "none")
    out = render(rep, "text")
    assert "未发现违规内容" in out and "第675条" in out and "诈骗" not in out


def test_text_evidence_not_in_segment_is_still_shown():
    rep = sample_report()
    rep.findings[0].evidence = ["上门找你", "打断你的腿"]
    out = render(rep, "text")
    assert "【上门找你】" in out and "关键词：打断你的腿" in out


def test_text_evidence_across_spaces_is_marked():
    rep = sample_report()
    rep.segments[1] = Segment(1, 95.3, 101.2, "我就 上门 找你")
    assert "【上门 找你】" in render(rep, "text")


def test_text_several_calls_one_after_another():
    a, b = sample_report("/x/first.wav"), sample_report("/x/second.wav")
    b.findings = []
    b.risk = Risk(0, "none")
    out = render_many([a, b], "text")
    assert out.index("first.wav") < out.index("second.wav")
    assert "共 2 个录音，其中 1 个发现疑似违规" in out


# --- markdown --------------------------------------------------------------------------------


def test_markdown_for_a_complaint():
    out = render(sample_report(), "md")
    row = next(line for line in out.splitlines() if line.startswith("| 1 |"))
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    assert cells[:4] == ["1", "01:35–01:42", "威胁恐吓", "严重"]
    assert "**上门找你**" in cells[4]
    assert "第42条（一）" in cells[5]
    assert f"`{'ab' * 32}`" in out  # file sha256
    assert f"`{RULES_SHA}`" in out and f"`{MODEL_SHA}`" in out and "`9.9.9`" in out
    assert f"`{legal.load().sha256}`" in out
    assert "借款机构有权依法要求还款" in out


def test_markdown_escapes_transcript_text():
    out = render(sample_report(), "md")
    row = next(line for line in out.splitlines() if line.startswith("| 2 |"))
    assert "<b>" not in out
    assert r"\<b\>" in row and r"\|" in row
    # The escaped pipe does not add a column.
    assert len(re.findall(r"(?<!\\)\|", row)) == 7


def test_markdown_several_calls_have_an_overview():
    out = render_many([sample_report("/a/one.wav"), sample_report("/a/two.wav")], "md")
    assert out.startswith("# 催收通话审查报告（2 个录音）")
    assert "| 1 | one.wav |" in out and "| 2 | two.wav |" in out
    assert out.count("## 催收通话审查报告：") == 2


# --- json ------------------------------------------------------------------------------------


def test_json_keeps_the_contract_fields(validator):
    out = render(sample_report(), "json")
    assert "威胁恐吓" in out  # ensure_ascii=False
    data = json.loads(out)
    validator.validate(data)
    assert list(data)[:9] == [
        "schema_version", "file", "sha256", "duration", "channels", "asr", "segments",
        "findings", "risk",
    ]
    assert data["asr"] == {"model": "base", "model_sha256": MODEL_SHA, "settings": {}}
    assert data["segments"][1] == {
        "index": 1, "start": 95.3, "end": 101.2, "text": "你再不还钱，我就上门找你。",
        "channel": None, "confidence": {"avg_logprob": -0.3, "no_speech_prob": 0.02},
    }
    f = data["findings"][0]
    assert (f["category"], f["start"], f["end"], f["score"], f["severity"]) == (
        "threat", 95.3, 101.2, 0.91, "high",
    )
    assert f["evidence"] == ["上门找你"] and f["source"] == ["lexicon:threat.door"]
    assert f["legal_basis"] and all(b["instrument"] for b in f["legal_basis"])
    assert data["risk"] == {"score": 78, "level": "high"}


def test_json_provenance_keeps_pipeline_values_and_adds_legal_hash(validator):
    data = json.loads(render(sample_report(), "json"))
    prov = data["provenance"]
    assert prov["callaudit_version"] == "9.9.9"
    assert prov["rules_sha256"] == RULES_SHA and prov["asr_model_sha256"] == MODEL_SHA
    assert prov["legal_sha256"] == legal.load().sha256


def test_json_fills_provenance_when_the_pipeline_did_not(validator):
    rep = sample_report()
    del rep.extra["provenance"]
    data = json.loads(render(rep, "json"))
    validator.validate(data)
    assert data["provenance"]["asr_model_sha256"] == MODEL_SHA
    assert data["provenance"]["callaudit_version"]


def test_json_uses_the_call_date_from_file_name_metadata():
    rep = sample_report()
    rep.extra["call"] = {"started_at": "2025-12-31T23:10:00+08:00", "source": "filename"}
    basis = json.loads(render(rep, "json"))["findings"][0]["legal_basis"]
    assert "第42条（一）" in [b["article"] for b in basis]
    assert "第50条" not in [b["article"] for b in basis]
    rep.extra["call"] = {"started_at": "2026-01-02T10:00:00+08:00", "source": "mtime"}
    data = json.loads(render(rep, "json"))  # an mtime is not trusted: date unknown
    assert data["legal"]["call_date"] is None
    assert {"第42条（一）", "第50条"} <= {b["article"] for b in data["findings"][0]["legal_basis"]}


def test_json_keeps_an_explicit_annotation():
    rep = sample_report()
    legal.annotate(rep, date(2026, 5, 1))
    data = json.loads(render(rep, "json"))
    assert data["legal"]["call_date"] == "2026-05-01"
    assert "第42条（一）" not in [b["article"] for b in data["findings"][0]["legal_basis"]]


def test_json_is_stable_whatever_order_extra_was_filled_in():
    a, b = sample_report(), sample_report()
    a.extra = {"audio": {"codec": "pcm"}, **a.extra}
    b.extra["audio"] = {"codec": "pcm"}
    assert list(a.extra) != list(b.extra)
    assert render(a, "json") == render(b, "json")


def test_json_many_is_an_array(validator):
    data = json.loads(render_many([sample_report("/a/1.wav"), sample_report("/a/2.wav")], "json"))
    assert isinstance(data, list) and [Path(d["file"]).name for d in data] == ["1.wav", "2.wav"]
    for d in data:
        validator.validate(d)


def test_schema_rejects_broken_reports(validator):
    good = json.loads(render(sample_report(), "json"))
    broken = [
        lambda d: d.pop("sha256"),
        lambda d: d["findings"][0].pop("legal_basis"),
        lambda d: d["findings"][0].__setitem__("legal_basis", []),
        lambda d: d["findings"][0].__setitem__("category", "rudeness"),
        lambda d: d["risk"].__setitem__("level", "extreme"),
        lambda d: d["segments"][0].pop("confidence"),
        lambda d: d["asr"].pop("model_sha256"),
        lambda d: d["verdict"]["channels"].append(
            {"id": "12389", "name": "x", "phone": "12389", "use": "x"}
        ),
        lambda d: d["provenance"].pop("rules_sha256"),
    ]
    for n, breaker in enumerate(broken):
        data = json.loads(json.dumps(good))
        breaker(data)
        assert not validator.is_valid(data), f"breaker {n} was accepted"


def test_render_does_not_modify_the_report():
    rep = sample_report()
    before = json.dumps(rep.to_dict(), ensure_ascii=False, sort_keys=True)
    for fmt in FORMATS:
        render(rep, fmt, audio="none")
    assert json.dumps(rep.to_dict(), ensure_ascii=False, sort_keys=True) == before
    assert all(not f.legal_basis for f in rep.findings)


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="未知的报告格式"):
        render(sample_report(), "pdf")


# --- real pipeline output ----------------------------------------------------------------------


class _KeywordDetector:
    """Stands in for the rule detector: flags segments containing a keyword."""

    def detect(self, segments):
        return [
            Finding("threat", s.start, s.end, 0.8, "high", ["上门"], ["test:keyword"], "上门",
                    [s.index], s.channel)
            for s in segments
            if "上门" in s.text
        ]

    def detect_call(self, segments):
        return self.detect(segments), []


@pytest.mark.parametrize("detector", ["keyword", "real"])
def test_pipeline_output_validates(tmp_path, validator, detector):
    """A report from the real Analyzer (fake transcript) renders to schema-valid JSON."""
    from audiofiles import tone, write_audio
    from fakes import FakeTranscriber

    from analyzer.pipeline import Analyzer, AnalyzerOptions

    if detector == "real":
        scoring = pytest.importorskip("analyzer.scoring")
        if not hasattr(scoring, "build_detector"):
            pytest.skip("analyzer.scoring.build_detector not written yet")
    wav = write_audio(tmp_path / "call.wav", tone(6.0), 16000, "wav")
    lines = [
        (0.0, 2.0, "你好，我是某某消费金融的工作人员，你的借款已经逾期了。"),
        (2.0, 4.0, "今天再不还钱，我就上门找你，让你全家都知道。"),
        (4.0, 6.0, "把你收到的验证码告诉我，转到我的个人账户。"),
    ]
    analyzer = Analyzer(
        AnalyzerOptions(use_cache=False),
        transcriber=FakeTranscriber(lines),
        detector=_KeywordDetector() if detector == "keyword" else None,
    )
    rep = analyzer.analyze(wav)
    data = json.loads(render(rep, "json"))
    validator.validate(data)
    assert data["provenance"]["rules_sha256"]
    assert len(data["findings"]) == len(rep.findings)
    if detector == "keyword":
        assert [f["start"] for f in data["findings"]] == [2.0]
        assert data["findings"][0]["legal_basis"]


# --- write_report ----------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "ext"), [("text", ".txt"), ("json", ".json"), ("md", ".md"),
                                          ("html", ".html")])
def test_write_report_names_file_after_the_recording(tmp_path, fmt, ext):
    out_dir = tmp_path / "out" / "deeper"
    path = write_report(sample_report("/calls/rec 01.m4a"), fmt, out_dir, audio="none")
    assert path == out_dir / f"rec 01{ext}"
    assert path.read_text(encoding="utf-8") == render(
        sample_report("/calls/rec 01.m4a"), fmt, audio="none", base_dir=out_dir
    )
    assert [p.name for p in out_dir.iterdir()] == [path.name]  # no temp file left


def test_write_report_replaces_an_existing_report(tmp_path):
    (tmp_path / "a.json").write_text("old", encoding="utf-8")
    path = write_report(sample_report("/x/a.wav"), "json", tmp_path)
    assert json.loads(path.read_text(encoding="utf-8"))["file"] == "/x/a.wav"


def test_report_filename_is_safe_for_masked_names():
    assert report_filename(sample_report("/x/*******8000_2024.m4a"), "md") == "_______8000_2024.md"
    assert report_filename(sample_report("/x/a:b?.wav"), "text") == "a_b_.txt"


def test_to_json_dict_is_what_json_prints(validator):
    from analyzer.report import to_json_dict

    data = to_json_dict(sample_report())
    validator.validate(data)
    assert data == json.loads(render(sample_report(), "json"))
