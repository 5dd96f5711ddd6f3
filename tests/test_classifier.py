"""Classifier: deterministic training, safe loading, numpy/sklearn parity, shipped model."""

import io
import json
import zipfile

import numpy as np
import pytest

from analyzer import classifier as C
from analyzer.errors import ModelError, RuleError
from analyzer.types import CATEGORIES, Segment

# A tiny corpus written for these tests (not taken from corpus/).
TINY = {
    "threat": ["今天不还钱我们就上门找你", "小心你家里人出门的时候", "信不信我找人收拾你",
               "晚上我们就去你家坐坐", "你等着，我们的人马上到你家", "再不还你就别想好过"],
    "exposure": ["把你欠钱的事发到朋友圈", "我要把你照片贴满小区", "让你们村的人都知道你是老赖",
                 "我们会在网上曝光你的身份证", "把你的欠款信息发到家族群", "给你做个老赖海报发出去"],
    "third_party": ["我已经打给你爸妈了", "明天我打你单位领导的电话", "你通讯录的人我挨个打",
                    "我去找你老婆要这笔钱", "你同事都会接到我们的电话", "我给你朋友打电话让他们催你"],
    "false_legal": ["你这是诈骗罪要坐牢的", "明天就有警察来抓你", "不还钱你孩子不能上大学",
                    "你已经被立案了马上拘留", "这是刑事案件要判三年", "法院今天就冻结你全家的账户"],
    "impersonation": ["我是公安局经侦大队的", "这里是人民法院执行局", "我是检察院的工作人员",
                      "我是派出所的民警", "我们是律师事务所的律师", "我是法院的法官"],
    "sensitive_info": ["把验证码念给我听", "你银行卡密码是多少", "把短信里的六位数字报给我",
                       "告诉我你的支付密码", "把手机收到的验证码发过来", "你网银的登录密码说一下"],
    "private_payment": ["钱转到我个人卡上", "扫我的微信收款码", "直接转给我本人就行",
                        "把钱打到我支付宝", "转到这个私人账户", "你加我微信把钱转我"],
    "insult": ["你这个废物", "你就是个不要脸的老赖", "你脑子有病吧", "你个人渣", "滚你妈的",
               "真是个垃圾东西"],
    "harassment": ["我一天给你打一百个电话", "半夜我也一直打", "你不接我就一直打到你接",
                   "我每小时都打给你", "让你手机响一整晚", "我们会不停地打直到你还钱"],
}
LAWFUL = ["您好，请问是张先生本人吗", "您的借款已经逾期三天了", "请您尽快通过官方渠道还款",
          "逾期会上报征信，影响您的信用", "不要把验证码告诉任何人", "请通过对公账户还款",
          "如果有困难可以申请分期", "您可以拨打官方客服热线核实", "感谢您的接听，再见",
          "请在十五号之前还款", "您这笔欠款一共三千元", "平台有权依法起诉",
          "我们不会联系您的家人", "请问您什么时候方便还款", "今天天气不错",
          "快递放在门口了", "你这是在威胁我吗", "我下个月发工资就还", "我要去投诉你们",
          "您的账单已经出了", "可以在官方APP里查看账单", "好的我记录一下您的还款时间"]


# The other party speaking (lawful rows of kind "debtor"): what the speaker-role head learns.
DEBTOR = ["我现在手头紧，下个月再还", "你们别再给我打电话了", "你这是在吓唬我吧", "我明天就去投诉",
          "我已经还过一部分了", "求求你们宽限几天", "你们是不是骗子", "我没钱，爱怎么样怎么样"]


def write_corpus(root, extra_lawful=(), debtor=()):
    root.mkdir(parents=True, exist_ok=True)
    for cat, lines in TINY.items():
        (root / f"{cat}.tsv").write_text(
            "text\tstyle\n" + "".join(f"{t}\tdirect\n" for t in lines), encoding="utf-8"
        )
    rows = [(t, "collector") for t in (*LAWFUL, *extra_lawful)] + [(t, "debtor") for t in debtor]
    (root / "lawful.tsv").write_text(
        "text\tkind\n" + "".join(f"{t}\t{k}\n" for t, k in rows), encoding="utf-8"
    )
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"))
    out = tmp_path_factory.mktemp("model")
    metrics = C.train(corpus, out, seed=0)
    return corpus, out, metrics


