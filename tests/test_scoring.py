"""Rule detector: findings from segments, lawful look-alikes, context, fusion, risk, explain.

Sentences are written here to describe behaviour (a threat to the family is a threat), not
copied from the rule files' term lists.
"""

import textwrap

import pytest

from analyzer.lexicon import Lexicon
from analyzer.scoring import (
    Candidate,
    RuleDetector,
    asr_weight,
    build_detector,
    explain,
    risk_of,
)
from analyzer.types import RISK_LEVELS, Finding, Segment


def seg(i, text, start=None, end=None, **kw):
    start = float(i * 5) if start is None else start
    return Segment(i, start, start + 4.0 if end is None else end, text, **kw)


@pytest.fixture(scope="module")
def detector():
    return RuleDetector()


def categories(detector, *texts):
    return {f.category for f in detector.detect([seg(i, t) for i, t in enumerate(texts)])}


# --------------------------------------------------------------------------- each category

TYPICAL = {
    "threat": [
        "我们的人就在你小区门口，今天不还钱你自己看着办",
        "再不还钱，小心你老婆孩子出点什么事",
        "你信不信我找几个兄弟打断你的腿",
        "今晚就去你家砸你的车",
    ],
    "exposure": [
        "三天内不还，我们就爆你通讯录，让所有人都知道你是老赖",
        "把你的照片P成遗照发到你们公司群里",
        "我们会在你们小区贴满你的欠款公告",
    ],
    "third_party": [
        "不还钱是吧，那我现在就打电话给你老婆，让她替你还",
        "我们已经通知你单位领导了，明天还会打给你同事",
        "你的紧急联系人我们都挨个打过电话了",
        "你儿子在我们平台借了五万块钱到现在都不还",
    ],
    "false_legal": [
        "你这是诈骗，我们已经立案了，警察明天就上门抓你",
        "再不还以后你孩子政审都过不了，考公务员想都别想",
        "不还的话冻结你名下所有银行卡，还要追究你的刑事责任",
    ],
    "impersonation": [
        "我是朝阳区公安分局经侦大队的民警，你涉嫌一起诈骗案",
        "这里是人民法院执行局，你的案子已经到我这里了",
        "我是平台法务部的律师，专门处理你的欠款",
    ],
    "sensitive_info": [
        "你把手机上刚收到的验证码念给我听一下",
        "请提供一下你的银行卡密码，我们帮你核实",
        "你现在打开腾讯会议，开一下屏幕共享",
        "拍一张手持身份证的照片发给我",
    ],
    "private_payment": [
        "你别在APP上还了，直接转到我个人的银行卡上",
        "加我微信，把钱转给我就行，我帮你处理",
        "先交五千块保证金，我们才能给你办减免",
        "为了保证资金安全，请把钱转入安全账户",
    ],
    "insult": [
        "你个老赖，借钱不还还有脸接电话",
        "他妈的你到底还不还钱",
        "你这种人怎么不去死",
    ],
    "harassment": [
        "你不还，我们就天天给你打电话，打到你还钱为止",
        "今晚半夜十二点我还给你打，让你睡不着觉",
        "你家人的电话我们也会轮流打，打爆为止",
    ],
}


@pytest.mark.parametrize(
    "category, text", [(c, t) for c, texts in TYPICAL.items() for t in texts]
)
def test_typical_sentences_are_detected(detector, category, text):
    # A sentence read alone: a lawyer's claim, alone in a call, needs corroboration.
    findings = detector.detect([seg(0, text)], whole_call=False)
    assert category in {f.category for f in findings}, [f.to_dict() for f in findings]


# --------------------------------------------------------------------------- lawful look-alikes

