"""From segments to findings: score candidates, fuse them, explain them in Chinese.

detect() runs in three steps with a seam between them, so a trained classifier can join
later without touching the rules:

1. prepare: normalize each segment once, mark hallucinations, ASR weakness and anti-fraud
   warnings Whisper cut across two segments;
2. candidates: every scorer (today only LexiconScorer) turns prepared segments into
   Candidates - one per category per segment, with a score in [0, 1] and the reasons;
   a classifier scorer would emit per-category probabilities per segment window the same way;
3. fuse: candidates of one category on one channel that overlap or lie within MERGE_GAP
   seconds become one Finding; scores from different sources combine by noisy-OR; findings
   under the threshold are dropped.

Between 2 and 3, candidates on segments that read as the other party speaking (the
classifier's speaker-role head: a debtor objecting, quoting or retelling what another caller
said) are weighed down (other_party_weight): a report is about what the collector said. Then
the call as a whole may add candidates: in a call to someone other than the debtor
(third_party_cues), pressure on that person is also third_party (third_party_pressure).

Lexicon scoring of one hit: the rule's score (x FUZZY_FACTOR when heard as a homophone),
+CONTEXT_BOOST per context word in the same segment and +NEIGHBOUR_BOOST per context word in
a neighbouring segment (together at most +MAX_BOOST), -COUNTER_PENALTY per counter-context
word nearby (at most -MAX_PENALTY), times the ASR weight of the segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .classifier import OTHER_PARTY_THRESHOLD
from .lexicon import FUZZY_FACTOR, Hit, Lexicon, TextMatch, default_lexicon
from .text import is_hallucination, normalize
from .types import CATEGORIES, RISK_LEVEL_ZH, SEVERITIES, SEVERITY_ZH, Finding, Risk, Segment

CONTEXT_BOOST = 0.15
NEIGHBOUR_BOOST = 0.1
MAX_BOOST = 0.3
COUNTER_PENALTY = 0.2
MAX_PENALTY = 0.4
# Neighbouring segments (for context words) must start within this many seconds.
NEIGHBOUR_SECONDS = 10.0
# Same-category candidates closer than this merge into one finding.
MERGE_GAP = 2.0
# An anti-fraud warning may run across two segments of one channel at most this far apart
# (the pause Whisper cut at), as the classifier joins neighbours (score_segments' max_gap).
WARNING_JOIN_GAP = 2.0

# ASR weakness, after faster-whisper's own defaults (no_speech_threshold 0.6,
# log_prob_threshold -1.0): above/below them a segment's words are less certain.
NO_SPEECH_FROM = 0.5
LOGPROB_FROM = -1.0
MIN_ASR_WEIGHT = 0.4


def asr_weight(segment: Segment) -> float:
    """1.0 for a confident segment, down to MIN_ASR_WEIGHT for a likely-silent or garbled one.

    no_speech_prob above 0.5 loses 1.2 per unit (0.8 -> 0.64); avg_logprob below -1.0 loses
    0.6 per unit (-1.5 -> 0.7); the two multiply.
    """
    w_ns = 1.0
    if segment.no_speech_prob > NO_SPEECH_FROM:
        w_ns = max(MIN_ASR_WEIGHT, 1.0 - (segment.no_speech_prob - NO_SPEECH_FROM) * 1.2)
    w_lp = 1.0
    if segment.avg_logprob < LOGPROB_FROM:
        w_lp = max(MIN_ASR_WEIGHT, 1.0 + (segment.avg_logprob - LOGPROB_FROM) * 0.6)
    return max(MIN_ASR_WEIGHT, w_ns * w_lp)


# From OTHER_PARTY_THRESHOLD the role head's probability weighs a candidate down, linearly to
# OTHER_PARTY_FLOOR at certainty. Soft, not a veto: the head reads words only, and a veiled
# threat ("别说我没提醒过你") can read like the debtor; strong evidence still makes a finding.
OTHER_PARTY_FLOOR = 0.5


def other_party_weight(p: float) -> float:
    """1.0 below OTHER_PARTY_THRESHOLD, OTHER_PARTY_FLOOR at p = 1 (0.9 -> 0.6)."""
    if p < OTHER_PARTY_THRESHOLD:
        return 1.0
    span = (p - OTHER_PARTY_THRESHOLD) / (1.0 - OTHER_PARTY_THRESHOLD)
    return 1.0 - (1.0 - OTHER_PARTY_FLOOR) * min(1.0, span)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Prepared:
    """One segment as every scorer sees it."""

    position: int  # index into the segment list
    segment: Segment
    text: str  # normalized
    hallucination: bool
    weight: float  # asr_weight
    # What the classifier reads: `text` less the debtor's objections and quotes
    # (Lexicon.without_objections); None when there are none (it reads `text`).
    model_text: str | None = None
    # What it reads for the lexicon's warned_categories: that, less anti-fraud warning
    # sentences (Lexicon.without_warnings); None when there are none.
    warned_text: str | None = None
    # Probability that the other party (debtor, relative) speaks here; 0 without a role model.
    other_party: float = 0.0
    # Spans of `text` that belong to an anti-fraud warning the transcriber cut across this
    # segment and a neighbour (Lexicon.warning_across).
    warned_spans: tuple[tuple[int, int], ...] = ()

    @property
    def said_by_other_party(self) -> bool:
        return self.other_party >= OTHER_PARTY_THRESHOLD


@dataclass
class Candidate:
    """A scorer's claim that one segment (or window) shows one category."""

    category: str
    positions: list[int]  # into the prepared list
    start: float
    end: float
    channel: int | None
    score: float
    severity: str
    evidence: list[str]
    source: list[str]  # "lexicon:threat.violence", later "model:<name>"
    reasons: list[str]  # Chinese, one per contributing rule or model
    parts: dict[str, float] = field(default_factory=dict)  # source -> score, for fusion