def copy_model(src, dst):
    dst.mkdir()
    for name in (C.JSON_NAME, C.NPZ_NAME):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_training_is_deterministic(trained, tmp_path):
    corpus, out, metrics = trained
    again = C.train(corpus, tmp_path / "again", seed=0)
    assert again == metrics
    for name in (C.JSON_NAME, C.NPZ_NAME, C.CARD_NAME):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()
    other = C.train(corpus, tmp_path / "seed1", seed=1)
    assert (tmp_path / "seed1" / C.NPZ_NAME).read_bytes() != (out / C.NPZ_NAME).read_bytes()
    assert other["sizes"]["heldout_rows"] == metrics["sizes"]["heldout_rows"]


def test_split_is_stratified(trained):
    corpus, _, metrics = trained
    examples, _ = C.load_corpus(corpus)
    train, held = C.split_holdout(examples, 0.2, seed=0)
    assert len(train) + len(held) == len(examples) == 9 * 6 + len(LAWFUL)
    assert not {e.text for e in train} & {e.text for e in held}
    for cat in CATEGORIES:
        assert sum(cat in e.labels for e in held) == 1  # round(6 * 0.2)
    assert sum(not e.labels for e in held) == round(len(LAWFUL) * 0.2)
    assert metrics["sizes"]["heldout_rows"] == len(held)


def test_artifact_files_and_card(trained):
    _, out, metrics = trained
    meta = json.loads((out / C.JSON_NAME).read_text(encoding="utf-8"))
    assert meta["format_version"] == C.FORMAT_VERSION
    assert meta["categories"] == list(CATEGORIES)
    assert set(meta["libraries"]) >= {"scikit-learn", "numpy", "jieba"}
    assert meta["corpus_sha256"] == C.corpus_sha256(trained[0])
    card = (out / C.CARD_NAME).read_text(encoding="utf-8")
    assert meta["sha256"]["npz"] in card
    assert f"{metrics['per_category']['insult']['f1']:.3f}" in card
    with np.load(out / C.NPZ_NAME, allow_pickle=False) as z:
        assert all(z[n].dtype.kind == "f" for n in z.files)


