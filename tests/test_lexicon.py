"""Rule files: validation errors, matching mechanics, homophone repair, hotwords.

Mechanics are tested on small rule sets written here (tmp_path), so they do not depend on
the bundled term lists; the bundled rules are checked for loading and a few behaviours.
"""

import textwrap

import pytest

from analyzer.errors import RuleError
from analyzer.lexicon import FUZZY_FACTOR, Lexicon, check_rules, default_lexicon
from analyzer.types import CATEGORIES, SEVERITIES

COMMON = """\
macros:
  你: "你|您"
negators: [不要, 别, 不会]
negator_exceptions: [别人]
negation_breakers: [的话, 就]
objections:
  - "<你>(?:这是|是)?(?:在)?威胁我"
fuzzy_words: [催收, 逾期]
hotwords: [验证码, 通讯录, 紧急联系人, 逾期]
"""

SENSITIVE = """\
category: sensitive_info
context: [告诉我]
exclusions:
  - "不要…告诉任何人"
rules:
  - id: code
    description: 索要验证码
    severity: critical
    score: 0.8
    terms: [验证码]
    patterns:
      - "把…密码…给我"
  - id: contacts
    description: 提到通讯录
    severity: medium
    score: 0.4
    terms: [打你通讯录]
"""

THREAT = """\
category: threat
rules:
  - id: door
    description: 上门威胁
    severity: high
    score: 0.7
    terms: [去你家]
    negatable: true
  - id: collect
    description: 上门催收
    severity: medium
    score: 0.5
    terms: [上门催收]
"""

USERDICT = "# test dictionary\n验证码 n\n通讯录 n\n上门催收 v\n通缉令 n\n保证金 n\n"


