"""Speech recognition: the Transcriber protocol and its faster-whisper implementation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE
from .errors import ModelError
from .types import AsrInfo, Segment

log = logging.getLogger(__name__)

# A short Simplified-Chinese prompt steers Whisper away from Traditional characters on the
# first window; hotwords (domain terms from the lexicon) are re-sent on every window.
INITIAL_PROMPT = "以下是普通话的电话录音。"


@dataclass(frozen=True)
class AsrOptions:
    """Decoding settings. They are part of the transcript cache key: change one, re-transcribe."""

    model: str | None = None  # None: embedded base; a directory; or a hub size name
    compute_type: str = "int8"
    beam_size: int = 5
    cpu_threads: int = 0  # 0: CTranslate2 picks (all cores)
    language: str = "zh"
    vad: bool = True
    # Whisper's own rule for silence: both thresholds must be crossed to drop a segment.
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0


def clean_asr_text(raw: str) -> str | None:
    """Display text of a Whisper segment: Simplified Chinese, or None for a stock
    hallucination ("字幕由Amara.org社群提供") or a decoding loop."""
    from .text import is_hallucination, to_simplified

    text = to_simplified(raw).strip()
    if not text or is_hallucination(text):
        return None
    return text


class Transcriber(Protocol):
    @property
    def info(self) -> AsrInfo: ...

    def transcribe(self, audio: np.ndarray, channel: int | None) -> list[Segment]: ...


class WhisperTranscriber:
    """faster-whisper, loaded once and reused for every file."""

    def __init__(
        self,
        options: AsrOptions | None = None,
        hotwords: str | None = None,
        postprocess: Callable[[str], str | None] | None = None,
    ):
        from .weights import resolve_model

        self.options = options or AsrOptions()
        self.hotwords = hotwords or None
        # Maps raw Whisper text to display text (Simplified) or None to drop it (hallucination).
        self.postprocess = postprocess
        self._load_target, self._name, self._sha = resolve_model(self.options.model)
        self._model = None

    @property
    def info(self) -> AsrInfo:
        settings = asdict(self.options)
        settings.pop("model")
        settings["hotwords"] = self.hotwords
        settings["initial_prompt"] = INITIAL_PROMPT
        return AsrInfo(model=self._name, model_sha256=self._sha, settings=settings)

    def _get_model(self):
        if self._model is None:
            from faster_whisper import WhisperModel

            try:
                self._model = WhisperModel(
                    self._load_target,
                    device="cpu",
                    compute_type=self.options.compute_type,
                    cpu_threads=self.options.cpu_threads,
                    local_files_only=self._sha is not None,
                )
            except Exception as e:  # CTranslate2 raises RuntimeError/ValueError, hub OSError
                raise ModelError(
                    f"无法加载语音识别模型 {self._name}：{e}。"
                    "请检查 --model 指向的目录是否完整，或省略 --model 使用内置模型。"
                ) from e
        return self._model

    def transcribe(self, audio: np.ndarray, channel: int | None) -> list[Segment]:
        if len(audio) < SAMPLE_RATE // 4:
            return []
        o = self.options
        segments, _info = self._get_model().transcribe(
            audio,
            language=o.language,
            beam_size=o.beam_size,
            vad_filter=o.vad,
            condition_on_previous_text=False,
            initial_prompt=INITIAL_PROMPT,
            hotwords=self.hotwords,
            no_speech_threshold=o.no_speech_threshold,
            log_prob_threshold=o.logprob_threshold,
            word_timestamps=True,
        )
        out: list[Segment] = []
        for s in segments:
            for start, end, raw in _sentences(s):
                text = self.postprocess(raw) if self.postprocess is not None else raw.strip()
                if not text:
                    log.debug("dropped segment %.2f-%.2f (hallucination or empty)", start, end)
                    continue
                if s.no_speech_prob > o.no_speech_threshold and s.avg_logprob < o.logprob_threshold:
                    continue
                out.append(
                    Segment(
                        index=-1,
                        start=float(start),
                        end=float(end),
                        text=text,
                        channel=channel,
                        avg_logprob=float(s.avg_logprob),
                        no_speech_prob=float(s.no_speech_prob),
                    )
                )
        return out


# Whisper often returns one segment for 20-30 s of a fast two-party call; reports need the
# moment a sentence was said. Word timestamps let us cut at sentence ends and long pauses
# (a pause is usually a change of speaker).
_SENTENCE_END = tuple("。！？；!?;")
_CLAUSE_END = tuple("，,、：:")
MAX_SENTENCE_SECONDS = 8.0
PAUSE_SECONDS = 0.8


def _sentences(seg) -> list[tuple[float, float, str]]:
    words = getattr(seg, "words", None)
    if not words:
        return [(seg.start, seg.end, seg.text)]
    pieces: list[tuple[float, float, str]] = []
    cur: list = []
    for i, w in enumerate(words):
        if cur and w.start - cur[-1].end >= PAUSE_SECONDS:
            pieces.append(_join(cur))
            cur = []
        cur.append(w)
        token = w.word.strip()
        long_clause = token.endswith(_CLAUSE_END) and w.end - cur[0].start >= MAX_SENTENCE_SECONDS
        if (token.endswith(_SENTENCE_END) or long_clause) and i < len(words) - 1:
            pieces.append(_join(cur))
            cur = []
    if cur:
        pieces.append(_join(cur))
    return [p for p in pieces if p[2].strip()]


def _join(words) -> tuple[float, float, str]:
    return words[0].start, words[-1].end, "".join(w.word for w in words).strip()
