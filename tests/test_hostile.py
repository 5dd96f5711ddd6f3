"""Hostile inputs: every odd file a phone archive can hold gets a clear one-line message and
the documented exit status (analyze: 0 no findings, 1 findings, 2 input error); a batch goes
on past it and lists it in summary.json errors; hours-long recordings use bounded memory.

All inputs are generated here. Fast tests replace Whisper by a canned transcript; the
`slow` ones run the real embedded model on silence, noise and music, which must give no
findings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audiofiles import tone, write_audio
from click.testing import CliRunner
from fakes import FakeTranscriber

from analyzer import cli, pipeline
from analyzer.audio import SAMPLE_RATE, Recording, check_readable, decode
from analyzer.batch import run_batch
from analyzer.errors import InputError
from analyzer.pipeline import Analyzer, AnalyzerOptions
from analyzer.types import AsrInfo, Segment

ROOT = Path(__file__).resolve().parent.parent
LAWFUL = "您好，您的借款已逾期，请通过官方APP还款。"
THREAT = "你再不还钱，我们的人就去你家门口堵你。"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- generators
def wav_pcm(path: Path, samples: np.ndarray, rate: int, bits: int = 16) -> Path:
    """A WAV written byte by byte (8-bit unsigned or 16-bit signed), any channel count."""
    data = np.atleast_2d(np.clip(samples, -1, 1))
    channels = data.shape[0]
    if bits == 8:
        body = np.round(data.T * 127 + 128).astype(np.uint8).tobytes()
    else:
        body = np.round(data.T * 32767).astype("<i2").tobytes()
    width = bits // 8
    header = (
        b"RIFF" + (36 + len(body)).to_bytes(4, "little") + b"WAVEfmt "
        + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + channels.to_bytes(2, "little")
        + rate.to_bytes(4, "little") + (rate * channels * width).to_bytes(4, "little")
        + (channels * width).to_bytes(2, "little") + bits.to_bytes(2, "little")
        + b"data" + len(body).to_bytes(4, "little")
    )
    path.write_bytes(header + body)
    return path


def music(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Hold music: a I-vi-IV-V chord progression under a plucked melody."""
    t = np.arange(int(seconds * rate)) / rate
    out = np.zeros_like(t)
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    melody = [523.3, 587.3, 659.3, 698.5, 784.0, 698.5, 659.3, 587.3]
    for i in range(int(seconds / 2)):
        sel = (t >= 2 * i) & (t < 2 * i + 2)
        for f in chords[i % 4]:
            out[sel] += 0.12 * np.sin(2 * np.pi * f * t[sel])
    for i in range(int(seconds / 0.5)):
        sel = (t >= 0.5 * i) & (t < 0.5 * i + 0.45)
        f, env = melody[i % 8], np.exp(-3 * (t[sel] - 0.5 * i))
        out[sel] += 0.2 * env * (np.sin(2 * np.pi * f * t[sel]) + 0.3 * np.sin(4 * np.pi * f * t[sel]))
    return out.astype(np.float32)


