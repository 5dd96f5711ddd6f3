"""Augmentation: the Whisper-like variants it promises, deterministic for a seed."""

import random

from pypinyin import Style, lazy_pinyin

from analyzer import augment


def toneless(text: str) -> list[str]:
    return lazy_pinyin(text, style=Style.NORMAL)


def outputs(fn, text: str, seeds: int = 60) -> set[str]:
    return {fn(text, random.Random(s)) for s in range(seeds)}


def test_documented_whisper_confusions_are_produced():
    # The garbles listed in ARCHITECTURE.md as seen from Whisper base on phone audio.
    seen = {
        "请把验证码报给我": {"请把验证马报给我", "请把院正马报给我"},
        "你已经逾期了": {"你已经鱼期了"},
        "我们会打你通讯录": {"我们会打你通信路"},
        "我们是催收公司": {"我们是推售公司"},
        "我先核实一下": {"我先合时一下"},
    }
    for text, expected in seen.items():
        assert outputs(augment.asr_confusion, text) == expected, text


def test_exact_homophones_keep_the_toneless_pinyin():
    text = "你再不还钱我们就去你单位找你领导"
    heard = toneless(text)  # in context: 还 here is huan, not hai
    assert heard[3] == "huan"
    for seed in range(20):
        out = augment.homophone(text, random.Random(seed), rate=0.3)
        assert out != text
        assert len(out) == len(text)
        for i, (a, b) in enumerate(zip(text, out, strict=True)):
            if a != b:
                assert toneless(b) == [heard[i]], (a, b)


def test_homophone_table_has_the_expected_common_characters():
    assert {"马", "码"} <= set(augment.homophones("ma"))
    assert "鱼" in augment.homophones("yu")
    # Only common characters: the table is capped, and 码 outranks a rare 犸.
    assert "犸" not in augment.homophones("ma")


def test_generic_homophones_reach_documented_garbles():
    assert "你已经鱼期了" in outputs(lambda t, r: augment.homophone(t, r, rate=0.0), "你已经逾期了", 400)
    near = outputs(lambda t, r: augment.homophone(t, r, rate=0.0, near=True), "通讯录", 400)
    assert "通信录" in near


def test_near_syllables():
    assert "yuan" in augment.near_syllables("yan")
    assert "xin" in augment.near_syllables("xun")
    assert "zi" in augment.near_syllables("zhi")
    assert "zhi" in augment.near_syllables("zi")
    assert "ying" in augment.near_syllables("yin")
    assert "zhi" not in augment.near_syllables("zhi")
    # "zhang" is zh+ang: it must not turn into "z" + "hang".
    assert "zhang" not in augment.near_syllables("zhang")
    assert "zan" not in augment.near_syllables("zhang")  # two confusions away


def test_traditional_numerals_punctuation():
    assert augment.traditional("验证码发给我") == "驗證碼發給我"
    assert augment.numerals("三天后还两万") == "3天后还2万"
    assert augment.numerals("十五号之前，二十个人") == "15号之前，20个人"
    assert augment.numerals("你一定要还") == "你一定要还"
    outs = outputs(augment.punctuation, "你好，我是客服。请还款！")
    assert outs <= {"你好我是客服请还款", "你好 我是客服 请还款", "你好，我是客服，请还款，"}
    assert "你好我是客服请还款" in outs


def test_whisper_split_cuts_once_and_keeps_the_words():
    text = "你再不还钱，我们就上门"
    parts = augment.whisper_split(text, random.Random(1))
    assert parts == ["你再不还钱", "我们就上门"]
    for seed in range(10):
        parts = augment.whisper_split("你再不还钱我们就上门", random.Random(seed))
        assert len(parts) == 2 and "".join(parts) == "你再不还钱我们就上门"


def test_augment_rows_is_deterministic_and_keeps_labels():
    rows = [
        ("请把验证码报给我", frozenset({"sensitive_info"})),
        ("你已经逾期三天了，请尽快还款", frozenset()),
        ("我们马上去你家", frozenset({"threat"})),
    ] * 10
    lawful = ["今天天气不错", "请按时还款"]
    a = augment.augment_rows(rows, seed=3, neighbours=lawful)
    b = augment.augment_rows(rows, seed=3, neighbours=lawful)
    c = augment.augment_rows(rows, seed=4, neighbours=lawful)
    assert a == b
    assert a != c
    def bare(t):
        return "".join(ch for ch in t if ch not in "，。！？ ")

    assert a  # some rows were added
    confusions = [r for r in a if r[2] == "asr_confusion"]
    # Every row with a listed word (验证码, 逾期) gets its garble; 我们马上去你家 has none.
    assert len(confusions) == 20
    assert {t for t, _, _ in confusions} >= {"请把验证马报给我", "你已经鱼期三天了，请尽快还款"}
    joins = [r for r in a if r[2] == "join"]
    assert joins
    assert {how for _, _, how in a} <= {*augment.TRANSFORMS, "join", "fragment"}
    for text, labels, _ in joins:
        # A join is one source row plus one lawful neighbour, and keeps the source's labels.
        sources = [lab for src, lab in rows if bare(src) in bare(text)]
        assert labels in sources
        assert any(bare(n) in bare(text) for n in lawful)
