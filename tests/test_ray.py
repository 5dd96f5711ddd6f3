"""The Ray engine gives the local engine's output, with each actor loading its models once.

Runs a private Ray on this machine with two workers and a fake transcriber (the detector,
decoding and reports are real), so it takes seconds, not minutes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from audiofiles import tone, write_audio
from fakes import FakeTranscriber

from analyzer import engine_ray
from analyzer.batch import run_local
from analyzer.errors import CallauditError, ModelError

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

LINES = [
    (0.0, 2.0, "你好，我是平台的客服，提醒你按时还款。"),
    (2.0, 4.0, "今天不还钱，我们就上门找你家里人。"),
]


class FakeFactory:
    """Picklable factory like make_analyzer; appends its pid to `log` each time it builds
    an Analyzer, so a test can count model loads per worker process."""

    def __init__(self, log: Path, fail: bool = False):
        self.log = str(log)
        self.fail = fail

    def __call__(self):
        from analyzer.pipeline import Analyzer, AnalyzerOptions

        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")
        if self.fail:
            raise ModelError("无法加载语音识别模型 fake：测试用的失败。")
        return Analyzer(AnalyzerOptions(use_cache=False), transcriber=FakeTranscriber(LINES))


@pytest.fixture(scope="module")
def ray_env(tmp_path_factory):
    """Environment for Ray's worker processes, which inherit it: they import the test helpers
    and the analyzer package from here and write nothing to the user's cache."""
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'callaudit[ray]'")
    mp = pytest.MonkeyPatch()
    path = os.pathsep.join([str(TESTS), str(REPO), os.environ.get("PYTHONPATH", "")])
    mp.setenv("PYTHONPATH", path)
    mp.setenv("CALLAUDIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def shared_ray(ray_env):
    """One private Ray for the tests below, started the way run_ray starts its own."""
    ray = engine_ray.import_ray()
    assert engine_ray._connect(ray, None, workers=2, cpus_per_worker=1.0)
    yield ray
    ray.shutdown()


@pytest.fixture
def archive(tmp_path):
    """Four recordings (distinct content), one text file, one path that does not exist."""
    folder = tmp_path / "archive"
    folder.mkdir()
    paths = []
    for i, kind in enumerate(["wav", "mp3", "m4a", "flac"]):
        name = f"1380013800{i}-25031{i}0930.{kind}"
        paths.append(write_audio(folder / name, tone(3.0, freq=300 + 100 * i), 16000, kind))
    notes = folder / "notes.mp3"
    notes.write_text("这不是录音", encoding="utf-8")
    paths += [notes, folder / "missing.wav"]
    return paths


def _by_path(results):
    out = {}
    for path, report, error in results:
        assert path not in out, f"{path} reported twice"
        out[path] = (report.to_dict() if report is not None else None, error)
    return out


def test_ray_factory_failure_is_a_user_error(ray_env, archive, tmp_path):
    """Runs first, on a Ray that run_ray starts itself and must stop, even on failure."""
    import ray

    assert not ray.is_initialized()
    with pytest.raises(CallauditError, match="无法加载语音识别模型"):
        list(engine_ray.run_ray(archive, FakeFactory(tmp_path / "x.log", fail=True), workers=2))
    assert not ray.is_initialized()
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"


def test_ray_output_identical_to_local(shared_ray, archive, tmp_path):
    local = _by_path(run_local(archive, FakeFactory(tmp_path / "local.log"), workers=1))
    loads = tmp_path / "ray.log"
    remote = _by_path(engine_ray.run_ray(archive, FakeFactory(loads), workers=2))

    assert remote == local
    assert set(remote) == {str(p) for p in archive}
    # The fake analyzer really ran: audio files have reports with findings, bad ones errors.
    for p in archive[:4]:
        report, error = remote[str(p)]
        assert error is None and report["file"] == str(p)
        assert any(f["category"] == "threat" for f in report["findings"])
    for p in archive[4:]:
        report, error = remote[str(p)]
        assert report is None and error
    # Two workers, each built its Analyzer exactly once, in its own process (not the driver).
    pids = loads.read_text().split()
    assert len(pids) == 2 and len(set(pids)) == 2 and str(os.getpid()) not in pids
    assert shared_ray.is_initialized(), "a Ray it did not start is left running"


def test_ray_ship_audio_reports_original_paths(shared_ray, archive, tmp_path):
    """A cluster without shared storage gets the bytes; reports still name the user's file."""
    local = _by_path(run_local(archive, FakeFactory(tmp_path / "local.log"), workers=1))
    shipped = _by_path(
        engine_ray.run_ray(archive, FakeFactory(tmp_path / "ray.log"), workers=2, ship_audio=True)
    )
    assert shipped == local


def test_no_paths_starts_nothing(ray_env, tmp_path):
    assert list(engine_ray.run_ray([], FakeFactory(tmp_path / "x.log"), workers=2)) == []
    assert not (tmp_path / "x.log").exists()


def test_missing_ray_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(CallauditError, match=r"pip install 'callaudit\[ray\]'"):
        engine_ray.import_ray()