def sung_vowels(seconds: float, seed: int = 7) -> np.ndarray:
    """A voice singing vowels to a tune: pulse trains through formant resonators. On this
    very signal (seed 7, 60 s, mp3) Whisper base writes its own prompt back as a sentence."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    vowels = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]
    tune = [220, 247, 262, 294, 330, 294, 262, 247]
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n)
    pos, i = 0, 0
    dur = int(SAMPLE_RATE * 0.45)
    env = np.sin(np.pi * np.arange(dur) / dur) ** 0.5
    while pos < n:
        phase = np.cumsum(np.full(dur, tune[i % len(tune)] / SAMPLE_RATE))
        pulses = (np.mod(phase, 1.0) < 0.1).astype(float)
        voice = np.zeros(dur)
        for f in vowels[rng.integers(len(vowels))]:
            r, th = np.exp(-np.pi * 80 / SAMPLE_RATE), 2 * np.pi * f / SAMPLE_RATE
            voice += lfilter([1 - r], [1, -2 * r * np.cos(th), r * r], pulses)
        end = min(n, pos + dur)
        out[pos:end] += (voice * env)[: end - pos]
        pos += dur + 800
        i += 1
    return (0.5 * out / (np.abs(out).max() + 1e-9)).astype(np.float32)


def noise(seconds: float, amp: float = 0.15, seed: int = 7) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE)) * amp).astype(np.float32)


def truncated(tmp: Path, kind: str, keep: float, seconds: float = 20.0) -> Path:
    full = write_audio(tmp / f"full_{kind}.{kind}", tone(seconds), SAMPLE_RATE, kind)
    cut = tmp / f"cut{int(keep * 100)}.{kind}"
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * keep)])
    full.unlink()
    return cut


# Each: (name, how to make it in a folder, analyze's exit status, words its message must hold).
def _empty(d):
    (d / "empty.mp3").write_bytes(b"")
    return d / "empty.mp3"


def _random(d):
    p = d / "random.amr"
    p.write_bytes(np.random.default_rng(1).integers(0, 256, 30000, dtype=np.uint8).tobytes())
    return p


def _text(d):
    p = d / "notes.m4a"
    p.write_text("这不是录音，是一段文字。\n" * 100, encoding="utf-8")
    return p


def _amr_header_garbage(d):
    p = d / "damaged.amr"
    p.write_bytes(b"#!AMR\n" + np.random.default_rng(2).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return p


def _fifo(d):
    p = d / "pipe.mp3"
    os.mkfifo(p)
    return p


BAD = {
    "empty": (_empty, ["为空"]),
    "truncated_m4a": (lambda d: truncated(d, "m4a", 0.6), ["不完整"]),
    "truncated_mp3": (lambda d: truncated(d, "mp3", 0.3), ["截断"]),
    "random_bytes": (_random, ["不是可识别的音频"]),
    "text_as_m4a": (_text, ["不是可识别的音频"]),
    "fifo": (_fifo, ["不是普通文件"]),
}
# Damaged but decodable: analyzed as far as it goes, with a warning that says so.
PARTIAL = {
    "mp3_cut_at_60pct": (lambda d: truncated(d, "mp3", 0.6), "不完整"),
    "amr_cut_in_half": (lambda d: truncated(d, "amr", 0.5), "末尾不完整"),
    "short_0.2s": (lambda d: write_audio(d / "short.wav", tone(0.2), SAMPLE_RATE, "wav"), "太短"),
}


def _use_fake(monkeypatch, text=LAWFUL):
    def fake_analyzer(model, beam_size, threshold, tz="Asia/Shanghai"):
        return Analyzer(AnalyzerOptions(tz=tz), transcriber=FakeTranscriber([(0.1, 0.2, text)]))

    monkeypatch.setattr(cli, "_analyzer", fake_analyzer)


def _analyze(*args):
    return CliRunner().invoke(cli.cli, ["analyze", *map(str, args)], catch_exceptions=False)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("错误")]


# ----------------------------------------------------------------------------- analyze
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exit_2_with_one_line_naming_the_file(tmp_path, monkeypatch, case):
    _use_fake(monkeypatch, THREAT)
    make, words = BAD[case]
    bad = make(tmp_path)
    good = write_audio(tmp_path / "good.wav", tone(2.0), SAMPLE_RATE, "wav")
    r = _analyze(bad, good, "--format", "json")
    assert r.exit_code == 2
    lines = _error_lines(r.stderr)
    assert len(lines) == 1 and str(bad) in lines[0], r.stderr
    for w in words:
        assert w in lines[0]
    assert "Traceback" not in r.stderr
    assert json.loads(r.stdout)["file"] == str(good)  # the other file is still analyzed


@pytest.mark.parametrize("case", sorted(PARTIAL))
def test_damaged_but_decodable_is_analyzed_with_a_warning(tmp_path, monkeypatch, case):
    _use_fake(monkeypatch, THREAT)
    make, word = PARTIAL[case]
    path = make(tmp_path)
    r = _analyze(path, "--format", "json")
    warned = [line for line in r.stderr.splitlines() if str(path) in line and word in line]
    assert len(warned) == 1, r.stderr
    assert not _error_lines(r.stderr)
    assert r.exit_code == 1 and json.loads(r.stdout)["findings"]  # the fake heard a threat


def test_directory_named_like_a_recording(tmp_path, monkeypatch):
    _use_fake(monkeypatch)
    folder = tmp_path / "call.mp3"
    folder.mkdir()
    with pytest.raises(InputError) as e:
        Analyzer(transcriber=FakeTranscriber([])).analyze(folder)
    assert "文件夹" in str(e.value) and str(folder) in str(e.value)
    r = _analyze(folder)  # the CLI treats a folder as a list of recordings: this one has none
    assert r.exit_code == 2 and len(_error_lines(r.stderr)) == 1


def test_unreadable_file_message(tmp_path, monkeypatch):
    # Root reads any file, so the permission check is driven through os.access.
    _use_fake(monkeypatch)
    path = write_audio(tmp_path / "locked.mp3", tone(1.0), SAMPLE_RATE, "mp3")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == path else real_access(p, mode, **kw))
    with pytest.raises(InputError) as e:
        check_readable(path)
    assert "权限" in e.value.problem
    r = _analyze(path)
    assert r.exit_code == 2
    assert len(_error_lines(r.stderr)) == 1 and "权限" in r.stderr and str(path) in r.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_for_real(tmp_path, monkeypatch):
    _use_fake(monkeypatch)
    path = write_audio(tmp_path / "locked.mp3", tone(1.0), SAMPLE_RATE, "mp3")
    path.chmod(0)
    try:
        r = _analyze(path)
    finally:
        path.chmod(0o644)
    assert r.exit_code == 2 and "权限" in r.stderr


def test_bad_input_through_the_real_command_has_no_traceback(tmp_path):
    bad = truncated(tmp_path, "m4a", 0.5)
    proc = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert _error_lines(proc.stderr) == [f"错误：{bad}: " + decode_problem(bad)]
    assert "Traceback" not in proc.stderr


def decode_problem(path: Path) -> str:
    with pytest.raises(InputError) as e:
        decode(path)
    return e.value.problem


# ----------------------------------------------------------------------------- odd but valid
def test_eight_bit_clipped_96k_and_six_channel_files_decode_correctly(tmp_path):
    sine = np.sin(2 * np.pi * 440 * np.arange(2 * 8000) / 8000).astype(np.float32)
    u8 = decode(wav_pcm(tmp_path / "u8.wav", 0.5 * sine, 8000, bits=8))
    x = u8.channels[0]
    assert abs(u8.duration - 2.0) < 0.01
    assert abs(float(x.mean())) < 0.01  # unsigned 8-bit is centred on 128, not 0
    assert 0.45 < float(np.abs(x).max()) < 0.55

    square = np.clip(4 * np.sin(2 * np.pi * 440 * np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE), -1, 1)
    clipped = decode(wav_pcm(tmp_path / "clipped.wav", square, SAMPLE_RATE))
    assert float(np.abs(clipped.channels[0]).max()) <= 1.0
    assert float(np.mean(np.abs(clipped.channels[0]) > 0.9)) > 0.5  # mostly at the rails

    hi = decode(wav_pcm(tmp_path / "hi.wav", tone(3.0, 96000), 96000))
    assert hi.source_rate == 96000 and len(hi.channels[0]) == pytest.approx(3 * SAMPLE_RATE, abs=16)

    six = decode(wav_pcm(tmp_path / "six.wav", np.tile(tone(2.0, 48000), (6, 1)), 48000))
    assert six.source_channels == 6 and len(six.channels) == 1 and abs(six.duration - 2.0) < 0.01


WEIRD_NAMES = [
    "通话录音 张三 (138 0013 8000).wav",
    "line\nbreak.wav",
    "emoji 😀📞.m4a",
    "quotes \"'` and $dollar.mp3",
    "tab\tand\\backslash.wav",
    "催收电话——逾期第三天.amr",
]


@pytest.mark.parametrize("name", WEIRD_NAMES)
def test_odd_file_names_analyze(tmp_path, monkeypatch, name):
    _use_fake(monkeypatch, THREAT)
    kind = name.rsplit(".", 1)[1]
    path = write_audio(tmp_path / name, tone(2.0), SAMPLE_RATE, kind)
    r = _analyze(path, "--format", "json")
    assert r.exit_code == 1, r.stderr
    assert json.loads(r.stdout)["file"] == str(path)
    out = tmp_path / "out"
    r = _analyze(path, "--format", "md", "--out", out)
    assert r.exit_code == 1
    written = [p for p in out.iterdir()]
    assert len(written) == 1 and "\n" not in written[0].name and written[0].stat().st_size > 100


# ----------------------------------------------------------------------------- batch
def _fake_factory(text=LAWFUL):
    return lambda: Analyzer(transcriber=FakeTranscriber([(0.1, 1.0, text)]))


def _archive(tmp_path: Path) -> tuple[Path, dict[str, str], list[str]]:
    """A phone archive holding every hostile input: (folder, bad file -> expected words in
    its reason, names of the good recordings)."""
    root = tmp_path / "archive"
    root.mkdir()
    bad: dict[str, str] = {}
    for case, (make, words) in BAD.items():
        bad[str(make(root))] = "管道" if case == "fifo" else words[0]
    bad[str(_amr_header_garbage(root))] = "损坏"
    os.symlink("self.amr", root / "self.amr")  # a link to itself
    bad[str(root / "self.amr")] = "循环"
    os.symlink("nowhere.mp3", root / "broken.mp3")
    bad[str(root / "broken.mp3")] = "失效"
    sub = root / "sub"
    sub.mkdir()
    os.symlink("..", sub / "loop")  # a folder loop: never followed
    (root / "call.mp3").mkdir()  # a folder named like a recording
    good = []
    for i, name in enumerate(WEIRD_NAMES):
        write_audio(sub / name if i % 2 else root / name, tone(1.0, freq=300 + 50 * i), SAMPLE_RATE,
                    name.rsplit(".", 1)[1])
        good.append(name)
    wav_pcm(root / "u8.wav", 0.5 * tone(1.5, 8000), 8000, bits=8)
    wav_pcm(root / "six.wav", np.tile(tone(1.0, 96000), (6, 1)), 96000)
    good += ["u8.wav", "six.wav"]
    (root / "readme.txt").write_text("说明", encoding="utf-8")
    return root, bad, good


def test_batch_goes_past_every_hostile_input_and_lists_it(tmp_path):
    root, bad, good = _archive(tmp_path)
    out = tmp_path / "out"
    result = run_batch(root, out, _fake_factory()(), factory=_fake_factory())
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    reasons = {e["file"]: e["reason"] for e in summary["errors"]}
    assert set(reasons) == set(bad), reasons
    for file, word in bad.items():
        assert word in reasons[file], (file, reasons[file])
        assert "\n" not in reasons[file]
    assert sorted(Path(r["file"]).name for r in result.reports) == sorted(good)
    assert [Path(s["file"]).name for s in summary["skipped"]] == ["readme.txt"]
    reports = sorted((out / "reports").glob("*.json"))
    assert len(reports) == len(good)
    for p in reports:
        data = json.loads(p.read_text(encoding="utf-8"))
        assert "\n" not in p.name and Path(data["file"]).name in good


def test_batch_command_exit_status_and_screen(tmp_path, monkeypatch):
    root, bad, good = _archive(tmp_path)

    class Fake(Analyzer):
        def __init__(self, options=None):
            super().__init__(options, transcriber=FakeTranscriber([(0.1, 1.0, THREAT)]))

    monkeypatch.setattr(pipeline, "Analyzer", Fake)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli.cli, ["batch", str(root), "--out", str(out)], catch_exceptions=False)
    # Findings in some calls, but unreadable files outrank them, as in analyze.
    assert r.exit_code == 2, r.stderr
    assert f"无法分析的文件 {len(bad)} 个" in r.stderr
    assert len(list((out / "reports").glob("*.json"))) == len(good)
    assert "Traceback" not in r.stderr


def test_watch_goes_past_every_hostile_input(tmp_path):
    from analyzer.watch import watch

    root, bad, good = _archive(tmp_path)
    events = []
    watch(root, tmp_path / "out", _fake_factory(THREAT)(), settle=0, poll=0.01, once=True,
          on_event=events.append)
    status = {e.path.name: e.status for e in events}
    assert sorted(n for n, s in status.items() if s == "ok") == sorted(good)
    # Damaged recordings are errors; files that are not audio are skipped; links that lead
    # nowhere, pipes and folders are not files and never picked up.
    assert {n: s for n, s in status.items() if s != "ok"} == {
        "empty.mp3": "skipped", "cut60.m4a": "skipped", "cut30.mp3": "error", "random.amr": "skipped",
        "notes.m4a": "skipped", "damaged.amr": "error", "readme.txt": "skipped"}
    reasons = {e.path.name: e.reason for e in events}
    assert "为空" in reasons["empty.mp3"] and "截断" in reasons["cut30.mp3"]
    assert all(r and "\n" not in r for n, r in reasons.items() if status[n] != "ok")


# ----------------------------------------------------------------------------- long recordings
def test_pieces_cut_at_silence_and_keep_time(tmp_path):
    """A 70 s call read in 20 s pieces: each cut falls in a pause, times add up."""
    rate = SAMPLE_RATE
    x = np.zeros(70 * rate, np.float32)
    speech = [(3.0, 6.0), (14.0, 21.5), (33.0, 41.0), (55.0, 69.0)]  # 21.5 straddles 20 s
    for a, b in speech:
        x[int(a * rate) : int(b * rate)] = tone(b - a, rate, 500)
    path = wav_pcm(tmp_path / "call.wav", x, rate)
    rec = Recording(path)
    pieces = list(rec.pieces(seconds=20))
    assert len(pieces) >= 3 and rec.duration == pytest.approx(70.0)
    whole = decode(path).channels[0]
    assert sum(len(p.channels[0]) for p in pieces) == len(whole) == len(x)
    for p in pieces:
        assert p.duration <= 20 + 10 + 1  # one piece plus the search for a pause
        begin = int(round(p.start * rate))
        assert np.array_equal(p.channels[0], whole[begin : begin + len(p.channels[0])])
        if p.start:  # the cut is in a pause, never inside speech
            assert not any(a < p.start < b for a, b in speech), p.start


def test_stereo_layout_judged_on_the_whole_recording(tmp_path):
    """The right party says nothing for the first pieces: still two channels throughout."""
    rate = SAMPLE_RATE
    left = tone(45.0, rate, 300)
    right = np.zeros_like(left)
    right[30 * rate : 40 * rate] = tone(10.0, rate, 900)
    two = wav_pcm(tmp_path / "two.wav", np.stack([left, right]), rate)
    pieces = [len(p.channels) for p in Recording(two).pieces(seconds=10)]
    assert len(pieces) >= 4 and set(pieces) == {2}
    same = wav_pcm(tmp_path / "same.wav", np.stack([left, left]), rate)
    assert {len(p.channels) for p in Recording(same).pieces(seconds=10)} == {1}


class BurstTranscriber(FakeTranscriber):
    """Reports each loud stretch of the audio it is given, in that audio's own time (to the
    10 ms block)."""

    def __init__(self):
        super().__init__([])
        self.lengths: list[float] = []

    def transcribe(self, audio, channel):
        self.lengths.append(len(audio) / SAMPLE_RATE)
        block = SAMPLE_RATE // 100
        n = len(audio) // block * block
        loud = np.abs(audio[:n]).reshape(-1, block).max(axis=1) > 0.1
        edges = np.flatnonzero(np.diff(loud.astype(np.int8))) + 1
        bounds = np.concatenate([[0] if loud[0] else [], edges, [len(loud)] if loud[-1] else []])
        return [Segment(-1, a * block / SAMPLE_RATE, b * block / SAMPLE_RATE, "嗯", channel)
                for a, b in zip(bounds[::2], bounds[1::2], strict=True)]


def test_segment_times_offset_across_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr("analyzer.audio.CHUNK_SECONDS", 20.0)
    rate = SAMPLE_RATE
    x = np.zeros(75 * rate, np.float32)
    bursts = [2.0, 17.0, 33.5, 47.25, 72.0]  # 17 s lies in the cut search window of piece one
    for b in bursts:
        x[int(b * rate) : int((b + 1.5) * rate)] = tone(1.5, rate, 700)
    path = wav_pcm(tmp_path / "long.wav", x, rate)
    fake = BurstTranscriber()
    rep = Analyzer(AnalyzerOptions(use_cache=False), transcriber=fake).analyze(path)
    assert len(fake.lengths) >= 3 and max(fake.lengths) <= 31
    assert [s.index for s in rep.segments] == list(range(len(bursts)))
    assert [s.start for s in rep.segments] == pytest.approx(bursts, abs=0.011)
    assert [s.end - s.start for s in rep.segments] == pytest.approx([1.5] * len(bursts), abs=0.021)
    assert rep.duration == pytest.approx(75.0)


LONG_CHILD = r"""
import json, resource, sys
sys.path.insert(0, "tests")
import numpy as np
from test_hostile import BurstTranscriber, tone, wav_pcm
from analyzer.pipeline import Analyzer, AnalyzerOptions
path, seconds = sys.argv[1], int(sys.argv[2])
fake = BurstTranscriber()
analyzer = Analyzer(AnalyzerOptions(use_cache=False), transcriber=fake)
warm = wav_pcm(__import__("pathlib").Path(path + ".warm.wav"), tone(3.0), 16000)
analyzer.analyze(warm)  # imports, rules, detector: everything but the long file
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rep = analyzer.analyze(path)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (peak - base) / 1024, "starts": [s.start for s in rep.segments],
                  "duration": rep.duration, "pieces": len(fake.lengths),
                  "longest": max(fake.lengths)}))