def write_rules(root, files):
    root.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (root / name).write_text(textwrap.dedent(body), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("rules")
    write_rules(
        root,
        {"_common.yaml": COMMON, "sensitive_info.yaml": SENSITIVE, "threat.yaml": THREAT},
    )
    userdict = root / "userdict.txt"
    userdict.write_text(USERDICT, encoding="utf-8")
    return Lexicon.load(root, userdict=userdict)


# --------------------------------------------------------------------------- validation


def load_error(tmp_path, files) -> str:
    root = write_rules(tmp_path / "r", files)
    with pytest.raises(RuleError) as err:
        Lexicon.load(root)
    return str(err.value)


def bad_threat(rule_body: str) -> str:
    """A threat.yaml whose single rule has `rule_body`; the rule starts on line 3."""
    return "category: threat\nrules:\n" + textwrap.indent(textwrap.dedent(rule_body), "  ")


@pytest.mark.parametrize(
    "rule_body, line, words",
    [
        (  # invalid regex on the 7th line of the file
            """\
            - id: door
              description: x
              severity: high
              score: 0.7
              patterns:
                - "去你家"
                - "(?:去你家"
            """,
            9,
            "正则表达式",
        ),
        (
            """\
            - id: door
              description: x
              severity: terrible
              score: 0.7
              terms: [去你家]
            """,
            5,
            "severity",
        ),
        (
            """\
            - id: door
              description: x
              severity: high
              score: 0.7
              terms: [去你家]
              colour: red
            """,
            8,
            "colour",
        ),
        (  # Traditional characters never match normalized text
            """\
            - id: door
              description: x
              severity: high
              score: 0.7
              terms:
                - 去你家
                - 驗證碼
            """,
            9,
            "验证码",
        ),
        (
            """\
            - id: door
              description: x
              severity: high
              score: 1.5
              terms: [去你家]
            """,
            6,
            "score",
        ),
        (  # a pattern that matches nothing at all would fire everywhere
            """\
            - id: door
              description: x
              severity: high
              score: 0.5
              patterns: ["(?:你)?"]
            """,
            7,
            "空文本",
        ),
        (
            """\
            - id: door
              description: x
              severity: high
              score: 0.5
              patterns: ["<无此宏>去你家"]
            """,
            7,
            "无此宏",
        ),
        (
            """\
            - id: door
              description: x
              severity: high
              score: 0.5
            """,
            3,
            "terms",
        ),
        (
            """\
            - id: door
              description: x
              severity: high
              score: 0.5
              terms: [去你家]
            - id: door
              description: y
              severity: low
              score: 0.5
              terms: [到你家]
            """,
            8,
            "重复",
        ),
        (
            """\
            - id: door
              description: x
              severity: high
              score: 0.5
              terms: [去你家, 110]
            """,
            7,
            "数字请加引号",
        ),
    ],
)
def test_rule_errors_name_file_and_line(tmp_path, rule_body, line, words):
    message = load_error(tmp_path, {"threat.yaml": bad_threat(rule_body)})
    assert str(tmp_path / "r" / "threat.yaml") in message
    assert f"第 {line} 行" in message
    assert words in message


def test_yaml_syntax_error_names_line(tmp_path):
    body = "category: threat\nrules:\n  - id: door\n    terms: [去你家\n    severity: high\n"
    message = load_error(tmp_path, {"threat.yaml": body})
    assert "threat.yaml" in message and "YAML" in message and "行" in message


def test_category_must_match_file_name(tmp_path):
    message = load_error(
        tmp_path,
        {"threat.yaml": "category: insult\nrules:\n  - {id: a, description: x, severity: low, "
         "score: 0.5, terms: [滚]}\n"},
    )
    assert "第 1 行" in message and "threat" in message and "insult" in message


def test_unknown_file_name_is_rejected(tmp_path):
    message = load_error(tmp_path, {"threats.yaml": "category: threats\nrules: []\n"})
    assert "threats.yaml" in message and "类别" in message


def test_duplicate_key_is_rejected(tmp_path):
    body = "category: threat\ncategory: threat\nrules: []\n"
    message = load_error(tmp_path, {"threat.yaml": body})
    assert "第 2 行" in message and "重复" in message


def test_bad_common_macro_names_line(tmp_path):
    common = "macros:\n  你: \"你|您\"\n  坏: \"(?:未闭合\"\n"
    message = load_error(tmp_path, {"_common.yaml": common})
    assert "_common.yaml" in message and "第 3 行" in message


def test_missing_directory_is_a_rule_error(tmp_path):
    with pytest.raises(RuleError) as err:
        check_rules(tmp_path / "nowhere")
    assert "nowhere" in str(err.value)


def test_bundled_rules_cover_every_category_richly():
    summary = check_rules()
    assert summary.missing == []
    assert set(summary.per_category) == set(CATEGORIES)
    for cat, counts in summary.per_category.items():
        # "dozens of terms/patterns per category"
        assert counts["terms"] + counts["patterns"] >= 24, cat
        assert counts["rules"] >= 4, cat
        assert sum(counts[s] for s in SEVERITIES) == counts["rules"]
    text = summary.render()
    for name in CATEGORIES.values():
        assert name in text
    assert summary.to_dict()["total_rules"] == summary.total_rules
    assert summary.common["warnings"] >= 5 and f"防骗提醒模式 {summary.common['warnings']} 个" in text
    assert summary.common["third_party_cues"] >= 10
    assert f"第三方来电线索 {summary.common['third_party_cues']} 个" in text


# --------------------------------------------------------------------------- matching


def test_chinese_terms_match_as_substrings(small):
    # No spaces, no word boundaries: a \\b-based matcher would find nothing here.
    hits = small.match("我们明天就去你家拿钱")
    assert [(h.rule_id, h.text) for h in hits] == [("threat.door", "去你家")]
    h = hits[0]
    assert (h.start, h.end) == (5, 8) and h.severity == "high" and h.score == pytest.approx(0.7)
    assert not h.fuzzy and h.suppressed is None


def test_matching_uses_normalized_text(small):
    hits = small.match("明天我們就去你家！")  # Traditional 們
    assert [h.rule_id for h in hits] == ["threat.door"]


def test_pattern_gap_stays_inside_one_sentence(small):
    assert [h.rule_id for h in small.match("把你的银行卡密码念给我")] == ["sensitive_info.code"]
    assert small.match("把钱准备好。密码以后再说给我") == []


def test_negation_cancels_a_hit(small):
    assert small.match("我们不会去你家") == []
    assert small.match("别人会去你家") != []  # 别人 is not a negation
    # A condition ends the negator's reach: "不会还的话" negates the repaying, not the visit.
    assert small.match("你不会还的话我们就去你家") != []


def test_negation_reaches_a_hit_that_begins_inside_the_negator(small):
    # "不会" + "去你家": the term starts with the negator's second character.
    assert small.match("我们不会去你家") == []
    assert small.match("我们这边不去你家") != []  # 不 alone is not a negator here


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("我们这边不会去你单位,也不会联系你家里人和同事.", "third_party"),
        ("欠钱本身不构成坐牢的理由,也牵扯不到您家里人.", "false_legal"),
        ("平台最多是依法起诉,不存在因为欠款上门抓人的说法.", "false_legal"),
        ("如果判决生效后您没有按判决还款,银行可以申请强制执行,冻结您名下的财产.", "false_legal"),
        ("只有在判决生效、您拒不履行的情形下,法院才可能把人纳入失信被执行人名单.", "false_legal"),
        ("任何人向您要验证码、密码,让您刷脸或者共享屏幕,都不要配合.", "sensitive_info"),
        # Denied after the word, and the judge's say (eval/holdout7, retired).
        ("就算走到诉讼那一步,判多少,怎么执行,都是法官说了算,跟坐牢扯不上.", "false_legal"),
        ("欠款是民事的事,和刑事没有关系.", "false_legal"),
        # Telling a contact they were listed names no debt.
        ("王先生在我们这边登记联系人时留了你的号码.", "third_party"),
        ("您的老同学之前登记过您的号码作为联系人.", "third_party"),
    ],
)
def test_truthful_process_denials_and_warnings_do_not_count(text, category):
    assert category not in {h.category for h in default_lexicon().match(text)}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("再不还钱我们就会去你单位找你领导.", "third_party"),
        ("今天不还钱,明天就冻结你所有银行卡,等着坐牢吧.", "false_legal"),
        ("你把验证码念一下,谁问你都别管,先给我.", "sensitive_info"),
        ("你不还就跟坐牢扯上关系了.", "false_legal"),
        ("他把你填成紧急联系人了,不还钱我们就挨个打你通讯录.", "third_party"),
        # The debtor's listed contacts are not the listener: still a threat to call them.
        ("你填的紧急联系人我们都挨个打过电话了.", "third_party"),
        ("再不还钱,你登记的那几个联系人我们今天全部打一遍.", "third_party"),
    ],
)
def test_the_same_words_as_threats_or_requests_still_count(text, category):
    assert category in {h.category for h in default_lexicon().match(text)}


