"""Lexicon + shipped classifier fused, as the pipeline runs them."""

import copy
import json
from pathlib import Path

import pytest

from analyzer.classifier import OTHER_PARTY_THRESHOLD
from analyzer.pipeline import Analyzer, AnalyzerOptions
from analyzer.scoring import ClassifierScorer
from analyzer.types import Segment

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def fused():
    return Analyzer().detector


@pytest.fixture(scope="module")
def rules_only():
    return Analyzer(AnalyzerOptions(use_classifier=False)).detector


def _detect(detector, *texts):
    return detector.detect([Segment(i, 3.0 * i, 3.0 * i + 2.5, t) for i, t in enumerate(texts)])


def test_model_catches_what_no_rule_names(fused, rules_only):
    text = "他一天不还，我们就一天打你们全家人的电话，早上打，晚上也打"
    assert not [f for f in _detect(rules_only, text) if f.category == "harassment"]
    found = [f for f in _detect(fused, text) if f.category == "harassment"]
    assert found and any(s.startswith("model:classifier@") for s in found[0].source)
    assert "分类模型" in found[0].explanation and "概率" in found[0].explanation


def test_rule_and_model_agreeing_score_higher_than_the_rule_alone(fused, rules_only):
    text = "把手机收到的验证马念给我"  # a homophone hit: the rule alone is discounted
    alone = max(f.score for f in _detect(rules_only, text) if f.category == "sensitive_info")
    both = [f for f in _detect(fused, text) if f.category == "sensitive_info"][0]
    assert alone < both.score <= 1.0
    assert any(s.startswith("lexicon:") for s in both.source)
    assert any(s.startswith("model:") for s in both.source)


@pytest.mark.parametrize(
    "text",
    [
        "您好，我是某某消费金融的工作人员，您的账单已经逾期十五天了。",
        "逾期记录会上报征信，可能会影响您以后办理贷款。",
        "如果一直协商不成，平台可能会依法向法院起诉。",
        "我们可以帮您申请分期还款，每个月还一千二。",
        "请不要把验证码告诉任何人，包括自称客服的人。",
        "还款请通过官方APP操作，不要转账到任何个人账户。",
        "麻烦您转告他给我们回个电话，谢谢您。",
        "你这是在威胁我吗？我要去投诉你们。",
        "好的，那我下周五之前把钱还上。",
        "本次通话可能会被录音，请您知悉。",
        # A relative asking the caller (one mono segment can join it to the caller's reply).
        "他是不是在外面欠钱了，你跟我说实话。",
        # Anti-fraud warnings name codes, accounts and officials without asking for them.
        "你的银行卡密码和短信验证码，对谁都不能说，包括我。",
        "温馨提示，任何让您提供验证码的都是骗子，我们的工作人员绝不会向您索要。",
        "如果有人说是警察要你配合调查，让你把钱转到指定账户，百分之百是诈骗。",
        # A lender's own legal department is not a lawyer or a court.
        "您好，我是禾穗消费金融法务部的工作人员，您的借款已经逾期一百多天了。",
    ],
)
def test_lawful_lines_stay_clean(fused, text):
    assert _detect(fused, text) == []


def test_hallucinated_text_never_flags(fused):
    loop = "我要打死你" * 6  # a decoding loop, however violent it reads
    assert _detect(fused, "字幕由Amara.org社群提供", loop) == []


def test_provenance_names_the_shipped_classifier(fused):
    meta = json.loads((MODELS / "classifier.json").read_text(encoding="utf-8"))
    assert fused.classifier_sha256 == meta["sha256"]["npz"]
    assert any(isinstance(s, ClassifierScorer) for s in fused.scorers)


def test_a_debtor_quoting_the_caller_is_not_held_against_anyone(fused):
    # Neither the rules nor the model may flag the debtor's own objection.
    assert _detect(fused, "你是不是想说不还钱就要坐牢？你这分明是在吓唬我。") == []