"""


def write_long_wav(path: Path, seconds: int, bursts: list[float], rate: int = 8000) -> Path:
    """Hours of 8-bit silence with 1 s tones at `bursts`, written a minute at a time."""
    n = seconds * rate
    header = (
        b"RIFF" + (36 + n).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + rate.to_bytes(4, "little")
        + rate.to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
        + b"data" + n.to_bytes(4, "little")
    )
    beep = np.round(0.5 * np.sin(2 * np.pi * 500 * np.arange(rate) / rate) * 127 + 128).astype(np.uint8)
    with open(path, "wb") as f:
        f.write(header)
        for minute in range(0, seconds, 60):
            block = np.full(60 * rate, 128, np.uint8)
            for b in bursts:
                at = int((b - minute) * rate)
                if 0 <= at < len(block):
                    block[at : at + rate] = beep[: len(block) - at]
            f.write(block.tobytes())
    return path


def test_three_hour_recording_in_bounded_memory(tmp_path):
    seconds = 3 * 3600
    # One burst just before a piece boundary (600 s), others spread to the very end.
    bursts = [30.0, 597.5, 3600.0, 7205.5, 10790.0]
    path = write_long_wav(tmp_path / "three_hours.wav", seconds, bursts)
    proc = subprocess.run([sys.executable, "-c", LONG_CHILD, str(path), str(seconds)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    # Whole-file decoding needs 16 kHz float32 = 690 MB for three hours (twice that while
    # joining); pieces of 10 minutes need a few tens.
    assert got["growth_mb"] < 400, got
    assert got["duration"] == pytest.approx(seconds)
    assert got["pieces"] >= 18 and got["longest"] <= 620
    assert got["starts"] == pytest.approx(bursts, abs=0.011)


# ----------------------------------------------------------------------------- prompt echoes
class EchoingTranscriber(FakeTranscriber):
    """Whisper's settings as asr.py reports them, and what it wrote on music and babble."""

    PROMPT = "以下是普通话的电话录音。"
    HOTWORDS = "验证码、通讯录、逾期、催收、征信、紧急联系人、安全账户、二维码、立案、拘留。"

    def __init__(self, lines):
        super().__init__([])
        self.rows = lines  # (start, text, no_speech_prob, avg_logprob)

    @property
    def info(self):
        settings = {"initial_prompt": self.PROMPT, "hotwords": self.HOTWORDS}
        return AsrInfo(model="fake", model_sha256=None, settings=settings)

    def transcribe(self, audio, channel):
        return [Segment(-1, a, a + 2, text, channel, lp, ns) for a, text, ns, lp in self.rows]