@pytest.mark.parametrize(
    ("text", "hit"),
    [
        # Claims to be a state body (eval/holdout7 and holdout8 misses, retired sets).
        ("这里是国家金融监督管理总局消费者权益保护热线,我是工作人员小路.", True),
        ("您放心,我们是国家机关.", True),
        ("防的是骗子,我们是国家机构,两码事.", True),
        ("别人不能给,我们是监管部门,跟各家银行联网.", True),
        ("那是防骗子的,我们是官方机构,不一样.", True),
        # Lawful: a licensed lender under supervision, a denial, a complaint channel.
        ("我们是持牌机构,受国家金融监督管理总局监管.", False),
        ("我们不是国家机关,只是平台委托的催收公司.", False),
        ("您可以拨打12378向国家金融监督管理总局反映.", False),
    ],
)
def test_claiming_to_be_a_state_body(text, hit):
    assert ("impersonation" in {h.category for h in default_lexicon().match(text)}) is hit


def test_exclusion_overlapping_the_hit_suppresses_it(small):
    m = small.analyze("不要把验证码告诉任何人", keep_suppressed=True)
    assert [h.rule_id for h in m.hits] == ["sensitive_info.code"]
    assert m.hits[0].suppressed and "排除" in m.hits[0].suppressed
    assert small.match("不要把验证码告诉任何人") == []


def test_debtor_objection_suppresses_the_sentence(small):
    m = small.analyze("你说要去你家,你这是在威胁我", keep_suppressed=True)
    assert [h.rule_id for h in m.hits] == ["threat.door"]
    assert "异议" in m.hits[0].suppressed
    assert small.match("你说要去你家,你这是在威胁我") == []


def test_objection_only_covers_its_own_sentence(small):
    hits = small.match("你这是在威胁我吗?对,明天就去你家")
    assert [h.rule_id for h in hits] == ["threat.door"]


