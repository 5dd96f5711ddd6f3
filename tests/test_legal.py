"""Legal basis data: validated on load, chosen by the call's date, nothing cited beyond the
project's shared legal-basis.md."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml

from analyzer import legal
from analyzer.errors import RuleError
from analyzer.types import CATEGORIES, AsrInfo, CallReport, Finding, Risk, Segment

ROOT = Path(__file__).resolve().parent.parent
SHARED_LEGAL = ROOT.parent / "shared" / "legal-basis.md"
DATES = [date(2020, 6, 1), date(2025, 12, 31), date(2026, 1, 1), date(2030, 1, 1), None]
BASIS_KEYS = {"id", "instrument", "article", "quote", "summary", "strength", "strength_zh", "note"}


@pytest.fixture(scope="module")
def shared_text() -> str:
    if not SHARED_LEGAL.is_file():
        pytest.skip(f"{SHARED_LEGAL} not present (only in the project workspace)")
    return SHARED_LEGAL.read_text(encoding="utf-8")


def _norm_quotes(text: str) -> str:
    return text.replace("“", '"').replace("”", '"')


def _articles(basis: list[dict]) -> list[str]:
    return [b["article"] for b in basis if b["article"]]


# --- by date ---------------------------------------------------------------------------------


def test_threat_cites_article_42_until_end_of_2025():
    arts = _articles(legal.basis_for("threat", date(2025, 12, 31)))
    assert "第42条（一）" in arts
    assert not any(a.startswith("第50条") for a in arts)


def test_threat_cites_article_50_from_2026():
    arts = _articles(legal.basis_for("threat", date(2026, 1, 1)))
    assert "第50条" in arts
    assert not any(a.startswith("第42条") for a in arts)


def test_datetime_is_taken_by_its_date():
    arts = _articles(legal.basis_for("insult", datetime(2025, 12, 31, 23, 59)))
    assert "第42条（二）" in arts and "第42条（五）" in arts
    assert not any(a.startswith("第50条") for a in arts)


def test_unknown_date_cites_both_versions_with_a_note():
    basis = legal.basis_for("threat", None)
    old = next(b for b in basis if b["article"] == "第42条（一）")
    new = next(b for b in basis if b["article"] == "第50条")
    assert "通话日期不明" in old["note"] and "2025年12月31日" in old["note"]
    assert "通话日期不明" in new["note"] and "2026年1月1日" in new["note"]


def test_harassment_article_50_only_applies_from_2026():
    before = _articles(legal.basis_for("harassment", date(2025, 6, 1)))
    after = _articles(legal.basis_for("harassment", date(2026, 3, 1)))
    assert "第50条第一款第（五）项" not in before
    assert "第50条第一款第（五）项" in after
    assert "第1033条（一）" in before and "第1033条（一）" in after


def test_guideline_published_after_the_call_is_marked_reference_only():
    basis = legal.basis_for("impersonation", date(2025, 3, 1))
    cba = next(b for b in basis if "中国银行业协会" in b["instrument"])
    assert "晚于本次通话" in cba["note"]
    later = legal.basis_for("impersonation", date(2026, 3, 1))
    cba_later = next(b for b in later if "中国银行业协会" in b["instrument"])
    assert cba_later["note"] is None


@pytest.mark.parametrize("category", sorted(CATEGORIES))
@pytest.mark.parametrize("day", DATES, ids=str)
def test_every_category_has_a_basis_on_every_date(category, day):
    basis = legal.basis_for(category, day)
    assert basis
    for b in basis:
        assert set(b) == BASIS_KEYS
        assert b["instrument"] and b["strength_zh"]
        assert b["strength"] in {"law", "standard", "self_regulation", "scam_signal"}


# --- nothing beyond the shared file ----------------------------------------------------------


def _all_citations() -> list[legal.Citation]:
    return list(legal.load().citations.values())


def test_every_quote_is_verbatim_in_the_shared_file(shared_text):
    quoted = [c for c in _all_citations() if c.quote]
    assert len(quoted) >= 10  # the check must actually check something
    for cit in quoted:
        assert cit.quote in shared_text, f"{cit.id}: quote not in legal-basis.md: {cit.quote}"


def test_every_article_number_is_in_the_shared_file(shared_text):
    arts = [c for c in _all_citations() if c.article]
    assert arts
    for cit in arts:
        number = re.match(r"第\d+条(之一)?", cit.article)
        assert number, f"{cit.id}: article {cit.article!r} does not start with 第N条"
        assert number.group(0) in shared_text, f"{cit.id}: {number.group(0)} not in legal-basis.md"


def test_every_named_instrument_is_in_the_shared_file(shared_text):
    shared = _norm_quotes(shared_text)
    titles = [
        (c.id, title)
        for c in _all_citations()
        for title in re.findall(r"《(.+?)》", _norm_quotes(c.instrument))
    ]
    assert len(titles) >= 8
    for cid, title in titles:
        assert title in shared, f"{cid}: 《{title}》 not in legal-basis.md"


def test_unverified_items_are_cited_by_name_only(shared_text):
    unverified = [c for c in _all_citations() if not c.verified]
    names = {c.instrument for c in unverified}
    assert any("信用卡业务监督管理办法" in n for n in names)
    assert any("自律公约" in n for n in names)
    for c in unverified:
        assert c.article is None and c.quote is None and c.summary is None
    # The circulating article number of the credit-card measures must not leak anywhere.
    third = legal.basis_for("third_party", None)
    card = next(b for b in third if "信用卡业务监督管理办法" in b["instrument"])
    assert card["article"] is None and "仅列名称" in card["note"]
    assert "第68条" not in (ROOT / "analyzer" / "data" / "legal.yaml").read_text(encoding="utf-8")


def test_lender_right_is_civil_code_675_quoted_from_the_shared_file(shared_text):
    right = legal.lender_right()
    assert right["instrument"] == "《民法典》" and right["article"] == "第675条"
    assert right["quote"] and right["quote"] in shared_text


# --- channels --------------------------------------------------------------------------------


def test_channels_never_include_12389():
    data = legal.load()
    assert "12389" not in data.channels
    for cat in CATEGORIES:
        ids = [ch["id"] for ch in legal.channels_for([cat])]
        phones = [ch["phone"] for ch in legal.channels_for([cat])]
        assert ids and "12389" not in ids and "12389" not in phones


def test_channels_fit_the_category():
    ids = lambda cat: [ch["id"] for ch in legal.channels_for([cat])]  # noqa: E731
    assert ids("threat")[0] == "110"
    assert "96110" in ids("sensitive_info") and "96110" in ids("private_payment")
    assert "12377" in ids("exposure")
    assert "12378" in ids("third_party")
    assert "12321" in ids("harassment")
    # Several categories: the most serious first, no repeats.
    both = legal.channels_for(["insult", "impersonation"])
    assert [c["id"] for c in both][:2] == ["110", "96110"]
    assert len({c["id"] for c in both}) == len(both)


# --- annotate --------------------------------------------------------------------------------


def _report(cats: list[str]) -> CallReport:
    segs = [Segment(i, i * 2.0, i * 2.0 + 2, f"第{i}句") for i in range(len(cats))]
    findings = [
        Finding(cat, i * 2.0, i * 2.0 + 2, 0.8, "high", ["x"], ["test"], "说明", [i])
        for i, cat in enumerate(cats)
    ]
    return CallReport("a.wav", "0" * 64, 10.0, 1, AsrInfo("fake", None), segs, findings, Risk(70, "high"))


def test_annotate_fills_every_finding_and_acknowledges_the_lender():
    rep = _report(list(CATEGORIES))
    out = legal.annotate(rep, date(2026, 2, 1))
    assert out is rep
    for f in rep.findings:
        assert f.legal_basis and all(set(b) == BASIS_KEYS for b in f.legal_basis)
    info = rep.extra["legal"]
    assert info["call_date"] == "2026-02-01"
    assert info["lender_right"]["article"] == "第675条"
    assert set(info["categories"]) == set(CATEGORIES)
    assert {"110", "96110", "12378", "12321", "12377", "12363", "lender"} <= {
        c["id"] for c in info["channels"]
    }


def test_annotate_without_findings_still_acknowledges_the_lender():
    rep = _report([])
    legal.annotate(rep, None)
    assert rep.extra["legal"]["call_date"] is None
    assert rep.extra["legal"]["lender_right"]["article"] == "第675条"
    assert rep.extra["legal"]["channels"] == []


# --- validation ------------------------------------------------------------------------------


def _raw() -> dict:
    return yaml.safe_load(legal.DATA_PATH.read_text(encoding="utf-8"))


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "legal.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_bundled_file_loads_and_is_hashed():
    data = legal.load()
    assert set(data.categories) == set(CATEGORIES)
    assert re.fullmatch(r"[0-9a-f]{64}", data.sha256)


def _break_unknown_category(d):
    d["categories"]["blackmail"] = d["categories"]["threat"]


def _break_missing_category(d):
    del d["categories"]["insult"]


def _break_severity(d):
    d["categories"]["threat"]["severity"] = "extreme"


def _break_basis_ref(d):
    d["categories"]["threat"]["basis"].append("no_such_item")


def _break_unverified_article(d):
    d["citations"]["credit_card_measures"]["article"] = "第68条"


def _break_strength(d):
    d["citations"]["pipl_10"]["strength"] = "rumour"


def _break_quote_length(d):
    d["citations"]["pipl_10"]["quote"] = "很长" * 60


def _break_12389(d):
    d["channels"]["12389"] = {"name": "x", "phone": "12389", "use": "x"}


def _break_only_dated_basis(d):
    d["categories"]["threat"]["basis"] = ["psl_42_1", "psl_50_threat"]


def _break_channel_ref(d):
    d["categories"]["insult"]["channels"].append("12315")


@pytest.mark.parametrize(
    ("breaker", "item"),
    [
        (_break_unknown_category, "categories.blackmail"),
        (_break_missing_category, "insult"),
        (_break_severity, "categories.threat.severity"),
        (_break_basis_ref, "categories.threat.basis"),
        (_break_unverified_article, "citations.credit_card_measures"),
        (_break_strength, "citations.pipl_10.strength"),
        (_break_quote_length, "citations.pipl_10.quote"),
        (_break_12389, "channels.12389"),
        (_break_only_dated_basis, "categories.threat.basis"),
        (_break_channel_ref, "categories.insult.channels"),
    ],
)
def test_invalid_data_raises_rule_error_naming_file_and_item(tmp_path, breaker, item):
    data = _raw()
    breaker(data)
    path = _write(tmp_path, data)
    with pytest.raises(RuleError) as err:
        legal.load(path)
    msg = str(err.value)
    assert str(path) in msg and item in msg
    assert "\n" not in msg


def test_error_names_the_line(tmp_path):
    data = _raw()
    _break_severity(data)
    path = _write(tmp_path, data)
    line = next(
        n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "severity: extreme" in text
    )
    with pytest.raises(RuleError, match=f"第{line}行"):
        legal.load(path)


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "legal.yaml"
    path.write_text("version: 1\ncitations: [unclosed\n", encoding="utf-8")
    with pytest.raises(RuleError, match=r"legal\.yaml.*第\d+行"):
        legal.load(path)


def test_missing_file_is_a_rule_error(tmp_path):
    with pytest.raises(RuleError, match="无法读取"):
        legal.load(tmp_path / "nope.yaml")