class Scorer(Protocol):
    def candidates(self, segments: Sequence[Prepared]) -> list[Candidate]: ...


def prepare(segments: Iterable[Segment]) -> list[Prepared]:
    out = []
    for pos, seg in enumerate(segments):
        out.append(Prepared(pos, seg, normalize(seg.text), is_hallucination(seg.text),
                            asr_weight(seg)))
    return out


# --------------------------------------------------------------------------- lexicon scorer


@dataclass
class ScoredHit:
    hit: Hit
    score: float
    reasons: list[str]


class LexiconScorer:
    """Rule hits -> candidates, with context from the segment and its neighbours."""

    def __init__(self, lexicon: Lexicon):
        self.lexicon = lexicon

    def candidates(self, segments: Sequence[Prepared]) -> list[Candidate]:
        matches: dict[int, TextMatch] = {}
        for p in segments:
            if not p.hallucination and p.text:
                matches[p.position] = self.lexicon.analyze(p.text, normalized=True)
        out: list[Candidate] = []
        warned = self.lexicon.common.warned_categories
        for p in segments:
            m = matches.get(p.position)
            if m is None or not m.hits:
                continue
            if p.warned_spans:  # part of a warning cut across segments: not a request
                m = replace(m, hits=tuple(h for h in m.hits if h.category not in warned
                                          or not _overlaps(h.start, h.end, p.warned_spans)))
                if not m.hits:
                    continue
            neighbours = [
                matches[q.position].repaired
                for q in _neighbours(segments, p)
                if q.position in matches
            ]
            scored = [self.score_hit(h, m, neighbours, p.weight) for h in m.hits]
            by_cat: dict[str, list[ScoredHit]] = {}
            for s in scored:
                by_cat.setdefault(s.hit.category, []).append(s)
            for cat, items in by_cat.items():
                out.append(self._candidate(cat, p, items))
        return out

    def score_hit(
        self, hit: Hit, match: TextMatch, neighbours: list[str], weight: float
    ) -> ScoredHit:
        rule = self.lexicon.rules_by_id[hit.rule_id]
        score = hit.score
        reasons = [
            f"规则 {rule.full_id}（{rule.description}，{SEVERITY_ZH[rule.severity]}）"
            f"命中“{hit.text}”，基础分 {rule.score:.2f}"
        ]
        if hit.fuzzy:
            reasons.append(f"同音容错：听到“{hit.text}”，按“{hit.repaired}”匹配 ×{FUZZY_FACTOR}")
        span = (hit.start, hit.end)
        here = Lexicon.context_found(rule.context, match.repaired, span)
        near = [
            w for w in Lexicon.context_found(rule.context, "\n".join(neighbours)) if w not in here
        ]
        boost = min(MAX_BOOST, CONTEXT_BOOST * len(here) + NEIGHBOUR_BOOST * len(near))
        if here or near:
            words = [f"“{w}”（本句）" for w in here] + [f"“{w}”（相邻语句）" for w in near]
            reasons.append(f"上下文词{'、'.join(words)} +{boost:.2f}")
        # Counter words count even inside the hit ("安排上门服务" is a service visit).
        counter_here = Lexicon.context_found(rule.counter_context, match.repaired)
        counter_near = Lexicon.context_found(rule.counter_context, "\n".join(neighbours))
        counter = list(dict.fromkeys(counter_here + counter_near))
        penalty = min(MAX_PENALTY, COUNTER_PENALTY * len(counter))
        if counter:
            reasons.append(f"反向上下文词{'、'.join(f'“{w}”' for w in counter)} -{penalty:.2f}")
        score = score + boost - penalty
        if weight < 1.0:
            reasons.append(f"语音识别置信度低 ×{weight:.2f}")
            score *= weight
        score = min(1.0, max(0.0, score))
        return ScoredHit(hit, score, reasons)

    def _candidate(self, category: str, p: Prepared, items: list[ScoredHit]) -> Candidate:
        # Overlapping hits of one category say the same thing once: keep the best of each
        # overlapping cluster, then combine the clusters.
        items = sorted(items, key=lambda s: s.score, reverse=True)
        kept: list[ScoredHit] = []
        for s in items:
            if not any(k.hit.start < s.hit.end and s.hit.start < k.hit.end for k in kept):
                kept.append(s)
        parts: dict[str, float] = {}
        for s in kept:
            key = f"lexicon:{s.hit.rule_id}"
            parts[key] = max(parts.get(key, 0.0), s.score)
        kept.sort(key=lambda s: s.hit.start)
        return Candidate(
            category=category,
            positions=[p.position],
            start=p.segment.start,
            end=p.segment.end,
            channel=p.segment.channel,
            score=_noisy_or(parts.values()),
            severity=_max_severity(s.hit.severity for s in kept),
            evidence=list(dict.fromkeys(s.hit.text for s in kept)),
            source=list(parts),
            reasons=["，".join(s.reasons) + f"，得分 {s.score:.2f}" for s in kept],
            parts=parts,
        )


