"""Scoring functions of `make eval` (scripts/eval.py): findings against labelled call turns,
precision/recall/F1, and the character error rate of a transcript.

Kept apart from the script so the unit tests check the arithmetic on hand-built cases.
Nothing here loads a model.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .text import edit_distance, to_simplified
from .types import CATEGORIES, Finding

# A finding may start or end this many seconds outside the labelled turn and still count.
# Turn times are exact (the generator placed each synthesized turn); Whisper's word times
# drift by a few hundred ms and its VAD pads speech by 0.4 s. The pause between two turns of
# the eval calls is 0.30-0.79 s (median 0.55) and the shortest turn lasts 0.98 s, so the
# turn after next is at least 1.6 s away: one second absorbs the drift but cannot reach it. It
# can credit a finding lying in the adjacent turn, so scripts/eval.py also prints 0 to 2 s.
TOLERANCE = 1.0


# --------------------------------------------------------------------------- turns and findings


@dataclass(frozen=True)
class Turn:
    """One labelled turn of an evaluation call (eval/calls/labels.json)."""

    call: str
    index: int
    start: float
    end: float
    text: str
    labels: tuple[str, ...] = ()
    speaker: str = ""
    channel: int | None = None

    @classmethod
    def from_label(cls, call: str, d: dict) -> Turn:
        return cls(call, int(d["index"]), float(d["start"]), float(d["end"]), d["text"],
                   tuple(d.get("labels", ())), d.get("speaker", ""), d.get("channel"))


def overlaps(start: float, end: float, turn: Turn, tol: float = TOLERANCE) -> bool:
    """Whether [start, end] touches the turn widened by `tol` seconds on both sides."""
    return start <= turn.end + tol and end >= turn.start - tol


def same_channel(a: int | None, b: int | None) -> bool:
    """None (one mixed channel) matches anything; two stereo channels must be the same one."""
    return a is None or b is None or a == b


def _hits(f: Finding, turn: Turn, tol: float) -> bool:
    return same_channel(f.channel, turn.channel) and overlaps(f.start, f.end, turn, tol)


@dataclass
class CallMatch:
    """How one call's findings line up with its labelled turns."""

    call: str
    lawful: bool
    correct: list[Finding] = field(default_factory=list)  # overlap a turn labelled with it
    false_positives: list[Finding] = field(default_factory=list)
    recalled: list[tuple[Turn, str]] = field(default_factory=list)  # (turn, category)
    missed: list[tuple[Turn, str]] = field(default_factory=list)

    @property
    def findings(self) -> int:
        return len(self.correct) + len(self.false_positives)


def match_call(
    call: str, findings: Sequence[Finding], turns: Sequence[Turn], tol: float = TOLERANCE,
    lawful: bool | None = None,
) -> CallMatch:
    """A finding is correct when it overlaps (±tol) a turn labelled with its category; a
    labelled (turn, category) is recalled when some finding of that category overlaps it.
    Precision counts findings, recall counts labelled turns: one finding spanning two
    labelled turns recalls both but counts once for precision."""
    if lawful is None:
        lawful = not any(t.labels for t in turns)
    m = CallMatch(call, lawful)
    for f in findings:
        if any(f.category in t.labels and _hits(f, t, tol) for t in turns):
            m.correct.append(f)
        else:
            m.false_positives.append(f)
    for t in turns:
        for c in t.labels:
            if any(f.category == c and _hits(f, t, tol) for f in findings):
                m.recalled.append((t, c))
            else:
                m.missed.append((t, c))
    return m


# --------------------------------------------------------------------------- metrics


@dataclass
class Counts:
    """Finding-side (correct, false_positive) and label-side (recalled, missed) counts."""

    correct: int = 0
    false_positive: int = 0
    recalled: int = 0
    missed: int = 0

    def add(self, other: Counts) -> None:
        self.correct += other.correct
        self.false_positive += other.false_positive
        self.recalled += other.recalled
        self.missed += other.missed

    @property
    def findings(self) -> int:
        return self.correct + self.false_positive

    @property
    def labels(self) -> int:
        return self.recalled + self.missed

    def metrics(self) -> dict:
        return {**prf(self.correct, self.findings, self.recalled, self.labels),
                "findings": self.findings, "labels": self.labels,
                "false_positives": self.false_positive, "missed": self.missed}


def prf(correct: int, predicted: int, recalled: int, relevant: int) -> dict:
    """Precision = correct / predicted, recall = recalled / relevant, F1 their harmonic mean.
    None where undefined (nothing predicted, nothing to find). F1 is None only when both are;
    when one side is undefined the other is 0 (nothing found / only false alarms), so F1 0."""
    p = correct / predicted if predicted else None
    r = recalled / relevant if relevant else None
    if p is None and r is None:
        f1 = None
    elif p and r:
        f1 = 2 * p * r / (p + r)
    else:
        f1 = 0.0
    return {"precision": p, "recall": r, "f1": f1}