# --------------------------------------------------------------------------- homophones


@pytest.mark.parametrize(
    "heard, word",
    [("验证马", "验证码"), ("院正马", "验证码"), ("通信路", "通讯录")],
)
def test_homophones_repair_domain_words(small, heard, word):
    m = small.analyze(f"快把{heard}告诉我")
    assert [(c.heard, c.word) for c in m.corrections] == [(heard, word)]
    assert m.repaired == f"快把{word}告诉我"


def test_fuzzy_hits_are_flagged_and_score_lower(small):
    exact = small.match("打你通讯录")[0]
    fuzzy = small.match("打你通信路")[0]
    assert fuzzy.rule_id == exact.rule_id == "sensitive_info.contacts"
    assert fuzzy.fuzzy and not exact.fuzzy
    assert fuzzy.text == "打你通信路" and fuzzy.repaired == "打你通讯录"
    assert fuzzy.score == pytest.approx(exact.score * FUZZY_FACTOR)
    assert fuzzy.score < exact.score


def test_two_character_words_need_an_exact_homophone(small):
    # 推售 is one letter off 催收: inside the longer domain word 上门催收 it is repaired ...
    hits = small.match("明天上门推售")
    assert [(h.rule_id, h.fuzzy) for h in hits] == [("threat.collect", True)]
    # ... but standing alone a two-character word must sound the same (会受 ~ hui shou).
    assert small.analyze("他会受不了").corrections == ()


def test_common_words_and_split_words_are_not_repaired(small):
    # An exact homophone that is not a word is repaired ...
    assert [c.word for c in small.analyze("你已经鱼期三天了").corrections] == ["逾期"]
    # ... a common dictionary word (预期) is not; nor a window a word straddles (不同|剂量
    # ~ 通缉令), nor one that differs only in a pronoun (保证您 ~ 保证金).
    for text in ["效果和预期一样", "我们有不同剂量的药", "保证您满意"]:
        assert small.analyze(text).corrections == (), text


def test_bundled_lexicon_catches_asr_homophones():
    lex = default_lexicon()
    cases = {
        "把你手机收到的验证马念给我": "sensitive_info",
        "院正马告诉我一下": "sensitive_info",
        "我们会打你通信路里的所有人": "third_party",
        "明天上门推售": "threat",
    }
    for text, category in cases.items():
        hits = [h for h in lex.match(text) if h.category == category]
        assert hits and any(h.fuzzy for h in hits), text


# --------------------------------------------------------------------------- hotwords


def test_hotwords_are_short_and_whole(small):
    assert small.hotwords(max_chars=100) == "验证码、通讯录、紧急联系人、逾期。"
    cut = small.hotwords(max_chars=9)
    assert cut == "验证码、通讯录。"  # the next word would overflow: dropped, not cut
    assert small.hotwords(max_chars=2) == ""


def test_bundled_hotwords_start_with_error_prone_terms():
    words = default_lexicon().hotwords().rstrip("。").split("、")
    assert words[0] == "验证码" and "通讯录" in words
    assert len(default_lexicon().hotwords()) <= 40


# --------------------------------------------------------------------------- bundled rules


def test_two_character_words_allow_the_usual_sound_mergers():
    # 真信 zhenxin / 征信 zhengxin: front and back nasals merge on phone audio (模糊音) ...
    m = default_lexicon().analyze("您的真信会被拉黑")
    assert [(c.heard, c.word) for c in m.corrections] == [("真信", "征信")]
    assert [h.rule_id for h in m.hits] == ["false_legal.exaggerated_record"]
    # ... but a common word that sounds alike stays what it is.
    assert default_lexicon().analyze("我真心想还钱").corrections == ()


def test_legal_terms_are_repaired_from_their_homophones():
    m = default_lexicon().analyze("你这个属于行事按键")
    assert [(c.heard, c.word) for c in m.corrections] == [("行事按键", "刑事案件")]
    assert [h.rule_id for h in m.hits] == ["false_legal.criminal"]


def test_objection_is_recognised_through_a_homophone():
    lex = default_lexicon()
    quote = "你是不是想说不还钱就要坐牢,你真是在下虎我."
    assert lex.without_objections(quote) != quote
    assert lex.match("你是不是想说不还钱就要坐牢,你真是在下虎我") == []
    threat = "不还钱就要坐牢,你等着."
    assert lex.without_objections(threat) == threat


