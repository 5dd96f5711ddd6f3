"""Training-data augmentation: make the classifier see text the way Whisper writes it.

Whisper base on 8 kHz phone audio garbles domain words into homophones or near-homophones
(验证码→验证马/院正马, 逾期→鱼期, 通讯录→通信路, 催收→推售, 核实→合时), sometimes emits
Traditional characters, writes numbers as digits, and cuts sentences at pauses with or without
punctuation. Each transform here imitates one of these; `augment_rows` applies them to a share
of the training rows. Everything is deterministic for a given seed (random.Random, sorted
tables), so training stays reproducible.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from pypinyin import Style, lazy_pinyin
from pypinyin import pinyin as _pinyin

# Confusions observed from Whisper base on phone audio (see ARCHITECTURE.md). Near-homophones
# such as cui→tui are not reachable by pinyin rules, so they are listed as seen.
ASR_CONFUSIONS: dict[str, tuple[str, ...]] = {
    "验证码": ("验证马", "院正马"),
    "逾期": ("鱼期",),
    "通讯录": ("通信路",),
    "催收": ("推售",),
    "核实": ("合时",),
}

# Mandarin sound pairs that listeners and ASR confuse (southern accents, narrow-band audio).
_INITIAL_PAIRS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"), ("f", "h"), ("r", "l"))
_FINAL_PAIRS = (("ing", "in"), ("eng", "en"), ("ang", "an"), ("iang", "ian"), ("uang", "uan"))
# Whole-syllable confusions between y/w-spelled and ü-type syllables (yan↔yuan, xun↔xin).
_SYLLABLE_PAIRS = (("yan", "yuan"), ("xun", "xin"), ("jun", "jin"), ("yun", "yin"), ("qun", "qin"))

# How many of the most frequent characters may serve as substitutes: Whisper writes common
# characters, never rare ones.
COMMON_CHARS = 3500

_CJK = re.compile(r"[\u4e00-\u9fff]")
_PUNCT = "，。！？、；：,.!?;:"
_PUNCT_RE = re.compile(f"[{re.escape(_PUNCT)}]")
_DIGITS = "零一二三四五六七八九"
# Chinese numbers before a counter word, e.g. 三天, 十五号, 两万 (Whisper often writes 3天).
_NUMERAL_RE = re.compile(
    r"([零一二两三四五六七八九十]{1,3})(?=[天个点号次万千百块元年月日周小分])"
)


@lru_cache(maxsize=1)
def _char_table() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(char → toneless pinyin, toneless pinyin → common chars by descending frequency).

    Frequencies come from jieba's bundled dictionary: a char's frequency is the sum of the
    frequencies of the words that contain it. Ties break by code point, so the table is the
    same on every machine.
    """
    import jieba

    freq: dict[str, int] = {}
    dict_path = Path(jieba.__file__).parent / "dict.txt"
    with open(dict_path, encoding="utf-8") as f:
        for line in f:
            parts = line.split(" ")
            if len(parts) < 2:
                continue
            word, count = parts[0], int(parts[1])
            for ch in set(word):
                if _CJK.fullmatch(ch):
                    freq[ch] = freq.get(ch, 0) + count
    common = sorted(freq, key=lambda c: (-freq[c], c))[:COMMON_CHARS]
    syllable_of: dict[str, str] = {}
    by_syllable: dict[str, list[str]] = {}
    for ch in common:
        syl = _pinyin(ch, style=Style.NORMAL, heteronym=False)[0][0]
        syllable_of[ch] = syl
        by_syllable.setdefault(syl, []).append(ch)
    return syllable_of, {s: tuple(cs) for s, cs in by_syllable.items()}


def homophones(syllable: str) -> tuple[str, ...]:
    """Common characters whose toneless pinyin is `syllable`, most frequent first."""
    return _char_table()[1].get(syllable, ())


def near_syllables(syllable: str) -> list[str]:
    """Syllables one typical confusion away (zh/z, in/ing, yan/yuan ...) that exist."""
    _, by_syllable = _char_table()
    out: set[str] = set()
    for a, b in _SYLLABLE_PAIRS:
        if syllable == a:
            out.add(b)
        elif syllable == b:
            out.add(a)
    for a, b in _INITIAL_PAIRS:
        for x, y in ((a, b), (b, a)):
            # "zh" must not be read as "z" + "h...": only swap a full initial.
            if syllable.startswith(x) and not (x in ("z", "c", "s") and syllable[1:2] == "h"):
                out.add(y + syllable[len(x) :])
    for a, b in _FINAL_PAIRS:
        for x, y in ((a, b), (b, a)):
            if syllable.endswith(x) and not (x in ("in", "en", "an") and syllable.endswith(x + "g")):
                out.add(syllable[: len(syllable) - len(x)] + y)
    out.discard(syllable)
    return sorted(s for s in out if s in by_syllable)


def _substitute(ch: str, syllable: str, rng: random.Random, near: bool) -> str:
    """A different common character for `ch`: same syllable, or a near one when `near`."""
    if near:
        options = near_syllables(syllable)
        if options:
            syllable = rng.choice(options)
    # Prefer frequent characters (Whisper's language model does), among the top five.
    cands = [c for c in homophones(syllable)[:6] if c != ch][:5]
    return rng.choice(cands) if cands else ch


