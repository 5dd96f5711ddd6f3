"""scripts/calls_to_corpus.py: retired evaluation turns go to the right corpus files, once."""

from pathlib import Path

import yaml
from scripts_helpers import load_script, tiny_corpus

from analyzer import classifier as C


def _script():
    return load_script("calls_to_corpus")


_corpus = tiny_corpus


def _calls(folder: Path, threat_text: str) -> Path:
    folder.mkdir()
    turns = [
        {"speaker": "collector", "text": threat_text, "labels": ["threat", "third_party"]},
        {"speaker": "debtor", "text": "你们这是\t威胁我", "labels": []},
        {"speaker": "collector", "text": "可以申请分期还款", "labels": []},
        {"speaker": "debtor", "text": "……", "labels": []},  # a pause: no row
    ]
    data = {"calls": [{"id": "x01", "file": "a.mp3", "turns": turns}]}
    (folder / "dialogues.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                           encoding="utf-8")
    return folder


def rows(path: Path) -> list[list[str]]:
    return [ln.split("\t") for ln in path.read_text(encoding="utf-8").splitlines()[1:]]


def test_turns_go_where_their_labels_and_speakers_say(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    calls = _calls(tmp_path / "set", "再不还就找人去你爸妈家")
    assert _script().main([str(calls), "--corpus", str(corpus)]) == 0
    for cat in ("threat", "third_party"):
        assert ["再不还就找人去你爸妈家", "call"] in rows(corpus / f"{cat}.tsv")
    assert ["再不还就找人去你爸妈家", "call"] not in rows(corpus / "insult.tsv")
    lawful = rows(corpus / "lawful.tsv")
    assert ["你们这是 威胁我", C.OTHER_PARTY_KIND] in lawful  # the tab cannot split the row
    assert ["可以申请分期还款", "call"] in lawful
    assert ["您好，请问是本人吗", "service"] in lawful  # the corpus's own rows stay
    assert not any(r[0] == "……" for r in lawful)
    # The result is a corpus the trainer accepts, with the labels merged on one example.
    examples, _ = C.load_corpus(corpus)
    merged = [e for e in examples if e.text == "再不还就找人去你爸妈家"]
    assert len(merged) == 1 and merged[0].labels == {"threat", "third_party"}


def test_heard_rows_with_a_turns_text_stay(tmp_path):
    """Whisper may write a turn word for word; its heard row (another set's, or this one's)
    is not a stale script row, and a training set's heard rows cannot be rebuilt here."""
    corpus = _corpus(tmp_path / "corpus")
    lawful = corpus / "lawful.tsv"
    with lawful.open("a", encoding="utf-8") as f:
        f.write("可以申请分期还款\theard:other\n可以申请分期还款\tcall\n")
    calls = _calls(tmp_path / "set", "再不还就找人去你爸妈家")
    assert _script().main([str(calls), "--corpus", str(corpus)]) == 0
    kept = [r for r in rows(lawful) if r[0] == "可以申请分期还款"]
    assert sorted(kept) == [["可以申请分期还款", "call"], ["可以申请分期还款", "heard:other"]]


def test_corpus_files_keep_their_permissions(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    for p in corpus.iterdir():
        p.chmod(0o644)
    _script().main([str(_calls(tmp_path / "set", "再不还就找人去你爸妈家")), "--corpus", str(corpus)])
    assert {oct(p.stat().st_mode & 0o777) for p in corpus.iterdir()} == {"0o644"}


def test_a_rerun_replaces_instead_of_duplicating(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    calls = _calls(tmp_path / "set", "再不还就找人去你爸妈家")
    script = _script()
    script.main([str(calls), "--corpus", str(corpus)])
    first = {p.name: p.read_text(encoding="utf-8") for p in corpus.iterdir()}
    script.main([str(calls), "--corpus", str(corpus)])
    assert {p.name: p.read_text(encoding="utf-8") for p in corpus.iterdir()} == first


def test_a_rerun_keeps_the_rows_in_place(tmp_path):
    """Rows added since (another set's, written by hand) stay after the set's rows: a rerun
    does not move the set's rows to the end of the file (a 20,000-line diff on the corpus)."""
    corpus = _corpus(tmp_path / "corpus")
    calls = _calls(tmp_path / "set", "再不还就找人去你爸妈家")
    script = _script()
    script.main([str(calls), "--corpus", str(corpus)])
    lawful = corpus / "lawful.tsv"
    with lawful.open("a", encoding="utf-8") as f:
        f.write("后来加的一句\tservice\n可以申请分期还款\tcall\n")  # and a duplicate row
    before = lawful.read_text(encoding="utf-8").splitlines()
    script.main([str(calls), "--corpus", str(corpus)])
    after = lawful.read_text(encoding="utf-8").splitlines()
    assert after == before[:-1]  # in place, the duplicate gone
    assert after[-1] == "后来加的一句\tservice"


def test_sentences_of_protected_sets_stay_out(tmp_path):
    corpus = _corpus(tmp_path / "corpus")
    calls = _calls(tmp_path / "set", "没啥意思就是提个醒。再不还就找人去你爸妈家。")
    blind = _calls(tmp_path / "blind", "没啥意思，就是提个醒！")
    assert _script().main([str(calls), "--corpus", str(corpus), "--protect", str(blind)]) == 0
    threat = [r[0] for r in rows(corpus / "threat.tsv")]
    assert "再不还就找人去你爸妈家。" in threat
    assert not any("提个醒" in t for t in threat)
    # Without protection the whole turn goes in.
    assert _script().main([str(calls), "--corpus", str(corpus), "--protect"]) == 0
    assert "没啥意思就是提个醒。再不还就找人去你爸妈家。" in [r[0] for r in rows(corpus / "threat.tsv")]