def test_hearsay_asked_about_is_the_debtor_speaking():
    lex = default_lexicon()
    assert lex.match("我在网上看到有人讲,信用卡不还要坐牢的,是真的伐?") == []
    assert "false_legal" in {h.category for h in lex.match("信用卡不还要坐牢的.")}


def test_debtor_retelling_a_scammer_is_not_the_caller_asking():
    lex = default_lexicon()
    retold = "上次那个骗子讲,可以先打到一个安全账户里."
    assert "private_payment" not in {h.category for h in lex.match(retold)}
    assert "private_payment" in {h.category for h in lex.match("你可以先打到一个安全账户里.")}


def test_debtor_retelling_another_caller_is_the_debtor_speaking():
    lex = default_lexicon()
    # As Whisper heard a debtor in a retired evaluation call (男 -> 难, 我 -> 握).
    retold = "之前有个难的打电话,说明天带人上门给我家电视冰箱贴封条,还要叫派出所把握带走."
    assert "threat" not in {h.category for h in lex.match(retold)}
    assert "threat" in {h.category for h in lex.match("明天带人上门给你家电视冰箱贴封条.")}
    # The classifier reads none of the retold words, however many clauses they run to.
    assert lex.without_objections(retold) == ""
    assert lex.without_objections("礼拜二有个自称另一家的,放话讲伢子放学走哪条路他晓得.") == ""
    asked = "他还让我把身份证正反面拍给他,再把手机收到的六位数发过去,说是撤诉要用.好的."
    assert lex.without_objections(asked) == "好的."
    # A caller's own words about calling stay the caller's.
    said = "明天有个同事打电话给你,你最好接."
    assert lex.without_objections(said) == said


@pytest.mark.parametrize("retold", ["昨天接到电话说是法院的,说我不还就要被抓去坐牢,我吓得一晚上没睡.",
                                    "我前天接了个电话,说要抓我去坐牢."])
def test_a_call_the_speaker_received_is_retold(retold):
    lex = default_lexicon()
    assert "false_legal" not in {h.category for h in lex.match(retold)}
    assert lex.without_objections(retold) == ""


@pytest.mark.parametrize("retold", ["还有个短信,讲点开链接就能给我信用卡解冻,要填验证码.",
                                    "我收到一条短信,将点开链接填验证码就能解冻."])
def test_a_message_the_speaker_received_is_retold(retold):
    lex = default_lexicon()
    hits = [h for h in lex.match(retold) if h.category == "sensitive_info" and h.suppressed is None]
    assert not hits and lex.without_objections(retold) == ""


def test_a_collector_naming_a_message_still_asks():
    said = "你会收到一条短信,把上面的验证码念给我."
    assert "sensitive_info" in {h.category for h in default_lexicon().match(said)
                                if h.suppressed is None}


@pytest.mark.parametrize("retold", [
    # As Whisper heard debtors of retired evaluation calls tell what a scammer asked.
    "要我把钱转去一个安全账户.",
    "让我装个软件开屏幕共享,再把钱挪到啥安权账户.",
    "他还讲要我开个视频会议,把手机屏幕共享给他看.",
])
def test_a_scam_request_retold_without_the_asker_is_the_debtor_speaking(retold):
    lex = default_lexicon()
    assert lex.match(retold) == []
    assert lex.without_objections(retold) == ""


@pytest.mark.parametrize("said", ["让我把话说完,不还钱明天就上门.", "我让你把钱转到我个人微信上.",
                                  "要么今天还,要么我把钱的事告诉你家里人."])
def test_a_collectors_own_let_me_is_not_a_retelling(said):
    assert default_lexicon().without_objections(said) == said


def test_a_call_the_debtor_received_told_by_the_collector_still_counts():
    said = "你接到电话说要坐牢是真的,再不还就抓你去坐牢."
    assert "false_legal" in {h.category for h in default_lexicon().match(said)}