def test_loaded_model_matches_sklearn(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", debtor=DEBTOR)
    examples, _ = C.load_corpus(corpus)
    config = C.TrainConfig(seed=0)
    model = C.fit(examples, config)
    vocab, arrays = model.arrays(np.full(len(CATEGORIES), 0.5))
    meta = {"categories": list(CATEGORIES), "vocabulary": vocab,
            "featurizer": C.featurizer_settings(),
            "userdict_sha256": model.featurizer.userdict_sha256}
    C.save_artifact(tmp_path / "m", meta, arrays)
    clf = C.load_classifier(tmp_path / "m")
    texts = ["今天不还钱我们就上门找你", "請把驗證碼念給我聽", "把验证马报给我", "", "。。。",
             "hello APP 123", "完全没见过的句子呢", "你这个废物，再不还钱就上门"]
    expected = model.predict_proba(texts)
    got = clf.predict_proba(texts)
    assert got.shape == (len(texts), 9)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert not np.allclose(got[0], got[1])  # not a constant model
    role = clf.other_party_proba(texts)
    np.testing.assert_allclose(role, model.role.predict_proba(model._matrix(texts))[:, 1],
                               rtol=0, atol=1e-12)
    assert role.std() > 0


def test_role_head_learns_who_speaks(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", debtor=DEBTOR)
    metrics = C.train(corpus, tmp_path / "m", seed=0)
    clf = C.load_classifier(tmp_path / "m")
    # Unseen lines: the debtor pleading and objecting vs the collector's demands.
    debtor, collector = clf.other_party_proba(["求你们别再打电话了，我下个月一定还",
                                               "今天不还钱我们就上门找你"])
    assert debtor > collector
    examples, _ = C.load_corpus(corpus)
    assert sum(e.kind == "debtor" for e in examples) == len(DEBTOR)
    _, held = C.split_holdout(examples, 0.2, seed=0)
    assert metrics["other_party"]["support"] == sum(e.kind == "debtor" for e in held)
    assert "Speaker-role head" in (tmp_path / "m" / C.CARD_NAME).read_text(encoding="utf-8")


def test_without_debtor_rows_nobody_is_set_aside(trained):
    clf = C.load_classifier(trained[1])  # the tiny corpus has no rows of kind "debtor"
    assert (clf.other_party_proba(["你这是在威胁我吗", "我要去投诉你们"]) < 1e-6).all()


def test_a_model_without_the_role_head_is_refused(trained, tmp_path):
    model = copy_model(trained[1], tmp_path / "m")
    with np.load(model / C.NPZ_NAME, allow_pickle=False) as z:
        arrays = {n: z[n] for n in z.files if not n.startswith("role_")}
    meta = json.loads((model / C.JSON_NAME).read_text(encoding="utf-8"))
    C.save_artifact(model, {k: v for k, v in meta.items() if k != "sha256"}, arrays)
    with pytest.raises(ModelError, match="callaudit train"):
        C.load_classifier(model)


def test_tampered_npz_is_refused(trained, tmp_path):
    model = copy_model(trained[1], tmp_path / "m")
    blob = bytearray((model / C.NPZ_NAME).read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (model / C.NPZ_NAME).write_bytes(bytes(blob))
    with pytest.raises(ModelError) as err:
        C.load_classifier(model)
    msg = str(err.value)
    assert C.NPZ_NAME in msg and "sha256" in msg and "callaudit train" in msg


def test_tampered_json_is_refused(trained, tmp_path):
    model = copy_model(trained[1], tmp_path / "m")
    meta = json.loads((model / C.JSON_NAME).read_text(encoding="utf-8"))
    meta["vocabulary"]["word"][0] = "篡改"
    (model / C.JSON_NAME).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ModelError, match=C.JSON_NAME):
        C.load_classifier(model)


def test_wrong_format_version_is_refused(trained, tmp_path):
    model = copy_model(trained[1], tmp_path / "m")
    meta = json.loads((model / C.JSON_NAME).read_text(encoding="utf-8"))
    meta["format_version"] = C.FORMAT_VERSION + 1
    (model / C.JSON_NAME).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ModelError) as err:
        C.load_classifier(model)
    assert "格式版本" in str(err.value) and "callaudit train" in str(err.value)


def resign(model, meta):
    """Rewrite classifier.json with valid hashes, as a careless or hostile editor would."""
    meta["sha256"]["json"] = C._sha256(C._canonical(meta))
    (model / C.JSON_NAME).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def test_other_featurizer_settings_are_refused(trained, tmp_path):
    model = copy_model(trained[1], tmp_path / "m")
    meta = json.loads((model / C.JSON_NAME).read_text(encoding="utf-8"))
    meta["featurizer"]["negation"] = not meta["featurizer"]["negation"]
    resign(model, meta)
    with pytest.raises(ModelError, match="特征提取"):
        C.load_classifier(model)


class Boom:
    """Unpickling this would call print; the loader must never get that far."""

    def __reduce__(self):
        return (print, ("unpickled!",))


def test_object_arrays_are_refused_even_with_valid_hashes(trained, tmp_path, capsys):
    model = copy_model(trained[1], tmp_path / "m")
    with np.load(model / C.NPZ_NAME, allow_pickle=False) as z:
        arrays = {n: z[n] for n in z.files}
    evil = np.empty(len(CATEGORIES), dtype=object)
    evil[:] = [Boom() for _ in CATEGORIES]
    arrays["thresholds"] = evil
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # pickles the object array
    (model / C.NPZ_NAME).write_bytes(buf.getvalue())
    # Re-sign the files as an attacker would, so only the object check can catch it.
    meta = json.loads((model / C.JSON_NAME).read_text(encoding="utf-8"))
    meta["sha256"]["npz"] = C._sha256(buf.getvalue())
    resign(model, meta)
    with pytest.raises(ModelError, match=C.NPZ_NAME):
        C.load_classifier(model)
    assert "unpickled" not in capsys.readouterr().out


def test_missing_and_corrupt_files(trained, tmp_path):
    with pytest.raises(ModelError, match="callaudit train"):
        C.load_classifier(tmp_path / "nowhere")
    model = copy_model(trained[1], tmp_path / "m")
    (model / C.JSON_NAME).write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="已损坏"):
        C.load_classifier(model)
    model = copy_model(trained[1], tmp_path / "m2")
    with zipfile.ZipFile(io.BytesIO((model / C.NPZ_NAME).read_bytes())) as z:
        assert "coef.npy" in z.namelist()