def _neighbours(segments: Sequence[Prepared], p: Prepared) -> list[Prepared]:
    out = []
    for q in (p.position - 1, p.position + 1):
        if 0 <= q < len(segments):
            other = segments[q]
            if abs(other.segment.start - p.segment.start) <= NEIGHBOUR_SECONDS:
                out.append(other)
    return out


# --------------------------------------------------------------------------- classifier scorer

# A probability at the category's threshold maps to CLASSIFIER_FLOOR, p = 1 to CLASSIFIER_TOP.
# With the finding threshold at 0.5 the model alone flags only when clearly above its own
# threshold; a weak or homophone rule hit next to it is enough (noisy-OR).
CLASSIFIER_FLOOR = 0.3
CLASSIFIER_TOP = 0.6
# A model-only candidate of a category with model_anchors (_common.yaml) whose segment names
# none of them may raise a rule's score, not make a finding by itself.
MODEL_SUPPORT_CAP = 0.45


class ClassifierScorer:
    """Per-category probabilities of each segment (alone or with a neighbour) -> candidates."""

    def __init__(self, classifier: Any, severities: dict[str, str],
                 lexicon: Lexicon | None = None):
        self.classifier = classifier
        self.severities = severities  # category -> severity of a model-only finding
        common = lexicon.common if lexicon is not None else None
        # Categories read without anti-fraud warning sentences (Prepared.warned_text).
        self.warned_categories = common.warned_categories if common else frozenset()
        self.anchors = common.model_anchors if common else {}
        self.anchor_exceptions = common.model_anchor_exceptions if common else {}
        self.vetoes = common.model_vetoes if common else {}
        self.lexicon = lexicon
        self.name = f"model:{classifier.name}"

    def score(self, p: float, threshold: float) -> float:
        return CLASSIFIER_FLOOR + (CLASSIFIER_TOP - CLASSIFIER_FLOOR) * (p - threshold) / max(
            1e-6, 1.0 - threshold
        )

    def anchored(self, category: str, text: str) -> bool:
        """The text (as heard, or with garbled domain words repaired) names an anchor."""
        readings = (text, self.lexicon.repaired(text)) if self.lexicon is not None else (text,)
        for x in self.anchor_exceptions.get(category, ()):
            readings = tuple(r.replace(x, "") for r in readings)
        return any(w in r for w in self.anchors[category] for r in readings)

    def vetoed(self, category: str, p: Prepared, segments: Sequence[Prepared]) -> bool:
        """The category's model_vetoes match the segment with its neighbours, as heard or
        with garbled domain words repaired (稍各话 -> 捎个话)."""
        veto = self.vetoes.get(category)
        if veto is None:
            return False
        text = "\n".join(q.text for q in (p, *_neighbours(segments, p)))
        readings = (text, self.lexicon.repaired(text)) if self.lexicon is not None else (text,)
        return any(veto.matches(r) for r in readings)

    def _score(self, segments: Sequence[Prepared], texts: list[str]):
        return self.classifier.score_segments(
            [replace(p.segment, text=t) for p, t in zip(segments, texts, strict=True)],
            skip=[p.hallucination or not t for p, t in zip(segments, texts, strict=True)],
        )

    def candidates(self, segments: Sequence[Prepared]) -> list[Candidate]:
        if not segments:
            return []
        clf = self.classifier
        texts = [p.text if p.model_text is None else p.model_text for p in segments]
        scores = self._score(segments, texts)
        warned_texts = [t if p.warned_text is None else p.warned_text
                        for p, t in zip(segments, texts, strict=True)]
        warned = scores
        if self.warned_categories and warned_texts != texts:
            warned = self._score(segments, warned_texts)
        out: list[Candidate] = []
        for p in segments:
            for k, cat in enumerate(clf.categories):
                sc = warned if cat in self.warned_categories else scores
                prob, thr = float(sc.proba[p.position, k]), float(clf.thresholds[k])
                if prob < thr or self.vetoed(cat, p, segments):
                    continue
                score = self.score(prob, thr) * p.weight
                if cat in self.anchors and not self.anchored(cat, p.text):
                    score = min(score, MODEL_SUPPORT_CAP)
                read = (warned_texts if cat in self.warned_categories else texts)[p.position]
                words = [f.split(":", 1)[1].removeprefix("~")  # "~平台": after a negator
                         for f, _ in clf.top_features(read, cat, 3)]
                words = [w for w in words if len(w) > 1] or words
                joined = {-1: "（连同上一句）", 1: "（连同下一句）"}.get(int(sc.source[p.position, k]), "")
                out.append(
                    Candidate(
                        category=cat,
                        positions=[p.position],
                        start=p.segment.start,
                        end=p.segment.end,
                        channel=p.segment.channel,
                        score=score,
                        severity=self.severities.get(cat, "medium"),
                        evidence=[],
                        source=[self.name],
                        reasons=[
                            f"分类模型判断{joined}属于“{CATEGORIES[cat]}”的概率 {prob:.2f}"
                            f"（模型阈值 {thr:.2f}），主要依据“{'、'.join(words)}”，得分 {score:.2f}"
                        ],
                        parts={self.name: score},
                    )
                )
        return out