def test_echoes_of_the_decoder_prompt_are_dropped(tmp_path):
    seen = [  # from real runs on sung vowels and wordless babble (no_speech_prob 0.99)
        (0.5, "以下是普通话的电话录音。", 0.99, -0.57),
        (3.0, "证码、证信、", 0.99, -0.42),
        (6.0, "紧急联系人、安全账户、", 0.99, -0.42),
        (9.0, "二维码、立案。", 0.99, -0.42),
    ]
    kept = [  # speech: sure of it (low no_speech_prob), or not made of the prompt
        (12.0, "你的紧急联系人我们都会打电话。", 0.05, -0.3),
        (15.0, "逾期、催收、征信。", 0.2, -0.3),
        (18.0, "我们已经立案了，你把钱转到安全账户。", 0.95, -0.5),
    ]
    path = write_audio(tmp_path / "call.wav", tone(25.0), SAMPLE_RATE, "wav")
    rep = Analyzer(AnalyzerOptions(use_cache=False),
                   transcriber=EchoingTranscriber(seen + kept)).analyze(path)
    assert [s.text for s in rep.segments] == [k[1] for k in kept]
    assert [s.index for s in rep.segments] == [0, 1, 2]


# ----------------------------------------------------------------------------- real Whisper
@pytest.fixture(scope="module")
def real_analyzer(tmp_path_factory):
    return Analyzer(AnalyzerOptions(use_cache=False))


