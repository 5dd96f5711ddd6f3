"""The records every stage passes along. Read this first.

Stages: audio (samples) -> asr (Segment) -> detection (Finding) -> CallReport -> writers.
JSON field names are a public contract: later versions may add fields, never rename them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = "1.0"

# Category ids are fixed (reports, JSON and rule files use them); the Chinese name is what
# users read.
CATEGORIES: dict[str, str] = {
    "threat": "威胁恐吓",
    "exposure": "曝光羞辱",
    "third_party": "骚扰第三方",
    "false_legal": "虚假法律后果",
    "impersonation": "冒充公检法/律师",
    "sensitive_info": "索要敏感信息",
    "private_payment": "转入个人账户",
    "insult": "辱骂侮辱",
    "harassment": "骚扰意图",
}

# Ordered from least to most serious; rule files pick one per rule.
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
SEVERITY_ZH: dict[str, str] = {"low": "轻微", "medium": "中等", "high": "严重", "critical": "非常严重"}

# Risk levels of a whole call, from its 0-100 score.
RISK_LEVELS: tuple[str, ...] = ("none", "low", "medium", "high")
RISK_LEVEL_ZH: dict[str, str] = {"none": "无", "low": "低", "medium": "中", "high": "高"}


@dataclass(frozen=True)
class Segment:
    """One stretch of transcribed speech.

    channel: None when the recording was transcribed as one mixed channel; 0 (left) or
    1 (right) when a stereo recording kept one party per channel.
    """

    index: int
    start: float
    end: float
    text: str
    channel: int | None = None
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": round(self.start, 2),
            "end": round(self.end, 2),
            "text": self.text,
            "channel": self.channel,
            "confidence": {
                "avg_logprob": round(self.avg_logprob, 4),
                "no_speech_prob": round(self.no_speech_prob, 4),
            },
        }


@dataclass
class Finding:
    """One place in a call where the caller broke a rule.

    evidence: the words that matched, as said (after normalization).
    source: the rule ids (and model names) that produced it, e.g. ["lexicon:threat.door"].
    explanation: Chinese text for the user naming what fired and why.
    """

    category: str
    start: float
    end: float
    score: float
    severity: str
    evidence: list[str]
    source: list[str]
    explanation: str
    segment_indices: list[int] = field(default_factory=list)
    channel: int | None = None
    legal_basis: list[dict[str, Any]] = field(default_factory=list)

    @property
    def category_zh(self) -> str:
        return CATEGORIES[self.category]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = round(self.start, 2)
        d["end"] = round(self.end, 2)
        d["score"] = round(self.score, 3)
        d["category_zh"] = self.category_zh
        return d


@dataclass(frozen=True)
class AsrInfo:
    model: str
    model_sha256: str | None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Risk:
    score: int  # 0-100
    level: str  # one of RISK_LEVELS


@dataclass
class CallReport:
    file: str
    sha256: str
    duration: float
    channels: int
    asr: AsrInfo
    segments: list[Segment]
    findings: list[Finding]
    risk: Risk
    schema_version: str = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # fields added by later stages

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema_version": self.schema_version,
            "file": self.file,
            "sha256": self.sha256,
            "duration": round(self.duration, 2),
            "channels": self.channels,
            "asr": asdict(self.asr),
            "segments": [s.to_dict() for s in self.segments],
            "findings": [f.to_dict() for f in self.findings],
            "risk": asdict(self.risk),
        }
        d.update(self.extra)
        return d
