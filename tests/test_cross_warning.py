"""Anti-fraud warnings that Whisper cut across two segments still read as warnings."""

import pytest

from analyzer.lexicon import default_lexicon
from analyzer.pipeline import Analyzer, AnalyzerOptions
from analyzer.text import normalize
from analyzer.types import Segment

# As Whisper base heard them in retired evaluation calls (homophones included).
SCREEN_SHARE = ("近期有骗子打着立扬消惊的其后,说您的借款率率过高,要帮您住消账户或指降低额度,",
                "然后让您下载会议软件开屏幕共享。")
DEPOSIT = ("另外提醒一句,有人假接被沉的名头。", "说先交保证金财龙分析,那都是假的。")


@pytest.fixture(scope="module")
def rules_only():
    return Analyzer(AnalyzerOptions(use_classifier=False)).detector


def _call(detector, texts, gap=0.1, channels=(None, None)):
    segs, t = [], 0.0
    for i, (text, ch) in enumerate(zip(texts, channels, strict=True)):
        segs.append(Segment(i, t, t + 4.0, text, ch))
        t += 4.0 + gap
    return {f.category for f in detector.detect(segs)}


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        SCREEN_SHARE,  # a warning about what scammers do, going on past the cut
        DEPOSIT,  # "有人…那都是假的" across the cut
        ("再提醒一句,要是有人让你念短信验证码,或者开屏幕共享,", "那都是骗子。"),
    ],
)
def test_a_warning_cut_in_two_is_found(earlier, later):
    w = default_lexicon().warning_across(normalize(earlier), normalize(later))
    assert w is not None
    assert 0 <= w.earlier_from < len(normalize(earlier)) and 0 < w.later_to <= len(normalize(later))


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("有人冒用你的身份证办了银行卡,", "我是市公安局经侦支队的民警。"),  # a claim follows
        ("最近有骗子冒充我们平台,", "你把验证码报给我核实一下。"),  # a request follows
        ("千万不要相信陌生人,", "现在你下载一个会议软件开屏幕共享。"),  # an instruction follows
        ("你今天不还钱,", "那都是你自找的。"),
        ("有骗子冒充我们平台。", "请您下载会议软件开屏幕共享。"),  # the warning had ended
    ],
)
def test_what_follows_a_warning_is_not_always_part_of_it(earlier, later):
    assert default_lexicon().warning_across(normalize(earlier), normalize(later)) is None


@pytest.mark.parametrize(("texts", "category"), [(SCREEN_SHARE, "sensitive_info"),
                                                 (DEPOSIT, "private_payment")])
def test_the_detector_reads_the_cut_warning_whole(rules_only, texts, category):
    assert category not in _call(rules_only, texts)
    # Far apart, or said by different parties (stereo), the two segments are not one warning.
    assert category in _call(rules_only, texts, gap=5.0)
    assert category in _call(rules_only, texts, channels=(0, 1))


def test_a_scammer_claim_after_a_warning_is_still_found(rules_only):
    found = _call(rules_only, ("有人冒用你的身份证办了银行卡,", "我是市公安局经侦支队的民警,你把验证码报给我。"))
    assert {"impersonation", "sensitive_info"} <= found