LAWFUL = [
    # third_party: a relative asked only to pass on a callback request
    "麻烦您转告他，让他方便的时候给我们回个电话",
    "请您帮忙转达一下，让他尽快联系我们，谢谢",
    # false_legal: real consequences of an overdue debt
    "逾期会上报征信，影响您以后的贷款",
    "如果一直不处理，平台可能会依法起诉",
    "您可以申请分期还款，我们这边可以协商",
    # impersonation: warning about impersonators
    "请您注意，谨防有人冒充警察或者法院工作人员骗钱",
    "如果有人自称公安要您转账，请直接拨打110",
    # sensitive_info: warnings not to share codes
    "不要把验证码告诉任何人，包括我们的工作人员",
    "我们的工作人员不会向您索要密码和验证码",
    "验证码请您在官方APP里自己输入就可以了",
    # private_payment: the official channel
    "请通过我们的官方APP还款，不要转给任何个人账户",
    "您登录支付宝，在花呗页面还款就可以",
    # ordinary collection
    "您好，我是某某消费金融的工作人员，您的借款已经逾期三天了",
    "请问您今天能把最低还款额还上吗",
    # ordinary service calls (deliveries come to the door)
    "师傅明天上午上门安装，请您家里留人",
    "您的快递已经到小区门口了，麻烦下来取一下",
]


@pytest.mark.parametrize("text", LAWFUL)
def test_lawful_lookalikes_are_not_flagged(detector, text):
    findings = detector.detect([seg(0, text)])
    assert findings == [], [f.to_dict() for f in findings]


DEBTOR = [
    "你这是在威胁我吗？",
    "你们再打我家人电话，我就报警",
    "不要再骚扰我了",
    "你们是骗子吧",
    "凭什么打电话给我爸妈",
    "你们这是暴力催收",
]


@pytest.mark.parametrize("text", DEBTOR)
def test_debtor_objections_are_not_flagged(detector, text):
    assert detector.detect([seg(0, text)]) == []


# --------------------------------------------------------------------------- findings


def test_finding_fields_and_explanation_name_the_rule(detector):
    findings = detector.detect([seg(3, "今晚就去你家砸你的车", start=12.0, end=15.5, channel=1)])
    assert len(findings) == 1
    f = findings[0]
    assert f.category == "threat"
    assert (f.start, f.end, f.channel, f.segment_indices) == (12.0, 15.5, 1, [3])
    assert f.source and all(s.startswith("lexicon:threat.") for s in f.source)
    for src in f.source:
        assert src.removeprefix("lexicon:") in f.explanation
    assert any("砸你的车" in e or "砸你" in e for e in f.evidence)
    assert f"{f.score:.2f}" in f.explanation
    assert 0.5 <= f.score <= 1.0


def test_homophone_finding_says_so(detector):
    f = detector.detect([seg(0, "把你手机刚收到的验证马念给我")])
    assert [x.category for x in f] == ["sensitive_info"]
    assert "同音" in f[0].explanation and "验证码" in f[0].explanation
    assert "验证马" in "".join(f[0].evidence)


def test_hallucinated_segments_never_produce_findings(detector):
    loop = "打断你的腿" * 5
    assert detector.detect([seg(0, loop)]) == []
    # And they do not serve as context for a neighbour either.
    assert detector.detect([seg(0, "字幕由Amara.org社群提供"), seg(1, "你好")]) == []


def test_weak_asr_lowers_the_score(detector):
    text = "把你手机收到的验证码念给我"
    sure = detector.detect([seg(0, text)])[0].score
    weak = detector.detect([seg(0, text, avg_logprob=-1.6, no_speech_prob=0.8)])
    assert not weak or weak[0].score < sure
    assert asr_weight(seg(0, text)) == 1.0
    assert asr_weight(seg(0, text, no_speech_prob=0.8)) < asr_weight(seg(0, text, no_speech_prob=0.6))
    assert asr_weight(seg(0, text, avg_logprob=-3.0, no_speech_prob=1.0)) >= 0.4


def test_severity_is_the_worst_contributing_rule(detector):
    # An insult label (medium) and profanity (high) in one segment: one finding, high.
    findings = detector.detect([seg(0, "你个老赖，他妈的")])
    assert [(f.category, f.severity) for f in findings] == [("insult", "high")]
    assert len(findings[0].source) == 2


# --------------------------------------------------------------------------- context & merge

