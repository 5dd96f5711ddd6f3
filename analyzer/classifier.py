"""Text classifier: per-category probabilities that an utterance breaks a rule.

Features: TF-IDF over jieba words, character 1-3-grams and toneless-pinyin 2-3-grams (the pinyin
block makes 验证马 look like 验证码, as Whisper writes it), one l2-normalized block each.
Model: one logistic regression per category (multi-label: a lawful utterance is low in all),
plus a speaker-role head: one more logistic regression, on the same features, for "the other
party is speaking" (corpus lawful rows of kind `debtor`), so the detector can set aside a
debtor who quotes or retells a threat.

Training uses scikit-learn; the artifact is plain data (an .npz of float arrays loaded with
allow_pickle=False, and JSON with vocabularies, thresholds and hashes), never pickle: pickle
executes code when loaded and breaks across library versions. Loading re-creates the scoring
math with numpy only.

Fusion API (for analyzer.scoring):
    clf = load_classifier()                  # models/ next to the package, or a given dir
    clf.predict_proba(texts) -> (n, 9)       # columns in CATEGORY_IDS order
    clf.window_proba(texts, joinable) -> WindowScores   # segment alone and with neighbours
    clf.score_segments(segments, skip=hallucinated) -> WindowScores  # joins by channel/gap
    clf.thresholds -> (9,) per-category decision thresholds; clf.flags(proba) -> bool (n, 9)
    clf.top_features(text, category) -> [(feature, contribution)]  # for explanations
    clf.other_party_proba(texts) -> (n,) probability that the debtor side is speaking
    clf.name -> "classifier@<npz sha256[:12]>"; clf.meta["sha256"]["npz"] for reports
Training: train(corpus_dir, out_dir, seed=0) -> metrics dict (what `callaudit train` runs);
summary_zh(metrics, out_dir) -> Chinese summary to print. Errors: ModelError (artifact),
RuleError (corpus file and line).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import platform
import random
import tempfile
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from .errors import ModelError, RuleError
from .types import CATEGORIES, Segment

log = logging.getLogger(__name__)

CATEGORY_IDS: tuple[str, ...] = tuple(CATEGORIES)
LAWFUL = "lawful"
FORMAT_VERSION = 2  # 2: the speaker-role head (role_coef, role_intercept)
JSON_NAME = "classifier.json"
NPZ_NAME = "classifier.npz"
CARD_NAME = "MODEL_CARD.md"
# models/ beside the package in a checkout; inside it (analyzer/models) in an installed wheel.
_CHECKOUT_MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL_DIR = (_CHECKOUT_MODELS if (_CHECKOUT_MODELS / JSON_NAME).is_file()
                     else Path(__file__).resolve().parent / "models")
RETRAIN = "请运行 `callaudit train` 重新训练模型"
BLOCKS: tuple[str, ...] = ("word", "char", "pinyin")
# lawful.tsv rows of this kind are the debtor (or a relative, a colleague) speaking: the
# positive class of the speaker-role head.
OTHER_PARTY_KIND = "debtor"
# A style/kind may name where the row came from after a colon ("heard:holdout5": what Whisper
# heard in that set's recordings; scripts/heard_to_corpus.py); what it is comes first.
SOURCE_SEP = ":"
# The source scripts/heard_to_corpus.py names: "heard:<set>", "debtor:heard:<set>".
HEARD_SOURCE = "heard"
# From this probability on, a segment counts as the other party's words (scoring weighs its
# candidates down).
OTHER_PARTY_THRESHOLD = 0.5
WORD_NGRAMS = (1, 1)
# Libraries whose versions the artifact records (training reproducibility, not a load check).
_LIBRARIES = ("scikit-learn", "numpy", "scipy", "jieba", "pypinyin", "opencc-python-reimplemented")


# --------------------------------------------------------------------------- features


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def _keep(ch: str) -> bool:
    """Letters, digits and Han characters; punctuation is dropped because Whisper places it
    arbitrarily (or not at all)."""
    return ch.isalnum() or _is_han(ch)


def text_key(text: str) -> str:
    """What the corpus compares and trains on: the normalized text's letters, digits and Han
    characters. Empty for a text without words (a pause written "……")."""
    from .text import normalize

    return "".join(c for c in normalize(text) if _keep(c))


def _ngrams(items: Sequence[str], lo: int, hi: int, sep: str) -> list[str]:
    out = []
    for n in range(lo, hi + 1):
        out.extend(sep.join(items[i : i + n]) for i in range(len(items) - n + 1))
    return out


def _syllables(chars: str) -> list[str]:
    """Toneless pinyin, one per character, each polyphone read in context (还钱 huan): what a
    listener, and Whisper, hears. Non-Han characters stand for themselves."""
    from pypinyin import Style, lazy_pinyin

    out = lazy_pinyin(chars, style=Style.NORMAL, errors=list)
    if len(out) != len(chars):  # keep one syllable per char whatever pypinyin did
        out = [lazy_pinyin(ch, style=Style.NORMAL, errors=list)[0] for ch in chars]
    return out


# Words that negate what follows in their clause: "不要把验证码告诉任何人" is a warning,
# "把验证码告诉我" a request. A bag of words cannot see the difference; marking the words after a
# negator ("~告诉") lets the linear model weigh them apart.
NEGATORS = frozenset(
    "不 不要 别 不会 不能 不得 不用 不必 没 没有 绝不 从不 从来不 决不 切勿 勿 禁止 严禁 不可 "
    "不可以 无需 拒绝 谨防 提防 小心 警惕".split()
)
NEGATION = True


def featurizer_settings() -> dict:
    """What the features depend on; recorded in the artifact and checked when loading, so a
    model is never scored with features it was not trained on."""
    return {"version": 1, "word_ngrams": list(WORD_NGRAMS), "negation": NEGATION,
            "char_ngrams": [1, 3], "pinyin_ngrams": [2, 3], "negators": sorted(NEGATORS)}


def _mark_negated(tokens: Sequence[str]) -> list[str]:
    """Word tokens with those after a negator, up to the clause end, prefixed by "~"."""
    out, negated = [], False
    for w in tokens:
        if not any(_keep(c) for c in w):
            negated = False  # punctuation ends the clause
            continue
        out.append(f"~{w}" if negated else w)
        if w in NEGATORS:
            negated = True
    return out


class Featurizer:
    """Text → feature strings per block. Pure Python: used at training and at scoring time,
    so both see exactly the same features."""

    _MEMO_MAX = 200_000  # training featurizes each (augmented) text once per fold

    def __init__(self):
        self._tok = None
        self.userdict_sha256: str | None = None
        self._memo: dict[str, dict[str, list[str]]] = {}

    def _tokenizer(self):
        if self._tok is None:
            from . import text

            if text.USERDICT_PATH.is_file():
                self._tok = text.Tokenizer()
                self.userdict_sha256 = hashlib.sha256(text.USERDICT_PATH.read_bytes()).hexdigest()
            else:  # the domain dictionary is optional for the classifier: plain jieba then
                self._tok = text.Tokenizer(userdict=Path(os.devnull))
        return self._tok

    def features(self, raw: str) -> dict[str, list[str]]:
        found = self._memo.get(raw)
        if found is not None:
            return found
        from .text import normalize

        norm = normalize(raw)
        chars = "".join(c for c in norm if _keep(c))
        words = _mark_negated(self._tokenizer().tokens(norm)) if NEGATION else [
            w for w in self._tokenizer().tokens(norm) if any(_keep(c) for c in w)
        ]
        feats = {
            "word": _ngrams(words, *WORD_NGRAMS, " "),
            "char": _ngrams(list(chars), 1, 3, ""),
            "pinyin": _ngrams(_syllables(chars), 2, 3, " "),
        }
        if len(self._memo) >= self._MEMO_MAX:
            self._memo.clear()
        self._memo[raw] = feats
        return feats


@lru_cache(maxsize=1)
def default_featurizer() -> Featurizer:
    return Featurizer()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# --------------------------------------------------------------------------- scoring


@dataclass
class WindowScores:
    """Per-segment probabilities after looking at neighbours.

    proba[i, k]: the best of segment i alone and i joined with a neighbour (credited only when
    the pair scores clearly above the neighbour alone, so a neighbour's own violation is not
    pinned on an innocent segment). source[i, k]: -1 joined with the previous, 0 alone, +1 with the next.
    """

    proba: np.ndarray
    source: np.ndarray


class Classifier:
    """A loaded artifact: scoring with numpy only."""

    def __init__(self, meta: dict, arrays: dict[str, np.ndarray], featurizer: Featurizer | None):
        self.meta = meta
        self.categories: tuple[str, ...] = tuple(meta["categories"])
        self.thresholds: np.ndarray = arrays["thresholds"]
        self._coef = arrays["coef"]
        self._intercept = arrays["intercept"]
        self._role_coef = arrays["role_coef"]
        self._role_intercept = float(arrays["role_intercept"][0])
        self._vocab: dict[str, dict[str, int]] = {}
        self._idf: dict[str, np.ndarray] = {}
        self._offset: dict[str, int] = {}
        self._names: list[str] = []
        offset = 0
        for block in BLOCKS:
            terms = meta["vocabulary"][block]
            self._vocab[block] = {t: i for i, t in enumerate(terms)}
            self._idf[block] = arrays[f"idf_{block}"]
            self._offset[block] = offset
            self._names.extend(f"{block}:{t}" for t in terms)
            offset += len(terms)
        self._featurizer = featurizer or default_featurizer()
        # The role head and the category heads read the same segment texts: featurize once.
        self._vector = lru_cache(maxsize=4096)(self._vector)

    @property
    def name(self) -> str:
        return f"classifier@{self.meta['sha256']['npz'][:12]}"

    def _vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Sparse tf-idf row of one text: (feature indices, values), as sklearn computes it:
        (1 + ln tf) * idf, l2-normalized per block."""
        feats = self._featurizer.features(text)
        idx_parts, val_parts = [], []
        for block in BLOCKS:
            vocab = self._vocab[block]
            counts = Counter(f for f in feats[block] if f in vocab)
            if not counts:
                continue
            idx = np.fromiter((vocab[f] for f in counts), dtype=np.int64, count=len(counts))
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            val = (1.0 + np.log(tf)) * self._idf[block][idx]
            val /= np.sqrt(np.dot(val, val))
            idx_parts.append(idx + self._offset[block])
            val_parts.append(val)
        if not idx_parts:
            idx, val = np.zeros(0, dtype=np.int64), np.zeros(0)
        else:
            idx, val = np.concatenate(idx_parts), np.concatenate(val_parts)
        idx.flags.writeable = val.flags.writeable = False  # cached: shared by every caller
        return idx, val

    def _linear(self, texts: Sequence[str], coef: np.ndarray, intercept) -> np.ndarray:
        """coef . x + intercept for each text's tf-idf row x (coef: (k, n) or (n,))."""
        out = np.empty((len(texts), *coef.shape[:-1]))
        for i, text in enumerate(texts):
            idx, val = self._vector(text)
            out[i] = coef[..., idx] @ val + intercept
        return out

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        return self._linear(texts, self._coef, self._intercept)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 9) probabilities, columns in CATEGORY_IDS order."""
        if isinstance(texts, str):
            raise TypeError("predict_proba expects a sequence of texts, not one string")
        return _sigmoid(self.decision_function(texts))

    def other_party_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n,) probability that each text is the debtor side speaking (objecting, pleading,
        retelling what another caller said), not the collector."""
        if isinstance(texts, str):
            raise TypeError("other_party_proba expects a sequence of texts, not one string")
        return _sigmoid(self._linear(texts, self._role_coef, self._role_intercept))

    def flags(self, proba: np.ndarray) -> np.ndarray:
        """Boolean (n, 9): probability at or above each category's threshold."""
        return proba >= self.thresholds

    def window_proba(
        self, texts: Sequence[str], joinable: Sequence[bool] | None = None, margin: float = 0.1
    ) -> WindowScores:
        """Score each segment alone and joined with its neighbours (Whisper cuts sentences at
        pauses, so half a threat may sit in each of two segments).

        joinable[i]: whether segments i and i+1 may be read together (same speaker, short
        gap); default all True. Length len(texts) - 1 (a longer list is cut).
        margin: how much the pair must beat the neighbour alone before it counts for this
        segment: a neighbour's own violation plus harmless words must not count.
        """
        n = len(texts)
        if n == 0:
            k = len(self.categories)
            return WindowScores(np.zeros((0, k)), np.zeros((0, k), dtype=np.int8))
        join = [True] * (n - 1) if joinable is None else [bool(j) for j in joinable][: n - 1]
        if len(join) < n - 1:
            raise ValueError("joinable needs one entry per pair of neighbouring segments")
        pairs = [i for i in range(n - 1) if join[i]]
        solo = self.predict_proba(list(texts))
        pair = self.predict_proba([texts[i] + texts[i + 1] for i in pairs])
        best = solo.copy()
        source = np.zeros(solo.shape, dtype=np.int8)
        for row, i in enumerate(pairs):
            p = pair[row]
            # Credit the pair to segment i only where it clearly beats segment i+1 alone, and
            # to segment i+1 only where it clearly beats segment i alone.
            for seg, other, tag in ((i, i + 1, 1), (i + 1, i, -1)):
                better = (p > solo[other] + margin) & (p > best[seg])
                best[seg, better] = p[better]
                source[seg, better] = tag
        return WindowScores(best, source)

    def score_segments(
        self,
        segments: Sequence[Segment],
        max_gap: float = 2.0,
        margin: float = 0.1,
        skip: Sequence[bool] | None = None,
    ) -> WindowScores:
        """window_proba over ASR segments: neighbours are joined only on the same channel and
        when the pause between them is at most `max_gap` seconds. skip[i] (e.g. a Whisper
        hallucination) scores 0 and is never joined: it must not produce or feed a finding."""
        n = len(segments)
        skip = [False] * n if skip is None else [bool(x) for x in skip]
        if len(skip) != n:
            raise ValueError("skip needs one entry per segment")
        joinable = [
            a.channel == b.channel and (b.start - a.end) <= max_gap and not (sa or sb)
            for a, b, sa, sb in zip(segments, segments[1:], skip, skip[1:], strict=False)
        ]
        texts = ["" if sk else s.text for s, sk in zip(segments, skip, strict=True)]
        scores = self.window_proba(texts, joinable, margin)
        scores.proba[np.array(skip, dtype=bool)] = 0.0
        return scores

    def top_features(self, text: str, category: str, k: int = 5) -> list[tuple[str, float]]:
        """The features that pushed `text` towards `category` most, as (feature, contribution
        to the log-odds), e.g. ("word:上门", 0.84). Feature names carry their block."""
        c = self.categories.index(category)
        idx, val = self._vector(text)
        contrib = self._coef[c, idx] * val
        order = np.argsort(-contrib, kind="stable")[:k]
        return [(self._names[idx[j]], float(contrib[j])) for j in order if contrib[j] > 0]