# --------------------------------------------------------------------------- fusion


def fuse(candidates: list[Candidate], threshold: float) -> list[Finding]:
    """Merge same-category candidates that are close in time, keep those over threshold."""
    groups: list[list[Candidate]] = []
    ordered = sorted(candidates, key=lambda c: (c.category, _channel_key(c.channel), c.start))
    for c in ordered:
        last = groups[-1] if groups else None
        if (
            last
            and last[0].category == c.category
            and last[0].channel == c.channel
            and c.start - max(x.end for x in last) <= MERGE_GAP
        ):
            last.append(c)
        else:
            groups.append([c])
    findings = []
    for g in groups:
        parts: dict[str, float] = {}
        for c in g:
            for src, s in c.parts.items():
                parts[src] = max(parts.get(src, 0.0), s)
        score = _noisy_or(parts.values())
        if score < threshold:
            continue
        severity = _max_severity(c.severity for c in g)
        evidence = list(dict.fromkeys(e for c in g for e in c.evidence))
        source = list(dict.fromkeys(s for c in g for s in c.source))
        reasons = [r for c in g for r in c.reasons]
        positions = sorted({i for c in g for i in c.positions})
        explanation = (
            f"判定为“{CATEGORIES[g[0].category]}”（{SEVERITY_ZH[severity]}）：" + "；".join(reasons)
            + f"。综合得分 {score:.2f}（阈值 {threshold:.2f}）。"
        )
        findings.append(
            Finding(
                category=g[0].category,
                start=min(c.start for c in g),
                end=max(c.end for c in g),
                score=score,
                severity=severity,
                evidence=evidence,
                source=source,
                explanation=explanation,
                segment_indices=positions,
                channel=g[0].channel,
            )
        )
    return sorted(findings, key=lambda f: (f.start, list(CATEGORIES).index(f.category)))


