"""Analyzer: loads the models once; analyze(path) -> CallReport."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from . import callaudit_version, legal, verdict
from .asr import AsrOptions, Transcriber
from .audio import Audio, check_readable, decode
from .cache import TranscriptCache, settings_key
from .filenames import parse_filename
from .report.common import call_date_of
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
            from .scoring import RuleDetector

            kwargs = {} if self.options.threshold is None else {"threshold": self.options.threshold}
            self._detector = RuleDetector(self.lexicon, **kwargs)
        return self._detector

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            from .asr import WhisperTranscriber, clean_asr_text

            self._transcriber = WhisperTranscriber(
                self.options.asr, hotwords=self.lexicon.hotwords(), postprocess=clean_asr_text
            )
        return self._transcriber

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
        """All segments of a call, channels kept apart, ordered by time and indexed."""
        raw: list[Segment] = []
        for ch, samples in enumerate(audio.channels):
            raw += self.transcriber.transcribe(samples, ch if audio.split else None)
        raw.sort(key=lambda s: (s.start, s.channel or 0))
        return [
            Segment(i, s.start, s.end, s.text, s.channel, s.avg_logprob, s.no_speech_prob)
            for i, s in enumerate(raw)
        ]

    def _segments(self, path: Path, digest: str) -> tuple[list[Segment], dict]:
        """Transcript and audio facts, from the cache when this file was transcribed before
        with the same ASR settings."""
        key = self.asr_key()
        cache = TranscriptCache(cache_dir() / "transcripts") if self.options.use_cache else None
        hit = cache.get(digest, key) if cache else None
        if hit is not None:
            log.info("使用已缓存的转写：%s", path.name)
            return hit
        audio = decode(path)
        log.info("转写 %s（%.0f 秒）", path.name, audio.duration)
        segments = self.transcribe(audio)
        facts = {
            "duration": audio.duration,
            "channels": len(audio.channels),
            "source_channels": audio.source_channels,
            "source_rate": audio.source_rate,
            "codec": audio.codec,
            "container": audio.container,
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
        findings = self.detector.detect(segments)
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
        report.extra["provenance"] = self.provenance()
        report.extra["call"] = parse_filename(p, self.options.tz).to_dict()
        # Legal basis by the call's date (the law changed on 2026-01-01) and the verdict.
        legal.annotate(report, call_date_of(report))
        verdict.attach(report)
        return report


def make_analyzer(options: AnalyzerOptions) -> Analyzer:
    """Picklable factory: each batch worker process builds its own Analyzer (models once)."""
    return Analyzer(options)