# --------------------------------------------------------------------------- artifact I/O


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(meta: dict) -> bytes:
    """The JSON bytes a payload hash covers: everything except the hash record itself."""
    body = {k: v for k, v in meta.items() if k != "sha256"}
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz with fixed zip timestamps, so the same model gives the same bytes (np.savez
    stamps the current time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            arr = io.BytesIO()
            np.lib.format.write_array(arr, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, arr.getvalue())
    return buf.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the model is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_artifact(out_dir: Path, meta: dict, arrays: dict[str, np.ndarray]) -> dict:
    """Write classifier.npz then classifier.json (which records the npz hash); returns meta."""
    out_dir.mkdir(parents=True, exist_ok=True)
    blob = _npz_bytes(arrays)
    meta = dict(meta, format_version=FORMAT_VERSION)
    meta["sha256"] = {"npz": _sha256(blob)}
    meta["sha256"]["json"] = _sha256(_canonical(meta))
    _write_atomic(out_dir / NPZ_NAME, blob)
    text = json.dumps(meta, ensure_ascii=False, sort_keys=True, indent=1) + "\n"
    _write_atomic(out_dir / JSON_NAME, text.encode())
    return meta


def load_classifier(model_dir: Path | str | None = None) -> Classifier:
    """Load and verify the artifact in `model_dir` (default: models/ beside the package).

    Raises ModelError (Chinese, names the file, says to run `callaudit train`) when a file is
    missing, corrupt, tampered with (sha256), of another format version, or holds anything
    but plain numeric arrays.
    """
    model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
    jpath, npath = model_dir / JSON_NAME, model_dir / NPZ_NAME
    for p in (jpath, npath):
        if not p.is_file():
            raise ModelError(f"找不到分类模型文件 {p}：{RETRAIN}。")
    try:
        meta = json.loads(jpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"分类模型文件 {jpath} 已损坏，无法读取（{err}）：{RETRAIN}。") from err
    if not isinstance(meta, dict):
        raise ModelError(f"分类模型文件 {jpath} 格式不对：{RETRAIN}。")
    found = meta.get("format_version")
    if found != FORMAT_VERSION:
        raise ModelError(
            f"分类模型文件 {jpath} 的格式版本是 {found}，本程序需要版本 {FORMAT_VERSION}：{RETRAIN}。"
        )
    hashes = meta.get("sha256")
    if not isinstance(hashes, dict) or hashes.get("json") != _sha256(_canonical(meta)):
        raise ModelError(f"分类模型文件 {jpath} 的内容与其记录的校验值不符（被修改或损坏）：{RETRAIN}。")
    blob = npath.read_bytes()
    if hashes.get("npz") != _sha256(blob):
        raise ModelError(
            f"分类模型文件 {npath} 的 sha256 与 {jpath.name} 记录的不符（被修改或损坏）：{RETRAIN}。"
        )
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        _check_arrays(meta, arrays)
    except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as err:
        raise ModelError(f"分类模型文件 {npath} 无法使用（{err}）：{RETRAIN}。") from err
    if meta.get("categories") != list(CATEGORY_IDS):
        raise ModelError(f"分类模型文件 {jpath} 的类别与本程序不一致：{RETRAIN}。")
    if meta.get("featurizer") != featurizer_settings():
        raise ModelError(f"分类模型文件 {jpath} 是用另一版特征提取训练的：{RETRAIN}。")
    featurizer = default_featurizer()
    clf = Classifier(meta, arrays, featurizer)
    _warn_if_userdict_changed(meta, featurizer)
    return clf


def _check_arrays(meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Shapes and dtypes must match the vocabularies: a mismatch means a broken artifact."""
    k = len(meta["categories"])
    sizes = [len(meta["vocabulary"][b]) for b in BLOCKS]
    want = {f"idf_{b}": (n,) for b, n in zip(BLOCKS, sizes, strict=True)}
    want |= {"coef": (k, sum(sizes)), "intercept": (k,), "thresholds": (k,),
             "role_coef": (sum(sizes),), "role_intercept": (1,)}
    for name, shape in want.items():
        arr = arrays[name]  # KeyError when missing
        if arr.dtype.kind != "f" or arr.shape != shape:
            raise ValueError(f"{name}: {arr.dtype} {arr.shape}, expected float {shape}")


def _warn_if_userdict_changed(meta: dict, featurizer: Featurizer) -> None:
    featurizer._tokenizer()
    if meta.get("userdict_sha256") != featurizer.userdict_sha256:
        # Word features shift a little; character and pinyin features do not.
        log.warning("分类模型训练后用户词典已改变，结果可能略有偏差：%s", RETRAIN)


# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class Example:
    text: str
    labels: frozenset[str]  # empty: lawful
    source: str  # "file:line"
    kind: str  # the style/kind column


def _read_tsv(path: Path, second: str) -> list[tuple[str, str, int]]:
    """(text, style-or-kind, line number) rows of one corpus file, validated."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as err:
        raise RuleError(f"{path}: 语料文件不存在。请补齐语料后重新运行 `callaudit train`。") from err
    except (OSError, UnicodeDecodeError) as err:
        raise RuleError(f"{path}: 无法读取语料文件（{err}），应为 UTF-8 的 TSV。") from err
    if not lines or lines[0].strip().split("\t") != ["text", second]:
        raise RuleError(f"{path} 第 1 行：表头应为“text<TAB>{second}”。")
    rows = []
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip():
            raise RuleError(f"{path} 第 {lineno} 行：应为两列“文本<TAB>{second}”，且文本不能为空。")
        rows.append((parts[0].strip(), parts[1].strip(), lineno))
    return rows


def corpus_files(corpus_dir: Path) -> list[Path]:
    return [corpus_dir / f"{c}.tsv" for c in CATEGORY_IDS] + [corpus_dir / f"{LAWFUL}.tsv"]


def corpus_sha256(corpus_dir: Path) -> str:
    """One hash over the ten corpus files (name + content)."""
    h = hashlib.sha256()
    for p in corpus_files(corpus_dir):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def load_corpus(corpus_dir: Path) -> tuple[list[Example], dict[str, int]]:
    """Examples from <category>.tsv (text, style) and lawful.tsv (text, kind).

    Duplicates (same normalized text) are merged: a text in two category files carries both
    labels; a text in a category file and in lawful.tsv keeps the category (counted as a
    conflict, since the corpus contradicts itself there).
    """
    merged: dict[str, Example] = {}
    stats = {"duplicates": 0, "conflicts": 0}
    for path in corpus_files(corpus_dir):
        cat = path.stem
        second = "kind" if cat == LAWFUL else "style"
        for text, kind, lineno in _read_tsv(path, second):
            key = text_key(text)
            if not key:
                raise RuleError(f"{path} 第 {lineno} 行：文本中没有文字。")
            labels = frozenset() if cat == LAWFUL else frozenset([cat])
            prev = merged.get(key)
            if prev is None:
                merged[key] = Example(text, labels, f"{path.name}:{lineno}", kind)
                continue
            stats["duplicates"] += 1
            if bool(prev.labels) != bool(labels):
                stats["conflicts"] += 1
            merged[key] = Example(prev.text, prev.labels | labels, prev.source, prev.kind)
    examples = list(merged.values())
    for cat in CATEGORY_IDS:
        if not any(cat in e.labels for e in examples):
            raise RuleError(f"{corpus_dir / (cat + '.tsv')}: 没有任何样本，无法训练该类别。")
    return examples, stats


def stratum(e: Example) -> str:
    return "+".join(sorted(e.labels)) or LAWFUL


def split_holdout(
    examples: Sequence[Example], holdout: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Deterministic stratified split. Each stratum is ordered by a seeded hash of the text, so
    adding rows to the corpus later moves few existing rows between the two sides."""
    groups: dict[str, list[Example]] = {}
    for e in examples:
        groups.setdefault(stratum(e), []).append(e)
    train, held = [], []
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda e: _sha256(f"{seed}:{e.text}".encode()))
        n_held = round(len(group) * holdout) if len(group) >= 2 else 0
        n_held = max(n_held, 1) if len(group) >= 2 and holdout > 0 else n_held
        held.extend(group[:n_held])
        train.extend(group[n_held:])
    return train, held


def label_matrix(examples: Sequence[Example]) -> np.ndarray:
    return np.array([[c in e.labels for c in CATEGORY_IDS] for e in examples], dtype=bool)


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    holdout: float = 0.2
    augment_share: float = 0.6  # share of training rows that get a Whisper-like copy
    join_share: float = 0.15  # share joined with a lawful neighbour sentence
    fragment_share: float = 0.3  # share of lawful rows also added cut in two
    C: float = 8.0  # inverse l2 strength of each logistic regression
    class_weight: str | None = "balanced"  # up-weight the rare positives (1 in 17)
    max_features: dict[str, int] = field(
        default_factory=lambda: {"word": 6000, "char": 25000, "pinyin": 12000}
    )
    min_df: int = 2
    cv_folds: int = 5  # out-of-fold predictions on the training side choose thresholds
    threshold_range: tuple[float, float] = (0.25, 0.9)


class FittedModel:
    """The scikit-learn side of a trained model (in memory only, never persisted as objects)."""

    def __init__(self, vectorizers: dict, models: list, featurizer: Featurizer, role):
        self.vectorizers = vectorizers
        self.models = models
        self.featurizer = featurizer
        self.role = role  # the speaker-role logistic regression

    def _matrix(self, texts: Sequence[str]):
        import scipy.sparse as sp

        feats = [self.featurizer.features(t) for t in texts]
        return sp.hstack(
            [self.vectorizers[b].transform([f[b] for f in feats]) for b in BLOCKS], format="csr"
        )

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        X = self._matrix(texts)
        return np.column_stack([m.predict_proba(X)[:, 1] for m in self.models])

    def arrays(self, thresholds: np.ndarray) -> tuple[dict[str, list[str]], dict[str, np.ndarray]]:
        vocab = {}
        arrays: dict[str, np.ndarray] = {}
        for b in BLOCKS:
            v = self.vectorizers[b]
            terms = [""] * len(v.vocabulary_)
            for term, i in v.vocabulary_.items():
                terms[i] = term
            vocab[b] = terms
            arrays[f"idf_{b}"] = v.idf_.astype(np.float64)
        arrays["coef"] = np.vstack([m.coef_[0] for m in self.models]).astype(np.float64)
        arrays["intercept"] = np.array([m.intercept_[0] for m in self.models], dtype=np.float64)
        arrays["thresholds"] = np.asarray(thresholds, dtype=np.float64)
        if self.role is None:  # no debtor rows to learn from: nobody is set aside
            arrays["role_coef"] = np.zeros(arrays["coef"].shape[1])
            arrays["role_intercept"] = np.array([-30.0])
        else:
            arrays["role_coef"] = self.role.coef_[0].astype(np.float64)
            arrays["role_intercept"] = self.role.intercept_.astype(np.float64)
        return vocab, arrays


def _identity(doc):
    return doc


def fit(
    examples: Sequence[Example], config: TrainConfig, featurizer: Featurizer | None = None
) -> FittedModel:
    """Augment, vectorize and fit one logistic regression per category, and the role head."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from .augment import augment_rows

    featurizer = featurizer or default_featurizer()
    rows = [(e.text, e.labels) for e in examples]
    lawful = [e.text for e in examples if not e.labels]
    extra = augment_rows(
        rows, config.seed, config.augment_share, config.join_share, lawful, config.fragment_share
    )
    texts = [t for t, _ in rows] + [t for t, _, _ in extra]
    labels = [lab for _, lab in rows] + [lab for _, lab, _ in extra]
    feats = [featurizer.features(t) for t in texts]
    vectorizers, blocks = {}, []
    for b in BLOCKS:
        # min_df would empty a tiny corpus's vocabulary; it only trims noise on a real one.
        min_df = config.min_df if len(texts) >= 50 * config.min_df else 1
        v = TfidfVectorizer(
            analyzer=_identity, sublinear_tf=True, min_df=min_df,
            max_features=config.max_features[b], dtype=np.float64,
        )
        blocks.append(v.fit_transform([f[b] for f in feats]))
        vectorizers[b] = v
    import scipy.sparse as sp

    X = sp.hstack(blocks, format="csr")
    Y = np.array([[c in lab for c in CATEGORY_IDS] for lab in labels], dtype=int)
    models = []
    for k in range(len(CATEGORY_IDS)):
        m = LogisticRegression(
            C=config.C, class_weight=config.class_weight, solver="liblinear", max_iter=1000
        )
        models.append(m.fit(X, Y[:, k]))
    # The role head reads the original script rows only: augmentation joins a row with a
    # lawful neighbour that may be the collector's, and a heard row is what Whisper cut at
    # its own pauses, not at the turn, so its side is less sure (and heard debtor rows, as
    # many as the written ones, pulled collector sentences towards the debtor).
    scripted = [i for i, e in enumerate(examples) if not is_heard(e.kind)]
    role_y = [is_other_party(examples[i]) for i in scripted]
    role = None
    if any(role_y) and not all(role_y):
        role = LogisticRegression(
            C=config.C, class_weight=config.class_weight, solver="liblinear", max_iter=1000
        ).fit(X[scripted], role_y)
    return FittedModel(vectorizers, models, featurizer, role)


def base_kind(kind: str) -> str:
    """The style/kind without the source it may name ("debtor:heard:holdout5" -> "debtor")."""
    return kind.split(SOURCE_SEP, 1)[0]


def heard_set(kind: str) -> str | None:
    """The call set a heard row ("heard:<set>", "debtor:heard:<set>") was heard in; None for
    any other row."""
    parts = kind.split(SOURCE_SEP)
    return parts[-1] if len(parts) >= 2 and parts[-2] == HEARD_SOURCE else None


def is_heard(kind: str) -> bool:
    """A row of what Whisper wrote for a labelled recording (scripts/heard_to_corpus.py)."""
    return heard_set(kind) is not None


def is_other_party(e: Example) -> bool:
    return not e.labels and base_kind(e.kind) == OTHER_PARTY_KIND


def prf(truth: np.ndarray, pred: np.ndarray) -> dict[str, float | int]:
    """Precision, recall, F1 and counts for one boolean column."""
    tp = int(np.sum(truth & pred))
    fp = int(np.sum(~truth & pred))
    fn = int(np.sum(truth & ~pred))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "support": int(truth.sum()), "tp": tp, "fp": fp}


def choose_thresholds(truth: np.ndarray, proba: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Per category, the threshold in [lo, hi] with the best F1 (ties: the higher threshold,
    i.e. fewer false accusations)."""
    grid = np.round(np.arange(lo, hi + 1e-9, 0.01), 2)
    out = np.empty(truth.shape[1])
    for k in range(truth.shape[1]):
        scores = [prf(truth[:, k], proba[:, k] >= t)["f1"] for t in grid]
        best = max(scores)
        out[k] = max(t for t, s in zip(grid, scores, strict=True) if s == best)
    return out


def _folds(examples: Sequence[Example], n: int, seed: int) -> list[list[int]]:
    """Stratified fold assignment by the same seeded hash order as the held-out split."""
    by: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by.setdefault(stratum(e), []).append(i)
    folds: list[list[int]] = [[] for _ in range(n)]
    for key in sorted(by):
        idx = sorted(by[key], key=lambda i: _sha256(f"fold{seed}:{examples[i].text}".encode()))
        for j, i in enumerate(idx):
            folds[j % n].append(i)
    return folds


def oof_proba(examples: Sequence[Example], config: TrainConfig) -> np.ndarray:
    """Out-of-fold probabilities on `examples` (augmentation only inside each training fold)."""
    proba = np.zeros((len(examples), len(CATEGORY_IDS)))
    for fold in _folds(examples, config.cv_folds, config.seed):
        inside = set(fold)
        model = fit([e for i, e in enumerate(examples) if i not in inside], config)
        proba[fold] = model.predict_proba([examples[i].text for i in fold])
    return proba


def evaluate(
    examples: Sequence[Example], proba: np.ndarray, thresholds: np.ndarray
) -> dict[str, object]:
    """Per-category P/R/F1, micro average, and the lawful false-alarm rate (by kind)."""
    truth = label_matrix(examples)
    pred = proba >= thresholds
    per = {c: prf(truth[:, k], pred[:, k]) for k, c in enumerate(CATEGORY_IDS)}
    micro = prf(truth.ravel(), pred.ravel())
    # The corpus gives each utterance one category, yet many say two things at once (a threat
    # to come to the workplace is also third_party): "any violation found" is the measure
    # that ignores which of the overlapping categories was picked.
    any_violation = prf(truth.any(axis=1), pred.any(axis=1))
    lawful = [i for i, e in enumerate(examples) if not e.labels]
    fa_by_kind: dict[str, list[int]] = {}
    for i in lawful:
        fa_by_kind.setdefault(base_kind(examples[i].kind), []).append(int(pred[i].any()))
    return {
        "per_category": per,
        "micro": micro,
        "any_violation": any_violation,
        "macro_f1": float(np.mean([per[c]["f1"] for c in CATEGORY_IDS])),
        "lawful_n": len(lawful),
        "lawful_false_alarm": float(np.mean([pred[i].any() for i in lawful])) if lawful else 0.0,
        "lawful_false_alarm_by_kind": {
            k: {"n": len(v), "rate": sum(v) / len(v)} for k, v in sorted(fa_by_kind.items())
        },
    }


def _robustness(
    clf: Classifier, held: Sequence[Example], seed: int
) -> dict[str, dict[str, float]]:
    """Held-out rows as Whisper might write them: homophone-garbled, and cut in two then
    scored with the window helper. Recall on violations, false alarms on lawful rows."""
    from .augment import homophone, whisper_split

    rng = random.Random(seed + 1000)  # not the training augmentation's stream
    truth = label_matrix(held)
    garbled = [homophone(e.text, rng, rate=0.2, near=rng.random() < 0.5) for e in held]
    out = {}
    pred = clf.flags(clf.predict_proba(garbled))
    out["homophones"] = _recall_fa(truth, pred)
    pred = np.zeros_like(truth)
    for i, e in enumerate(held):
        parts = whisper_split(e.text, rng)
        pred[i] = clf.flags(clf.window_proba(parts).proba).any(axis=0)
    out["cut_in_two_window"] = _recall_fa(truth, pred)
    return out


def _recall_fa(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    pos = truth.any(axis=1)
    hit = (truth & pred).any(axis=1)
    return {
        "recall": float(hit[pos].mean()) if pos.any() else 0.0,
        "lawful_false_alarm": float(pred[~pos].any(axis=1).mean()) if (~pos).any() else 0.0,
    }


def _library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "unknown"
    return out


def train(
    corpus_dir: Path | str = "corpus",
    out_dir: Path | str = DEFAULT_MODEL_DIR,
    seed: int = 0,
    config: TrainConfig | None = None,
) -> dict:
    """Train on the corpus, evaluate on a stratified held-out split, write the artifact and
    MODEL_CARD.md to `out_dir`. Deterministic for a given corpus and seed. Returns metrics.

    The shipped model is the one trained on the training side only, so the held-out numbers
    describe exactly the artifact written.
    """
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    config = config or TrainConfig(seed=seed)
    if config.seed != seed:
        config = TrainConfig(**{**asdict(config), "seed": seed})
    examples, stats = load_corpus(corpus_dir)
    train_ex, held = split_holdout(examples, config.holdout, config.seed)
    log.info("训练样本 %d 条，留出 %d 条", len(train_ex), len(held))
    lo, hi = config.threshold_range
    thresholds = choose_thresholds(label_matrix(train_ex), oof_proba(train_ex, config), lo, hi)
    model = fit(train_ex, config)
    vocab, arrays = model.arrays(thresholds)
    meta = {
        "model": "callaudit text classifier (tf-idf words + char 1-3 + pinyin 2-3, logistic)",
        "categories": list(CATEGORY_IDS),
        "blocks": list(BLOCKS),
        "featurizer": featurizer_settings(),
        "vocabulary": vocab,
        "config": asdict(config),
        "libraries": _library_versions(),
        "corpus_sha256": corpus_sha256(corpus_dir),
        "userdict_sha256": model.featurizer.userdict_sha256,
    }
    # Evaluate the artifact as it will be loaded, through the numpy scorer.
    clf = Classifier(dict(meta, sha256={"npz": ""}), arrays, model.featurizer)
    metrics = evaluate(held, clf.predict_proba([e.text for e in held]), thresholds)
    metrics["robustness"] = _robustness(clf, held, config.seed)
    role_truth = np.array([is_other_party(e) for e in held], dtype=bool)
    role_set_aside = clf.other_party_proba([e.text for e in held]) >= OTHER_PARTY_THRESHOLD
    violating = np.array([bool(e.labels) for e in held], dtype=bool)
    metrics["other_party"] = {
        **prf(role_truth, role_set_aside), "threshold": OTHER_PARTY_THRESHOLD,
        # What matters to the detector: violating rows wrongly set aside as the debtor's.
        "violations_taken_as_other_party":
            float(role_set_aside[violating].mean()) if violating.any() else 0.0,
    }
    metrics["thresholds"] = {c: float(t) for c, t in zip(CATEGORY_IDS, thresholds, strict=True)}
    metrics["sizes"] = {
        "corpus_rows": len(examples),
        "train_rows": len(train_ex),
        "heldout_rows": len(held),
        "per_category": {c: int(sum(c in e.labels for e in examples)) for c in CATEGORY_IDS},
        "lawful": sum(1 for e in examples if not e.labels),
        "features": {b: len(vocab[b]) for b in BLOCKS},
        **stats,
    }
    meta["metrics"] = _rounded(metrics)
    meta = save_artifact(out_dir, meta, arrays)
    _write_atomic(out_dir / CARD_NAME, render_card(meta).encode())
    return meta["metrics"]


def summary_zh(metrics: dict, out_dir: Path | str = DEFAULT_MODEL_DIR) -> str:
    """A short Chinese summary of train()'s metrics, for `callaudit train` to print."""
    s = metrics["sizes"]
    lines = [
        f"已训练分类模型：{s['train_rows']} 条训练语料，{s['heldout_rows']} 条留出评估；"
        f"模型已写入 {Path(out_dir)}（含 {CARD_NAME}）。",
        "留出集结果（同一批人写的语料，只说明覆盖面，不代表真实通话效果）：",
    ]
    for c in CATEGORY_IDS:
        r = metrics["per_category"][c]
        lines.append(
            f"  {CATEGORIES[c]}：精确率 {r['precision']:.2f}，召回率 {r['recall']:.2f}，"
            f"F1 {r['f1']:.2f}"
        )
    a = metrics["any_violation"]
    lines.append(
        f"  是否违规（不论类别）：精确率 {a['precision']:.2f}，召回率 {a['recall']:.2f}；"
        f"合规语句误报率 {metrics['lawful_false_alarm']:.2f}"
    )
    return "\n".join(lines)


def _rounded(obj):
    if isinstance(obj, float):
        return round(obj, 4) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- model card

_EXTERNAL_START = "<!-- external:start -->"
_EXTERNAL_END = "<!-- external:end -->"


def render_card(meta: dict) -> str:
    """MODEL_CARD.md for a trained artifact (external proxy numbers are filled in by
    scripts/eval_text.py --card between the external markers)."""
    m = meta["metrics"]
    s = m["sizes"]
    lines = [
        "# callaudit text classifier — model card",
        "",
        "Generated by `callaudit train` (analyzer/classifier.py); do not edit by hand.",
        "",
        "## What it is",
        f"- {meta['model']}; one logistic regression per category, multi-label "
        "(a lawful utterance scores low in all nine).",
        f"- Files: `{NPZ_NAME}` (float arrays, loaded with allow_pickle=False) and `{JSON_NAME}` "
        f"(vocabularies, thresholds, metrics, hashes). Format version {meta['format_version']}.",
        f"- sha256 {NPZ_NAME}: `{meta['sha256']['npz']}`; corpus (10 TSV files): "
        f"`{meta['corpus_sha256']}`; jieba user dictionary: `{meta['userdict_sha256']}`.",
        "- Libraries at training: "
        + ", ".join(f"{k} {v}" for k, v in sorted(meta["libraries"].items())) + ".",
        "- Features kept: " + ", ".join(f"{b} {n}" for b, n in s["features"].items())
        + f"; training seed {meta['config']['seed']}.",
        "",
        "## Data",
        f"- corpus/: {s['corpus_rows']} distinct utterances written for this project "
        f"({s['lawful']} lawful incl. hard negatives; per category: "
        + ", ".join(f"{c} {n}" for c, n in s["per_category"].items()) + ").",
        f"- {s['duplicates']} duplicate rows merged, {s['conflicts']} texts found both lawful and "
        "violating (kept as violating).",
        f"- Stratified held-out split {meta['config']['holdout']:.0%}: {s['train_rows']} train / "
        f"{s['heldout_rows']} held out. Only the training side is augmented (homophones, "
        "near-homophones, observed Whisper confusions, Traditional characters, digits, "
        "punctuation, joins with a lawful neighbour, lawful rows cut in two; "
        "analyzer/augment.py).",
        "- Thresholds: best F1 on 5-fold out-of-fold predictions of the training side "
        "(never tuned on the held-out split).",
        "",
        "## Held-out results (in-domain: same writers and style as the training data)",
        "",
        "| category | threshold | precision | recall | F1 | support |",
        "|---|---|---|---|---|---|",
    ]
    for c in meta["categories"]:
        r = m["per_category"][c]
        lines.append(
            f"| {c} {CATEGORIES[c]} | {m['thresholds'][c]:.2f} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |"
        )
    mi = m["micro"]
    lines += [
        f"| micro | | {mi['precision']:.3f} | {mi['recall']:.3f} | {mi['f1']:.3f} | "
        f"{mi['support']} |",
        "",
        f"- Any violation found (whatever the category) vs lawful: precision "
        f"{m['any_violation']['precision']:.3f}, recall {m['any_violation']['recall']:.3f}, "
        f"F1 {m['any_violation']['f1']:.3f}. Each corpus utterance has one category, but many "
        "say two things at once (a threat to visit the workplace is also third_party): an "
        "extra correct category counts as a false positive above.",
        f"- Macro F1 {m['macro_f1']:.3f}. Lawful held-out utterances with any flag: "
        f"{m['lawful_false_alarm']:.3f} of {m['lawful_n']} ("
        + ", ".join(
            f"{k} {v['rate']:.2f}/{v['n']}" for k, v in m["lawful_false_alarm_by_kind"].items()
        )
        + ").",
        f"- Held-out rows garbled with homophones (a seed unused in training): recall "
        f"{m['robustness']['homophones']['recall']:.3f}, lawful false alarms "
        f"{m['robustness']['homophones']['lawful_false_alarm']:.3f}.",
        f"- Held-out rows cut in two (as Whisper segments) and scored with the window helper: "
        f"recall {m['robustness']['cut_in_two_window']['recall']:.3f}, lawful false alarms "
        f"{m['robustness']['cut_in_two_window']['lawful_false_alarm']:.3f}.",
        "",
        "## Speaker-role head (who is speaking)",
        f"- Positive class: lawful rows of kind `{OTHER_PARTY_KIND}` (the debtor or a relative "
        "objecting, pleading, retelling); negative: every other row. Original rows only, no "
        "augmentation. From a probability of "
        f"{m['other_party']['threshold']:.2f} on, the detector weighs a segment's rule and "
        "model scores down, to half at certainty (analyzer/scoring.py).",
        f"- Held-out: precision {m['other_party']['precision']:.3f}, recall "
        f"{m['other_party']['recall']:.3f}, F1 {m['other_party']['f1']:.3f} "
        f"(support {m['other_party']['support']}, at {m['other_party']['threshold']:.2f}); "
        "violating held-out rows taken for the other party: "
        f"{m['other_party']['violations_taken_as_other_party']:.3f}.",
        "",
        "## External proxies",
        _EXTERNAL_START,
        "Not measured yet: run `python scripts/eval_text.py --card models/MODEL_CARD.md`.",
        _EXTERNAL_END,
        "",
        "## Intended use",
        "- One signal among several in callaudit: analyzer.scoring fuses these probabilities "
        "with the rule lexicon; the classifier alone does not decide a finding.",
        "- Input: one ASR segment of a Chinese debt-collection call (the window helper also "
        "reads a segment with its neighbours).",
        "",
        "## Limits",
        "- Trained on sentences written for this project, not on real recorded calls (no "
        "licensed set of real 催收 calls exists); held-out numbers measure coverage of that "
        "writing, not performance on real calls. Near-duplicate phrasings can sit on both "
        "sides of the split and flatter the held-out numbers.",
        "- It reads words, not voices: the role head guesses the speaker from wording alone, "
        "so a debtor who sounds like a collector is not set aside, and a collector who "
        "sounds like a debtor (pleading, quoting) can be. A collector warning against a "
        "scam can score high; the detector's context rules handle that.",
        "- Homophone robustness is learned from synthetic substitutions; real Whisper errors "
        "on noisy 8 kHz audio can be worse.",
        "- Trained with balanced class weights: a probability is a score on a balanced "
        "mix of violating and lawful speech, not the chance of a violation in a real call, "
        "where violations are rare. Use the thresholds, or fuse, rather than read it as odds.",
        "- Insult recall on social-media comments (COLD, ToxiCN) is low: those attacks are "
        "argumentative posts about third persons, unlike a collector abusing a debtor.",
        "",
    ]
    return "\n".join(lines)
