"""scripts/heard_to_corpus.py: what Whisper heard in a labelled call becomes corpus rows of the
turn it belongs to, with the set named, once."""

import json
from pathlib import Path

from scripts_helpers import load_script, tiny_corpus

from analyzer import classifier as C
from analyzer.types import Segment


def _script():
    return load_script("heard_to_corpus")


_corpus = tiny_corpus


TURNS = [
    {"speaker": "collector", "text": "再不还钱，我们就去你家找你。", "labels": ["threat"],
     "start": 0.0, "end": 4.0},
    {"speaker": "debtor", "text": "你这是威胁我吗？", "labels": [], "start": 4.5, "end": 6.0},
    {"speaker": "collector", "text": "可以申请分期还款。", "labels": [], "start": 6.5, "end": 9.0},
]
# As Whisper might hear the call: the threat cut in two and garbled, one segment across turns.
HEARD = [
    Segment(0, 0.0, 2.1, "再不还前,"),
    Segment(1, 2.1, 4.1, "我们就去你家找你。"),
    Segment(2, 4.4, 6.1, "你这是威胁我吗?"),
    Segment(3, 5.5, 7.0, "吗可以"),  # half in each of two turns: no row gets it
    Segment(4, 7.0, 9.0, "申请分期还款。"),
]


def _set(folder: Path, turns=TURNS) -> Path:
    folder.mkdir()
    (folder / "labels.json").write_text(json.dumps(
        {"calls": [{"id": "x01", "file": "x01.mp3", "turns": turns}]}, ensure_ascii=False),
        encoding="utf-8")
    return folder


def rows(path: Path) -> list[list[str]]:
    return [ln.split("\t") for ln in path.read_text(encoding="utf-8").splitlines()[1:]]


def test_segments_go_to_the_turn_they_mostly_lie_in():
    mod = _script()
    assert mod.turn_texts(TURNS, HEARD) == {0: "再不还前,我们就去你家找你。",
                                            1: "你这是威胁我吗?", 2: "申请分期还款。"}
    # On a stereo call a segment only belongs to a turn of its own channel.
    stereo = [dict(t, channel=0 if t["speaker"] == "collector" else 1) for t in TURNS]
    assert mod.turn_texts(stereo, [Segment(0, 0.0, 4.0, "对面的话", channel=1)]) == {}


def test_heard_rows_are_labelled_like_their_turns_and_name_the_set(tmp_path):
    mod = _script()
    corpus = _corpus(tmp_path / "corpus")
    folder = _set(tmp_path / "setA")
    got = mod.heard_rows(folder, lambda path: HEARD, protected=set())
    mod.merge(corpus, got, {"setA"})
    assert ["再不还前,我们就去你家找你。", "heard:setA"] in rows(corpus / "threat.tsv")
    lawful = rows(corpus / "lawful.tsv")
    assert ["你这是威胁我吗?", "debtor:heard:setA"] in lawful
    assert ["申请分期还款。", "heard:setA"] in lawful
    assert ["您好，请问是本人吗", "service"] in lawful
    examples, _ = C.load_corpus(corpus)
    by_text = {e.text: e for e in examples}
    assert by_text["再不还前,我们就去你家找你。"].labels == {"threat"}
    # Heard debtor rows are the other party's words, but the speaker-role head reads only the
    # scripts' rows (a heard row's side is less sure): every heard row says it is one.
    assert C.is_other_party(by_text["你这是威胁我吗?"])
    assert not C.is_other_party(by_text["申请分期还款。"])
    assert C.base_kind("debtor:heard:setA") == "debtor" and C.base_kind("service") == "service"
    assert all(C.is_heard(e.kind) for e in examples if e.kind.endswith(":setA"))
    assert not any(C.is_heard(k) for k in ("debtor", "service", "call", ""))


def test_a_rerun_replaces_the_sets_heard_rows_only(tmp_path):
    mod = _script()
    corpus = _corpus(tmp_path / "corpus")
    mod.merge(corpus, mod.heard_rows(_set(tmp_path / "setB"), lambda p: HEARD[:2], set()), {"setB"})
    folder = _set(tmp_path / "setA")
    mod.merge(corpus, mod.heard_rows(folder, lambda p: HEARD, set()), {"setA"})
    first = {p.name: p.read_text(encoding="utf-8") for p in corpus.iterdir()}
    mod.merge(corpus, mod.heard_rows(folder, lambda p: HEARD, set()), {"setA"})
    assert {p.name: p.read_text(encoding="utf-8") for p in corpus.iterdir()} == first
    # Heard differently now (another model): setA's old rows go, setB's stay.
    mod.merge(corpus, mod.heard_rows(folder, lambda p: [Segment(0, 0.0, 4.0, "再不还钱就去找你")], set()),
              {"setA"})
    threat = rows(corpus / "threat.tsv")
    assert ["再不还钱就去找你", "heard:setA"] in threat
    assert ["再不还前,我们就去你家找你。", "heard:setA"] not in threat
    assert ["再不还前,我们就去你家找你。", "heard:setB"] in threat
    assert ["老句子threat", "direct"] in threat


def test_turns_with_a_protected_sentence_give_no_row(tmp_path):
    mod = _script()
    got = mod.heard_rows(_set(tmp_path / "setA"), lambda p: HEARD, protected={"可以申请分期还款"})
    assert ("申请分期还款。", "heard:setA") not in got[C.LAWFUL]
    assert ("再不还前,我们就去你家找你。", "heard:setA") in got["threat"]


def test_only_the_named_sets_heard_rows_count_as_theirs():
    mod = _script()
    assert mod.is_heard_of("heard:holdout5", {"holdout5"})
    assert mod.is_heard_of("debtor:heard:holdout5", {"holdout5"})
    assert not mod.is_heard_of("heard:holdout5", {"holdout6"})
    assert not mod.is_heard_of("debtor", {"holdout5"})
    assert not mod.is_heard_of("call", {"call"})
    assert C.heard_set("debtor:heard:holdout5") == "holdout5"
    assert C.heard_set("heard:kin") == "kin"
    assert C.heard_set("debtor") is None and C.heard_set("call") is None


def test_the_renderer_can_leave_out_a_pause_written_as_a_turn(tmp_path):
    """Training scripts write a silence as a turn "……"; make_calls renders them for
    heard_to_corpus with --skip-silent instead of refusing the file."""
    mk = load_script("make_calls")
    path = tmp_path / "d.yaml"
    path.write_text(
        "calls:\n- id: a01\n  file: a01.mp3\n  number: '17000000000'\n  time: '2025-01-01 10:00'\n"
        "  phone: placeholder\n  scenario: 测试\n  turns:\n"
        "  - {speaker: collector, text: 你好，我是客服。, labels: []}\n"
        "  - {speaker: debtor, text: ……, labels: []}\n"
        "  - {speaker: collector, text: 再不还就上门。, labels: [threat]}\n",
        encoding="utf-8")
    calls = mk.load_dialogues(path)
    assert [t.text for t in calls[0].turns][1] == "……"
    kept = mk.speakable(calls)
    assert [t.text for t in kept[0].turns] == ["你好，我是客服。", "再不还就上门。"]
    assert kept[0].turns[1].labels == ["threat"]
