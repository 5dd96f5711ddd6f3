"""Text stage: normalize ASR text, tokenize it, give its pinyin, spot Whisper hallucinations.

Everything downstream (lexicon, classifier) works on `normalize(text)`: Simplified Chinese,
half-width, lower-case, one form per punctuation mark, no whitespace. Spans reported by the
lexicon are character offsets into that normalized string.

The heavy resources (OpenCC tables, jieba's dictionary, pypinyin) load lazily on first use,
so importing this module is cheap.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .errors import RuleError

DATA_DIR = Path(__file__).parent / "data"
USERDICT_PATH = DATA_DIR / "userdict.txt"
HALLUCINATIONS_PATH = DATA_DIR / "hallucinations.txt"

# Sentence-ending marks after normalization; clause marks also include the comma family.
SENTENCE_END = ".!?;"
CLAUSE_END = SENTENCE_END + ",:"

# Punctuation that survives full-width folding but has several written forms. Everything maps
# to one ASCII mark so rule patterns only need to name one.
# (Full-width forms such as "，！？：；（）" are folded to ASCII before this table applies.)
_PUNCT_MAP = {
    "。": ".", "｡": ".", "、": ",", "﹐": ",", "“": '"', "”": '"', "„": '"', "「": '"',
    "」": '"', "『": '"', "』": '"', "‘": "'", "’": "'", "《": '"', "》": '"', "〈": '"',
    "〉": '"', "【": "[", "】": "]", "〔": "[", "〕": "]", "—": "-", "–": "-", "―": "-",
    "〜": "~", "·": "", "・": "", "…": "...", "⋯": "...",
}
_WHITESPACE = re.compile(r"\s+")
_REPEATED_DOTS = re.compile(r"\.{2,}")


@functools.lru_cache(maxsize=1)
def _opencc():
    # Imported here: loading the conversion tables takes ~0.1 s and not every caller needs it.
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → Simplified only (display text keeps its punctuation and spacing)."""
    return _opencc().convert(text) if text else ""


def _fold_width(ch: str) -> str:
    code = ord(ch)
    if 0xFF01 <= code <= 0xFF5E:  # full-width ASCII block
        return chr(code - 0xFEE0)
    if code == 0x3000:  # ideographic space
        return " "
    return ch


def normalize(text: str) -> str:
    """Simplified, half-width, lower-case text with unified punctuation and no whitespace.

    Whisper writes Traditional characters or a mix for `zh`, and full-width digits and
    letters; rules are written once, in Simplified Chinese, against this form.
    """
    if not text:
        return ""
    text = to_simplified(text)
    text = "".join(_PUNCT_MAP.get(c, c) for c in map(_fold_width, text))
    text = _WHITESPACE.sub("", text).lower()
    # "……" and "..." both mean a pause; keep one "." so sentence splitting stays simple.
    return _REPEATED_DOTS.sub(".", text)


def is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


# --------------------------------------------------------------------------- tokenizer


def read_userdict(path: Path = USERDICT_PATH) -> list[tuple[str, int | None, str | None]]:
    """Entries of a jieba user dictionary: `word [freq] [pos]` per line, `#` starts a comment.

    jieba's own loader has no comment syntax, so the file is parsed here and each word added
    with `Tokenizer.add_word`.
    """
    entries = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise RuleError(f"{path}: 无法读取用户词典（{err.strerror}）。请检查安装是否完整。") from err
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        freq_part = [p for p in parts[1:] if p.isdigit()]
        pos_part = [p for p in parts[1:] if p.isascii() and p.isalpha()]
        if len(parts) > 3 or len(freq_part) > 1 or len(pos_part) > 1 or (
            len(freq_part) + len(pos_part) != len(parts) - 1
        ):
            raise RuleError(
                f"{path} 第 {lineno} 行：格式应为“词 [词频] [词性]”，实际为“{line}”。请改正后重试。"
            )
        word = normalize(parts[0])
        freq = int(freq_part[0]) if freq_part else None
        pos = pos_part[0] if pos_part else None
        entries.append((word, freq, pos))
    return entries


class Tokenizer:
    """jieba segmentation with the domain dictionary, on a private jieba.Tokenizer.

    jieba's module-level functions share one global tokenizer; adding our words there would
    leak into any other user of jieba in the process, so this wraps its own instance.
    """

    def __init__(self, userdict: Path = USERDICT_PATH):
        self._userdict = userdict
        self._jieba = None

    def _tokenizer(self):
        if self._jieba is None:
            import jieba

            # jieba logs "Building prefix dict..." at DEBUG/INFO on first use.
            logging.getLogger("jieba").setLevel(logging.WARNING)
            tok = jieba.Tokenizer()
            tok.initialize()
            for word, freq, pos in read_userdict(self._userdict):
                # Without an explicit frequency jieba may still split a rare compound; a
                # suggested frequency keeps each domain word in one piece.
                tok.add_word(word, freq or max(tok.suggest_freq(word, tune=False), 10), pos)
            self._jieba = tok
        return self._jieba

    def tokens(self, text: str) -> list[str]:
        """Words of `text` (not normalized here: pass normalized text for stable results)."""
        return [w for w in self._tokenizer().lcut(text, HMM=True) if w.strip()]

    def tokens_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        """(word, start, end) character offsets into `text`."""
        return [(w, s, e) for w, s, e in self._tokenizer().tokenize(text, HMM=True) if w.strip()]

    def boundaries(self, text: str) -> set[int] | None:
        """Offsets where a dictionary word starts or ends (no HMM guessing of new words)."""
        out = {0, len(text)}
        for _, start, end in self._tokenizer().tokenize(text, HMM=False):
            out.add(start)
            out.add(end)
        return out

    def word_frequency(self, word: str) -> int:
        """How common `word` is in jieba's dictionary (0 when it is not a dictionary word)."""
        return self._tokenizer().FREQ.get(word, 0) or 0


