import json

import numpy as np
import pytest
from audiofiles import tone, write_audio
from fakes import FakeTranscriber

from analyzer.errors import InputError
from analyzer.pipeline import Analyzer, AnalyzerOptions

VIOLATION = "你再不还钱，我们的人就去你家门口堵你，把你的腿打断。"
LAWFUL = "您好，您的借款已逾期三十天，逾期会上报征信，请通过官方APP还款。"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _analyzer(lines, **opts):
    fake = FakeTranscriber(lines)
    return Analyzer(AnalyzerOptions(**opts), transcriber=fake), fake


def test_report_fields_from_a_real_recording(tmp_path):
    path = write_audio(
        tmp_path / "通话录音@催收(13800138000)_20260312231502.mp3", tone(6.0), 16000, "mp3"
    )
    analyzer, _ = _analyzer([(0.5, 3.0, LAWFUL), (3.2, 5.8, VIOLATION)])
    rep = analyzer.analyze(path)
    assert len(rep.sha256) == 64 and abs(rep.duration - 6.0) < 0.1
    assert [s.index for s in rep.segments] == [0, 1]
    assert [f.category for f in rep.findings] == ["threat"]
    f = rep.findings[0]
    assert 3.0 <= f.start and f.end <= 6.0 and f.segment_indices == [1]
    assert f.legal_basis  # every finding cites something
    assert rep.risk.level != "none"
    call = rep.extra["call"]
    assert call["number"] == "13800138000" and call["started_at"].startswith("2026-03-12T23:15:02")
    assert rep.extra["verdict"]["summary"]
    prov = rep.extra["provenance"]
    assert len(prov["rules_sha256"]) == 64


def test_lawful_call_has_no_findings(tmp_path):
    path = write_audio(tmp_path / "lawful.wav", tone(3.0), 16000, "wav")
    rep = _analyzer([(0.0, 3.0, LAWFUL)])[0].analyze(path)
    assert rep.findings == [] and rep.risk.level == "none" and rep.risk.score == 0


def test_stereo_channels_transcribed_apart(tmp_path):
    left = tone(4.0, freq=300)
    right = np.zeros_like(left)
    right[16000:32000] = tone(1.0, freq=800)
    path = write_audio(tmp_path / "stereo.flac", np.stack([left, right]), 16000, "flac")
    analyzer, fake = _analyzer([(2.0, 3.0, "collector", 0), (0.5, 1.5, "debtor", 1)])
    rep = analyzer.analyze(path)
    assert sorted(fake.calls) == [0, 1]
    assert [(s.text, s.channel) for s in rep.segments] == [("debtor", 1), ("collector", 0)]
    assert rep.channels == 2


def test_transcripts_cached_and_rebuilt_when_corrupt(tmp_path, cache):
    path = write_audio(tmp_path / "a.wav", tone(3.0), 16000, "wav")
    analyzer, fake = _analyzer([(0.0, 3.0, VIOLATION)])
    first = analyzer.analyze(path)
    second = analyzer.analyze(path)
    assert len(fake.calls) == 1  # second run re-scored from the cache
    assert [f.to_dict() for f in first.findings] == [f.to_dict() for f in second.findings]
    entry = next(cache.rglob("*.json"))
    data = json.loads(entry.read_text(encoding="utf-8"))
    data["body"]["segments"][0]["text"] = "篡改过的文字"
    entry.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    third = analyzer.analyze(path)
    assert len(fake.calls) == 2  # checksum mismatch: transcribed again
    assert third.segments[0].text == VIOLATION


def test_no_cache_option(tmp_path, cache):
    path = write_audio(tmp_path / "a.wav", tone(2.0), 16000, "wav")
    analyzer, fake = _analyzer([(0.0, 2.0, LAWFUL)], use_cache=False)
    analyzer.analyze(path)
    analyzer.analyze(path)
    assert len(fake.calls) == 2 and not cache.exists()


def test_bad_input_raises_input_error(tmp_path):
    bad = tmp_path / "notes.mp3"
    bad.write_text("不是录音", encoding="utf-8")
    with pytest.raises(InputError) as e:
        _analyzer([])[0].analyze(bad)
    assert str(bad) in str(e.value)
