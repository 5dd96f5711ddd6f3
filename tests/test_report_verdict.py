"""The layperson verdict: a scam headline on two scam signals, calm when the call is lawful."""

from __future__ import annotations

from analyzer import verdict
from analyzer.types import AsrInfo, CallReport, Finding, Risk, Segment

HIGH = Risk(70, "high")


def _report(found: list[tuple[str, float]], risk: Risk = HIGH) -> CallReport:
    segs = [Segment(i, i * 3.0, i * 3.0 + 3, f"第{i}句") for i in range(max(1, len(found)))]
    findings = [
        Finding(cat, i * 3.0, i * 3.0 + 3, score, "high", ["词"], ["test"], "说明", [i])
        for i, (cat, score) in enumerate(found)
    ]
    return CallReport("c.wav", "0" * 64, 30.0, 1, AsrInfo("fake", None), segs, findings, risk)


def _ids(v: dict) -> list[str]:
    return [c["id"] for c in v["channels"]]


def test_a_code_request_with_a_private_account_is_a_scam_warning():
    v = verdict.build(_report([("sensitive_info", 0.9), ("private_payment", 0.6)]))
    assert v["likely_scam"] is True
    s = v["summary"]
    assert "诈骗" in s and "不是借款机构" in s
    assert "挂断" in s and "110" in s and "96110" in s and "官方客服" in s
    assert "索要敏感信息1处" in s and "转入个人账户1处" in s
    assert any("挂断" in a for a in v["advice"])
    assert _ids(v)[:2] == ["110", "96110"] and "lender" in _ids(v)


def test_one_scam_signal_alone_is_warned_of_but_not_headlined():
    # It may be a false finding (a garbled anti-fraud warning) on a lender's lawful call.
    v = verdict.build(_report([("sensitive_info", 0.9)]))
    assert v["likely_scam"] is False
    s = v["summary"]
    assert "很可能是诈骗" not in s
    assert "索要敏感信息" in s and "诈骗的常见特征" in s and "不要转账或透露验证码" in s


def test_impersonation_and_private_payment_are_a_scam_beside_a_threat():
    rep = _report([("impersonation", 0.8), ("private_payment", 0.7), ("threat", 0.6)])
    v = verdict.build(rep)
    assert v["likely_scam"] is True
    assert "冒充公检法/律师1处" in v["summary"] and "转入个人账户1处" in v["summary"]
    assert "威胁恐吓1处" in v["summary"]  # the rest is still mentioned


def test_abuse_with_one_scam_signal_is_not_called_a_scam_but_warned():
    rep = _report([("threat", 0.9), ("insult", 0.8), ("impersonation", 0.5)])
    v = verdict.build(rep)
    assert v["likely_scam"] is False
    assert "诈骗的常见特征" in v["summary"] and "冒充公检法/律师" in v["summary"]


def test_abusive_collection_summary_names_categories_law_and_where_to_complain():
    rep = _report([("threat", 0.9), ("threat", 0.8), ("insult", 0.7)])
    v = verdict.build(rep)
    s = v["summary"]
    assert v["likely_scam"] is False
    assert "3处" in s and "威胁恐吓2处" in s and "辱骂侮辱1处" in s and "风险高" in s
    assert "第675条" in s  # the lender may ask for repayment
    assert "110" in s  # threats may break the law
    assert "12378" in s  # the regulator
    assert "骗子" not in s and "诈骗" not in s
    assert any("110" in a for a in v["advice"])
    assert _ids(v)[0] == "110" and "12378" in _ids(v)


def test_self_regulation_only_category_gets_no_police_advice():
    v = verdict.build(_report([("false_legal", 0.8)], Risk(40, "medium")))
    assert v["likely_scam"] is False
    assert "可能违法" not in v["summary"]
    assert "12378" in v["summary"] and "风险中" in v["summary"]


def test_lawful_call_gets_a_calm_summary():
    v = verdict.build(_report([], Risk(0, "none")))
    assert v["likely_scam"] is False
    assert "未发现" in v["summary"] and "合法" in v["summary"] and "第675条" in v["summary"]
    assert "诈骗" not in v["summary"] and "110" not in v["summary"]
    assert _ids(v) == ["lender"]
    assert v["advice"]


def test_attach_stores_the_verdict():
    rep = _report([("harassment", 0.7)])
    v = verdict.attach(rep)
    assert rep.extra["verdict"] is v
    assert set(v) == {"summary", "likely_scam", "advice", "channels"}
    assert "12321" in _ids(v)


def test_is_likely_scam_rules():
    f = lambda cat, s: Finding(cat, 0, 1, s, "high", [], [], "")  # noqa: E731
    assert verdict.is_likely_scam([f("sensitive_info", 0.3), f("impersonation", 0.5),
                                   f("threat", 0.99), f("insult", 0.9)])
    assert verdict.is_likely_scam([f("private_payment", 0.6), f("impersonation", 0.6)])
    # Two findings of one signal are still one signal.
    assert not verdict.is_likely_scam([f("private_payment", 0.9), f("private_payment", 0.8)])
    assert not verdict.is_likely_scam([f("sensitive_info", 0.99), f("insult", 0.6)])
    assert not verdict.is_likely_scam([f("threat", 0.9), f("false_legal", 0.9)])
    assert not verdict.is_likely_scam([])