def _channel_key(channel: int | None) -> int:
    return -1 if channel is None else channel


def _noisy_or(scores: Iterable[float]) -> float:
    miss = 1.0
    for s in scores:
        miss *= 1.0 - min(1.0, max(0.0, s))
    return 1.0 - miss


def _max_severity(severities: Iterable[str]) -> str:
    return max(severities, key=SEVERITIES.index)


# --------------------------------------------------------------------------- detector

# Segments with a third_party_cues match (any speaker) that make a call one to a third party;
# one alone is too little ("你是他什么人" can be asked of a debtor's new number).
THIRD_PARTY_MIN_CUES = 2
THIRD_PARTY_CALL = "context:third_party_call"


class RuleDetector:
    """The Detector of analyzer.pipeline: `.detect(segments) -> list[Finding]`.

    `scorers` defaults to the lexicon alone; pass extra scorers (e.g. a classifier emitting
    Candidates with source "model:<name>") to fuse them with the rules.
    """

    def __init__(
        self,
        lexicon: Lexicon | None = None,
        threshold: float = 0.5,
        extra_scorers: Sequence[Scorer] = (),
    ):
        self.lexicon = lexicon if lexicon is not None else default_lexicon()
        self.threshold = threshold
        self.scorers: list[Scorer] = [LexiconScorer(self.lexicon), *extra_scorers]
        # Who is speaking: the classifier's role head, when the classifier has one.
        self.role = next((s.classifier for s in extra_scorers if isinstance(s, ClassifierScorer)
                          and hasattr(s.classifier, "other_party_proba")), None)
        # Recorded in every report's provenance (and the resume key of batch).
        self.classifier_sha256: str | None = next(
            (s.classifier.meta["sha256"]["npz"] for s in extra_scorers if isinstance(s, ClassifierScorer)),
            None,
        )

    def prepare(self, segments: Sequence[Segment]) -> list[Prepared]:
        """prepare(), plus the texts the classifier may read (without the debtor's objections;
        for warned categories also without anti-fraud warnings)."""
        out = []
        for p in self._cross_warnings(prepare(segments)):
            kept = self.lexicon.without_objections(p.text) if p.text else p.text
            # Warned categories read the segment less a warning cut across segments, too.
            base = (self.lexicon.without_objections(_without_spans(p.text, p.warned_spans))
                    if p.warned_spans else kept)
            unwarned = self.lexicon.without_warnings(base) if base else base
            out.append(replace(p, model_text=None if kept == p.text else kept,
                               warned_text=None if unwarned == kept else unwarned))
        if self.role is not None and out:
            # The whole segment, objections included: they are what marks the debtor.
            probs = self.role.other_party_proba([p.text for p in out])
            out = [p if p.hallucination or not p.text else replace(p, other_party=float(q))
                   for p, q in zip(out, probs, strict=True)]
        return out

    def _cross_warnings(self, prepared: list[Prepared]) -> list[Prepared]:
        """Mark anti-fraud warnings that Whisper cut across two neighbouring segments of one
        channel (at most WARNING_JOIN_GAP s apart): "要是有人让你念验证码，或者开屏幕共享，" and
        "那都是骗子。" are one warning, not a request and a remark."""
        spans: dict[int, list[tuple[int, int]]] = {}
        by_channel: dict[int, list[Prepared]] = {}
        for p in prepared:
            if p.text and not p.hallucination:
                by_channel.setdefault(_channel_key(p.segment.channel), []).append(p)
        for seq in by_channel.values():
            for a, b in zip(seq, seq[1:], strict=False):
                if b.segment.start - a.segment.end > WARNING_JOIN_GAP:
                    continue
                w = self.lexicon.warning_across(a.text, b.text)
                if w is None:
                    continue
                spans.setdefault(a.position, []).append((w.earlier_from, len(a.text)))
                spans.setdefault(b.position, []).append((0, w.later_to))
        return [replace(p, warned_spans=tuple(spans[p.position])) if p.position in spans else p
                for p in prepared]

    def detect(self, segments: Sequence[Segment], whole_call: bool = True) -> list[Finding]:
        """Findings of one call's segments. whole_call=False for a sentence or an excerpt
        read alone: what only a whole call can show (corroborated) is not applied."""
        return self.detect_call(segments, whole_call)[0]

    def detect_call(self, segments: Sequence[Segment], whole_call: bool = True
                    ) -> tuple[list[Finding], list[Finding]]:
        """The findings, and those set aside as unverifiable claims nothing corroborates
        (a report mentions them as claims to check, not as violations)."""
        return self.detect_prepared(self.prepare(segments), whole_call)

    def detect_prepared(self, prepared: Sequence[Prepared], whole_call: bool = True
                        ) -> tuple[list[Finding], list[Finding]]:
        """detect_call() of segments prepare() has read."""
        found = fuse(self.candidates(prepared), self.threshold)
        findings, aside = self.corroborated(found, prepared) if whole_call else (found, [])
        # Segment.index is what reports show; positions were list offsets.
        for f in found:
            f.segment_indices = [prepared[i].segment.index for i in f.segment_indices]
        return findings, aside

    def corroborated(self, findings: list[Finding], prepared: Sequence[Prepared]
                     ) -> tuple[list[Finding], list[Finding]]:
        """(kept, set aside): a call whose findings are all unverifiable claims (a lawyer
        naming themselves: _common.yaml unverifiable_claims) keeps none of them, since a claim
        that is lawful when true does not make a call a violation alone; with any other
        finding every one stands. segment_indices are still positions in `prepared`."""
        if all(self.unverifiable(f.category, "".join(prepared[i].text for i in f.segment_indices))
               for f in findings):
            return [], findings
        return findings, []

    def unverifiable(self, category: str, text: str) -> bool:
        """A finding of `category` in `text` is only an unverifiable claim."""
        claim = self.lexicon.common.unverifiable_claims.get(category)
        return claim is not None and claim.matches(text)

    def candidates(self, prepared: Sequence[Prepared]) -> list[Candidate]:
        """Every scorer's candidates, weighed by who speaks, and what the call as a whole
        adds to them."""
        return self.with_context(prepared, [c for per_scorer in self.scored(prepared)
                                            for c in per_scorer])

    def scored(self, prepared: Sequence[Prepared]) -> list[list[Candidate]]:
        """Each scorer's candidates, weighed by who speaks (one list per scorer)."""
        return [[_weigh_speaker(c, prepared) for c in scorer.candidates(prepared)]
                for scorer in self.scorers]

    def with_context(self, prepared: Sequence[Prepared],
                     candidates: list[Candidate]) -> list[Candidate]:
        """The candidates and what the call as a whole adds to them."""
        return candidates + self.third_party_pressure(prepared, candidates)

    def third_party_pressure(self, prepared: Sequence[Prepared],
                             candidates: Sequence[Candidate]) -> list[Candidate]:
        """In a call to someone other than the debtor (THIRD_PARTY_MIN_CUES segments with a
        third_party_cues match), each candidate of a third_party_pressure category, copied as
        third_party: the pressure falls on that person."""
        pressure = [c for c in candidates
                    if c.category in self.lexicon.common.third_party_pressure]
        if not pressure:  # nothing to copy: the call need not be read for cues
            return []
        cues = [cue for p in prepared if not p.hallucination and p.text
                and (cue := self.lexicon.third_party_cue(p.text))]
        if len(cues) < THIRD_PARTY_MIN_CUES:
            return []
        shown = "、".join(f"“{cue}”" for cue in cues[:3])
        reason = (f"这通电话像是打给债务人以外的人（{shown}），"
                  "对接电话的人施压也属于“骚扰第三方”")
        return [replace(c, category="third_party", source=[*c.source, THIRD_PARTY_CALL],
                        reasons=[*c.reasons, reason]) for c in pressure]


