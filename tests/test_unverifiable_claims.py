"""A lawyer or a lender's legal staff naming themselves is lawful when true and a recording
cannot check it: alone in a call it is not a finding; with another violation it stands."""

import pytest
from test_lexicon import load_error

from analyzer.pipeline import Analyzer, AnalyzerOptions
from analyzer.scoring import explain
from analyzer.types import Segment

LAWYER = "您好，我是鹭屿律师事务所的执业律师，受泉禾小额贷款公司委托，跟您沟通一笔逾期借款。"
LAWFUL = [
    "您先别紧张，目前公司没有起诉，我只是受托协商。",
    "还款只走公司的对公账户，账号写在协议里。",
]
PRIVATE = "现在把钱转到我个人微信上，我帮你把案子撤了。"


@pytest.fixture(scope="module", params=[False, True], ids=["rules", "fused"])
def detector(request):
    return Analyzer(AnalyzerOptions(use_classifier=request.param)).detector


def _call(detector, *texts):
    return detector.detect([Segment(i, 6.0 * i, 6.0 * i + 5.0, t) for i, t in enumerate(texts)])


def test_the_claim_read_alone_is_a_finding(detector):
    one = [Segment(0, 0.0, 5.0, LAWYER)]
    assert {f.category for f in detector.detect(one, whole_call=False)} == {"impersonation"}


def test_a_lawful_call_whose_only_finding_is_the_claim_has_none(detector):
    assert _call(detector, LAWYER, *LAWFUL) == []


def test_another_violation_keeps_the_claim(detector):
    cats = {f.category for f in _call(detector, LAWYER, *LAWFUL, PRIVATE)}
    assert {"impersonation", "private_payment"} <= cats


def test_a_claim_to_act_for_a_court_is_not_unverifiable(detector):
    court = "我是法院指派的执行律师，专门处理你这个案子。"
    assert "impersonation" in {f.category for f in _call(detector, court, *LAWFUL)}


def test_explain_says_the_claim_needs_another_finding():
    e = explain(LAWYER)
    assert [f.category for f in e.findings] == ["impersonation"]
    assert e.unverifiable == ["impersonation"]
    assert "不计入报告" in e.render()
    assert explain("我是市公安局经侦支队的警官。").unverifiable == []


@pytest.mark.parametrize("common, named", [
    ("unverifiable_claims:\n  impersonation:\n    claims: ['律师']\n    exempt: ['警']\n", "exempt"),
    ("unverifiable_claims:\n  impersonation:\n    unless: ['警']\n", "claims"),
    ("unverifiable_claims:\n  lawyers:\n    claims: ['律师']\n", "lawyers"),
    ("unverifiable_claims: ['律师']\n", "unverifiable_claims"),
])
def test_bad_claims_are_named(tmp_path, common, named):
    message = load_error(tmp_path, {"_common.yaml": common})
    assert "_common.yaml" in message and named in message


def test_a_report_names_the_claim_and_how_to_check_it(tmp_path, monkeypatch):
    from audiofiles import tone, write_audio
    from fakes import FakeTranscriber

    from analyzer.report import render

    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))
    path = write_audio(tmp_path / "lawyer.wav", tone(12.0), 16000, "wav")
    lines = [(0.5, 5.5, LAWYER), (6.0, 11.5, LAWFUL[0])]
    rep = Analyzer(AnalyzerOptions(use_classifier=False),
                   transcriber=FakeTranscriber(lines)).analyze(path)
    assert rep.findings == []
    assert rep.extra["unverified_claims"] == [
        {"category": "impersonation", "start": 0.5, "end": 5.5, "channel": None}]
    advice = rep.extra["verdict"]["advice"]
    assert any("自称律师" in a and "官方客服" in a for a in advice)
    assert "自称律师" in render(rep, "text")
    # Every writer lists the claim as a moment to check, with its time and words, and not as
    # a finding.
    for fmt in ("text", "md", "html"):
        out = render(rep, fmt)
        assert "需要核实的自称（1 处）" in out, fmt
        assert "00:00–00:06" in out and "鹭屿律师事务所" in out, fmt
    html = render(rep, "html")
    assert 'class="claim"' in html and 'data-seek="0.50"' in html
    assert "发现的问题（0 处）" in html

    path = write_audio(tmp_path / "fake_lawyer.wav", tone(18.0), 16000, "wav")
    lines.append((12.0, 17.5, PRIVATE))
    rep = Analyzer(AnalyzerOptions(use_classifier=False),
                   transcriber=FakeTranscriber(lines)).analyze(path)
    assert {"impersonation", "private_payment"} <= {f.category for f in rep.findings}
    assert rep.extra["unverified_claims"] == []
    assert "需要核实的自称" not in render(rep, "html")