def test_corpus_errors_name_file_and_line(tmp_path):
    corpus = write_corpus(tmp_path / "c")
    with open(corpus / "insult.tsv", "a", encoding="utf-8") as f:
        f.write("只有一列没有风格\n")
    with pytest.raises(RuleError, match=r"insult\.tsv 第 8 行"):
        C.load_corpus(corpus)
    corpus = write_corpus(tmp_path / "d")
    (corpus / "threat.tsv").unlink()
    with pytest.raises(RuleError, match=r"threat\.tsv"):
        C.load_corpus(corpus)
    corpus = write_corpus(tmp_path / "e")
    (corpus / "lawful.tsv").write_text("text\tstyle\n你好\tx\n", encoding="utf-8")
    with pytest.raises(RuleError, match="第 1 行"):
        C.load_corpus(corpus)


def test_duplicates_merge_and_conflicts_are_counted(tmp_path):
    corpus = write_corpus(tmp_path / "c", extra_lawful=["我是派出所的民警。"])
    examples, stats = C.load_corpus(corpus)
    assert stats == {"duplicates": 1, "conflicts": 1}
    (dup,) = [e for e in examples if e.text.startswith("我是派出所的民警")]
    assert dup.labels == {"impersonation"}


class TableClassifier(C.Classifier):
    """Window mechanics with fixed probabilities per text (one category column used)."""

    def __init__(self, table):
        self.categories = tuple(CATEGORIES)
        self.thresholds = np.full(9, 0.5)
        self.table = table

    def predict_proba(self, texts):
        out = np.zeros((len(texts), 9))
        for i, t in enumerate(texts):
            out[i, 0] = self.table.get(t, 0.05)
        return out


def test_window_credits_split_sentences_but_not_a_neighbours_own_violation():
    clf = TableClassifier({"你再不还": 0.2, "我们就上门": 0.3, "你再不还我们就上门": 0.9,
                           "今天天气好": 0.01, "我们就上门今天天气好": 0.31,
                           "砍死你": 0.95, "好的砍死你": 0.93})
    w = clf.window_proba(["你再不还", "我们就上门", "今天天气好"])
    np.testing.assert_allclose(w.proba[:, 0], [0.9, 0.9, 0.01])
    assert list(w.source[:, 0]) == [1, -1, 0]
    # A neighbour's own violation is not pinned on an innocent segment.
    w = clf.window_proba(["好的", "砍死你"])
    np.testing.assert_allclose(w.proba[:, 0], [0.05, 0.95])
    # Not joinable (other speaker / long pause): each alone.
    w = clf.window_proba(["你再不还", "我们就上门"], joinable=[False])
    np.testing.assert_allclose(w.proba[:, 0], [0.2, 0.3])
    segs = [Segment(0, 0.0, 1.0, "你再不还", channel=0), Segment(1, 1.2, 2.0, "我们就上门", channel=1)]
    np.testing.assert_allclose(clf.score_segments(segs).proba[:, 0], [0.2, 0.3])
    segs = [Segment(0, 0.0, 1.0, "你再不还"), Segment(1, 9.0, 10.0, "我们就上门")]
    np.testing.assert_allclose(clf.score_segments(segs).proba[:, 0], [0.2, 0.3])
    segs = [Segment(0, 0.0, 1.0, "你再不还"), Segment(1, 1.5, 2.0, "我们就上门")]
    np.testing.assert_allclose(clf.score_segments(segs).proba[:, 0], [0.9, 0.9])
    # A hallucinated segment scores 0 and is not joined with its neighbour.
    segs = [Segment(0, 0.0, 1.0, "你再不还"), Segment(1, 1.5, 2.0, "我们就上门")]
    w = clf.score_segments(segs, skip=[False, True])
    np.testing.assert_allclose(w.proba[:, 0], [0.2, 0.0])
    assert clf.window_proba([]).proba.shape == (0, 9)