def _overlaps(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(start < b and a < end for a, b in spans)


def _without_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    keep = [True] * len(text)
    for a, b in spans:
        keep[a:b] = [False] * (b - a)
    return "".join(ch for ch, k in zip(text, keep, strict=True) if k)


def _weigh_speaker(c: Candidate, prepared: Sequence[Prepared]) -> Candidate:
    """The candidate weighed by who speaks in its least debtor-like segment."""
    p = min(prepared[i].other_party for i in c.positions)
    w = other_party_weight(p)
    if w >= 1.0:
        return c
    return replace(
        c, score=c.score * w, parts={k: v * w for k, v in c.parts.items()},
        reasons=[*c.reasons, f"像是被催收的一方在说（概率 {p:.2f}）×{w:.2f}"],
    )


def build_detector(
    lexicon: Lexicon | None = None,
    threshold: float = 0.5,
    extra_scorers: Sequence[Scorer] = (),
) -> RuleDetector:
    """The detector the pipeline uses: today the rules alone; a classifier scorer joins here."""
    return RuleDetector(lexicon, threshold, extra_scorers)


# --------------------------------------------------------------------------- call risk

# How much one finding of each severity, at full confidence, moves the call's risk.
SEVERITY_WEIGHT = {"low": 0.15, "medium": 0.3, "high": 0.5, "critical": 0.7}
# A call with a high or critical finding is at least "medium" or "high" risk.
SEVERITY_FLOOR = {"low": 1, "medium": 1, "high": 30, "critical": 60}
LEVEL_FROM = (("high", 60), ("medium", 30), ("low", 1))


def risk_of(findings: Sequence[Finding]) -> Risk:
    """0-100 call risk: 100 x (1 - prod(1 - w(severity) x score)), floored by the worst severity.

    Noisy-OR of the findings, so each added finding can only raise the risk and many small
    ones add up (two medium insults at 0.6 -> 33, "medium"); the floor keeps one critical
    finding (a verification-code request) at "high" whatever its score. Levels: none (no
    findings), low 1-29, medium 30-59, high 60-100.
    """
    if not findings:
        return Risk(0, "none")
    miss = 1.0
    for f in findings:
        miss *= 1.0 - SEVERITY_WEIGHT[f.severity] * min(1.0, max(0.0, f.score))
    score = round(100 * (1.0 - miss))
    floor = max(SEVERITY_FLOOR[f.severity] for f in findings)
    score = min(100, max(score, floor))
    level = next(name for name, low in LEVEL_FROM if score >= low)
    return Risk(score, level)


# --------------------------------------------------------------------------- explain


@dataclass
class Explanation:
    """What `callaudit explain "文本"` shows: every hit (also suppressed ones) and the result."""

    text: str
    normalized: str
    repaired: str
    hallucination: bool
    corrections: list[dict[str, Any]]
    hits: list[dict[str, Any]]
    findings: list[Finding]
    risk: Risk
    threshold: float
    other_party: float | None = None  # the role head's probability; None without one
    # Categories found only in an unverifiable claim (RuleDetector.corroborated).
    unverifiable: list[str] = field(default_factory=list)
    # Categories the classifier is not asked about here (ClassifierScorer.vetoed), with the
    # veto's note (what the words are taken for).
    vetoed: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "normalized": self.normalized,
            "repaired": self.repaired,
            "hallucination": self.hallucination,
            "corrections": self.corrections,
            "hits": self.hits,
            "findings": [f.to_dict() for f in self.findings],
            "risk": {"score": self.risk.score, "level": self.risk.level},
            "threshold": self.threshold,
            "other_party": self.other_party,
            "unverifiable": self.unverifiable,
            "vetoed": list(self.vetoed),
        }

    def render(self) -> str:
        lines = [f"原文：{self.text}", f"规范化：{self.normalized}"]
        if self.hallucination:
            lines.append("该文本是语音识别的常见幻觉（字幕署名、频道广告或重复循环），不做检测。")
            return "\n".join(lines)
        for c in self.corrections:
            lines.append(f"同音容错：“{c['heard']}”按“{c['word']}”理解（拼音差 {c['distance']}）")
        if self.other_party is not None:
            if self.other_party >= OTHER_PARTY_THRESHOLD:
                w = other_party_weight(self.other_party)
                lines.append(f"说话人：像是被催收的一方在说（概率 {self.other_party:.2f}，"
                             f"从 {OTHER_PARTY_THRESHOLD:.2f} 起降权），命中的得分 ×{w:.2f}。")
            else:
                lines.append(f"说话人：按催收方的话判断（被催收一方在说的概率 {self.other_party:.2f}）。")
        if not self.hits:
            lines.append("未命中任何规则。")
        for h in self.hits:
            state = f"不计入（{h['suppressed']}）" if h["suppressed"] else "计入"
            fuzzy = f"，同音“{h['repaired']}”" if h["fuzzy"] else ""
            lines.append(
                f"命中 {h['rule']}：“{h['text']}”{fuzzy}，规则分 {h['score']:.2f}，{state}"
            )
        if self.findings:
            lines.append("结论：")
            for f in self.findings:
                lines.append(f"  [{f.category_zh}] {f.explanation}")
        else:
            lines.append(f"结论：没有达到阈值 {self.threshold:.2f} 的违规。")
        for cat, note in self.vetoed.items():
            lines.append(f"注意：这句话像是{note or '例外的说法'}（_common.yaml 的 model_vetoes），"
                         f"分类模型对“{CATEGORIES[cat]}”的判断不计入，只看规则。")
        for cat in self.unverifiable:
            lines.append(f"注意：“{CATEGORIES[cat]}”这一条只是自称律师、律所或法务，属实就不违规，"
                         "录音无法核实；整通电话分析时，如果没有其他违规佐证，不计入报告。")
        lines.append(f"风险：{RISK_LEVEL_ZH[self.risk.level]}（{self.risk.score}/100）")
        return "\n".join(lines)


