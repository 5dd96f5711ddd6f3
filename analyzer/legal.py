"""Legal basis and complaint channels for findings, from analyzer/data/legal.yaml.

The data file is the only place legal knowledge lives; this module loads and validates it
(errors name the file, the item and its line) and picks citations by the call's date: the
revised 治安管理处罚法 moved 第42条 to 第50条 on 2026-01-01.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import RuleError
from .types import CATEGORIES, SEVERITIES, CallReport

DATA_PATH = Path(__file__).parent / "data" / "legal.yaml"

# 12389 takes complaints about police misconduct, not about collectors (legal-basis.md).
FORBIDDEN_CHANNELS = frozenset({"12389"})
MAX_QUOTE_CHARS = 80  # quotations stay short; the report is not a law book


@dataclass(frozen=True)
class Citation:
    id: str
    instrument: str
    strength: str
    article: str | None = None
    quote: str | None = None
    summary: str | None = None
    note: str | None = None
    verified: bool = True
    valid_from: date | None = None
    valid_until: date | None = None
    strict: bool = False  # a version of a law: applies only inside its validity window


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    phone: str | None
    use: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "phone": self.phone, "use": self.use}


@dataclass(frozen=True)
class CategoryLaw:
    id: str
    severity: str
    basis: tuple[str, ...]
    channels: tuple[str, ...]
    point: str
    advice: tuple[str, ...]


@dataclass(frozen=True)
class LegalData:
    path: Path
    sha256: str
    strengths: dict[str, str]
    citations: dict[str, Citation]
    channels: dict[str, Channel]
    categories: dict[str, CategoryLaw]
    lender_right: str
    advice: dict[str, tuple[str, ...]]  # findings / scam / lawful / unverified_claim


def load(path: Path | str | None = None) -> LegalData:
    """Load and validate the legal data file (the bundled one by default, cached)."""
    if path is None:
        return _load_default()
    return _load(Path(path))


@lru_cache(maxsize=1)
def _load_default() -> LegalData:
    return _load(DATA_PATH)


def _load(path: Path) -> LegalData:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise RuleError(f"{path}: 无法读取法律依据数据文件（{err.strerror}），请检查安装是否完整") from err
    try:
        loader = yaml.SafeLoader(raw.decode("utf-8"))
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f"第{mark.line + 1}行" if mark is not None else "文件"
        raise RuleError(f"{path}: {where}不是有效的 YAML（{err}），请修正该文件") from err
    return _Validator(path, root, data).build(hashlib.sha256(raw).hexdigest())


class _Validator:
    """Checks the parsed YAML item by item; errors name the item path and its line."""

    def __init__(self, path: Path, root: yaml.Node | None, data: Any):
        self.path = path
        self.root = root
        self.data = data

    def fail(self, keys: tuple[str, ...], problem: str) -> RuleError:
        item = ".".join(keys) or "（顶层）"
        line = _line_of(self.root, keys)
        where = f"第{line}行 " if line else ""
        return RuleError(f"{self.path}: {where}{item}: {problem}，请修正该数据文件")

    def mapping(self, value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            raise self.fail(keys, "应为非空的映射（键: 值）")
        return value

    def text(self, value: Any, keys: tuple[str, ...], optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(keys, "应为非空文本")
        return value.strip()

    def text_list(self, value: Any, keys: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(keys, "应为非空列表")
        return tuple(self.text(v, (*keys, str(i))) for i, v in enumerate(value))

    def day(self, value: Any, keys: tuple[str, ...]) -> date | None:
        if value is None:
            return None
        if isinstance(value, datetime) or not isinstance(value, date):
            raise self.fail(keys, "应为日期，格式 YYYY-MM-DD")
        return value

    def build(self, sha256: str) -> LegalData:
        top = self.mapping(self.data, ())
        strengths = {
            str(k): self.text(v, ("strengths", str(k)))
            for k, v in self.mapping(top.get("strengths"), ("strengths",)).items()
        }
        citations = {
            str(cid): self.citation(str(cid), item, strengths)
            for cid, item in self.mapping(top.get("citations"), ("citations",)).items()
        }
        channels = {
            str(chid): self.channel(str(chid), item)
            for chid, item in self.mapping(top.get("channels"), ("channels",)).items()
        }
        cats = self.mapping(top.get("categories"), ("categories",))
        for cat in CATEGORIES:
            if cat not in cats:
                raise self.fail(("categories",), f"缺少类别 {cat}")
        categories = {}
        for cat, item in cats.items():
            if cat not in CATEGORIES:
                raise self.fail(("categories", str(cat)), "未知的类别 id")
            categories[cat] = self.category(cat, item, citations, channels)
        lender_right = self.text(top.get("lender_right"), ("lender_right",))
        if lender_right not in citations:
            raise self.fail(("lender_right",), f"引用了不存在的条目 {lender_right}")
        advice_map = self.mapping(top.get("advice"), ("advice",))
        advice = {}
        for kind in ("findings", "scam", "lawful", "unverified_claim"):
            advice[kind] = self.text_list(advice_map.get(kind), ("advice", kind))
        return LegalData(
            self.path, sha256, strengths, citations, channels, categories, lender_right, advice
        )

    def citation(self, cid: str, item: Any, strengths: dict[str, str]) -> Citation:
        keys = ("citations", cid)
        item = self.mapping(item, keys)
        known = {"instrument", "article", "quote", "summary", "note", "strength", "verified",
                 "valid_from", "valid_until", "strict"}
        for key in item:
            if key not in known:
                raise self.fail((*keys, str(key)), "未知的字段")
        strength = self.text(item.get("strength"), (*keys, "strength"))
        if strength not in strengths:
            raise self.fail((*keys, "strength"), f"强度应为 {'/'.join(strengths)} 之一")
        verified, strict = item.get("verified", True), item.get("strict", False)
        for key, value in (("verified", verified), ("strict", strict)):
            if not isinstance(value, bool):
                raise self.fail((*keys, key), "应为 true 或 false")
        cit = Citation(
            id=cid,
            instrument=self.text(item.get("instrument"), (*keys, "instrument")),
            strength=strength,
            article=self.text(item.get("article"), (*keys, "article"), optional=True),
            quote=self.text(item.get("quote"), (*keys, "quote"), optional=True),
            summary=self.text(item.get("summary"), (*keys, "summary"), optional=True),
            note=self.text(item.get("note"), (*keys, "note"), optional=True),
            verified=verified,
            valid_from=self.day(item.get("valid_from"), (*keys, "valid_from")),
            valid_until=self.day(item.get("valid_until"), (*keys, "valid_until")),
            strict=strict,
        )
        if not cit.verified and (cit.article or cit.quote or cit.summary):
            raise self.fail(keys, "未核实的条目只能列名称，不得写条号、引文或要点")
        if cit.quote and len(cit.quote) > MAX_QUOTE_CHARS:
            raise self.fail((*keys, "quote"), f"引文过长（超过{MAX_QUOTE_CHARS}字）")
        if cit.strict and not (cit.valid_from or cit.valid_until):
            raise self.fail(keys, "strict 条目必须给出 valid_from 或 valid_until")
        if cit.valid_from and cit.valid_until and cit.valid_from > cit.valid_until:
            raise self.fail(keys, "valid_from 晚于 valid_until")
        return cit

    def channel(self, chid: str, item: Any) -> Channel:
        keys = ("channels", chid)
        if chid in FORBIDDEN_CHANNELS:
            raise self.fail(keys, "12389 只受理对警务人员的投诉，不能作为催收投诉渠道")
        item = self.mapping(item, keys)
        phone = item.get("phone")
        if phone is not None and (not isinstance(phone, str) or phone in FORBIDDEN_CHANNELS):
            raise self.fail((*keys, "phone"), "应为号码文本（加引号），且不能是 12389")
        return Channel(
            id=chid,
            name=self.text(item.get("name"), (*keys, "name")),
            phone=phone,
            use=self.text(item.get("use"), (*keys, "use")),
        )

    def category(
        self, cat: str, item: Any, citations: dict[str, Citation], channels: dict[str, Channel]
    ) -> CategoryLaw:
        keys = ("categories", cat)
        item = self.mapping(item, keys)
        severity = self.text(item.get("severity"), (*keys, "severity"))
        if severity not in SEVERITIES:
            raise self.fail((*keys, "severity"), f"严重程度应为 {'/'.join(SEVERITIES)} 之一")
        basis = self.text_list(item.get("basis"), (*keys, "basis"))
        for i, cid in enumerate(basis):
            if cid not in citations:
                raise self.fail((*keys, "basis", str(i)), f"引用了不存在的条目 {cid}")
        chans = self.text_list(item.get("channels"), (*keys, "channels"))
        for i, chid in enumerate(chans):
            if chid not in channels:
                raise self.fail((*keys, "channels", str(i)), f"引用了不存在的投诉渠道 {chid}")
        # Versions of a law drop out by date; one date-independent item keeps the list non-empty.
        if all(citations[c].strict for c in basis):
            raise self.fail((*keys, "basis"), "至少需要一条不随通话日期变化的依据")
        return CategoryLaw(
            id=cat,
            severity=severity,
            basis=basis,
            channels=chans,
            point=self.text(item.get("point"), (*keys, "point")),
            advice=self.text_list(item.get("advice"), (*keys, "advice")),
        )


def _line_of(node: yaml.Node | None, keys: tuple[str, ...]) -> int | None:
    """1-based line of the YAML node at keys (the deepest one found)."""
    line = None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if str(k.value) == key), None)
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            nxt = node.value[int(key)]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _zh_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _as_date(call_date: date | datetime | None) -> date | None:
    if isinstance(call_date, datetime):
        return call_date.date()
    return call_date


def citation_dict(cit: Citation, call_date: date | None, data: LegalData) -> dict[str, Any]:
    """The JSON shape of one citation (keys always present), with a note about dates."""
    notes = [cit.note] if cit.note else []
    if not cit.verified:
        notes.append("条文未经核实，仅列名称")
    if cit.strict and call_date is None:
        if cit.valid_until:
            notes.append(f"通话日期不明：{_zh_date(cit.valid_until)}及以前的通话适用此条")
        else:
            notes.append(f"通话日期不明：{_zh_date(cit.valid_from)}起的通话适用此条")
    elif not cit.strict and cit.valid_from and call_date and call_date < cit.valid_from:
        notes.append(f"自{_zh_date(cit.valid_from)}起施行，晚于本次通话，仅供参考")
    return {
        "id": cit.id,
        "instrument": cit.instrument,
        "article": cit.article,
        "quote": cit.quote,
        "summary": cit.summary,
        "strength": cit.strength,
        "strength_zh": data.strengths[cit.strength],
        "note": "；".join(notes) or None,
    }


def _applies(cit: Citation, call_date: date | None) -> bool:
    if not cit.strict or call_date is None:
        return True  # unknown date: cite every version, each with its date note
    if cit.valid_from and call_date < cit.valid_from:
        return False
    return not (cit.valid_until and call_date > cit.valid_until)


def basis_for(
    category: str, call_date: date | datetime | None, data: LegalData | None = None
) -> list[dict[str, Any]]:
    """Citations for one category on the call's date (None: date unknown)."""
    data = data or load()
    day = _as_date(call_date)
    law = data.categories[category]
    return [
        citation_dict(data.citations[cid], day, data)
        for cid in law.basis
        if _applies(data.citations[cid], day)
    ]


