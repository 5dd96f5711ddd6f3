"""Rule files: load, validate, match.

Rules are data (analyzer/rules/<category>.yaml, plus _common.yaml for what all categories
share); this module only does what data cannot: validation with file-and-line errors,
substring/regex matching on normalized text, homophone repair, negation and exclusions.

Matching, in order, on the normalized text of one segment:

1. Homophone repair. Whisper garbles domain words into homophones on phone audio
   (验证码→验证马/院正马, 通讯录→通信路, 催收→推售). Windows whose toneless pinyin lies within a
   small edit distance of a domain word (userdict words of 3+ characters and the
   `fuzzy_words` of _common.yaml) are rewritten to that word in a *repaired* copy of the text.
   A window that is itself a common dictionary word (回收, 预期) is trusted and left alone.
2. Terms (literal substrings; Chinese has no word boundaries, so never `\\b`) and patterns
   (regex; `…` is a gap of up to 12 characters inside one sentence, `<name>` a macro from
   _common.yaml) run on the text as heard. They run again on the repaired copy; what is only
   found there is a *fuzzy* hit, scored lower (FUZZY_FACTOR).
3. A hit is suppressed when an exclusion pattern overlaps it (scam warnings, lawful
   wording), when a negator precedes it in the same clause (不要把验证码告诉任何人), or when its
   sentence is a debtor's objection or quote (你这是在威胁我吗).
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .errors import RuleError
from .text import (
    CLAUSE_END,
    SENTENCE_END,
    USERDICT_PATH,
    Tokenizer,
    default_tokenizer,
    edit_distance,
    fuzzy_syllable,
    is_han,
    normalize,
    pinyin_of,
    read_userdict,
)
from .types import CATEGORIES, SEVERITIES, SEVERITY_ZH

RULES_DIR = Path(__file__).parent / "rules"
COMMON_FILE = "_common.yaml"

# Texts whose repairs are remembered (Lexicon.repairs); a batch of segments fits many times.
RECENT_REPAIRS = 4096
# A fuzzy hit rests on a guess about what was said: it keeps this share of the rule's score.
FUZZY_FACTOR = 0.8
# `…` in a pattern: any characters except sentence ends, at most this many.
GAP = f"[^{re.escape(SENTENCE_END)}]{{0,12}}"
# A negator counts only this close before a hit (characters between them).
NEGATION_WINDOW = 8
# A repaired window must not itself be a dictionary word at least this frequent in jieba's
# dictionary (回收 526, 预期 >1000); homophone errors are mostly non-words (验证马, 通信路).
TRUSTED_WORD_FREQ = 20
# ASR garbles a domain word into sound-alike content characters (验证马), not into pronouns
# and particles; a window whose differing character is one of these (保证您 ~ 保证金) is
# ordinary speech.
FUNCTION_CHARS = frozenset("的了是在你您我他她它们和就都也会要不有这那个吗呢吧啊么与及或把被给让")

_RULE_KEYS = {
    "id", "description", "severity", "score", "terms", "patterns", "context",
    "counter_context", "exclusions", "negatable",
}
_CATEGORY_KEYS = {"category", "description", "context", "counter_context", "exclusions", "rules"}
_COMMON_KEYS = {
    "macros", "negators", "negator_exceptions", "negation_breakers", "objections",
    "retellings", "fuzzy_words", "hotwords", "warnings", "warning_requests", "warned_categories",
    "model_anchors", "model_anchor_exceptions", "model_vetoes", "third_party_cues",
    "third_party_pressure", "unverifiable_claims",
}
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_MACRO = re.compile(r"<([^<>=!?]+?)>")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Rule:
    category: str
    id: str
    description: str
    severity: str
    score: float
    terms: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    context: tuple[str, ...]  # rule's own plus its category's
    counter_context: tuple[str, ...]
    exclusions: tuple[re.Pattern[str], ...]
    negatable: bool
    file: str
    line: int
    term_regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @property
    def full_id(self) -> str:
        return f"{self.category}.{self.id}"


@dataclass(frozen=True)
class Correction:
    """A window of the heard text read as a domain word (same length)."""

    start: int
    end: int
    heard: str
    word: str
    distance: int


@dataclass(frozen=True)
class Hit:
    """One match of one rule in one normalized text."""

    rule_id: str  # "category.id"
    category: str
    severity: str
    score: float
    start: int
    end: int
    text: str  # as heard (normalized)
    fuzzy: bool = False
    repaired: str | None = None  # the domain wording a fuzzy hit was read as
    suppressed: str | None = None  # why it does not count (Chinese), None when it counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "category": self.category,
            "severity": self.severity,
            "score": round(self.score, 3),
            "span": [self.start, self.end],
            "text": self.text,
            "fuzzy": self.fuzzy,
            "repaired": self.repaired,
            "suppressed": self.suppressed,
        }


@dataclass(frozen=True)
class TextMatch:
    """Everything the lexicon saw in one text: both readings, repairs and hits."""

    text: str  # normalized, as heard
    repaired: str  # same length, garbled domain words replaced
    corrections: tuple[Correction, ...]
    hits: tuple[Hit, ...]  # those that count (plus suppressed ones when asked for)


@dataclass(frozen=True)
class GuardedPatterns:
    """Patterns that count only where none of `unless` matches: an unverifiable claim
    (words lawful when true that a recording cannot check, scoring.RuleDetector.corroborated)
    or a model veto (scoring.ClassifierScorer.vetoed)."""

    patterns: tuple[re.Pattern[str], ...]
    unless: tuple[re.Pattern[str], ...] = ()
    # What the patterns describe, for explanations (model_vetoes' `note`).
    note: str = ""

    def matches(self, text: str) -> bool:
        return (any(p.search(text) for p in self.patterns)
                and not any(p.search(text) for p in self.unless))


@dataclass(frozen=True)
class Common:
    macros: dict[str, str]
    negators: tuple[str, ...]
    negator_exceptions: tuple[str, ...]
    negation_breakers: tuple[str, ...]
    objections: tuple[re.Pattern[str], ...]
    fuzzy_words: tuple[str, ...]
    hotwords: tuple[str, ...]
    warnings: tuple[re.Pattern[str], ...] = ()
    warning_requests: tuple[re.Pattern[str], ...] = ()
    warned_categories: frozenset[str] = frozenset()
    # category -> words one of which a model-only finding of it needs in its segment
    model_anchors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # category -> phrases whose anchor words do not count (the lender's own account, "对公账户")
    model_anchor_exceptions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # A segment (or its neighbour) matching a category's veto gets no model candidate of the
    # category (a relay request to a contact is not third_party).
    model_vetoes: dict[str, GuardedPatterns] = field(default_factory=dict)
    # A call to someone other than the debtor: its cues, and the categories that are also
    # third_party when said to that person (analyzer.scoring).
    third_party_cues: tuple[re.Pattern[str], ...] = ()
    # Objections that introduce what another caller said ("有个男的打电话，说…"): the rest of
    # the sentence is the retold words, not only the clause with the match.
    retellings: tuple[re.Pattern[str], ...] = ()
    third_party_pressure: frozenset[str] = frozenset()
    # category -> the claim a finding of it may consist of and still need corroboration
    unverifiable_claims: dict[str, GuardedPatterns] = field(default_factory=dict)


EMPTY_COMMON = Common({}, (), (), (), (), (), ())


# --------------------------------------------------------------------------- YAML with lines


class _Mapping(dict):
    line = 0
    key_lines: dict[str, int]


class _Sequence(list):
    line = 0
    item_lines: list[int]


class _LineLoader(yaml.SafeLoader):
    """safe_load that remembers where every mapping key and list item sits."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    result = _Mapping()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise _Problem(line, f"键“{key}”应为文字")
        if key in result:
            raise _Problem(line, f"键“{key}”重复出现")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _Sequence:
    result = _Sequence(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


class _Problem(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def _rule_error(path: Path, line: int | None, message: str) -> RuleError:
    where = f"{path} 第 {line} 行" if line else str(path)
    return RuleError(f"规则文件 {where}：{message}。请改正后重试（callaudit rules check 可检查规则）。")


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise _rule_error(path, None, "不是 UTF-8 编码的文本") from err
    except OSError as err:
        raise _rule_error(path, None, f"无法读取（{err.strerror}）") from err
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except _Problem as err:
        raise _rule_error(path, err.line, err.message) from err
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        raise _rule_error(path, line, f"YAML 语法错误（{err.problem or err}）") from err
    except yaml.YAMLError as err:
        raise _rule_error(path, None, f"YAML 语法错误（{err}）") from err


# --------------------------------------------------------------------------- validation


class _Checker:
    """Typed access to one file's parsed YAML; every complaint names the line."""

    def __init__(self, path: Path, macros: dict[str, str]):
        self.path = path
        self.macros = macros

    def fail(self, line: int | None, message: str) -> RuleError:
        return _rule_error(self.path, line, message)

    def mapping(self, value: Any, line: int, what: str, allowed: set[str]) -> _Mapping:
        if not isinstance(value, _Mapping):
            raise self.fail(line, f"{what}应为“键: 值”形式的映射")
        for key in value:
            if key not in allowed:
                known = "、".join(sorted(allowed))
                raise self.fail(value.key_lines[key], f"未知的键“{key}”（可用：{known}）")
        return value

    def string(self, m: _Mapping, key: str, required: bool = False) -> str | None:
        if key not in m:
            if required:
                raise self.fail(m.line, f"缺少必填的键“{key}”")
            return None
        value = m[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(m.key_lines[key], f"“{key}”应为非空文字")
        return value.strip()

    def strings(self, m: _Mapping, key: str) -> list[tuple[str, int]]:
        """A list of non-empty strings with the line of each item."""
        if key not in m or m[key] is None:
            return []
        seq = m[key]
        if not isinstance(seq, _Sequence):
            raise self.fail(m.key_lines[key], f"“{key}”应为列表（每项一行，以“- ”开头）")
        out = []
        for item, line in zip(seq, seq.item_lines, strict=True):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(line, f"“{key}”的每一项应为非空文字，实际为“{item}”（数字请加引号）")
            out.append((item.strip(), line))
        return out

    def terms(self, m: _Mapping, key: str) -> list[str]:
        out = []
        for term, line in self.strings(m, key):
            if normalize(term) != term:
                raise self.fail(
                    line,
                    f"“{term}”不是规范化形式，永远不会命中；请写成“{normalize(term)}”"
                    "（简体、半角、小写、无空格）",
                )
            out.append(term)
        return out

    def regexes(self, m: _Mapping, key: str) -> list[re.Pattern[str]]:
        return [self.regex(p, line, key) for p, line in self.strings(m, key)]

    def regex(self, pattern: str, line: int, key: str) -> re.Pattern[str]:
        def expand(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.macros:
                raise self.fail(line, f"“{key}”中的宏“<{name}>”未在 {COMMON_FILE} 的 macros 中定义")
            return self.macros[name]

        source = _MACRO.sub(expand, pattern).replace("…", GAP)
        try:
            compiled = re.compile(source)
        except re.error as err:
            raise self.fail(line, f"“{key}”中的正则表达式“{pattern}”无效（{err}）") from err
        if compiled.search("") is not None:
            raise self.fail(line, f"“{key}”中的正则表达式“{pattern}”能匹配空文本，会处处命中")
        return compiled


def _load_common(path: Path) -> Common:
    data = _read_yaml(path)
    if data is None:
        return EMPTY_COMMON
    check = _Checker(path, {})
    m = check.mapping(data, 1, "文件内容", _COMMON_KEYS)
    macros: dict[str, str] = {}
    if "macros" in m:
        raw = m["macros"]
        if not isinstance(raw, _Mapping):
            raise check.fail(m.key_lines["macros"], "macros 应为“名字: 正则表达式”形式的映射")
        for name, value in raw.items():
            line = raw.key_lines[name]
            if not isinstance(value, str) or not value:
                raise check.fail(line, f"宏“{name}”应为正则表达式文字")
            try:
                re.compile(value)
            except re.error as err:
                raise check.fail(line, f"宏“{name}”不是有效的正则表达式（{err}）") from err
            macros[name] = f"(?:{value})"
    check.macros = macros
    return Common(
        macros=macros,
        negators=tuple(check.terms(m, "negators")),
        negator_exceptions=tuple(check.terms(m, "negator_exceptions")),
        negation_breakers=tuple(check.terms(m, "negation_breakers")),
        objections=tuple(check.regexes(m, "objections")),
        retellings=tuple(check.regexes(m, "retellings")),
        fuzzy_words=tuple(check.terms(m, "fuzzy_words")),
        hotwords=tuple(check.terms(m, "hotwords")),
        warnings=tuple(check.regexes(m, "warnings")),
        warning_requests=tuple(check.regexes(m, "warning_requests")),
        warned_categories=frozenset(_category_ids(check, m, "warned_categories")),
        model_anchors=_category_terms(check, m, "model_anchors"),
        model_anchor_exceptions=_category_terms(check, m, "model_anchor_exceptions"),
        model_vetoes=_guarded(check, m, "model_vetoes", "when"),
        third_party_cues=tuple(check.regexes(m, "third_party_cues")),
        third_party_pressure=frozenset(_category_ids(check, m, "third_party_pressure")),
        unverifiable_claims=_guarded(check, m, "unverifiable_claims", "claims"),
    )


def _guarded(check: _Checker, m: _Mapping, key: str, first: str) -> dict[str, GuardedPatterns]:
    """A "category id: {<first>: [regex, ...], unless: [regex, ...]}" mapping
    (unverifiable_claims with `claims`, model_vetoes with `when`)."""
    raw = m.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, _Mapping):
        raise check.fail(m.key_lines[key],
                         f"{key} 应为“类别编号: {{{first}: [...], unless: [...]}}”形式的映射")
    out = {}
    for cat in raw:
        line = raw.key_lines[cat]
        entry = check.mapping(raw[cat], line, f"{key} 的“{cat}”", {first, "unless", "note"})
        patterns = check.regexes(entry, first)
        if not patterns:
            raise check.fail(line, f"{key} 的“{cat}”缺少 {first}（至少一个正则表达式）")
        note = entry.get("note", "")
        if not isinstance(note, str):
            raise check.fail(entry.key_lines["note"], f"{key} 的“{cat}”的 note 应为一句文字")
        out[_category_id(check, cat, line, key)] = GuardedPatterns(
            tuple(patterns), tuple(check.regexes(entry, "unless")), note.strip())
    return out


def _category_terms(check: _Checker, m: _Mapping, key: str) -> dict[str, tuple[str, ...]]:
    """A "category id: [term, ...]" mapping (model_anchors, model_anchor_exceptions)."""
    raw = m.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, _Mapping):
        raise check.fail(m.key_lines[key], f"{key} 应为“类别编号: [词, ...]”形式的映射")
    return {_category_id(check, cat, raw.key_lines[cat], key): tuple(check.terms(raw, cat))
            for cat in raw}


def _category_ids(check: _Checker, m: _Mapping, key: str) -> list[str]:
    return [_category_id(check, value, line, key) for value, line in check.strings(m, key)]


def _category_id(check: _Checker, value: str, line: int, key: str) -> str:
    if value not in CATEGORIES:
        raise check.fail(line, f"{key} 中的“{value}”不是类别编号（可用：{'、'.join(CATEGORIES)}）")
    return value


def _load_category(path: Path, common: Common) -> list[Rule]:
    category = path.stem
    data = _read_yaml(path)
    check = _Checker(path, common.macros)
    m = check.mapping(data, 1, "文件内容", _CATEGORY_KEYS)
    declared = check.string(m, "category", required=True)
    if declared != category:
        raise check.fail(
            m.key_lines["category"], f"category 为“{declared}”，但文件名要求“{category}”"
        )
    cat_context = check.terms(m, "context")
    cat_counter = check.terms(m, "counter_context")
    cat_exclusions = check.regexes(m, "exclusions")
    if "rules" not in m or not isinstance(m["rules"], _Sequence) or not m["rules"]:
        raise check.fail(m.key_lines.get("rules", m.line), "“rules”应为非空列表")
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for item, line in zip(m["rules"], m["rules"].item_lines, strict=True):
        r = check.mapping(item, line, "每条规则", _RULE_KEYS)
        rule_id = check.string(r, "id", required=True)
        if not _ID.match(rule_id):
            raise check.fail(r.key_lines["id"], f"规则 id“{rule_id}”只能用小写字母、数字和下划线")
        if rule_id in seen:
            raise check.fail(r.key_lines["id"], f"规则 id“{rule_id}”与第 {seen[rule_id]} 行重复")
        seen[rule_id] = r.key_lines["id"]
        severity = check.string(r, "severity", required=True)
        if severity not in SEVERITIES:
            raise check.fail(
                r.key_lines["severity"],
                f"severity“{severity}”无效，应为 {'、'.join(SEVERITIES)} 之一",
            )
        score = r.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 < score <= 1:
            raise check.fail(r.key_lines.get("score", r.line), "score 应为 0 到 1 之间的数（大于 0）")
        negatable = r.get("negatable", True)
        if not isinstance(negatable, bool):
            raise check.fail(r.key_lines["negatable"], "negatable 应为 true 或 false")
        terms = check.terms(r, "terms")
        patterns = check.regexes(r, "patterns")
        if not terms and not patterns:
            raise check.fail(r.line, f"规则“{rule_id}”既没有 terms 也没有 patterns")
        alternation = "|".join(re.escape(t) for t in sorted(set(terms), key=len, reverse=True))
        rules.append(
            Rule(
                category=category,
                id=rule_id,
                description=check.string(r, "description", required=True),
                severity=severity,
                score=float(score),
                terms=tuple(terms),
                patterns=tuple(patterns),
                context=tuple(dict.fromkeys(check.terms(r, "context") + cat_context)),
                counter_context=tuple(
                    dict.fromkeys(check.terms(r, "counter_context") + cat_counter)
                ),
                exclusions=tuple(check.regexes(r, "exclusions") + cat_exclusions),
                negatable=negatable,
                file=str(path),
                line=line,
                term_regex=re.compile(alternation) if terms else None,
            )
        )
    return rules


def _rule_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise RuleError(f"规则目录 {directory} 不存在或不是目录。请指定包含 <类别>.yaml 的目录。")
    files = sorted(directory.glob("*.yaml"))
    for path in files:
        if path.name != COMMON_FILE and path.stem not in CATEGORIES:
            raise _rule_error(
                path, None, f"文件名必须是类别 id 之一（{'、'.join(CATEGORIES)}）或 {COMMON_FILE}"
            )
    return files


# --------------------------------------------------------------------------- the lexicon


class Lexicon:
    """Validated rules plus the matching machinery. Build with `Lexicon.load(dir)`."""

    def __init__(
        self,
        rules: list[Rule],
        common: Common = EMPTY_COMMON,
        domain_words: tuple[str, ...] = (),
        tokenizer: Tokenizer | None = None,
        directory: Path | None = None,
    ):
        self.rules = rules
        self.common = common
        self.directory = directory
        self._tokenizer = tokenizer
        self.rules_by_id = {r.full_id: r for r in rules}
        # The words homophone repair may restore: domain words of 3+ Han characters (shorter
        # ones collide with too many everyday words) plus the curated short `fuzzy_words`.
        vocab = [w for w in domain_words if len(w) >= 3] + list(common.fuzzy_words)
        self.fuzzy_vocabulary = tuple(
            dict.fromkeys(w for w in vocab if w and all(is_han(c) for c in w))
        )
        self._index: dict[str, list[tuple[str, int]]] | None = None
        self._word_syllables: dict[str, list[str]] = {}
        # Repairs of recent texts: a detector reads each segment twice (the classifier's text
        # without objections, then the rule matching), and repair is the costly part.
        self._recent: dict[str, tuple[Correction, ...]] = {}

    @classmethod
    def load(
        cls,
        directory: Path | str | None = None,
        userdict: Path | None = None,
        tokenizer: Tokenizer | None = None,
    ) -> Lexicon:
        directory = Path(directory) if directory is not None else RULES_DIR
        files = _rule_files(directory)
        common_path = directory / COMMON_FILE
        common = _load_common(common_path) if common_path.exists() else EMPTY_COMMON
        rules: list[Rule] = []
        for path in files:
            if path.name != COMMON_FILE:
                rules.extend(_load_category(path, common))
        words = tuple(w for w, _, _ in read_userdict(userdict or USERDICT_PATH))
        if tokenizer is None:
            tokenizer = default_tokenizer() if userdict is None else Tokenizer(userdict)
        return cls(rules, common, words, tokenizer, directory)

    @property
    def categories(self) -> list[str]:
        return sorted({r.category for r in self.rules}, key=list(CATEGORIES).index)

    # ----------------------------------------------------------------- homophone repair

    def _syllable_index(self) -> dict[str, list[tuple[str, int]]]:
        if self._index is None:
            index: dict[str, list[tuple[str, int]]] = defaultdict(list)
            for word in self.fuzzy_vocabulary:
                syl = [fuzzy_syllable(x) for x in pinyin_of(word)]
                self._word_syllables[word] = syl
                for pos, reading in enumerate(syl):
                    index[reading].append((word, pos))
            self._index = dict(index)
        return self._index

    def repairs(self, text: str) -> list[Correction]:
        """Windows of `text` that sound like a domain word but are written otherwise.

        A window qualifies when its toneless pinyin, with zh/z, ch/c, sh/s and -ng/-n made
        equal (text.fuzzy_syllable), is within _max_distance letters of the word's, it is not
        itself a common dictionary word, and no dictionary word straddles its edges
        ("不同剂量" holds no 通缉令 although 同剂量 ~ tongjiling).
        """
        found = self._recent.get(text)
        if found is None:
            if len(self._recent) >= RECENT_REPAIRS:
                self._recent.clear()
            found = self._recent[text] = tuple(self._find_repairs(text))
        return list(found)

    def repaired(self, text: str) -> str:
        """`text` (normalized) with its garbled domain words replaced (验证马 -> 验证码)."""
        return _apply(text, self.repairs(text))

    def _find_repairs(self, text: str) -> list[Correction]:
        if not self.fuzzy_vocabulary or not text:
            return []
        index = self._syllable_index()
        syl = [fuzzy_syllable(x) for x in pinyin_of(text)]
        votes: dict[tuple[str, int], int] = defaultdict(int)
        for pos, reading in enumerate(syl):
            for word, offset in index.get(reading, ()):
                start = pos - offset
                if 0 <= start <= len(text) - len(word):
                    votes[(word, start)] += 1
        # Domain words already present as heard are right; a repair must not overwrite them.
        protected = [False] * len(text)
        for word in self.fuzzy_vocabulary:
            start = text.find(word)
            while start != -1:
                for i in range(start, start + len(word)):
                    protected[i] = True
                start = text.find(word, start + 1)
        candidates = []
        for (word, start), count in votes.items():
            limit = _max_distance(word)
            end = start + len(word)
            if count < len(word) - limit or any(protected[start:end]):
                continue
            window = text[start:end]
            if window == word or not all(is_han(c) for c in window):
                continue
            if any(a != b and a in FUNCTION_CHARS for a, b in zip(window, word, strict=True)):
                continue
            wsyl = self._word_syllables[word]
            distance = sum(
                0 if window[i] == word[i] else edit_distance(syl[start + i], wsyl[i])
                for i in range(len(word))
            )
            if distance <= limit and not self._is_common_word(window):
                candidates.append(Correction(start, end, window, word, distance))
        if not candidates:
            return []
        edges = self._tokenizer.boundaries(text) if self._tokenizer is not None else None
        chosen: list[Correction] = []
        for c in sorted(candidates, key=lambda c: (c.distance, -len(c.word), c.start)):
            if edges is not None and (c.start not in edges or c.end not in edges):
                continue
            if all(c.end <= o.start or o.end <= c.start for o in chosen):
                chosen.append(c)
        return sorted(chosen, key=lambda c: c.start)

    def _is_common_word(self, window: str) -> bool:
        if self._tokenizer is None:
            return False
        return self._tokenizer.word_frequency(window) >= TRUSTED_WORD_FREQ

    # ----------------------------------------------------------------- matching

    def match(self, text: str) -> list[Hit]:
        """Hits that count in `text` (raw ASR text; normalized here)."""
        return list(self.analyze(text).hits)

    def analyze(
        self, text: str, *, normalized: bool = False, keep_suppressed: bool = False
    ) -> TextMatch:
        heard = text if normalized else normalize(text)
        corrections = self.repairs(heard)
        repaired = _apply(heard, corrections)
        found: list[Hit] = []
        for rule in self.rules:
            exact = list(_find(rule, heard))
            for start, end in exact:
                found.append(self._judge(rule, heard, start, end, None, repaired))
            if not corrections:
                continue
            for start, end in _find(rule, repaired):
                if (start, end) in exact:
                    continue
                used = [c for c in corrections if c.start < end and start < c.end]
                if used:
                    found.append(self._judge(rule, repaired, start, end, heard, repaired))
        hits = _dedupe(found)
        if not keep_suppressed:
            hits = [h for h in hits if h.suppressed is None]
        return TextMatch(heard, repaired, tuple(corrections), tuple(hits))

    def _judge(
        self, rule: Rule, text: str, start: int, end: int, heard: str | None, repaired: str
    ) -> Hit:
        fuzzy = heard is not None
        return Hit(
            rule_id=rule.full_id,
            category=rule.category,
            severity=rule.severity,
            score=rule.score * (FUZZY_FACTOR if fuzzy else 1.0),
            start=start,
            end=end,
            text=(heard if fuzzy else text)[start:end],
            fuzzy=fuzzy,
            repaired=text[start:end] if fuzzy else None,
            suppressed=self._suppression(rule, text, start, end, repaired),
        )

    def _suppression(
        self, rule: Rule, text: str, start: int, end: int, repaired: str
    ) -> str | None:
        for rx in rule.exclusions:
            for m in rx.finditer(text):
                if m.start() < end and start < m.end():
                    return f"排除规则：“{m.group()}”"
        if rule.negatable:
            negator = self._negator_before(text, start)
            if negator:
                return f"被否定：“{negator}”"
        s0, s1 = _bounds(text, start, end, SENTENCE_END)
        m = self._objection_in(text[s0:s1], repaired[s0:s1])
        if m:
            return f"债务人异议或转述：“{m}”"
        if rule.category in self.common.warned_categories:
            w = self._warning_in(text[s0:s1], repaired[s0:s1])
            if w:
                return f"防骗提醒：“{w}”"
        return None

    def _warning_in(self, *readings: str) -> str | None:
        """The warning phrase of an anti-fraud warning sentence, or None (also when the
        sentence asks the listener to give the speaker something)."""
        if _first_match(self.common.warning_requests, readings):
            return None
        return _first_match(self.common.warnings, readings)

    def warning_across(self, earlier: str, later: str) -> CrossWarning | None:
        """The warning, and the spans of both texts it covers, when the last sentence of
        `earlier` and the first sentence of `later` (normalized texts of neighbouring segments)
        are one anti-fraud warning cut in two: Whisper cuts at pauses, and "要是有人让你念验证码，或者开屏幕共享，|那都是骗子"
        leaves a bare request in one segment and its disclaimer in the next. Either the
        warning's words run across the cut, or `earlier` stops mid-sentence (at a comma) in a
        warning about what others do ("有人…", "骗子打着…") and `later` goes on describing it,
        with no word of the speaker's own (no 我: "我是市公安局的" after "有人冒用你的身份，" is a
        claim, not the warning going on; after "千万不要相信陌生人，" an instruction may follow)."""
        s0, _ = _bounds(earlier, len(earlier), len(earlier), SENTENCE_END)
        tail = earlier[s0:]
        if not tail.strip(CLAUSE_END) and earlier:  # `earlier` ends a sentence: take that one
            s0, _ = _bounds(earlier, len(earlier) - 1, len(earlier) - 1, SENTENCE_END)
            tail = earlier[s0:]
        _, s1 = _bounds(later, 0, 0, SENTENCE_END)
        head = later[:s1]
        open_ended = bool(tail) and tail[-1] not in SENTENCE_END
        tail = tail.rstrip(CLAUSE_END)
        if not tail or not head.strip(CLAUSE_END):
            return None
        joined = f"{tail},{head}"
        cut = len(tail)
        readings = (joined, self.repaired(joined))
        # As _warning_in: "…那都是骗子，你把验证码报给我" asks for something, it warns of nothing.
        if _first_match(self.common.warning_requests, readings):
            return None
        for m in _matches(self.common.warnings, readings):
            if m.start() < cut < m.end() or (open_ended and m.end() <= cut
                                             and _DESCRIBES_OTHERS.search(m.group())
                                             and "我" not in head):
                return CrossWarning(m.group(), s0, s1)
        return None

    def without_warnings(self, text: str) -> str:
        """`text` (normalized) less its anti-fraud warning sentences: what the classifier
        reads for warned_categories."""
        repaired = self.repaired(text)
        out, start = [], 0
        while start < len(text):
            s0, s1 = _bounds(text, start, start, SENTENCE_END)
            if not self._warning_in(text[s0:s1], repaired[s0:s1]):
                out.append(text[s0:s1])
            start = s1
        return "".join(out)

    def third_party_cue(self, text: str) -> str | None:
        """The words in `text` (normalized) that say the call is to someone other than the
        debtor, as heard or with garbled domain words repaired; None when there are none."""
        return _first_match(self.common.third_party_cues, (text, self.repaired(text)))

    def _objection_in(self, *readings: str) -> str | None:
        # Both readings: "你真是在下虎我" is an objection once 下虎 is read as 吓唬.
        return _first_match(self.common.objections + self.common.retellings, readings)

    def without_objections(self, text: str) -> str:
        """`text` (normalized) less the clauses that hold a debtor's objection or quote, for
        the classifier: on one mono channel a segment can join the debtor's "你是不是骗子"
        to the caller's next demand, and only the objection's own clauses are the debtor's."""
        drop = [False] * len(text)
        for reading in (text, self.repaired(text)):
            for rx in self.common.objections:
                for m in rx.finditer(reading):
                    c0, c1 = _bounds(reading, m.start(), m.end(), CLAUSE_END)
                    drop[c0:c1] = [True] * (c1 - c0)
            for rx in self.common.retellings:  # the retold words run to the sentence's end
                for m in rx.finditer(reading):
                    c0, _ = _bounds(reading, m.start(), m.end(), CLAUSE_END)
                    _, s1 = _bounds(reading, m.start(), m.end(), SENTENCE_END)
                    drop[c0:s1] = [True] * (s1 - c0)
        return "".join(ch for ch, d in zip(text, drop, strict=True) if not d)

    def _negator_before(self, text: str, start: int) -> str | None:
        clause_start = start
        while clause_start > 0 and text[clause_start - 1] not in CLAUSE_END:
            clause_start -= 1
        before = text[clause_start:start]
        best: tuple[int, str] | None = None
        for neg in self.common.negators:
            pos = before.rfind(neg)
            # 不要脸, 别人, 没钱 ... start like a negator but negate nothing.
            while pos != -1 and any(
                text.startswith(x, clause_start + pos) for x in self.common.negator_exceptions
            ):
                pos = before.rfind(neg, 0, pos)
            if pos == -1:
                continue
            gap = before[pos + len(neg) :]
            if len(gap) > NEGATION_WINDOW:
                continue
            if any(b in gap for b in self.common.negation_breakers):
                continue
            if best is None or pos + len(neg) > best[0]:
                best = (pos + len(neg), neg)
        if best:
            return best[1]
        # A negator the hit begins inside: "不" + "会去你单位" is "不会去你单位".
        for neg in self.common.negators:
            for k in range(1, len(neg)):
                if (start - k >= clause_start and text.startswith(neg, start - k)
                        and not any(text.startswith(x, start - k)
                                    for x in self.common.negator_exceptions)):
                    return neg
        return None

    # ----------------------------------------------------------------- context

    @staticmethod
    def context_found(
        words: tuple[str, ...], text: str, skip: tuple[int, int] | None = None
    ) -> list[str]:
        """Which of `words` occur in `text`, ignoring occurrences inside `skip` (the hit)."""
        out = []
        for w in words:
            pos = text.find(w)
            while pos != -1:
                if skip is None or pos + len(w) <= skip[0] or pos >= skip[1]:
                    out.append(w)
                    break
                pos = text.find(w, pos + 1)
        return out

    # ----------------------------------------------------------------- hotwords

    def hotwords(self, max_chars: int = 40) -> str:
        """Domain words for Whisper's `hotwords=`, most error-prone first, cut at `max_chars`.

        Whisper's prompt holds about 224 tokens and a Han character costs one or two, so the
        list stays short; words are never cut in half. Joined by "、" and closed with "。":
        comma-joined hotwords taught Whisper base to end sentences with odd tokens ("１", "：")
        and to merge a whole 20 s turn exchange into one segment.
        """
        out: list[str] = []
        used = 0
        for word in self.common.hotwords:
            extra = len(word) + 1  # its "、" or the closing "。"
            if used + extra > max_chars:
                break
            out.append(word)
            used += extra
        return "、".join(out) + "。" if out else ""


def _max_distance(word: str) -> int:
    """Pinyin letters a window may differ by: two-character words only as exact homophones
    (鱼期→逾期), since one letter off already hits everyday words (会受 ~ 催收)."""
    if len(word) <= 2:
        return 0
    return 1 if len(word) <= 4 else 2


def _apply(text: str, corrections: list[Correction]) -> str:
    chars = list(text)
    for c in corrections:
        chars[c.start : c.end] = list(c.word)
    return "".join(chars)


def _find(rule: Rule, text: str):
    if rule.term_regex is not None:
        for m in rule.term_regex.finditer(text):
            yield m.start(), m.end()
    for rx in rule.patterns:
        for m in rx.finditer(text):
            if m.end() > m.start():
                yield m.start(), m.end()


def _dedupe(hits: list[Hit]) -> list[Hit]:
    """Within one rule, overlapping hits are one: keep those that count, then exact, longest."""

    def rank(h: Hit):
        return (h.suppressed is None, not h.fuzzy, h.end - h.start)

    kept: list[Hit] = []
    for h in sorted(hits, key=rank, reverse=True):
        if not any(
            k.rule_id == h.rule_id and k.start < h.end and h.start < k.end for k in kept
        ):
            kept.append(h)
    return sorted(kept, key=lambda h: (h.start, h.rule_id))


class CrossWarning(NamedTuple):
    """An anti-fraud warning cut in two by the transcriber (Lexicon.warning_across)."""

    phrase: str
    earlier_from: int  # earlier[earlier_from:] is its first part
    later_to: int  # later[:later_to] its second


# A warning that describes what someone else does: what follows it may go on describing it.
_DESCRIBES_OTHERS = re.compile("有人|有些人|骗子|不法分子|诈骗分子")


def _matches(patterns: tuple[re.Pattern[str], ...], readings: tuple[str, ...]
             ) -> Iterator[re.Match[str]]:
    """Every match of every pattern in every reading: reading by reading, pattern by
    pattern, left to right."""
    for reading in readings:
        for rx in patterns:
            yield from rx.finditer(reading)


def _first_match(patterns: tuple[re.Pattern[str], ...], readings: tuple[str, ...]) -> str | None:
    """The first text any pattern finds in any reading, or None."""
    m = next(_matches(patterns, readings), None)
    return m.group() if m else None


def _bounds(text: str, start: int, end: int, ends: str) -> tuple[int, int]:
    """The sentence (ends=SENTENCE_END) or clause (CLAUSE_END) around text[start:end],
    its closing mark included."""
    s0 = start
    while s0 > 0 and text[s0 - 1] not in ends:
        s0 -= 1
    s1 = end
    while s1 < len(text) and text[s1] not in ends:
        s1 += 1
    return s0, min(s1 + 1, len(text))


@functools.lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The bundled rules, loaded once per process."""
    return Lexicon.load()


# --------------------------------------------------------------------------- rules check


@dataclass
class RuleSummary:
    directory: str
    per_category: dict[str, dict[str, int]]
    missing: list[str]
    common: dict[str, int]

    @property
    def total_rules(self) -> int:
        return sum(c["rules"] for c in self.per_category.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "categories": self.per_category,
            "missing": self.missing,
            "common": self.common,
            "total_rules": self.total_rules,
        }

    def render(self) -> str:
        lines = [f"规则目录 {self.directory}：全部通过校验，共 {self.total_rules} 条规则。"]
        for cat, c in self.per_category.items():
            lines.append(
                f"  {cat}（{CATEGORIES[cat]}）：规则 {c['rules']} 条，词条 {c['terms']} 个，"
                f"模式 {c['patterns']} 个，上下文词 {c['context']} 个，排除 {c['exclusions']} 个；"
                f"严重程度 " + "、".join(
                    f"{SEVERITY_ZH[s]} {c[s]}" for s in SEVERITIES if c.get(s)
                )
            )
        if self.missing:
            lines.append(f"  缺少类别：{'、'.join(self.missing)}（这些类别不会被检测）")
        cm = self.common
        lines.append(
            f"  通用：否定词 {cm['negators']} 个，异议模式 {cm['objections']} 个，"
            f"转述模式 {cm['retellings']} 个，防骗提醒模式 {cm['warnings']} 个，第三方来电线索 {cm['third_party_cues']} 个，"
            f"同音容错词 {cm['fuzzy_words']} 个，"
            f"热词 {cm['hotwords']} 个"
        )
        return "\n".join(lines)


def check_rules(directory: Path | str | None = None) -> RuleSummary:
    """Load and validate every rule file in `directory`; raise RuleError on the first problem.

    Used by `callaudit rules check [DIR]`.
    """
    directory = Path(directory) if directory is not None else RULES_DIR
    lex = Lexicon.load(directory, tokenizer=_NoTokenizer())
    per: dict[str, dict[str, int]] = {}
    for cat in CATEGORIES:
        rules = [r for r in lex.rules if r.category == cat]
        if not rules:
            continue
        counts = {
            "rules": len(rules),
            "terms": sum(len(r.terms) for r in rules),
            "patterns": sum(len(r.patterns) for r in rules),
            "context": len({w for r in rules for w in r.context}),
            "exclusions": len({x.pattern for r in rules for x in r.exclusions}),
        }
        for s in SEVERITIES:
            counts[s] = sum(1 for r in rules if r.severity == s)
        per[cat] = counts
    common = {
        "negators": len(lex.common.negators),
        "objections": len(lex.common.objections),
        "retellings": len(lex.common.retellings),
        "warnings": len(lex.common.warnings),
        "third_party_cues": len(lex.common.third_party_cues),
        "fuzzy_words": len(lex.common.fuzzy_words),
        "hotwords": len(lex.common.hotwords),
    }
    return RuleSummary(str(directory), per, [c for c in CATEGORIES if c not in per], common)


class _NoTokenizer(Tokenizer):
    """Checking rules needs no segmentation; skip loading jieba's dictionary."""

    def boundaries(self, text: str) -> set[int] | None:
        return None

    def word_frequency(self, word: str) -> int:
        return 0