def explain(
    text: str,
    lexicon: Lexicon | None = None,
    threshold: float = 0.5,
    detector: RuleDetector | None = None,
) -> Explanation:
    """Run the detector (default: rules alone) on one sentence and say what fired and why."""
    lexicon = lexicon if lexicon is not None else default_lexicon()
    normalized = normalize(text)
    hallucination = is_hallucination(text)
    match = lexicon.analyze(normalized, normalized=True, keep_suppressed=True)
    detector = detector if detector is not None else RuleDetector(lexicon, threshold)
    segment = Segment(0, 0.0, 0.0, text)
    prepared = detector.prepare([segment])
    findings, _ = detector.detect_prepared(prepared, whole_call=False)
    other_party = None
    if getattr(detector, "role", None) is not None and not hallucination:
        other_party = prepared[0].other_party
    unverifiable = [f.category for f in findings
                    if detector.unverifiable(f.category, prepared[0].text)]
    vetoed = {cat: veto.note for s in getattr(detector, "scorers", ())
              if isinstance(s, ClassifierScorer)
              for cat, veto in s.vetoes.items() if s.vetoed(cat, prepared[0], prepared)}
    return Explanation(
        text=text,
        normalized=normalized,
        repaired=match.repaired,
        hallucination=hallucination,
        corrections=[
            {"span": [c.start, c.end], "heard": c.heard, "word": c.word, "distance": c.distance}
            for c in match.corrections
        ],
        hits=[] if hallucination else [h.to_dict() for h in match.hits],
        findings=findings,
        risk=risk_of(findings),
        threshold=threshold,
        other_party=other_party,
        unverifiable=unverifiable,
        vetoed=vetoed,
    )