@pytest.mark.parametrize(
    "text, category",
    [
        ("那个催收的骂我是废物，还说要天天打电话打到我崩溃", "insult"),
        # (Retrained models stopped reading "我爸都七十了，你们天天打电话给他…" (46426d3) and
        # "你们把我欠钱的事告诉了我单位领导…" (the heard rows) as the caller's even without the
        # head, so those cases prove nothing about it; "昨天接到电话说是法院的，说我不还就要被抓去
        # 坐牢…" is a retelling rule's now (_common.yaml, tested in test_lexicon).)
        ("你们把我欠款的事发到我们小区业主群里了，邻居都在议论", "exposure"),
    ],
)
def test_the_debtor_retelling_what_a_caller_said_is_weighed_down(fused, text, category):
    # Written for this test. Without the speaker-role head these read as the caller's words.
    without_role = copy.copy(fused)
    without_role.role = None
    assert category in {f.category for f in _detect(without_role, text)}
    assert fused.prepare([Segment(0, 0.0, 2.5, text)])[0].said_by_other_party
    assert _detect(fused, text) == []


def test_a_retold_call_is_set_aside_by_the_rules_too(fused):
    # "有个人打电话说…" is a retelling (_common.yaml retellings): neither the rules nor the
    # classifier read the retold words, whoever the role head takes the speaker for.
    text = "昨天有个人打电话说是法院的，说我不还就要被抓去坐牢，我吓得一晚上没睡"
    without_role = copy.copy(fused)
    without_role.role = None
    assert _detect(without_role, text) == []
    assert _detect(fused, text) == []


def test_the_collector_saying_it_is_still_found(fused):
    text = "你再不还，我们就去你单位闹，把你欠钱的事告诉你所有同事"
    assert not fused.prepare([Segment(0, 0.0, 2.5, text)])[0].said_by_other_party
    assert _detect(fused, text)


def test_explain_says_who_is_speaking():
    analyzer = Analyzer()
    debtor = analyzer.explain("那个催收的骂我是废物，还说要天天打电话打到我崩溃")
    assert debtor.other_party is not None and debtor.other_party >= OTHER_PARTY_THRESHOLD
    assert "像是被催收的一方在说" in debtor.render() and debtor.findings == []
    collector = analyzer.explain("你这个废物，我天天打电话打到你崩溃")
    assert collector.other_party < OTHER_PARTY_THRESHOLD and collector.findings
    assert "按催收方的话判断" in collector.render()


@pytest.mark.parametrize(
    "text, category",
    [
        ("晚上下班走夜路当心点，别说我没提醒过你。", "threat"),
        ("你爸妈在老家也别想过安生日子。", "threat"),
        ("这个号码是区法院的办案专线，你听清楚。", "impersonation"),
        ("我们这边代表司法机关正式通知你。", "impersonation"),
        ("钱先打到我们财务主管的私人账户上。", "private_payment"),
        ("像你这样的废物，活着有什么用。", "insult"),
        ("你的信用报告已经被拉黑了，谁也救不了你。", "false_legal"),
        ("你们当姐姐的，就该替她把网贷还清。", "third_party"),
    ],
)
def test_indirect_wordings_are_found(fused, text, category):
    assert category in {f.category for f in _detect(fused, text)}


def test_a_hedged_legal_consequence_is_lawful(fused):
    text = "判决生效后仍不履行的，有可能被依法限制高消费。"
    assert not [f for f in _detect(fused, text) if f.category == "false_legal"]


def test_model_still_reads_a_warning_for_other_categories(fused):
    # The warning sentence hides codes and accounts from the model, not a threat in it.
    prepared = fused.prepare([Segment(0, 0.0, 2.5, "千万别信那些骗子，你再不还我弄死你全家。")])
    assert prepared[0].warned_text == ""
    assert prepared[0].model_text is None  # the threat is still read for threat
    assert "threat" in {f.category for f in _detect(fused, "千万别信那些骗子，你再不还我弄死你全家。")}


