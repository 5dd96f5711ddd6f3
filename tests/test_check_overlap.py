"""scripts/check_overlap.py: a new blind set's collisions are found, the references never shown."""

import importlib.util
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("check_overlap", ROOT / "scripts" / "check_overlap.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _set(path: Path, *texts: str) -> Path:
    turns = [{"speaker": "collector", "text": t, "labels": []} for t in texts]
    path.write_text(yaml.safe_dump({"calls": [{"id": "x01", "scenario": "测试", "turns": turns}]},
                                   allow_unicode=True), encoding="utf-8")
    return path


def test_collisions_fail_and_only_the_sets_own_words_are_printed(tmp_path, capsys):
    secret = "参考文本里独有的一句很长的话"
    ref = _set(tmp_path / "ref.yaml", f"{secret}。别的内容也在这里出现了。")
    own = _set(tmp_path / "own.yaml", "今天天气真不错，适合出门散步。", "别的内容也在这里出现了。")
    assert _script().main([str(own), str(ref)]) == 1
    out = capsys.readouterr().out
    assert "别的内容也在这里出现了" in out  # this set's own colliding clause
    assert secret not in out


def test_a_clean_set_passes(tmp_path):
    ref = _set(tmp_path / "ref.yaml", "参考文本里独有的一句很长的话。")
    own = _set(tmp_path / "own.yaml", "今天天气真不错，适合出门散步。")
    assert _script().main([str(own), str(ref)]) == 0
