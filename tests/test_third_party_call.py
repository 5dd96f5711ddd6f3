"""Calls to someone other than the debtor: pressure on that person is also third_party."""

import pytest

from analyzer.lexicon import default_lexicon
from analyzer.pipeline import Analyzer, AnalyzerOptions
from analyzer.scoring import THIRD_PARTY_CALL, THIRD_PARTY_MIN_CUES
from analyzer.text import normalize
from analyzer.types import Segment

THREAT = "三天之内不还钱，我们就派人去你家门口堵着。"


@pytest.fixture(scope="module")
def rules_only():
    return Analyzer(AnalyzerOptions(use_classifier=False)).detector


def _call(detector, *texts):
    return detector.detect([Segment(i, 5.0 * i, 5.0 * i + 4.0, t) for i, t in enumerate(texts)])


@pytest.mark.parametrize(
    "text",
    [
        "喂，你是张伟的妈妈吧？",
        "您好，请问是李强的同事吗？",
        "你老公在我们平台借了两万，三个月没还了。",
        "你们公司有个员工叫赵敏，欠钱不还。",
        "麻烦你帮我们转告他一声。",
        "你今天先替他还五千。",
        "我是他姐姐，有什么事？",
        "这是他个人的事，跟我说干什么？",
        "凭什么让我替他还？",
        "我哥欠钱关我什么事？",
        "这事跟公司没关系。",
        "他把您填成了紧急联系人。",
        "我是他家邻居，找他有什么事？",
        "您住在王军家隔壁吧？",
        "你是他对门的吧？",
    ],
)
def test_words_of_a_call_to_a_third_party_are_cues(text):
    assert default_lexicon().third_party_cue(normalize(text))


@pytest.mark.parametrize(
    "text",
    [
        "你爸妈知道你欠了这么多钱吗？",  # said to the debtor about the family
        "我们会联系你的紧急联系人。",
        "你欠的钱到底什么时候还？",
        "我下个月发工资就还。",
        "你们公司的人天天打电话，烦不烦？",
        "你家隔壁的人都知道你欠钱了。",  # said to the debtor about the neighbours
        "我们会去你家楼下等你。",
    ],
)
def test_words_of_a_call_to_the_debtor_are_not_cues(text):
    assert default_lexicon().third_party_cue(normalize(text)) is None


def test_pressure_on_a_relative_is_also_third_party(rules_only):
    found = _call(rules_only, "喂，你是张伟的妈妈吧？我是平台的。", "我是他妈，什么事？", THREAT)
    cats = {f.category: f for f in found}
    assert "threat" in cats, "the threat itself is still reported"
    tp = cats["third_party"]
    assert THIRD_PARTY_CALL in tp.source and tp.segment_indices == [2]
    assert "债务人以外的人" in tp.explanation and "张伟的妈妈" in tp.explanation


def test_the_same_words_to_the_debtor_are_not_third_party(rules_only):
    found = _call(rules_only, "喂，张伟吧？你欠的钱什么时候还？", "下个月吧。", THREAT)
    assert "threat" in {f.category for f in found}
    assert "third_party" not in {f.category for f in found}


def test_one_cue_is_not_enough(rules_only):
    assert THIRD_PARTY_MIN_CUES == 2
    found = _call(rules_only, "喂，你是张伟的妈妈吧？", "嗯。", THREAT)
    assert "third_party" not in {f.category for f in found}

