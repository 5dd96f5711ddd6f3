"""Fakes for the stages behind the CLI: canned transcripts instead of Whisper."""

from __future__ import annotations

from analyzer.types import AsrInfo, Segment


class FakeTranscriber:
    """Returns canned (start, end, text[, channel]) lines, whatever the audio says.

    For a stereo call it is asked once per channel and returns that channel's lines.
    """

    def __init__(self, lines, avg_logprob: float = -0.2, no_speech_prob: float = 0.01):
        self.lines = [tuple(line) + (None,) * (4 - len(line)) for line in lines]
        self.avg_logprob = avg_logprob
        self.no_speech_prob = no_speech_prob
        self.calls: list[int | None] = []

    @property
    def info(self) -> AsrInfo:
        return AsrInfo(model="fake", model_sha256=None, settings={})

    def transcribe(self, audio, channel):
        self.calls.append(channel)
        return [
            Segment(-1, s, e, t, channel, self.avg_logprob, self.no_speech_prob)
            for s, e, t, ch in self.lines
            if channel is None or ch is None or ch == channel
        ]