def count_by_category(matches: Iterable[CallMatch]) -> dict[str, Counts]:
    """Counts per category id (all of CATEGORIES, in order) plus "overall" (micro)."""
    per = {c: Counts() for c in CATEGORIES}
    for m in matches:
        for f in m.correct:
            per[f.category].correct += 1
        for f in m.false_positives:
            per[f.category].false_positive += 1
        for _, c in m.recalled:
            per[c].recalled += 1
        for _, c in m.missed:
            per[c].missed += 1
    overall = Counts()
    for c in per.values():
        overall.add(c)
    per["overall"] = overall
    return per


# --------------------------------------------------------------------------- scam headline


def is_scam_call(call_id: str, lawful: bool) -> bool:
    """Call sets name their scams in the id ("v08_scam_fake_regulator"); a lawful call may
    only warn of one ("e03_lawful_scam_warning")."""
    return not lawful and "scam" in call_id.split("_")


@dataclass
class ScamHeadlines:
    """Which calls a report headlines as a likely scam (verdict.is_likely_scam), against the
    calls that are scams."""

    headlined: list[str] = field(default_factory=list)  # scam calls headlined
    missed: list[str] = field(default_factory=list)  # scam calls not headlined
    false_alarms: list[str] = field(default_factory=list)  # other calls headlined
    others: int = 0  # calls that are not scams
    lawful_headlined: list[str] = field(default_factory=list)  # lawful calls headlined
    lawful: int = 0  # lawful calls

    def add(self, call_id: str, lawful: bool, likely_scam: bool) -> None:
        if lawful:
            self.lawful += 1
            if likely_scam:
                self.lawful_headlined.append(call_id)
        if is_scam_call(call_id, lawful):
            (self.headlined if likely_scam else self.missed).append(call_id)
            return
        self.others += 1
        if likely_scam:
            self.false_alarms.append(call_id)

    @property
    def scam_calls(self) -> int:
        return len(self.headlined) + len(self.missed)

    def extend(self, other: ScamHeadlines) -> None:
        self.headlined += other.headlined
        self.missed += other.missed
        self.false_alarms += other.false_alarms
        self.others += other.others
        self.lawful_headlined += other.lawful_headlined
        self.lawful += other.lawful

    def to_dict(self) -> dict:
        return {"scam_calls": self.scam_calls,
                "scam_headlined": self.headlined, "scam_missed": self.missed,
                "other_calls": self.others, "other_headlined": self.false_alarms,
                "lawful_calls": self.lawful, "lawful_headlined": self.lawful_headlined}

    def line(self, of: str = "") -> str:
        """One Markdown line: scams headlined, other and lawful calls headlined (`of`: whose
        findings, e.g. " (fused)")."""
        missed = f" (not: {', '.join(self.missed)})" if self.missed else ""
        lawful = f" ({', '.join(self.lawful_headlined)})" if self.lawful_headlined else ""
        return (f"- headlined as a likely scam{of}: scam calls (the id says scam) "
                f"**{len(self.headlined)} of {self.scam_calls}**{missed}; other calls "
                f"{len(self.false_alarms)} of {self.others}, of them lawful "
                f"**{len(self.lawful_headlined)} of {self.lawful}**{lawful}")


# --------------------------------------------------------------------------- CER


def cer_chars(text: str) -> str:
    """What a character error rate compares: Simplified Chinese, letters and digits only
    (punctuation, symbols and spaces stripped), full-width forms folded (NFKC) and Latin
    letters case-folded, so "２０２５" and "2025" or "App" and "APP" do not count as errors."""
    simple = to_simplified(unicodedata.normalize("NFKC", text or "")).casefold()
    return "".join(ch for ch in simple if unicodedata.category(ch)[0] in "LN")


@dataclass
class CerTotal:
    """Corpus-level CER: all edits over all reference characters (not a mean of ratios)."""

    edits: int = 0
    ref_chars: int = 0
    utterances: int = 0

    def add(self, reference: str, hypothesis: str) -> int:
        ref, hyp = cer_chars(reference), cer_chars(hypothesis)
        d = edit_distance(ref, hyp)
        self.edits += d
        self.ref_chars += len(ref)
        self.utterances += 1
        return d

    @property
    def cer(self) -> float | None:
        return self.edits / self.ref_chars if self.ref_chars else None


def cer(reference: str, hypothesis: str) -> float | None:
    """CER of one pair: edit distance / reference length after cer_chars on both sides."""
    t = CerTotal()
    t.add(reference, hypothesis)
    return t.cer
