"""Redaction: phone, ID-card and bank-card numbers masked, last 4 digits kept, in every text."""

from __future__ import annotations

import json

import pytest

from analyzer.redact import redact, redact_text
from analyzer.report import render
from analyzer.types import AsrInfo, CallReport, Finding, Risk, Segment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的电话13800138000", "我的电话*******8000"),
        ("打138 0013 8000找我", "打*** **** 8000找我"),
        ("138-0013-8000", "***-****-8000"),
        ("+86 139 1234 5678", "+** *** **** 5678"),
        ("号码是一三八零零一三八零零零。", "号码是*******八零零零。"),
        ("幺三九一二三四五六七八", "*******五六七八"),
        ("１３８００１３８０００", "*******８０００"),
        ("身份证110101199003071234。", "身份证**************1234。"),
        ("身份证号11010119900307123X", "身份证号**************123X"),
        ("卡号6222021234567890123", "卡号***************0123"),
        ("卡号6222 0212 3456 7890", "卡号**** **** **** 7890"),
        ("座机010-12345678", "座机***-****5678"),
        ("（0755）87654321", "（****）****4321"),
        ("座机零二一八七六五四三二一", "座机*******四三二一"),
    ],
)
def test_numbers_are_masked_keeping_the_last_four(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "你欠了12000元，已经逾期45天",
        "本金3000，利息150，共3150元",
        "2025年12月31日之前还清",
        "一二三四五六七八九",
        "请拨打95188或者12378",
        "订单号2203021149",  # 10 digits not starting like a phone number
        "",
    ],
)
def test_amounts_dates_and_short_numbers_are_left_alone(text):
    assert redact_text(text) == text


def test_file_name_phone_and_timestamp():
    name = "通话录音@176 8831 4515(17688314515)_20180814153840.mp3"
    assert redact_text(name) == "通话录音@*** **** 4515(*******4515)_20180814153840.mp3"


def test_two_numbers_in_one_sentence():
    out = redact_text("手机13912345678，卡号6222021234567890")
    assert out == "手机*******5678，卡号************7890"


def _report() -> CallReport:
    segs = [
        Segment(0, 0.0, 4.0, "我的号码是一三八零零一三八零零零"),
        Segment(1, 4.0, 8.0, "转到卡号6222021234567890，身份证110101199003071234"),
    ]
    findings = [
        Finding(
            "private_payment", 4.0, 8.0, 0.9, "critical", ["卡号6222021234567890"],
            ["lexicon:private_payment.card"], "要求转账到卡号6222021234567890", [1],
        )
    ]
    rep = CallReport(
        "/rec/13800138000_20240301123045.m4a", "a" * 64, 8.0, 1, AsrInfo("base", "b" * 64),
        segs, findings, Risk(80, "high"),
    )
    rep.extra["call"] = {"number": "13800138000", "started_at": "2024-03-01T12:30:45"}
    rep.extra["provenance"] = {"rules_sha256": "1" * 64}
    return rep


def test_report_is_masked_everywhere_and_original_untouched():
    rep = _report()
    out = redact(rep)
    assert out.segments[0].text == "我的号码是*******八零零零"
    assert out.segments[1].text == "转到卡号************7890，身份证**************1234"
    assert out.findings[0].evidence == ["卡号************7890"]
    assert out.findings[0].explanation == "要求转账到卡号************7890"
    assert out.file == "/rec/*******8000_20240301123045.m4a"
    assert out.extra["call"]["number"] == "*******8000"
    assert out.extra["redacted"] is True
    # Hashes identify files, not people: kept.
    assert out.sha256 == "a" * 64 and out.extra["provenance"]["rules_sha256"] == "1" * 64
    # The original report is unchanged.
    assert rep.segments[0].text == "我的号码是一三八零零一三八零零零"
    assert rep.findings[0].evidence == ["卡号6222021234567890"]
    assert "redacted" not in rep.extra


@pytest.mark.parametrize("fmt", ["text", "json", "md", "html"])
def test_rendered_redacted_report_contains_no_full_number(fmt):
    out = render(redact(_report()), fmt, audio="none")
    for secret in ("13800138000", "6222021234567890", "110101199003071234", "一三八零零一三八"):
        assert secret not in out
    assert "7890" in out
    if fmt == "json":
        assert json.loads(out)["redacted"] is True
