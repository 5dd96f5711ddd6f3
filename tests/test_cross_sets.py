"""scripts/cross_sets.py: leaving a retired set out really takes its turns out of training."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from analyzer.classifier import heard_set, load_corpus

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cross():
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location("cross_sets", ROOT / "scripts" / "cross_sets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_row_made_of_the_sets_sentences_is_left_out(cross):
    calls = [{"turns": [{"text": "今天不还钱。我们就上门。你自己看着办！"}]}]
    keys = cross.set_sentences(calls)
    assert cross.from_set("今天不还钱。你自己看着办！", keys)  # a turn less a protected sentence
    assert cross.from_set("今天不还钱，我们就上门。", keys) is False  # punctuation differs: 上门 kept
    assert not cross.from_set("今天不还钱。明天再说。", keys)  # a sentence of its own


def test_every_retired_set_has_rows_in_the_corpus(cross):
    """A set whose rows the filter cannot find would be scored in-sample, silently."""
    assert cross.RETIRED, "scripts/eval.py names no retired set"
    examples, _ = load_corpus(ROOT / "corpus")
    for name in cross.RETIRED:
        calls = json.loads((ROOT / "eval" / name / "labels.json").read_text("utf-8"))["calls"]
        keys = cross.set_sentences(calls)
        turns = sum(len(c["turns"]) for c in calls)
        dropped = sum(cross.from_set(e.text, keys) for e in examples)
        # Nearly every turn is a row (a few are left out for sharing a sentence with
        # another set, a few merge as duplicates).
        assert dropped >= 0.8 * turns, (name, dropped, turns)


def test_config_changes_are_checked(cross):
    assert cross.parse_config(["C=4", "min_df=1"]).C == 4
    with pytest.raises(SystemExit):
        cross.parse_config(["nonsense=1"])
    with pytest.raises(SystemExit):
        cross.parse_config(["C"])


def test_heard_rows_come_from_training_sets_and_leave_with_their_set(cross):
    """What Whisper heard in a set's recordings (heard_to_corpus) is training data only for
    a retired set or a training call set, and leaving the set out leaves it out too."""
    examples, _ = load_corpus(ROOT / "corpus")
    training = set(cross.RETIRED) | {p.name for p in (ROOT / "corpus" / "calls").iterdir()
                                     if p.is_dir()}
    heard = {}
    for e in examples:
        if (name := heard_set(e.kind)) is not None:
            heard.setdefault(name, []).append(e)
    assert heard, "no heard rows in the corpus"
    assert set(heard) <= training, set(heard) - training
    for name in cross.RETIRED:
        assert heard.get(name), f"no heard rows of {name}"
        kept = [e for e in examples if not cross.is_heard_of(e.kind, {name})]
        assert len(examples) - len(kept) == len(heard[name])


def test_error_lines_show_the_turn_heard_and_the_false_finding(cross):
    """--errors: a missed label shows the script's turn and what was heard in its time on its
    channel; a false finding shows the segments it came from."""
    from analyzer.evaluation import Turn, match_call
    from analyzer.types import Finding, Segment

    turns = [Turn("c1", 0, 0.0, 4.0, "把验证码念给我。", ("sensitive_info",), "collector", 0),
             Turn("c1", 1, 5.0, 8.0, "好的我明天还。", (), "debtor", 1)]
    segments = [Segment(0, 0.5, 3.5, "把院正马念给我", channel=0),
                Segment(1, 0.5, 3.5, "喂？", channel=1),  # same time, other party's channel
                Segment(2, 5.0, 8.0, "好的我明天还", channel=1)]
    false = Finding("threat", 5.0, 8.0, 0.9, "high", [], ["model:threat"], "", [2], channel=1)
    m = match_call("c1", [false], turns, lawful=False)
    lines = cross.error_lines("setA", {"matches": [m], "segments": {"c1": segments}})
    text = "\n".join(lines)
    assert "MISS sensitive_info c1#0 script: 把验证码念给我。" in text
    assert "heard: 把院正马念给我\n" in text + "\n"  # not the debtor's 喂？
    assert "FALSE threat c1 5.0-8.0: 好的我明天还 [model:threat]" in text


def test_kept_classifiers_are_reused_only_for_the_same_corpus_and_config(cross, tmp_path):
    import io

    import numpy as np

    # A stand-in for training: the shipped artifact's meta and arrays, counted.
    meta = json.loads((ROOT / "models" / "classifier.json").read_text("utf-8"))
    meta = {k: v for k, v in meta.items() if k not in ("sha256", "format_version")}
    with np.load(io.BytesIO((ROOT / "models" / "classifier.npz").read_bytes())) as z:
        arrays = {k: z[k] for k in z.files}
    trained = []

    def train():
        trained.append(1)
        return meta, arrays, 123

    stamp = {"set": "holdout", "corpus_sha256": "abc", "config": {"C": 8.0, "range": (0.25, 0.9)}}
    folder = tmp_path / "holdout"
    clf, dropped = cross.kept_or_trained(folder, stamp, train)
    assert (len(trained), dropped) == (1, 123) and (folder / "classifier.npz").is_file()
    again, dropped = cross.kept_or_trained(folder, stamp, train)
    assert (len(trained), dropped) == (1, 123)  # read back, tuple and all, not retrained
    assert np.array_equal(again.thresholds, clf.thresholds)
    text = "你再不还钱，我明天就去你单位找你领导。"
    assert np.allclose(again.predict_proba([text]), clf.predict_proba([text]))
    cross.kept_or_trained(folder, dict(stamp, corpus_sha256="def"), train)  # corpus changed
    assert len(trained) == 2
    (folder / "classifier.npz").write_bytes(b"broken")  # a damaged file is retrained, not fatal
    cross.kept_or_trained(folder, dict(stamp, corpus_sha256="def"), train)
    assert len(trained) == 3
    _, dropped = cross.kept_or_trained(None, stamp, train)  # no folder: nothing kept
    assert (len(trained), dropped) == (4, 123)