SOUNDS = {
    "silence_60s.wav": lambda: np.zeros(60 * SAMPLE_RATE, np.float32),
    "noise_60s.mp3": lambda: noise(60),
    "music_60s.m4a": lambda: music(60),
    "singing_60s.mp3": lambda: sung_vowels(60),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SOUNDS))
def test_no_findings_on_sounds_without_speech(tmp_path, real_analyzer, name):
    path = write_audio(tmp_path / name, SOUNDS[name](), SAMPLE_RATE, name.rsplit(".", 1)[1])
    rep = real_analyzer.analyze(path)
    heard = [(round(s.start, 1), s.text, round(s.no_speech_prob, 2)) for s in rep.segments]
    assert rep.findings == [], heard
    assert rep.risk.level == "none"
    # Whisper repeats its prompt and hotwords on music (singing_60s: "以下是普通话的电话录音。"
    # without the filter); none of it may reach a transcript someone reads as evidence.
    leaked = [s.text for s in rep.segments
              if any(w in s.text for w in ("普通话的电话录音", "安全账户", "紧急联系人", "立案"))]
    assert not leaked, heard


# ----------------------------------------------------------------------------- safe loading
# Data files (rules, legal texts, models, caches) must never run code when loaded.
BANNED_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal",
                  "shelve", "torch"}