def test_without_objections_keeps_the_callers_clauses():
    lex = default_lexicon()
    # The debtor's objection and the caller's next demand, joined in one mono segment.
    text = "我怎么知道你是不是骗子,你手机会收到短信,把验证码念给我."
    assert lex.without_objections(text) == "你手机会收到短信,把验证码念给我."
    assert lex.without_objections("你是不是想说不还钱就要坐牢,你真是在下虎我.") == ""
    assert lex.without_objections("明天就去你家.") == "明天就去你家."


def test_unknown_warned_category_names_line(tmp_path):
    common = "warned_categories:\n  - sensitive_info\n  - codes\n"
    message = load_error(tmp_path, {"_common.yaml": common})
    assert "_common.yaml" in message and "第 3 行" in message and "codes" in message


def test_unknown_pressure_category_names_its_line(tmp_path):
    common = "third_party_pressure:\n  - threat\n  - shouting\n"
    message = load_error(tmp_path, {"_common.yaml": common})
    assert "_common.yaml" in message and "第 3 行" in message and "shouting" in message


@pytest.mark.parametrize(
    "warning",
    [
        "温馨提示,任何让您提供验证码的都是骗子,我们的工作人员绝不会向您索要.",
        "如果有人说是警察要你配合调查,让你把钱转到指定账户,百分之百是诈骗.",
        "你的银行卡密码和短信验证码,对谁都不能说,包括我.",
        "如果有人让你把钱打到他的个人账户,那都是骗子.",
        # Dialect "don't" (Hunan 莫, Cantonese 唔好) and "所谓…全是骗人的" (eval/holdout6).
        "钱只走应用里的官方通道,谁叫您转到个人卡上都莫信.",
        "有人叫你把钱转到个人账户,千祈唔好信.",
        "所谓安全账户全是骗人的.",
        "有人假借我们的名头,说先交保证金才能分期,那都是假的.",
        # "都别转", "一概别理" with 理 heard as 礼, "从不…叫人填" with the bank's name garbled.
        "有人让您打到私人微信,不管他自称是谁,都别转.",
        "有人让您打到私人微信,个人卡上一概别礼.",
        # What the scammer gains, explained (the request itself garbled before it).
        "屏幕共享功能别开,一开对方就能看到您的验证码和银行信息.",
    ],
)
def test_anti_fraud_warnings_do_not_count(warning):
    m = default_lexicon().analyze(warning, keep_suppressed=True)
    assert m.hits, "the warning names codes, accounts or officials"
    assert all(h.suppressed and h.suppressed.startswith("防骗提醒") for h in m.hits)


def test_a_warning_without_rule_hits_is_hidden_from_the_model():
    # "不会要你的密码", "不会叫你打开…": a retired set's lawful call as Whisper heard it,
    # which the classifier alone had taken for a request.
    lex = default_lexicon()
    said = "你问得对,我们正规客服不会要你的密码,也不会叫你打开屏幕共享."
    assert lex.without_warnings(said) == ""
    asked = "你现在把密码告诉我,我们帮你解冻."
    assert lex.without_warnings(asked) == asked


@pytest.mark.parametrize(
    ("text", "category"),
    [
        # A warning word does not excuse a request made to the speaker in the same sentence.
        ("为了防止诈骗,请您把刚收到的验证码念给我核实一下.", "sensitive_info"),
        ("别信那些骗子,你现在直接把钱转到我个人微信上.", "private_payment"),
        ("你莫信平台那套,先把钱转到我个人卡上.", "private_payment"),
        ("谨防诈骗,我们是正规的,你把银行卡密码报一下我帮你查.", "sensitive_info"),
        # Only its own sentence is a warning.
        ("千万别信那些骗子. 你把验证码发给我, 我帮你消逾期.", "sensitive_info"),
        ("我们从不让你多跑,你把验证码念给我就行.", "sensitive_info"),
    ],
)
def test_requests_next_to_warning_words_still_count(text, category):
    hits = default_lexicon().match(text)
    assert category in {h.category for h in hits}


def test_without_warnings_drops_only_the_warning_sentences():
    lex = default_lexicon()
    text = "千万别信那些骗子.你把验证码发给我."
    assert lex.without_warnings(text) == "你把验证码发给我."
    assert lex.without_warnings("你把验证码发给我.") == "你把验证码发给我."
    # "我行从不…叫人填…" with the bank's name garbled: the classifier reads the rest only.
    text = "那条短信千万别点,我航从不发链接叫人填验证码.您的账单还差三百."
    assert lex.without_warnings(text) == "您的账单还差三百."