def test_a_request_after_a_warning_is_still_found_by_the_model(fused):
    found = _detect(fused, "千万别信那些骗子。你手机收到的那个码，现在念给我。")
    assert "sensitive_info" in {f.category for f in found}


def test_model_alone_needs_an_anchor_for_concrete_claims(fused, rules_only):
    # Neither names an official body or a payment route: the model may not flag them alone.
    assert _detect(fused, "我是安心借的，你的欠款今天必须处理。") == []
    assert _detect(fused, "今天之内你先替她把钱转过来。") == []
    # An official-sounding body no rule names: the model flags it (调解 is an anchor).
    text = "这边是区里调解中心的，你这个事情已经转到我们这里来了。"
    assert not _detect(rules_only, text)
    found = [f for f in _detect(fused, text) if f.category == "impersonation"]
    assert found and found[0].source == [fused.scorers[1].name]


def test_the_lenders_own_account_anchors_no_private_payment(fused):
    scorer = fused.scorers[1]
    assert not scorer.anchored("private_payment", "还款只走平台客户端,钱直接进公司的对公账户.")
    assert not scorer.anchored("private_payment", "到期从您绑定的银行卡自动扣款.")
    # Another route in the same segment still anchors.
    assert scorer.anchored("private_payment", "别走对公账户了,直接转我个人微信.")
    assert scorer.anchored("private_payment", "把钱打到这个账户.")


RELAY = "您是俞长海的紧急联系人吧？我们这边一直联系不上他，您要是见到他，麻烦帮忙转告一声，让他回个电话。"


class _ReadsThirdParty:
    """The shipped classifier, but sure that every segment is third_party: what a model that
    reads a contact and a missing debtor as pressure would say (an earlier one did)."""

    def __init__(self, clf):
        self._clf = clf

    def __getattr__(self, name):
        return getattr(self._clf, name)

    def score_segments(self, segments, **kw):
        scores = self._clf.score_segments(segments, **kw)
        scores.proba[:, list(self._clf.categories).index("third_party")] = 0.99
        return scores


def test_a_relay_request_is_not_third_party_for_the_model(fused, monkeypatch):
    scorer = fused.scorers[1]
    monkeypatch.setattr(scorer, "classifier", _ReadsThirdParty(scorer.classifier))
    assert _detect(fused, RELAY) == []
    # Without the veto that model's reading makes the finding.
    monkeypatch.setattr(scorer, "vetoes", {})
    assert [f.category for f in _detect(fused, RELAY)] == ["third_party"]


@pytest.mark.parametrize("texts, vetoed", [
    ((RELAY,), True),
    # Heard garbled (捎个话 as 稍各话, 回拨 as 回播), and the request in the next segment.
    (("他留的紧急联系人填的是您。", "麻烦您稍各话，让他得空回播一下。"), True),
    # Naming the debt or pressing the contact is third_party whatever else is said.
    (("你是他紧急联系人，让他回个电话，不然这钱你先替他垫上。",), False),
    (("他在我们平台的欠款逾期三个月了，麻烦您转告他回个电话。",), False),
    (("你是他紧急联系人，他不还钱就找你。",), False),
])
def test_model_vetoes(fused, texts, vetoed):
    prepared = fused.prepare([Segment(i, 3.0 * i, 3.0 * i + 2.5, t) for i, t in enumerate(texts)])
    assert fused.scorers[1].vetoed("third_party", prepared[0], prepared) is vetoed
    assert not fused.scorers[1].vetoed("threat", prepared[0], prepared)


def test_a_relay_with_pressure_is_still_found(fused):
    found = _detect(fused, "你是他紧急联系人，让他回个电话，不然这钱你先替他垫上。")
    assert "third_party" in {f.category for f in found}


def test_explain_names_the_veto_from_its_note():
    result = Analyzer().explain("以后每天最多联系您一次。")
    assert result.to_dict()["vetoed"] == ["harassment"]
    assert "承诺限制联系次数" in result.render() and "骚扰意图" in result.render()