# --------------------------------------------------------------------------- shipped model


@pytest.fixture(scope="module")
def shipped():
    return C.load_classifier()  # models/ in the repository


CLEAR = {  # written for this test; not in corpus/
    "threat": "明天中午之前钱不到账，我带几个兄弟去你家里砸东西",
    "exposure": "再拖着不还，我就把你的欠条和身份证照片发到你们公司群里",
    "third_party": "你不接电话是吧，那我现在就打给你爸妈和你们领导",
    "false_legal": "你这已经构成诈骗罪了，警察明天就去你家抓人，准备坐牢吧",
    "impersonation": "你好，我是市公安局经侦支队的民警，现在依法向你核实情况",
    "sensitive_info": "你手机刚收到一个六位验证码，马上念给我听",
    "private_payment": "别走平台了，直接把钱转到我个人的微信上",
    "insult": "你这个不要脸的废物，活着浪费空气",
    "harassment": "你不还是吧，我今天晚上每隔十分钟给你打一次，让你睡不成觉",
}
LAWFUL_CLEAR = [
    "不要把验证码告诉任何人",
    "逾期会上报征信",
    "您好，您的账单已经逾期五天，请尽快通过官方APP还款",
    "如果还款有困难，可以跟我们协商分期",
    "请认准我们的对公账户，不要向任何个人转账",
    "感谢您的配合，祝您生活愉快",
]


@pytest.mark.parametrize("category", list(CLEAR))
def test_shipped_model_flags_clear_violations(shipped, category):
    proba = shipped.predict_proba([CLEAR[category]])[0]
    k = shipped.categories.index(category)
    assert proba[k] >= max(shipped.thresholds[k], 0.5), (category, proba.round(2))
    assert proba[k] == proba.max()


def test_shipped_model_leaves_lawful_sentences_alone(shipped):
    proba = shipped.predict_proba(LAWFUL_CLEAR)
    assert not shipped.flags(proba).any(), proba.round(2)
    assert proba.max() < 0.5


def test_shipped_model_reads_whisper_garbles(shipped):
    k = shipped.categories.index("sensitive_info")
    garbled = ["你手机刚收到一个六位验证马，马上念给我听", "你手機剛收到一個六位驗證碼，馬上念給我聽"]
    assert (shipped.predict_proba(garbled)[:, k] >= shipped.thresholds[k]).all()


def test_shipped_role_head_tells_the_debtor_from_the_collector(shipped):
    # Written for this test; not in corpus/.
    debtor = ["我真的拿不出来，孩子住院把钱花光了，求你们宽限几天",
              "你凭什么给我妈打电话？她什么都不知道",
              "我上个月已经还了两千了，你们查一下记录再说"]
    assert (shipped.other_party_proba(debtor) >= C.OTHER_PARTY_THRESHOLD).all()
    collector = list(CLEAR.values()) + LAWFUL_CLEAR
    assert (shipped.other_party_proba(collector) < C.OTHER_PARTY_THRESHOLD).all()


def test_top_features_explain_with_words_from_the_text(shipped):
    text = CLEAR["private_payment"]
    feats = shipped.top_features(text, "private_payment", k=5)
    assert feats and all(v > 0 for _, v in feats)
    for name, _ in feats:
        block, _, term = name.partition(":")
        assert block in C.BLOCKS
        if block in ("word", "char"):
            assert term.removeprefix("~") in text  # "~平台": 平台 after a negator