def test_model_anchors_are_validated(tmp_path):
    common = "model_anchors:\n  impersonation: [警察]\n  police: [警察]\n"
    message = load_error(tmp_path, {"_common.yaml": common})
    assert "_common.yaml" in message and "第 3 行" in message and "police" in message
    message = load_error(tmp_path, {"_common.yaml": "model_anchors: [警察]\n"})
    assert "第 1 行" in message and "model_anchors" in message


def test_model_vetoes_are_validated(tmp_path):
    message = load_error(tmp_path, {"_common.yaml": "model_vetoes:\n  third_party: [转告]\n"})
    assert "_common.yaml" in message and "第 2 行" in message
    message = load_error(tmp_path, {"_common.yaml": "model_vetoes:\n  third_party:\n    unless: [欠]\n"})
    assert "第 2 行" in message and "when" in message
    message = load_error(tmp_path, {"_common.yaml": "model_vetoes:\n  relay:\n    when: [转告]\n"})
    assert "relay" in message and "不是类别编号" in message
    message = load_error(tmp_path, {"_common.yaml": "model_vetoes:\n  third_party:\n    when: [\"转告(\"]\n"})
    assert "第 3 行" in message and "无效" in message
    message = load_error(tmp_path, {"_common.yaml": "model_vetoes:\n  third_party:\n    when: [转告]\n    note: [a]\n"})
    assert "第 4 行" in message and "note" in message


def test_bundled_model_vetoes():
    veto = default_lexicon().common.model_vetoes["third_party"]
    assert veto.matches("麻烦您转告他回个电话")
    assert not veto.matches("麻烦您转告他，他的欠款再不还就起诉")
    # A promise to call less is not harassment; a promise to call until paid is.
    limit = default_lexicon().common.model_vetoes["harassment"]
    assert limit.matches("以后每天最多联系您一次") and limit.matches("每天不超过一次")
    assert not limit.matches("每天只打一次,打到你还钱为止")
    assert limit.note and default_lexicon().common.model_vetoes["third_party"].note


def test_bundled_model_anchors_name_concrete_claims():
    anchors = default_lexicon().common.model_anchors
    assert set(anchors) == {"impersonation", "private_payment"}
    assert "法院" in anchors["impersonation"] and "个人" in anchors["private_payment"]


@pytest.mark.parametrize("text, expected", [
    ("不然就等着全小区的人都知道你是个老赖吧", True),
    ("到时候你们单位所有人都知道你欠钱不还", True),
    ("现在全小区的人都知道我欠钱了", False),  # the debtor about himself
    ("全公司的人都知道你是个好人", False),  # no debt named
])
def test_everyone_will_know_you_owe_is_exposure(text, expected):
    hits = [h for h in default_lexicon().match(text) if h.category == "exposure" and h.suppressed is None]
    assert bool(hits) is expected, hits