def homophone(text: str, rng: random.Random, rate: float = 0.15, near: bool = False) -> str:
    """Replace about `rate` of the Chinese characters (at least one) by homophones.

    With near=False each replacement keeps the toneless pinyin (码→马, 逾→鱼); with near=True
    it may move one typical confusion away (讯→信, 验→院).
    """
    syllables = lazy_pinyin(text, style=Style.NORMAL, errors=lambda s: list(s))
    if len(syllables) != len(text):  # pypinyin keeps one item per char here; be defensive
        return text
    positions = [i for i, ch in enumerate(text) if _CJK.fullmatch(ch)]
    if not positions:
        return text
    chosen = {i for i in positions if rng.random() < rate} or {rng.choice(positions)}
    chars = list(text)
    for i in sorted(chosen):
        chars[i] = _substitute(chars[i], syllables[i], rng, near)
    return "".join(chars)


def asr_confusion(text: str, rng: random.Random) -> str:
    """Apply the observed Whisper confusions (ASR_CONFUSIONS) to every listed word present."""
    for word in sorted(ASR_CONFUSIONS, key=len, reverse=True):
        if word in text:
            text = text.replace(word, rng.choice(ASR_CONFUSIONS[word]))
    return text


@lru_cache(maxsize=1)
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


def traditional(text: str, rng: random.Random | None = None) -> str:
    """Traditional characters, as Whisper sometimes writes for language 'zh'."""
    return _s2t().convert(text)


def _to_arabic(numeral: str) -> str:
    values = {c: i for i, c in enumerate(_DIGITS)} | {"两": 2}
    if "十" not in numeral:
        if all(c in values for c in numeral):
            return "".join(str(values[c]) for c in numeral)
        return numeral
    tens, _, ones = numeral.partition("十")
    if len(tens) > 1 or len(ones) > 1 or (tens and tens not in values) or (ones and ones not in values):
        return numeral
    return str((values[tens] if tens else 1) * 10 + (values[ones] if ones else 0))


def numerals(text: str, rng: random.Random | None = None) -> str:
    """Chinese numbers before a counter as digits: 三天→3天, 十五号→15号 (Whisper's habit)."""
    return _NUMERAL_RE.sub(lambda m: _to_arabic(m.group(1)), text)


def punctuation(text: str, rng: random.Random) -> str:
    """Whisper's punctuation habits: none at all, spaces, or commas everywhere."""
    style = rng.choice(("drop", "space", "comma"))
    repl = {"drop": "", "space": " ", "comma": "，"}[style]
    return _PUNCT_RE.sub(repl, text).strip()


def whisper_split(text: str, rng: random.Random) -> list[str]:
    """Cut one utterance in two as Whisper may at a pause: at a punctuation mark when there is
    one, otherwise at a random point; punctuation at the cut is dropped."""
    marks = [m.start() for m in _PUNCT_RE.finditer(text) if 0 < m.start() < len(text) - 1]
    if marks:
        cut = rng.choice(marks)
        left, right = text[:cut], text[cut + 1 :]
    elif len(text) >= 4:
        cut = rng.randint(2, len(text) - 2)
        left, right = text[:cut], text[cut:]
    else:
        return [text]
    parts = [p.strip(_PUNCT + " ") for p in (left, right)]
    return [p for p in parts if p]


# name → transform(text, rng). The order is part of determinism: do not sort or reorder.
TRANSFORMS: dict[str, Callable[[str, random.Random], str]] = {
    "homophone": homophone,
    "near_homophone": lambda t, r: homophone(t, r, near=True),
    "asr_confusion": asr_confusion,
    "traditional": traditional,
    "numerals": numerals,
    "punctuation": punctuation,
}
# How often each transform is picked for an augmented copy.
WEIGHTS: dict[str, float] = {
    "homophone": 0.35,
    "near_homophone": 0.25,
    "asr_confusion": 0.0,  # applied whenever a listed word occurs (see augment_rows)
    "traditional": 0.1,
    "numerals": 0.1,
    "punctuation": 0.2,
}


def augment_rows(
    rows: Sequence[tuple[str, frozenset[str]]],
    seed: int,
    share: float = 0.5,
    join_share: float = 0.15,
    neighbours: Sequence[str] = (),
    fragment_share: float = 0.3,
) -> list[tuple[str, frozenset[str], str]]:
    """Extra training rows (text, labels, transform name) for a share of `rows`.

    - `share` of the rows get one transformed copy (a transform drawn by WEIGHTS; rows with a
      word from ASR_CONFUSIONS always also get that confusion);
    - `join_share` of the rows are joined with a random lawful `neighbours` sentence before
      or after, keeping their labels: the classifier's window helper scores a segment together
      with its neighbour, and a violation stays a violation next to harmless words.
    - `fragment_share` of the lawful rows (no labels) are cut in two as Whisper may cut them,
      each half a lawful row of its own: "我们不会用 | 您的照片做任何宣传" must not make the
      second half a violation. Violating rows are never cut: which half carries the violation
      is unknown.
    The originals are not included. Labels never change: transforms keep the meaning.
    """
    rng = random.Random(seed)
    names = [n for n in TRANSFORMS if WEIGHTS[n] > 0]
    weights = [WEIGHTS[n] for n in names]
    out: list[tuple[str, frozenset[str], str]] = []
    for text, labels in rows:
        if any(w in text for w in ASR_CONFUSIONS):
            out.append((asr_confusion(text, rng), labels, "asr_confusion"))
        if rng.random() < share:
            name = rng.choices(names, weights)[0]
            new = TRANSFORMS[name](text, rng)
            if new != text:
                out.append((new, labels, name))
        if neighbours and rng.random() < join_share:
            other = rng.choice(neighbours)
            joined = f"{other}{text}" if rng.random() < 0.5 else f"{text}{other}"
            out.append((punctuation(joined, rng), labels, "join"))
        if not labels and rng.random() < fragment_share:
            out.extend((part, labels, "fragment") for part in whisper_split(text, rng))
    return out