BANNED_CALLS = {"eval", "exec", "compile", "__import__"}
UNSAFE_YAML = {"load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all",
               "Loader", "UnsafeLoader", "FullLoader", "CLoader", "CUnsafeLoader", "CFullLoader"}
SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def unsafe_loading(source: str, filename: str = "<source>") -> list[str]:
    """Every construct in `source` that can execute code from data, as 'file:line what'."""
    import ast

    tree = ast.parse(source, filename)
    # Classes of this module that derive from a safe YAML loader.
    safe = set(SAFE_LOADERS)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(
            isinstance(b, ast.Attribute) and b.attr in safe or isinstance(b, ast.Name) and b.id in safe
            for b in node.bases
        ):
            safe.add(node.name)
    found = []

    def flag(node, what):
        found.append(f"{filename}:{node.lineno} {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BANNED_MODULES:
                    flag(node, f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in BANNED_MODULES:
                flag(node, f"from {node.module} import")
            if node.module == "yaml" and any(a.name in UNSAFE_YAML | {"load"} for a in node.names):
                flag(node, "from yaml import an unsafe loader")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "yaml" and node.attr in UNSAFE_YAML:
                flag(node, f"yaml.{node.attr}")
            if node.value.id == "os" and node.attr in ("system", "popen"):
                flag(node, f"os.{node.attr}")
            if node.attr == "read_pickle":
                flag(node, "read_pickle")
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in BANNED_CALLS:
                flag(node, f"{f.id}()")
            kwargs = {k.arg: k.value for k in node.keywords}
            if isinstance(f, ast.Attribute) and f.attr == "load" and isinstance(f.value, ast.Name):
                if f.value.id == "yaml":
                    loader = kwargs.get("Loader")
                    name = loader.attr if isinstance(loader, ast.Attribute) else getattr(loader, "id", None)
                    if name not in safe:
                        flag(node, "yaml.load without a SafeLoader")
            allow = kwargs.get("allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                flag(node, "allow_pickle not False")
            shell = kwargs.get("shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                flag(node, "shell=True")
    return found


def test_the_scanner_finds_each_unsafe_construct():
    bad = """
import pickle, joblib
from yaml import load
import yaml, numpy as np, os, subprocess
class Mine(yaml.Loader): pass
yaml.load(text, Loader=Mine)
yaml.load(text)
yaml.unsafe_load(text)
np.load(f, allow_pickle=True)
eval("1"); exec("x=1")
os.system("ls")
subprocess.run("ls", shell=True)
"""
    found = unsafe_loading(bad)
    assert len(found) == 12, found
    ok = """
import yaml, numpy as np
class Lines(yaml.SafeLoader): pass
yaml.load(text, Loader=Lines)
yaml.load(text, Loader=yaml.SafeLoader)
yaml.safe_load(text)
np.load(f, allow_pickle=False)
"""
    assert unsafe_loading(ok) == []


def test_no_code_runs_from_data_anywhere_in_the_package():
    files = sorted((ROOT / "analyzer").rglob("*.py"))
    assert len(files) > 20
    found = [f for p in files for f in unsafe_loading(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))]
    assert found == []


PAYLOAD = "!!python/object/apply:os.system [\"touch {marker}\"]"


def test_rule_file_with_a_python_tag_is_refused_naming_file_and_line(tmp_path):
    import shutil

    from analyzer.errors import RuleError
    from analyzer.lexicon import Lexicon

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "analyzer" / "rules", rules)
    marker = tmp_path / "pwned"
    threat = rules / "threat.yaml"
    lines = threat.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("category:"))
    lines.insert(at + 1, "note: " + PAYLOAD.format(marker=marker))
    threat.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RuleError) as e:
        Lexicon.load(rules)
    assert str(threat) in str(e.value) and f"第 {at + 2} 行" in str(e.value)
    assert not marker.exists()

    threat.write_bytes(b"category: threat\n" + "威胁".encode("gb18030"))
    with pytest.raises(RuleError) as e:
        Lexicon.load(rules)
    assert str(threat) in str(e.value) and "UTF-8" in str(e.value)