@pytest.mark.parametrize("category, text, expected", [
    ("exposure", "下午我把电话挨个打过去,跟他们讲你是个骗子.", True),
    ("exposure", "刚才跟你们店里接电话的李姐说了,你在外头欠了八千多.", True),
    ("exposure", "明天一个个去讲你欠一屁股债跑了.", True),
    ("exposure", "你们车间的人现在都晓得你欠钱的事了.", True),
    ("exposure", "你老板再问,我就告诉他你欠了多少.", True),
    ("exposure", "今晚我就把你欠钱的事跟你丈母娘讲清楚.", True),
    ("exposure", "回头把你欠钱的事发到你们厂的群里.", True),
    ("exposure", "我跟你说,你欠了三万块必须今天还.", False),  # the debtor told his own debt
    ("exposure", "我跟我们主管说了你欠了三万,可以申请减免.", False),  # the collector's own side
    ("exposure", "你家里人都知道你欠钱吗?", False),  # a question to the debtor
    ("exposure", "我们不会把你欠钱的事告诉任何人.", False),
    ("exposure", "你跟你老婆说了你欠了五万没有?", False),
    ("exposure", "你可以把欠款的情况跟家人商量一下.", False),
    ("third_party", "你再关机,我就打你爸妈的电话.", True),
    ("third_party", "八点前不回话,我就给你丈母娘打电话.", True),
    ("third_party", "从明天起我们每天往你们车间办公室打五个电话.", True),
    ("third_party", "我们不会打你家人的电话.", False),
    ("third_party", "你老婆的电话我们打不通.", False),
    ("third_party", "我们往您公司寄了一封函.", False),
    ("third_party", "明天法警直接去你单位带人.", False),  # an arrest claim: false_legal
    ("false_legal", "明天法警直接去你单位带人.", True),
    ("threat", "明早民警就上你家敲门.", False),  # police at the door: false_legal
    ("threat", "明天我们就派人上你家去.", True),
    ("threat", "你家丫头天天自己走路上学,路上出点什么意外就不好了.", True),
    ("threat", "工地上那么高,哪天脚底下一滑,谁说得准呢.", True),
    ("threat", "你那店里电线老化,半夜起了火,谁也说不清是怎么回事.", True),
    ("threat", "下雨路滑,您开车注意安全.", False),  # lawful small talk
    ("threat", "谁说得准呢,也许下个月政策就变了.", False),  # no harm named
    ("threat", "万一出了意外,保险是可以理赔的.", False),
    ("harassment", "不还是吧,我隔半个钟头就打一个.", True),
    ("harassment", "我专挑你下夜班睡觉的时候打,让你睡不成.", True),
    ("harassment", "我们每个月给你打一次电话提醒.", False),
    ("harassment", "我们特意挑你午休的时候打,怕耽误你上班.", False),
    ("private_payment", "今晚之前往我自己的卡里打三千.", True),
    ("private_payment", "先转两千到我支付宝上,我帮你压一压.", True),
    ("private_payment", "钱直接转到我同事的微信,他会帮你销账.", True),
    ("private_payment", "这笔钱先存在专员名下,月底统一入账.", True),
    ("private_payment", "我们不会让您往我个人卡里打钱.", False),
    ("private_payment", "您转三千到APP里的还款页面就行.", False),
    ("private_payment", "这笔还款会记在您名下的账户里.", False),
    ("insult", "瞧你那熊样儿,就会嘴上硬.", True),
    ("insult", "你个瓜娃子,借钱的时候咋不说周转不过来.", True),
    ("insult", "你是不是二百五啊,这点账都算不清.", True),
    ("insult", "您的欠款是三千二百五十元.", False),
    ("insult", "看你这样子,最近是不是挺难的.", False),
    ("false_legal", "法院下个礼拜就来你家里抓人.", True),
    ("false_legal", "明天一早派车去你厂里带人.", True),
    ("false_legal", "你再挂电话就是妨碍调查,罪加一等.", True),
    ("false_legal", "先交五千撤案保证金,案子就销了.", True),
    ("false_legal", "你是他的直系亲属,得先替他把一半垫上.", True),
    ("false_legal", "法院也不会因为这个来抓人.", False),
    ("false_legal", "作为紧急联系人,您没有还款义务.", False),
    ("false_legal", "我们不收任何保证金,撤诉费,收这些费用的都不是我们的人.", False),
    ("false_legal", "担保人按合同是要承担保证责任的.", False),
])
def test_rules_in_other_words(category, text, expected):
    # exposure: the debt told to the debtor's boss, family or neighbours in shaming form;
    # third_party: calling family (in-laws too) or the workplace; threat: harm left to chance;
    # harassment: calls at set intervals or chosen hours; private_payment: the collector's own
    # or a colleague's account in other words; insult: regional names, 瞧你那熊样; false_legal: arrests, obstruction,
    # case fees, family liability. Each with lawful look-alikes.
    hits = [h for h in default_lexicon().match(text)
            if h.category == category and h.suppressed is None]
    assert bool(hits) is expected, hits


@pytest.mark.parametrize("text", ["你先转钱到私人账户,明天就给你销账.",
                                  "今天打款到我们专员的个人账户就行."])
def test_money_word_between_verb_and_account_still_matches(text):
    # "转钱到/打款到" put the money between the verb and the preposition (eval/holdout6 wording).
    assert "private_payment" in {h.category for h in default_lexicon().match(text)}
