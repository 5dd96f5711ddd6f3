"""Speech recognition: the Transcriber protocol and its faster-whisper implementation.

Two decoding modes share one model (loaded once per process):
- sequential (AsrOptions.batch_size == 0): faster-whisper's own windowed decoding;
- batched (batch_size > 0): speech cut at pauses into short clips, several decoded at once
  (faster-whisper's BatchedInferencePipeline). scripts/bench.py measures both.
"""

from __future__ import annotations

import bisect
import logging
import os
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
    """Decoding settings. They are part of the transcript cache key: change one, re-transcribe
    (except cpu_threads, which changes speed only)."""

    model: str | None = None  # None: embedded base; a directory; or a hub size name
    compute_type: str = "int8"
    beam_size: int = 5
    # Threads of one transcriber. 0: one per CPU core this process may use (faster-whisper's
    # own default, 4, oversubscribes a 2-core laptop). Batch workers should split the cores.
    cpu_threads: int = 0
    # 0: sequential decoding. N > 0: clips decoded N at a time (needs vad=True).
    batch_size: int = 0
    language: str = "zh"
    vad: bool = True
    # Whisper's own rule for silence: both thresholds must be crossed to drop a segment.
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0


def default_threads() -> int:
    """CPU cores this process may use (a container's or taskset's limit, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


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


# Batched mode cuts speech at pauses: Silero VAD regions (a pause is at least
# VAD_MIN_SILENCE_MS) joined while the gap is short and the clip spans at most CLIP_SECONDS.
# Each clip is decoded on its own, so a decoder that stops early loses part of one clip, never
# the rest of a 30 s window (seen with sequential decoding at a change of voice).
CLIP_SECONDS = 12.0
CLIP_JOIN_GAP = 0.5
VAD_MIN_SILENCE_MS = 300
VAD_PAD_MS = 200
# Mandarin runs at 3-6 characters a second. A clip whose text is much shorter than its speech
# was cut off by the decoder: it is split at its middle pause and both halves decoded again.
MIN_CHARS_PER_SECOND = 2.0
MIN_CHARS_SLACK = 4


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
        self._pipeline = None

    @property
    def batched(self) -> bool:
        return self.options.batch_size > 0 and self.options.vad

    @property
    def info(self) -> AsrInfo:
        settings = asdict(self.options)
        settings.pop("model")
        settings.pop("cpu_threads")  # speed only (checked in tests/test_asr.py)
        if self.batched:
            settings["clips"] = {
                "max_seconds": CLIP_SECONDS,
                "join_gap": CLIP_JOIN_GAP,
                "vad_min_silence_ms": VAD_MIN_SILENCE_MS,
                "vad_pad_ms": VAD_PAD_MS,
                "min_chars_per_second": MIN_CHARS_PER_SECOND,
            }
        else:
            settings["batch_size"] = 0
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
                    cpu_threads=self.options.cpu_threads or default_threads(),
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
        decoded = self._decode_batched(audio) if self.batched else self._decode(audio)
        out: list[Segment] = []
        for s in decoded:
            # Whisper's rule for silence (batched decoding does not apply it by itself).
            if s.no_speech_prob > o.no_speech_threshold and s.avg_logprob < o.logprob_threshold:
                continue
            for start, end, raw in _sentences(s):
                text = self.postprocess(raw) if self.postprocess is not None else raw.strip()
                if not text:
                    log.debug("dropped segment %.2f-%.2f (hallucination or empty)", start, end)
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

    def _decode(self, audio: np.ndarray) -> list:
        """Sequential: faster-whisper's 30 s windows with its temperature fallback."""
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
        return list(segments)

    def _decode_batched(self, audio: np.ndarray) -> list:
        """Batched: clips cut at pauses, batch_size at a time; a clip whose text stopped
        short is split at its middle pause and decoded again."""
        if self._pipeline is None:
            from faster_whisper import BatchedInferencePipeline

            self._pipeline = BatchedInferencePipeline(self._get_model())
        o = self.options
        todo = speech_clips(audio)
        done: list = []
        while todo:
            segments, _info = self._pipeline.transcribe(
                audio,
                language=o.language,
                beam_size=o.beam_size,
                batch_size=o.batch_size,
                clip_timestamps=[{"start": c[0][0], "end": c[-1][1]} for c in todo],
                without_timestamps=True,
                word_timestamps=True,
                initial_prompt=INITIAL_PROMPT,
                hotwords=self.hotwords,
            )
            retry: list[list[tuple[float, float]]] = []
            for clip, segs in zip(todo, _by_clip(list(segments), todo), strict=True):
                if len(clip) > 1 and _cut_short(clip, segs):
                    half = len(clip) // 2
                    retry += [clip[:half], clip[half:]]
                else:
                    done += segs
            todo = retry
        return sorted(done, key=lambda s: s.start)


def speech_clips(audio: np.ndarray) -> list[list[tuple[float, float]]]:
    """Speech regions (start, end in seconds) grouped into clips: a clip spans at most
    CLIP_SECONDS and its regions are at most CLIP_JOIN_GAP apart."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    vad = VadOptions(
        min_silence_duration_ms=VAD_MIN_SILENCE_MS,
        max_speech_duration_s=CLIP_SECONDS,
        speech_pad_ms=VAD_PAD_MS,
    )
    clips: list[list[tuple[float, float]]] = []
    for r in get_speech_timestamps(audio, vad):
        start, end = r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE
        last = clips[-1] if clips else None
        if last and start - last[-1][1] <= CLIP_JOIN_GAP and end - last[0][0] <= CLIP_SECONDS:
            last.append((start, end))
        else:
            clips.append([(start, end)])
    return clips


def _by_clip(segments: list, clips: list[list[tuple[float, float]]]) -> list[list]:
    """Decoded segments grouped by the clip their middle falls in (clips are in time order;
    word timestamps can put a segment's start a few ms before its clip's)."""
    starts = [c[0][0] for c in clips]
    out: list[list] = [[] for _ in clips]
    for s in segments:
        out[max(0, bisect.bisect_right(starts, (s.start + s.end) / 2) - 1)].append(s)
    return out


def _cut_short(clip: list[tuple[float, float]], segments: list) -> bool:
    speech = sum(end - start for start, end in clip)
    chars = sum(1 for s in segments for c in s.text if c.isalnum())
    return chars < MIN_CHARS_PER_SECOND * speech - MIN_CHARS_SLACK


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
