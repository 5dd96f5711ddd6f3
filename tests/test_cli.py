"""CLI behaviour with a fake transcriber: exit statuses, stdout vs stderr, formats."""

import json
import subprocess
import sys

import pytest
from audiofiles import tone, write_audio
from click.testing import CliRunner
from fakes import FakeTranscriber

from analyzer import cli
from analyzer.pipeline import Analyzer, AnalyzerOptions

THREAT = "你再不还钱，我们的人就去你家门口堵你。"
LAWFUL = "您好，您的借款已逾期，逾期会上报征信，请通过官方APP还款。"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))


def _use_fake(monkeypatch, text):
    def fake_analyzer(model, beam_size, threshold, tz="Asia/Shanghai"):
        return Analyzer(AnalyzerOptions(tz=tz), transcriber=FakeTranscriber([(0.5, 2.5, text)]))

    monkeypatch.setattr(cli, "_analyzer", fake_analyzer)


def _run(args):
    return CliRunner().invoke(cli.cli, args, catch_exceptions=False)


@pytest.fixture
def wav(tmp_path):
    return write_audio(tmp_path / "call.wav", tone(3.0), 16000, "wav")


def test_exit_0_when_no_findings(monkeypatch, wav):
    _use_fake(monkeypatch, LAWFUL)
    r = _run(["analyze", str(wav)])
    assert r.exit_code == 0
    assert "未发现" in r.stdout
    assert "正在分析" in r.stderr and "正在分析" not in r.stdout


def test_exit_1_with_findings_and_json(monkeypatch, wav):
    _use_fake(monkeypatch, THREAT)
    r = _run(["analyze", str(wav), "--format", "json"])
    assert r.exit_code == 1
    data = json.loads(r.stdout)  # stdout holds the report alone
    assert data["findings"][0]["category"] == "threat"
    assert data["file"] == str(wav)


def test_text_report_shows_time_and_category(monkeypatch, wav):
    _use_fake(monkeypatch, THREAT)
    r = _run(["analyze", str(wav)])
    assert r.exit_code == 1
    assert "00:00" in r.stdout and "威胁恐吓" in r.stdout and "家门口" in r.stdout


def test_several_files_give_a_json_array(monkeypatch, tmp_path, wav):
    _use_fake(monkeypatch, LAWFUL)
    other = write_audio(tmp_path / "b.mp3", tone(2.0), 16000, "mp3")
    r = _run(["analyze", str(wav), str(other), "--format", "json"])
    assert r.exit_code == 0
    assert [d["file"] for d in json.loads(r.stdout)] == [str(wav), str(other)]


def test_exit_2_on_bad_file_names_it_and_keeps_other_reports(monkeypatch, tmp_path, wav):
    _use_fake(monkeypatch, THREAT)
    bad = tmp_path / "broken.amr"
    bad.write_bytes(b"not audio at all" * 10)
    r = _run(["analyze", str(bad), str(wav), "--format", "json"])
    assert r.exit_code == 2
    assert str(bad) in r.stderr and "Traceback" not in r.stderr
    assert json.loads(r.stdout)["file"] == str(wav)


def test_exit_2_on_usage_errors(monkeypatch, wav):
    _use_fake(monkeypatch, LAWFUL)
    assert _run(["analyze"]).exit_code == 2
    assert _run(["analyze", str(wav), "--format", "pdf"]).exit_code == 2
    assert _run(["batch", str(wav)]).exit_code == 2  # a file, not a folder
    assert _run(["analyze", str(wav), "--tz", "Mars/Olympus"]).exit_code == 2


def test_out_dir_and_formats(monkeypatch, tmp_path, wav):
    _use_fake(monkeypatch, THREAT)
    out = tmp_path / "out"
    for fmt, ext in (("json", "json"), ("md", "md"), ("html", "html"), ("text", "txt")):
        r = _run(["analyze", str(wav), "--format", fmt, "--out", str(out)])
        assert r.exit_code == 1 and r.stdout == ""
        assert (out / f"call.{ext}").stat().st_size > 100


def test_clips_and_redact(monkeypatch, tmp_path, wav):
    _use_fake(monkeypatch, THREAT + "回电13812345678")
    r = _run(["analyze", str(wav), "--clips", str(tmp_path / "clips"), "--redact", "--format", "json"])
    assert r.exit_code == 1
    assert list((tmp_path / "clips" / "call").glob("*_threat.wav"))
    assert "13812345678" not in r.stdout and "5678" in r.stdout


def test_every_command_has_help():
    for name, command in cli.cli.commands.items():
        r = _run([name, "-h"])
        assert r.exit_code == 0 and "Usage" in r.stdout, name
        assert command.help


def test_python_m_analyzer_and_bad_input_without_traceback(tmp_path):
    bad = tmp_path / "empty.m4a"
    bad.write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "-m", "analyzer", "analyze", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("错误")]
    assert len(lines) == 1 and str(bad) in lines[0] and "为空" in lines[0]
    assert "Traceback" not in proc.stderr
