"""Analyzer: loads the models once; analyze(path) -> CallReport."""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import callaudit_version, legal, verdict
from .asr import AsrOptions, Transcriber
from .audio import Audio, Recording, check_readable
from .cache import TranscriptCache, settings_key
from .filenames import parse_filename
from .report.common import call_date_of
from .text import is_hallucination, normalize
from .types import CallReport, Segment
from .weights import cache_dir, sha256_file

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
RULES_DIR = PACKAGE_DIR / "rules"


def files_sha256(paths: list[Path]) -> str:
    """One hash over several files (name + content), for reproducibility records."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@dataclass
class AnalyzerOptions:
    asr: AsrOptions = field(default_factory=AsrOptions)
    threshold: float | None = None  # detection threshold; None: the detector's default
    rules_dir: Path | None = None  # None: the bundled rules
    use_cache: bool = True  # transcripts in the per-user cache (see cache.py)
    use_classifier: bool = True  # fuse the trained classifier with the rules
    model_dir: Path | None = None  # classifier artifact; None: the bundled models/
    tz: str = "Asia/Shanghai"  # zone of the phone's clock (file names carry local time)


class Analyzer:
    """Holds the loaded models; call analyze() for each recording."""

    def __init__(self, options: AnalyzerOptions | None = None, transcriber=None, detector=None):
        self.options = options or AnalyzerOptions()
        self._transcriber: Transcriber | None = transcriber
        self._detector = detector
        self._lexicon = None
        self._provenance: dict | None = None

    @property
    def lexicon(self):
        if self._lexicon is None:
            from .lexicon import Lexicon

            self._lexicon = Lexicon.load(self.options.rules_dir)
        return self._lexicon

    @property
    def detector(self):
        if self._detector is None:
            from . import legal
            from .classifier import load_classifier
            from .scoring import ClassifierScorer, RuleDetector

            kwargs = {} if self.options.threshold is None else {"threshold": self.options.threshold}
            extra = []
            if self.options.use_classifier:
                severities = {c: law.severity for c, law in legal.load().categories.items()}
                extra.append(ClassifierScorer(load_classifier(self.options.model_dir), severities,
                                              self.lexicon))
            self._detector = RuleDetector(self.lexicon, extra_scorers=extra, **kwargs)
        return self._detector

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            from .asr import WhisperTranscriber, clean_asr_text

            self._transcriber = WhisperTranscriber(
                self.options.asr, hotwords=self.lexicon.hotwords(), postprocess=clean_asr_text
            )
        return self._transcriber

    def explain(self, text: str):
        """What the detector makes of one sentence (rules, probabilities, context)."""
        from .scoring import explain

        return explain(text, self.lexicon, self.detector.threshold, detector=self.detector)

    def asr_key(self) -> str:
        info = self.transcriber.info
        return settings_key({"model": info.model_sha256 or info.model, **info.settings})

    def provenance(self) -> dict:
        """What a third party needs to reproduce a report; also the resume key of batch."""
        if self._provenance is None:
            rules_dir = self.options.rules_dir or RULES_DIR
            self._provenance = {
                "callaudit_version": callaudit_version(),
                "asr_model": self.transcriber.info.model,
                "asr_model_sha256": self.transcriber.info.model_sha256,
                "asr_settings_sha256": self.asr_key(),
                "rules_sha256": files_sha256(list(Path(rules_dir).glob("*.yaml"))),
                "classifier_sha256": getattr(self.detector, "classifier_sha256", None),
            }
        return self._provenance

    def transcribe(self, audio: Audio) -> list[Segment]:
        """All segments of a call, channels kept apart, ordered by time and indexed. For a
        piece of a long recording, times count from the start of the recording."""
        raw: list[Segment] = []
        settings = self.transcriber.info.settings
        prompt = f"{settings.get('initial_prompt') or ''}{settings.get('hotwords') or ''}"
        for ch, samples in enumerate(audio.channels):
            for s in self.transcriber.transcribe(samples, ch if audio.split else None):
                if s.no_speech_prob > self.options.asr.no_speech_threshold and _echoes(s.text, prompt):
                    log.debug("dropped %.2f-%.2f: the decoder's prompt, not speech", s.start, s.end)
                    continue
                if audio.start:
                    s = replace(s, start=s.start + audio.start, end=s.end + audio.start)
                raw.append(s)
        return _in_order(raw)

    def _segments(self, path: Path, digest: str) -> tuple[list[Segment], dict]:
        """Transcript and audio facts, from the cache when this file was transcribed before
        with the same ASR settings. The recording is decoded and transcribed piece by piece,
        so memory stays bounded however long it is."""
        recording = Recording(path)  # a file that is not audio fails here, before the model
        key = self.asr_key()
        cache = TranscriptCache(cache_dir() / "transcripts") if self.options.use_cache else None
        hit = cache.get(digest, key) if cache else None
        if hit is not None:
            log.info("使用已缓存的转写：%s", path.name)
            return hit
        stated = f"（约 {recording.stated:.0f} 秒）" if recording.stated else ""
        log.info("转写 %s%s", path.name, stated)
        segments: list[Segment] = []
        channels = 1
        for piece in recording.pieces():
            if piece.start:
                log.info("转写 %s：%.0f 秒起", path.name, piece.start)
            segments += self.transcribe(piece)
            channels = len(piece.channels)
        segments = _in_order(segments)
        facts = {
            "duration": recording.duration,
            "channels": channels,
            "source_channels": recording.source_channels,
            "source_rate": recording.source_rate,
            "codec": recording.codec,
            "container": recording.container,
            "warnings": recording.warnings,
        }
        if cache:
            cache.put(digest, key, segments, facts)
        return segments, facts

    def analyze(self, path: str | Path) -> CallReport:
        from .scoring import risk_of

        p = Path(path)
        check_readable(p)  # before hashing: a clear message, not an OSError
        digest = sha256_file(p)
        segments, facts = self._segments(p, digest)
        findings, unverified = self.detector.detect_call(segments)
        report = CallReport(
            file=str(p),
            sha256=digest,
            duration=facts["duration"],
            channels=facts["channels"],
            asr=self.transcriber.info,
            segments=segments,
            findings=findings,
            risk=risk_of(findings),
        )
        report.extra["audio"] = {k: facts[k] for k in ("source_channels", "source_rate", "codec", "container")}
        # e.g. "录音可能不完整": a damaged but decodable file is analyzed, and the report says so.
        report.extra["audio"]["warnings"] = list(facts.get("warnings", []))
        report.extra["provenance"] = self.provenance()
        # A lawyer or legal staff naming themselves, with nothing else found: not a violation,
        # but something the user may want to check (the verdict says how).
        report.extra["unverified_claims"] = [
            {"category": f.category, "start": round(f.start, 2), "end": round(f.end, 2),
             "channel": f.channel} for f in unverified]
        report.extra["call"] = parse_filename(p, self.options.tz).to_dict()
        # Legal basis by the call's date (the law changed on 2026-01-01) and the verdict.
        legal.annotate(report, call_date_of(report))
        verdict.attach(report)
        return report


def _echoes(text: str, prompt: str) -> bool:
    """True when text is mostly pieces of the decoder's prompt. On music or babble Whisper
    repeats its prompt ("以下是普通话的电话录音。") or the hotword list ("紧急联系人、安全账户、"):
    words of the rules, heard by no one."""
    return bool(prompt) and is_hallucination(text, phrases=_prompt_pieces(prompt))


@functools.lru_cache(maxsize=4)
def _prompt_pieces(prompt: str) -> tuple[str, ...]:
    letters = "".join(c for c in normalize(prompt) if c.isalnum())
    pieces = {letters[i:j] for i in range(len(letters)) for j in range(i + 2, len(letters) + 1)}
    return tuple(sorted(pieces, key=len, reverse=True))


def _in_order(segments: list[Segment]) -> list[Segment]:
    """Sorted by time (left channel first on ties) and indexed from 0."""
    ordered = sorted(segments, key=lambda s: (s.start, s.channel or 0))
    return [replace(s, index=i) for i, s in enumerate(ordered)]


def make_analyzer(options: AnalyzerOptions) -> Analyzer:
    """Picklable factory: each batch worker process builds its own Analyzer (models once)."""
    return Analyzer(options)