def channels_for(categories: list[str], data: LegalData | None = None) -> list[dict[str, Any]]:
    """Complaint channels for these categories, most serious category first, no repeats."""
    data = data or load()
    order = sorted(
        dict.fromkeys(categories),
        key=lambda c: -SEVERITIES.index(data.categories[c].severity),
    )
    seen: dict[str, Channel] = {}
    for cat in order:
        for chid in data.categories[cat].channels:
            seen.setdefault(chid, data.channels[chid])
    return [ch.to_dict() for ch in seen.values()]


def lender_right(data: LegalData | None = None) -> dict[str, Any]:
    """民法典 第675条: the lender may ask for repayment. Every report says so."""
    data = data or load()
    return citation_dict(data.citations[data.lender_right], None, data)


def annotate(report: CallReport, call_date: date | datetime | None) -> CallReport:
    """Fill every finding's legal_basis and report.extra["legal"]; returns the same report."""
    data = load()
    day = _as_date(call_date)
    for finding in report.findings:
        finding.legal_basis = basis_for(finding.category, day, data)
    cats = [f.category for f in report.findings]
    report.extra["legal"] = {
        "call_date": day.isoformat() if day else None,
        "lender_right": lender_right(data),
        "categories": {
            cat: {
                "name_zh": CATEGORIES[cat],
                "severity": data.categories[cat].severity,
                "point": data.categories[cat].point,
            }
            for cat in dict.fromkeys(cats)
        },
        "channels": channels_for(cats, data),
    }
    return report