def test_legal_file_with_a_python_tag_is_refused_naming_file_and_line(tmp_path):
    from analyzer import legal
    from analyzer.errors import RuleError

    marker = tmp_path / "pwned"
    text = legal.DATA_PATH.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("version:"))
    text.insert(at + 1, "note: " + PAYLOAD.format(marker=marker))
    path = tmp_path / "legal.yaml"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(RuleError) as e:
        legal.load(path)
    assert str(path) in str(e.value) and f"第{at + 2}行" in str(e.value)
    assert not marker.exists()


def test_tampered_model_weights_are_never_loaded(tmp_path, monkeypatch):
    """model.bin is verified on every load: a replaced file is rebuilt from the installed
    packages before faster-whisper sees it, and a --model folder is recorded by its hash."""
    import hashlib

    from analyzer import weights

    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))
    folder = weights.ensure_embedded_model()
    (folder / "model.bin").write_bytes(b"not the weights")
    load, _name, sha = weights.resolve_model(None)
    digest = hashlib.sha256(Path(load, "model.bin").read_bytes()).hexdigest()
    assert digest == sha == weights.EMBEDDED_SHA256
    other = tmp_path / "mine"
    other.mkdir()
    (other / "model.bin").write_bytes(b"someone else's model")
    (other / "config.json").write_text("{}", encoding="utf-8")
    assert weights.resolve_model(str(other))[2] == hashlib.sha256(b"someone else's model").hexdigest()