@functools.lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    return Tokenizer()


# --------------------------------------------------------------------------- pinyin


def pinyin_of(text: str) -> list[str]:
    """Toneless pinyin, one syllable per character: item i belongs to text[i].

    pypinyin picks each polyphone's reading from the surrounding phrase (重新 chong, 重要
    zhong); listing every dictionary reading instead makes 有 match "wei" and 已 match "si",
    and homophone matching then sees sound-alikes everywhere. A character without a reading
    (digit, letter, punctuation) stands for itself.
    """
    if not text:
        return []
    from pypinyin import Style, lazy_pinyin

    out = lazy_pinyin(text, style=Style.NORMAL, errors=list)
    if len(out) != len(text):  # alignment is what callers rely on; never guess
        out = [lazy_pinyin(ch, style=Style.NORMAL, errors=list)[0] if is_han(ch) else ch
               for ch in text]
    return out


def fuzzy_syllable(syllable: str) -> str:
    """A toneless syllable with the sound pairs Mandarin speakers and Whisper on phone audio
    most often merge made equal (the "模糊音" of pinyin input methods): retroflex and flat
    initials (zh/z, ch/c, sh/s) and front and back nasal finals (en/eng, in/ing, an/ang).
    征信 zhengxin and 真信 zhenxin then read the same; 欠款 and 签款 still do not."""
    s = syllable
    for retroflex, flat in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if s.startswith(retroflex):
            s = flat + s[2:]
            break
    if s.endswith("ng") and not s.endswith("ong") and len(s) > 2:
        s = s[:-1]
    return s


# --------------------------------------------------------------------------- hallucinations


def _edge_punct(ch: str) -> bool:
    return not (ch.isalnum() or is_han(ch))


# Raise when is_hallucination decides differently: transcripts cached with the old filter
# renew (hallucination_filter_key is part of the transcript cache key).
HALLUCINATION_FILTER_VERSION = 2  # 2: a short one-character run is a loop only as a whole


def hallucination_filter_key() -> str:
    """What the filter drops depends on: its logic (version) and its phrase list."""
    import hashlib

    digest = hashlib.sha256(HALLUCINATIONS_PATH.read_bytes()).hexdigest()[:16]
    return f"v{HALLUCINATION_FILTER_VERSION}:{digest}"


@functools.lru_cache(maxsize=1)
def _hallucination_phrases() -> tuple[str, ...]:
    phrases = []
    for raw in HALLUCINATIONS_PATH.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            phrases.append(_letters_only(normalize(line)))
    # Longest first, so marking coverage prefers the full stock sentence.
    return tuple(sorted(set(p for p in phrases if p), key=len, reverse=True))


def _letters_only(text: str) -> str:
    return "".join(c for c in text if not _edge_punct(c))


# A short phrase (1-20 chars) repeated back to back at least four times: Whisper's decoding
# loop ("我會在你身邊我會在你身邊...", "的的的的的的", "证证证证证" for a short "哦嗯"). Runs
# shorter than 6 chars of laughter or interjections ("哈哈哈哈", "嗯嗯嗯嗯"), or inside a
# sentence, and digit runs ("1111" in a number) are ordinary speech.
_LOOP = re.compile(r"(.{1,20}?)\1{3,}")
_MIN_LOOP_CHARS = 6
_REPEATED_IN_SPEECH = frozenset("哈呵嘿嘻嗯啊哦噢喔呃唉哎嗨喂呀哇哼嘛啦对好是谢行")


def is_hallucination(text: str, phrases: Iterable[str] | None = None) -> bool:
    """True when a segment's text is a known Whisper stock phrase or a decoding loop.

    Stock phrases (subtitle credits, channel plugs) appear on silence or noise. A segment is
    dropped when such phrases, or one phrase repeated four or more times, cover at least half
    of its letters; a real sentence that merely contains "谢谢" is kept.
    """
    body = _letters_only(normalize(text))
    if not body:
        return False
    covered = [False] * len(body)
    known = _hallucination_phrases() if phrases is None else tuple(phrases)
    for phrase in known:
        start = body.find(phrase)
        while start != -1:
            for i in range(start, start + len(phrase)):
                covered[i] = True
            start = body.find(phrase, start + len(phrase))
    for start, end in _loops(body):
        for i in range(start, end):
            covered[i] = True
    return sum(covered) * 2 >= len(body)


def _loops(body: str) -> Iterator[tuple[int, int]]:
    """Spans of decoding loops in a text without edge punctuation."""
    for m in _LOOP.finditer(body):
        unit = m.group(1)
        if unit.isdigit():
            continue
        run = m.end() - m.start()
        # A short run of one character is a loop only as the whole text ("证证证证证"); inside a
        # sentence it may be speech ("快快快快还钱").
        if run < _MIN_LOOP_CHARS and (len(unit) > 1 or unit in _REPEATED_IN_SPEECH
                                      or run < len(body)):
            continue
        yield m.start(), m.end()


def without_loops(text: str) -> str:
    """The text less its decoding loops ("拐弯抹角下押押押押押…" -> "拐弯抹角下"): what Whisper
    actually transcribed, to judge whether a clip's text is too short for its speech."""
    body = _letters_only(normalize(text))
    kept, at = [], 0
    for start, end in _loops(body):
        kept.append(body[at:start])
        at = end
    return "".join(kept) + body[at:]


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]
