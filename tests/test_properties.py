"""Property-based tests (hypothesis): the text pipeline and the file-name parser take any
string (any Unicode but lone surrogates, control characters, very long text) without an
exception, and keep the invariants their callers rely on.

Example counts are modest so the suite stays fast, and derandomized: every run tries the
same examples, so a failure in CI reproduces on any machine (run with more examples, e.g.
max_examples=2000, when changing the text stage).
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analyzer.asr import clean_asr_text
from analyzer.filenames import CallMeta, is_phone_like, normalize_number, parse_filename
from analyzer.lexicon import default_lexicon
from analyzer.pipeline import Analyzer
from analyzer.redact import MASK, redact_text
from analyzer.text import default_tokenizer, is_hallucination, normalize, pinyin_of, to_simplified
from analyzer.types import CATEGORIES, SEVERITIES, Segment

_COMMON = {"deadline": None, "derandomize": True, "database": None,
           "suppress_health_check": [HealthCheck.too_slow]}
FEW = settings(max_examples=60, **_COMMON)
SOME = settings(max_examples=150, **_COMMON)

# What call transcripts are made of: the words rules look for, numbers spoken every way,
# punctuation of both widths, spaces and control characters.
DOMAIN = list(
    "你您我他们钱还去家门口堵打断腿验证码密码账户卡号转到个人支付宝微信公安法院律师立案拘留"
    "逾期催收征信通讯录紧急联系人爸妈单位同事曝光丢人死滚废物骗子不要别告诉任何人"
    "0123456789０１２３一二三四五六七八九零〇幺"
    "，。！？、；：…—“”《》（）,.!?;:()-+ 　\t\n\r\x00\x0b"
    "們還錢門説話證碼帳戶"  # Traditional, as Whisper writes for zh
    "XxＸaA"
)
domain_text = st.text(alphabet=st.sampled_from(DOMAIN), max_size=120)
any_text = st.text(max_size=200)  # hypothesis text(): every code point but surrogates
texts = st.one_of(domain_text, any_text)
long_texts = st.one_of(domain_text, any_text.filter(bool)).map(lambda s: (s * (5000 // max(len(s), 1)))[:5000])


# ----------------------------------------------------------------------------- text stage
@SOME
@given(texts)
@example("İ̇ ＡＢ……。。ǅ")  # case folding that changes length; full-width; ellipses
def test_normalize_is_total_idempotent_and_spaceless(text):
    out = normalize(text)
    assert isinstance(out, str)
    assert not re.search(r"\s", out)
    assert normalize(out) == out
    assert isinstance(to_simplified(text), str)


@SOME
@given(texts)
def test_tokenizer_offsets_point_into_the_text(text):
    text = normalize(text)
    tok = default_tokenizer()
    for word, start, end in tok.tokens_with_offsets(text):
        assert text[start:end] == word
    assert all(isinstance(w, str) and w.strip() for w in tok.tokens(text))
    bounds = tok.boundaries(text)
    assert bounds is None or (0 in bounds and len(text) in bounds)


@SOME
@given(texts)
def test_pinyin_has_one_item_per_character(text):
    assert len(pinyin_of(text)) == len(text)


@SOME
@given(texts)
def test_hallucination_check_and_asr_cleaning_are_total(text):
    assert is_hallucination(text) in (True, False)
    cleaned = clean_asr_text(text)
    assert cleaned is None or (isinstance(cleaned, str) and cleaned == cleaned.strip() and cleaned)


@SOME
@given(texts)
def test_lexicon_spans_lie_inside_the_normalized_text(text):
    lex = default_lexicon()
    match = lex.analyze(text, keep_suppressed=True)
    assert len(match.repaired) == len(match.text) == len(normalize(text))
    for hit in match.hits:
        assert 0 <= hit.start < hit.end <= len(match.text)
        assert hit.category in CATEGORIES
        assert 0 < hit.score <= 1
    assert [h for h in lex.match(text)] == [h for h in match.hits if h.suppressed is None]


@pytest.fixture(scope="module")
def detector():
    from fakes import FakeTranscriber

    return Analyzer(transcriber=FakeTranscriber([])).detector  # what the pipeline uses


segments_st = st.lists(
    st.tuples(texts, st.floats(0, 7200, allow_nan=False), st.floats(0, 30, allow_nan=False),
              st.sampled_from([None, 0, 1]), st.floats(-3, 0), st.floats(0, 1)),
    max_size=8,
)


@FEW
@given(segments_st)
def test_detector_takes_any_segments(detector, rows):
    segments = [Segment(i, start, start + length, text, ch, lp, ns)
                for i, (text, start, length, ch, lp, ns) in enumerate(rows)]
    findings = detector.detect(segments)
    for f in findings:
        assert f.category in CATEGORIES
        assert 0 <= f.score <= 1 and f.severity in SEVERITIES
        assert f.start <= f.end
        assert f.segment_indices and set(f.segment_indices) <= {s.index for s in segments}


@FEW
@given(long_texts)
def test_very_long_text_goes_through_every_stage(detector, text):
    assert not re.search(r"\s", normalize(text))
    assert len(redact_text(text)) == len(text)
    is_hallucination(text)
    detector.detect([Segment(0, 0.0, 30.0, text)])


# ----------------------------------------------------------------------------- redaction
@SOME
@given(texts)
def test_redaction_only_masks_digits_and_keeps_length(text):
    out = redact_text(text)
    assert len(out) == len(text)
    for before, after in zip(text, out, strict=True):
        assert after == before or (after == MASK and (before in DOMAIN_DIGITS or before in "XxＸｘ"))


DOMAIN_DIGITS = set("0123456789０１２３４５６７８９零〇○一二三四五六七八九幺")
mobile = st.builds(lambda d: "1" + d[0] + "".join(d[1:]),
                   st.tuples(st.sampled_from("3456789"), *[st.sampled_from("0123456789")] * 9))
han = st.text(alphabet=st.sampled_from(list("你好请回电到我们这里号码是的")), max_size=10)


@SOME
@given(han, mobile, han)
def test_a_mobile_number_between_words_is_masked_but_its_last_four(before, number, after):
    out = redact_text(before + number + after)
    assert number not in out
    assert out == before + MASK * 7 + number[-4:] + after


# ----------------------------------------------------------------------------- file names
names = st.one_of(
    any_text,
    domain_text,
    # Scheme-shaped names with arbitrary parts: where a parser would break.
    st.builds(lambda a, b, c: f"通话录音@{a}({b})_{c}.mp3", any_text, any_text, st.text("0123456789", max_size=16)),
    st.builds(lambda a, b: f"{a}_{b}.m4a", any_text, st.text("0123456789_-+.", max_size=30)),
    st.builds(lambda d, rest: f"{d}.418+0800_in_sim1_{rest}", st.text("0123456789_", max_size=16), any_text),
)


@SOME
@given(names, st.sampled_from(["Asia/Shanghai", "+08:00", "UTC", "Europe/Berlin"]))
@example("\x00/../..\n.amr", "Asia/Shanghai")
@example("20250230_250000.000+9999_in_sim99_.wav", "UTC")  # impossible date and offset
def test_parse_filename_is_total(name, tz):
    meta = parse_filename(name, tz)
    assert isinstance(meta, CallMeta) and meta.file == name
    assert meta.source in ("filename", "mtime", "unknown")
    if meta.started_at is not None:
        assert isinstance(meta.started_at, datetime) and meta.started_at.tzinfo is not None
    if meta.number is not None:
        assert re.fullmatch(r"\+?\d+", meta.number), meta.number
    CallMeta.from_dict(meta.to_dict())  # what reports store can be read back


@SOME
@given(st.one_of(any_text, st.text("0123456789+-() 　０１２３８６", max_size=25)))
@example("+86 138-0013-8000")
@example("O¯")  # NFKC gives "O" + combining macron: not a number, need not be stable
def test_normalize_number_is_total_and_stable_on_numbers(text):
    once = normalize_number(text)
    assert isinstance(once, str)
    if is_phone_like(text):  # numbers are grouping keys (calls per number per day)
        assert re.fullmatch(r"\+?\d+", once) and normalize_number(once) == once