CONTEXT_RULES = {
    "_common.yaml": "negators: [不要]\n",
    "insult.yaml": """\
        category: insult
        context: [欠款]
        counter_context: [打游戏]
        rules:
          - id: weak
            description: 轻度贬损
            severity: low
            score: 0.4
            terms: [没用的东西]
          - id: strong
            description: 重度辱骂
            severity: high
            score: 0.7
            terms: [王八蛋]
        """,
}


@pytest.fixture(scope="module")
def ctx_detector(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctx")
    for name, body in CONTEXT_RULES.items():
        (root / name).write_text(textwrap.dedent(body), encoding="utf-8")
    return RuleDetector(Lexicon.load(root), threshold=0.45)


def test_context_in_the_same_segment_raises_the_score(ctx_detector):
    assert ctx_detector.detect([seg(0, "你这个没用的东西")]) == []
    found = ctx_detector.detect([seg(0, "欠款不还，你这个没用的东西")])
    assert [f.category for f in found] == ["insult"]
    assert found[0].score == pytest.approx(0.4 + 0.15)
    assert "欠款" in found[0].explanation and "本句" in found[0].explanation


def test_context_in_a_neighbouring_segment_raises_the_score(ctx_detector):
    found = ctx_detector.detect([seg(0, "你的欠款到底什么时候处理"), seg(1, "你这个没用的东西")])
    assert [f.segment_indices for f in found] == [[1]]
    assert found[0].score == pytest.approx(0.4 + 0.1)
    assert "相邻语句" in found[0].explanation
    # A neighbour far away in time does not count.
    far = [seg(0, "你的欠款到底什么时候处理", start=0.0), seg(1, "你这个没用的东西", start=60.0)]
    assert ctx_detector.detect(far) == []


def test_counter_context_lowers_the_score(ctx_detector):
    low = RuleDetector(ctx_detector.lexicon, threshold=0.3)
    assert low.detect([seg(0, "王八蛋")])[0].score == pytest.approx(0.7)
    lowered = low.detect([seg(0, "打游戏输了,王八蛋")])[0]
    assert lowered.score == pytest.approx(0.7 - 0.2)
    assert "打游戏" in lowered.explanation and "反向" in lowered.explanation


def test_adjacent_segments_merge_into_one_finding(ctx_detector):
    segs = [
        seg(0, "王八蛋", start=0.0, end=2.0),
        seg(1, "王八蛋", start=3.0, end=5.0),  # 1 s later: same finding
        seg(2, "王八蛋", start=20.0, end=22.0),  # far: a second finding
    ]
    found = ctx_detector.detect(segs)
    assert [f.segment_indices for f in found] == [[0, 1], [2]]
    assert (found[0].start, found[0].end) == (0.0, 5.0)
    # The same rule twice is one piece of evidence, not two.
    assert found[0].score == pytest.approx(0.7)


def test_different_channels_do_not_merge(ctx_detector):
    segs = [seg(0, "王八蛋", start=0.0, channel=0), seg(1, "王八蛋", start=1.0, channel=1)]
    assert [f.channel for f in ctx_detector.detect(segs)] == [0, 1]


# --------------------------------------------------------------------------- fusion seam


class FakeModel:
    """A stand-in for a classifier: one candidate per segment containing a keyword."""

    def __init__(self, keyword, category, score):
        self.keyword, self.category, self.score = keyword, category, score

    def candidates(self, prepared):
        out = []
        for p in prepared:
            if self.keyword in p.text and not p.hallucination:
                out.append(
                    Candidate(
                        category=self.category, positions=[p.position], start=p.segment.start,
                        end=p.segment.end, channel=p.segment.channel, score=self.score,
                        severity="medium", evidence=[self.keyword], source=["model:fake"],
                        reasons=[f"模型 fake 概率 {self.score:.2f}"],
                        parts={"model:fake": self.score},
                    )
                )
        return out


def test_extra_scorers_fuse_with_the_rules(ctx_detector):
    model = FakeModel("东西", "insult", 0.3)
    fused = build_detector(ctx_detector.lexicon, 0.5, [model])
    # Rules alone (0.4) and model alone (0.3) are both under 0.5; together 1-(0.6*0.7) = 0.58.
    found = fused.detect([seg(0, "你这个没用的东西")])
    assert [f.category for f in found] == ["insult"]
    assert found[0].score == pytest.approx(0.58)
    assert set(found[0].source) == {"lexicon:insult.weak", "model:fake"}
    assert "模型 fake" in found[0].explanation
    assert build_detector(ctx_detector.lexicon, 0.5, [FakeModel("东西", "insult", 0.3)]).detect(
        [seg(0, "这东西不错")]
    ) == []  # the model alone (0.3) stays under the threshold


# --------------------------------------------------------------------------- risk


def finding(severity, score=1.0, category="insult"):
    return Finding(category, 0.0, 1.0, score, severity, ["x"], ["lexicon:x"], "x")


def test_risk_none_without_findings():
    assert risk_of([]) == risk_of(()) and risk_of([]).level == "none" and risk_of([]).score == 0


@pytest.mark.parametrize(
    "severities, scores, expected",
    [
        (["medium"], [0.6], (18, "low")),  # 100 * 0.3 * 0.6
        (["medium", "medium"], [0.6, 0.6], (33, "medium")),  # 1 - 0.82^2 = 0.3276
        (["high"], [0.8], (40, "medium")),  # 0.5 * 0.8
        (["critical"], [0.5], (60, "high")),  # 35 raised to the critical floor
        (["high", "high"], [0.8, 0.8], (64, "high")),  # 1 - 0.6^2
        (["low"], [0.1], (2, "low")),  # 1.5 rounds to 2; any finding is at least low
    ],
)
def test_risk_formula(severities, scores, expected):
    risk = risk_of([finding(s, x) for s, x in zip(severities, scores, strict=True)])
    assert (risk.score, risk.level) == expected


def test_risk_is_monotone():
    pool = [finding(s, x) for s in ("low", "medium", "high", "critical") for x in (0.5, 0.9)]
    acc = []
    last = risk_of(acc)
    for f in pool:
        acc.append(f)
        now = risk_of(acc)
        assert now.score >= last.score
        assert RISK_LEVELS.index(now.level) >= RISK_LEVELS.index(last.level)
        last = now
    assert last.score <= 100


# --------------------------------------------------------------------------- explain


def test_explain_lists_suppressed_hits_and_renders_chinese():
    e = explain("不要把验证码告诉任何人")
    assert e.findings == [] and e.risk.level == "none"
    assert e.hits and all(h["suppressed"] for h in e.hits)
    text = e.render()
    assert "不计入" in text and "sensitive_info." in text
    d = e.to_dict()
    assert d["normalized"] == "不要把验证码告诉任何人" and d["findings"] == []


def test_explain_shows_the_finding_and_rule():
    e = explain("把你收到的驗證馬念給我")  # Traditional and garbled
    assert [f.category for f in e.findings] == ["sensitive_info"]
    assert e.corrections and e.corrections[0]["word"] == "验证码"
    text = e.render()
    assert "sensitive_info.verification_code" in text and "索要敏感信息" in text
    assert "风险" in text and e.risk.level == "high"


def test_explain_reports_hallucinations():
    e = explain("请不吝点赞订阅转发打赏支持明镜与点点栏目")
    assert e.hallucination and e.findings == [] and "幻觉" in e.render()


def test_other_party_weight_falls_from_one_to_the_floor():
    from analyzer.classifier import OTHER_PARTY_THRESHOLD
    from analyzer.scoring import OTHER_PARTY_FLOOR, other_party_weight

    assert other_party_weight(0.0) == other_party_weight(OTHER_PARTY_THRESHOLD - 0.01) == 1.0
    assert other_party_weight(1.0) == pytest.approx(OTHER_PARTY_FLOOR)
    # Halfway between the threshold and certainty: halfway between 1 and the floor.
    mid = (OTHER_PARTY_THRESHOLD + 1.0) / 2
    assert other_party_weight(mid) == pytest.approx((1.0 + OTHER_PARTY_FLOOR) / 2)
