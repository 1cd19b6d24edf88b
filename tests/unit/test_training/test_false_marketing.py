import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import roc_auc_score

from common.decisions import Thresholds
from features.marketing import MARKETING_CATEGORIES, RULES, match_lexicon
from features.text import normalize_many, normalize_text
from kinds.false_marketing import fitting
from kinds.false_marketing.blend import blend
from kinds.false_marketing.data import MarketingData
from kinds.false_marketing.encoder import (
    OnnxEncoder,
    max_by_owner,
    split_windows,
    text_windows,
    windows,
)
from kinds.false_marketing.evaluation import evasion_checks, host_evasion_checks
from kinds.false_marketing.fitting import PartsFitter, fold_evasions, off_platform_chat
from kinds.false_marketing.generator import TranscriptGenerationConfig, generate_transcripts
from kinds.false_marketing.pipeline import (
    EncoderJob,
    FalseMarketingConfig,
    FalseMarketingTrainer,
    evaluate_bundle,
    load_marketing_file,
    load_training_data,
    train_and_register,
)
from kinds.false_marketing.runtime import ONNX_FP32_FILE, TOKENIZER_FILE, FalseMarketingModel
from kinds.false_marketing.sentences import sentence_pieces
from kinds.false_marketing.spans import (
    OCCLUSION_STRIDE,
    OCCLUSION_WINDOW,
    add_model_spans,
    occlusion_variants,
    search_all_windows,
    span_jobs,
)
from registry.cards import ModelCard, to_markdown
from registry.store import ModelRegistry
from tests.conftest import SHARED_DATA, TINY_MARKETING_CONFIG, point_at_home, run_cli
from training.card_parts import real_world_section
from training.data import real_text
from training.data.loaders import DataValidationError
from training.real_checks import flagged_segments, missing

needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not here")


@pytest.fixture(scope="module")
def registered(marketing_training):
    """The session's false-marketing training (``tests/conftest.py``), its home pointed at."""
    with pytest.MonkeyPatch.context() as mp:
        point_at_home(mp, marketing_training[3])
        mp.setenv("SHOPGUARD_DEVICE", "cpu")
        yield marketing_training


def test_generator_is_seeded_multi_label_and_varied() -> None:
    config = TranscriptGenerationConfig(n=2000, seed=1)
    first = generate_transcripts(config, progress=False)
    pd.testing.assert_frame_equal(first, generate_transcripts(config, progress=False))
    labels = first["labels"].str.split("|")
    assert {c for ls in labels for c in ls if c} == set(MARKETING_CATEGORIES)
    assert (labels.apply(len) >= 2).any()  # multi-label segments exist
    assert first["evasion"].any() and first["hard_negative"].any()
    assert first["text"].nunique() > 0.9 * len(first)


def test_bundle_holds_onnx_int8_tokenizer_weights_and_baselines(registered) -> None:
    registry, _, result, _ = registered
    files = set(registry.load(result.manifest.tag).manifest.files)
    assert {"encoder.int8.onnx", "encoder.fp32.onnx", "tokenizer.json", "model.safetensors",
            "config.json", "card.md", "card.html"} <= files
    assert any(f.startswith("tfidf_") for f in files)
    assert not any(f.endswith((".bin", ".pkl", ".pt")) for f in files)
    assert "training_rows.npy" in files  # every training row's hash, for the promotion gate and evaluate
    details = registry.load(result.manifest.tag).manifest.metrics.details["training_rows"]
    # The file's rows and the in-game chat of the off_platform TF-IDF scorer (none without ../shared/data).
    assert details["rows"] == len(registered[1].texts) + len(result.chat_texts)


def test_onnx_export_agrees_with_pytorch(registered) -> None:
    _, _, result, _ = registered
    q = result.quantization
    assert q["max_abs_diff_fp32_vs_pytorch"] < 1e-4
    # Dynamic int8 quantization moves probabilities by about 1e-3 on average (demo model: mean
    # 2e-4, max 0.04); decisions at the review threshold barely change.
    assert q["mean_abs_diff_int8_vs_pytorch"] < 0.01
    assert q["p99_abs_diff_int8_vs_pytorch"] < 0.05
    assert q["max_abs_diff_int8_vs_pytorch"] < 0.1
    assert set(q["f1_at_review_threshold"]) <= set(MARKETING_CATEGORIES)
    assert all(abs(v["change"]) <= 0.05 for v in q["f1_at_review_threshold"].values())


def test_pytorch_and_onnx_read_a_long_text_in_the_same_windows(registered) -> None:
    from training.text_encoder import load_base_model, predict_torch

    registry, data, result, _ = registered
    folder = registry.load(result.manifest.tag).path
    long_texts = [normalize_text("家人们这款面霜的质地很细腻我们今天给大家讲一讲怎么用" * 6 + t).text
                  for t in data.texts[:8]]
    assert all(len(text_windows(t)) > 2 for t in long_texts)  # windows and clause windows
    tokenizer, torch_model = load_base_model(folder, len(MARKETING_CATEGORIES))
    fp32 = OnnxEncoder(folder / ONNX_FP32_FILE, folder / TOKENIZER_FILE)
    # The card's "max |fp32 ONNX - PyTorch|" compares the same pieces (PyTorch read only the
    # 126-character windows while ONNX read the clause windows too).
    assert np.abs(fp32.predict(long_texts) - predict_torch(torch_model, tokenizer, long_texts)).max() < 1e-4


def test_card_compares_three_systems_per_category(registered) -> None:
    registry, _, result, _ = registered
    card = (registry.load(result.manifest.tag).path / "card.md").read_text(encoding="utf-8")
    for needle in ("served: transformer + TF-IDF blend", "transformer alone (int8 ONNX)", "TF-IDF char 1-3-grams",
                   "lexicon rules only", "int8 quantization", "Thresholds per category", "weight chosen on validation"):
        assert needle in card
    assert [s.name for s in result.systems] == [
        "served: transformer + TF-IDF blend", "transformer alone (int8 ONNX)",
        "TF-IDF char 1-3-grams + logistic regression", "lexicon rules only"]
    weight = result.manifest.serving_params["transformer_weight"]
    search = result.manifest.serving_params["blend_search"]
    assert search[f"{weight:.2f}"] == max(search.values())  # chosen on validation


def test_runtime_scores_spans_and_decisions(registered) -> None:
    registry, _, result, _ = registered
    model = FalseMarketingModel.from_bundle(registry.load(result.manifest.tag), device="cpu")
    [clean, violating] = model.analyze(["欢迎宝宝们来到直播间", "家人们 加 薇 信 私聊 全网最低价"])
    assert set(clean.scores) == set(MARKETING_CATEGORIES)
    assert clean.decision in ("allow", "review")
    assert violating.decision == "block"  # OFF-001 is a blocking rule
    lexicon_span = next(s for s in violating.spans if s.rule_id == "OFF-001")
    assert "家人们 加 薇 信 私聊 全网最低价"[lexicon_span.start:lexicon_span.end] == lexicon_span.text
    assert {"off_platform", "absolute_claim"} <= set(violating.labels)


def test_model_spans_point_at_words_whose_removal_lowers_the_score(registered) -> None:
    registry, data, result, _ = registered
    model = FalseMarketingModel.from_bundle(registry.load(result.manifest.tag), device="cpu")
    unexplained = [t for t, y in zip(data.texts, data.labels, strict=True)
                   if y.any() and not match_lexicon(normalize_text(t))][:300]
    spans = [(text, span) for text, analysis in zip(unexplained, model.analyze(unexplained), strict=True)
             for span in analysis.spans if span.source == "model"]
    assert len(spans) >= 5
    without = model.predict([text[:span.start] + text[span.end:] for text, span in spans])
    full = model.predict([text for text, _ in spans])
    for row, (text, span) in enumerate(spans):
        assert text[span.start:span.end] == span.text and span.end - span.start >= 1
        column = MARKETING_CATEGORIES.index(span.category)
        assert without[row, column] < full[row, column], (text, span)


def test_a_claim_at_the_end_of_a_long_text_is_caught(registered) -> None:
    registry, data, result, _ = registered
    model = FalseMarketingModel.from_bundle(registry.load(result.manifest.tag), device="cpu")
    column = MARKETING_CATEGORIES.index("efficacy_claim")
    # The yardstick is the threshold validation chose before the review budget raised it: the
    # budget is held on real clean text the tiny model reads poorly, and windows are the point.
    review = result.choices["efficacy_claim"].thresholds.review
    served_review = model.thresholds["efficacy_claim"].review
    assert review <= served_review
    # Claims only the model can catch (no lexicon rule), which it catches clearly on their own.
    claims = [t for t, y in zip(data.texts, data.labels, strict=True)
              if y[column] and not match_lexicon(normalize_text(t)) and len(t) < 60]
    caught = [t for t, s in zip(claims, model.predict(claims)[:, column], strict=True) if s >= 2 * review][:20]
    assert len(caught) >= 5
    filler = "家人们这款面霜的质地很细腻 我们今天给大家讲一讲怎么用 " * 40  # ~1,200 ordinary characters
    long_texts = [filler + claim for claim in caught]
    assert all(len(windows(normalize_text(t).text)) > 1 for t in long_texts)
    first_window_only = model.predict([filler[:126]])[0, column]
    assert first_window_only < review  # truncation to the first window would miss every claim
    long_scores = model.predict(long_texts)[:, column]
    # The strongest window decides, and the last window is always scored (dynamic int8
    # quantization makes scores depend on the batch by ~1e-4).
    last_windows = model.predict([normalize_text(t).text[-126:] for t in long_texts])[:, column]
    assert (long_scores >= last_windows - 1e-3).all()
    # Caught after 1,200 characters of ordinary talk as often as with only the 66 characters
    # of talk that share the last window, and far more often than when the TF-IDF half of the
    # blend read the whole text (the bug this guards against: 0% caught). The tiny model's
    # own rate (35-80% between trainings whose thresholds differ by 0.02) is not the point.
    caught = (long_scores >= review).mean()
    assert caught >= (last_windows >= review).mean() - 0.05
    normalized = [normalize_text(t).text for t in long_texts]
    owners, pieces = split_windows(normalized)
    encoder = max_by_owner(model.encoder.predict_pieces(pieces), owners, len(long_texts))
    whole_text = blend(encoder, model.tfidf_matrix(normalized), model.transformer_weight, model.blend_space)[:, column]
    assert caught >= (whole_text >= review).mean() + 0.25
    # The served analysis labels the category exactly where its score reaches review (other
    # categories may flag a text too, so the label is compared, not the whole decision).
    analyses = model.analyze(long_texts, spans_from_model=False)
    assert [("efficacy_claim" in a.labels) for a in analyses] == list(long_scores >= served_review)


def test_a_segment_of_several_sentences_is_judged_sentence_by_sentence(registered) -> None:
    registry, data, result, _ = registered
    model = FalseMarketingModel.from_bundle(registry.load(result.manifest.tag), device="cpu")
    column = MARKETING_CATEGORIES.index("efficacy_claim")
    review = model.thresholds["efficacy_claim"].review
    claims = [t for t, y in zip(data.texts, data.labels, strict=True)
              if y[column] and len(t) < 60 and len(sentence_pieces(t)) == 1]
    caught = [t for t, s in zip(claims, model.predict(claims)[:, column], strict=True) if s >= review][:10]
    assert len(caught) >= 3
    talk = "家人们晚上好欢迎来到直播间。我们今天给大家讲一讲这款面霜怎么用。先把脸洗干净再涂抹均匀。"
    segments = [talk + claim + "。" for claim in caught]
    sentences = [[piece for _, piece in sentence_pieces(s)] for s in segments]
    assert all(len(pieces) == 4 for pieces in sentences)
    # Scores are the highest sentence's (dynamic int8 quantization moves them by ~1e-4 with the batch).
    alone = model.predict([piece for pieces in sentences for piece in pieces]).reshape(len(segments), 4, -1)
    assert abs(model.predict(segments) - alone.max(axis=1)).max() < 1e-3
    whole = model.analyze(segments)
    parts = [model.analyze(pieces) for pieces in sentences]
    for segment, analysis, pieces in zip(segments, whole, parts, strict=True):
        assert "efficacy_claim" in analysis.labels
        assert analysis.decision == max((p.decision for p in pieces), key=["allow", "review", "block"].index)
        assert set(analysis.labels) == {label for p in pieces for label in p.labels}
        assert all(segment[span.start:span.end] == span.text for span in analysis.spans)
        assert all(span.start >= len(talk) for span in analysis.spans if span.category == "efficacy_claim")
    # A rule that matches across a sentence end still applies to the segment (normalization drops
    # the mark the cut is made at): the price anchor of PRI-001 spans both sentences here.
    [anchored] = model.analyze(["原价299！现在只要59元"], spans_from_model=False)
    rule = next(s for s in anchored.spans if s.rule_id == "PRI-001")
    assert rule.start == 0 and rule.end > len("原价299！") and "price_fraud" in anchored.labels
    match = next(m for m in anchored.lexicon if m.rule_id == "PRI-001")
    assert anchored.decision == ("block" if model.policy.rule_blocks(match) else "review")
    assert anchored.scores["price_fraud"] >= round(model.policy.evidence(match), 6)


def test_training_reads_a_segment_as_the_service_does(registered) -> None:
    """The review budget's clean text and the validation scores are read by training as served:
    sentence by sentence, each window blended (``_served_scores``)."""
    from types import SimpleNamespace

    registry, data, result, _ = registered
    model = FalseMarketingModel.from_bundle(registry.load(result.manifest.tag), device="cpu")
    trainer = FalseMarketingTrainer(FalseMarketingConfig(**TINY_MARKETING_CONFIG))
    parts = SimpleNamespace(int8=model.encoder, tfidf=model.tfidf)
    talk = "家人们晚上好欢迎来到直播间。" + "我们今天给大家讲一讲这款面霜怎么用先把脸洗干净" * 6  # one sentence past 126
    texts = [talk + "。" + t for t in data.texts[:12]] + list(data.texts[12:20])
    assert any(len(sentence_pieces(t)) > 1 for t in texts)
    trained = trainer._served_scores(parts, texts, model.transformer_weight)
    assert np.abs(trained - model.predict(texts)).max() < 1e-3  # int8 scales move with the batch


def test_evaluate_command_writes_per_category_json(registered, transcript_file) -> None:
    _, _, result, home = registered
    out = home / "eval.json"
    run_cli("evaluate", result.manifest.tag, "--data", str(transcript_file), "--out", str(out), home=home)
    payload = json.loads(out.read_text())
    assert payload["rows"] == len(pd.read_parquet(transcript_file))
    decisions = {c["key"]: c for c in payload["decisions"]["checks"]}
    assert {"clean_flagged", "violations_caught", "binary_f1", "roc_auc", "flag_precision"} <= set(decisions)
    assert decisions["clean_flagged"]["rows"] + decisions["violations_caught"]["rows"] == payload["rows"]
    assert decisions["roc_auc"]["low"] <= decisions["roc_auc"]["value"] <= decisions["roc_auc"]["high"]
    systems = payload["systems"]
    assert len(systems) == 4
    assert all(set(per) == set(MARKETING_CATEGORIES) for per in systems.values())


def test_fine_tune_from_a_local_checkpoint(registered, transcript_file, tmp_path) -> None:
    registry, _, result, _ = registered
    checkpoint = registry.load(result.manifest.tag).path  # save_pretrained files live in the bundle
    config = FalseMarketingConfig(**{**TINY_MARKETING_CONFIG, "epochs": 1, "base_model": str(checkpoint)})
    pd.read_parquet(transcript_file).iloc[:800].to_parquet(tmp_path / "some.parquet")  # a fine-tune, not a measure
    data = load_marketing_file(tmp_path / "some.parquet")
    tuned = train_and_register(data, config, registry)
    assert tuned.manifest.lineage.parameters["base_model"] == str(checkpoint)
    assert tuned.training["history"]
    # A checkpoint's new head and the dropout masks draw from a seeded generator: the same run twice
    # is the same model (unseeded, two trainings of the demo differed by 0.016 held-out F1).
    import torch

    draws = []
    for _ in range(2):
        FalseMarketingTrainer(config).fitter.encoder_start(["今天"])
        draws.append(torch.rand(4))
    assert torch.equal(draws[0], draws[1])


def test_files_with_binary_labels_and_bad_labels(tmp_path: Path) -> None:
    path = tmp_path / "ads.tsv"
    path.write_text("label\ttext\n1\t加我qq123456卖金币\n0\t今天打副本吗\n", encoding="utf-8")
    data = load_marketing_file(path, binary_category="off_platform")
    assert data.labels[:, MARKETING_CATEGORIES.index("off_platform")].tolist() == [1, 0]
    assert data.labels.sum() == 1
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["x"], "labels": ["absolute_claim|made_up"]}).to_csv(bad, index=False)
    with pytest.raises(DataValidationError, match="unknown category 'made_up'"):
        load_marketing_file(bad)
    with pytest.raises(DataValidationError, match="missing column"):
        load_marketing_file(path)


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        FalseMarketingConfig(epoch=3)


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED_DATA / "ingame_ads" / "train.txt").is_file(),
                    reason="../shared/data/ingame_ads not present (fresh clone)")
def test_real_ingame_ads_reduced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reduced version of the real-data check: 6,000 training rows, 3,000 validation rows."""
    import csv

    point_at_home(monkeypatch, tmp_path / "home")
    train = pd.read_csv(SHARED_DATA / "ingame_ads" / "train.txt", sep="\t", quoting=csv.QUOTE_NONE)
    valid = pd.read_csv(SHARED_DATA / "ingame_ads" / "validation.txt", sep="\t", quoting=csv.QUOTE_NONE)
    train.sample(6000, random_state=0).to_csv(tmp_path / "train.csv", index=False)
    valid.sample(3000, random_state=0).to_csv(tmp_path / "valid.csv", index=False)
    registry = ModelRegistry()
    config = FalseMarketingConfig(**{**TINY_MARKETING_CONFIG, "hidden_size": 64, "epochs": 3,
                                     "real_checks": False, "off_platform_chat_rows": 0})
    result = train_and_register(load_marketing_file(tmp_path / "train.csv", "off_platform"), config, registry)
    metrics = evaluate_bundle(registry.load(result.manifest.tag),
                              load_marketing_file(tmp_path / "valid.csv", "off_platform"))
    transformer = metrics["transformer alone (int8 ONNX)"]["off_platform"]
    served = metrics["served: transformer + TF-IDF blend"]["off_platform"]
    assert served.roc_auc > 0.8
    tfidf = metrics["TF-IDF char 1-3-grams + logistic regression"]["off_platform"]
    assert transformer.roc_auc > 0.8
    assert tfidf.roc_auc > 0.8


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED_DATA / "ingame_ads" / "train.txt").is_file(),
                    reason="../shared/data/ingame_ads not present (fresh clone)")
def test_only_the_off_platform_scorer_reads_the_extra_chat_rows() -> None:
    frame = generate_transcripts(TranscriptGenerationConfig(n=600, seed=3, use_real_text=False), progress=False)
    texts = normalize_many(list(frame["text"]))
    labels = np.array([[c in row.split("|") for c in MARKETING_CATEGORIES] for row in frame["labels"]], dtype=float)
    real = np.zeros(len(texts), dtype=bool)
    chat, spam = off_platform_chat(set(texts), 2000, seed=0)
    assert len(chat) == 2000 and 0.1 < spam.mean() < 0.5
    validation = real_text.ingame_ads(SHARED_DATA, "validation")
    checked = normalize_many([str(t) for t in validation["text"]])
    assert not set(chat) & set(checked)  # the in-game check's file never trains (1.5% of train rows repeat it)
    again, _ = off_platform_chat(set(chat[:100]), 2000, seed=0)
    assert not set(again) & set(chat[:100])  # a text of the training file is never added twice
    fitter = PartsFitter(FalseMarketingConfig(**TINY_MARKETING_CONFIG))
    scorers = {n: fitter.fit_tfidf(texts, labels, real, (chat[:n], spam[:n])) for n in (0, 2000)}
    for category in scorers[0]:
        same = np.array_equal(scorers[0][category].coef, scorers[2000][category].coef)
        assert same == (category != "off_platform"), category
    sample = validation.sample(2000, random_state=0)
    normalized = normalize_many([str(t) for t in sample["text"]])
    auc = {n: roc_auc_score(sample["label"], s["off_platform"].score(normalized)) for n, s in scorers.items()}
    assert auc[2000] > auc[0] + 0.05 and auc[2000] > 0.8


@needs_shared_data
def test_the_chat_rows_are_in_the_lineage_and_never_a_text_of_the_file(registered) -> None:
    _, data, result, _ = registered
    [chat_file] = [f for f in result.manifest.lineage.training_files if f.path.endswith("ingame_ads/train.txt")]
    assert chat_file.rows == len(result.chat_texts) == FalseMarketingConfig().off_platform_chat_rows
    assert not set(result.chat_texts) & set(normalize_many(list(data.texts)))


@pytest.mark.parametrize("length", [1, 2, 4, 5, 6, 7, 10, 11, 12, 40, 47])
def test_occlusion_windows_cover_every_character(length) -> None:
    text = "".join(chr(0x4E00 + i) for i in range(length))
    starts, variants = occlusion_variants(text)
    covered = {i for s in starts for i in range(s, min(length, s + OCCLUSION_WINDOW))}
    assert covered == set(range(length))
    assert all(len(v) == max(0, length - OCCLUSION_WINDOW) or length < OCCLUSION_WINDOW for v in variants)
    assert len(starts) <= max(1, -(-length // OCCLUSION_STRIDE))


@needs_shared_data
def test_real_clean_text_is_mostly_allowed_and_real_claims_caught(registered) -> None:
    """The regression of issue 8: the demo model flagged 92% of real clean segments. A small
    model trained the way the demo trains must leave held-out real clean text mostly alone
    and still catch held-out regulator claims and the synthetic test's claims."""
    registry, _, result, _ = registered
    model = FalseMarketingModel.from_bundle(registry.load(result.manifest.tag), device="cpu")
    root = real_text.require_shared_data()
    ads = [p for a in real_text.ad_copy(root) if real_text.is_check_text(a) for p in real_text.pieces(a)]
    titles = [t for t in real_text.product_titles(root) if real_text.is_check_text(t)][:400]
    assert flagged_segments(model, ads + titles).mean() <= 0.10
    checks = result.real_world.by_key()
    assert checks["clean_mixture_flagged"].value <= 0.10
    assert checks["regulator_cases_caught"].value >= 0.80
    synthetic = result.test_decisions.by_key()
    assert synthetic["positives_caught"].value >= 0.8 and synthetic["evasion_caught"].value >= 0.7
    card = (registry.load(result.manifest.tag).path / "card.md").read_text(encoding="utf-8")
    assert "Real-world checks" in card and "held-out regulator-penalised ads" in card


def test_model_only_block_on_novel_text_is_capped_at_review(registered) -> None:
    registry, _, result, _ = registered
    bundle = registry.load(result.manifest.tag)
    model = FalseMarketingModel.from_bundle(bundle, device="cpu")
    model.thresholds = {c: Thresholds(block=0.0, review=0.0) for c in MARKETING_CATEGORIES}  # the model blocks all
    model.model_only_block_floor = 0.0  # isolate the novelty rule
    text = "오늘 라이브 방송에 오신 여러분 환영합니다"  # Korean: no lexicon rule, unlike the training data
    [analysis] = model.analyze([text], spans_from_model=False)
    assert analysis.novelty > model.novelty_cutoff
    assert analysis.decision == "review" and set(analysis.capped) == set(MARKETING_CATEGORIES)
    model.novelty_cutoff = 1.0  # a cutoff nothing exceeds: the same evidence now blocks
    [analysis] = model.analyze([text], spans_from_model=False)
    assert analysis.decision == "block" and not analysis.capped
    [lexicon] = model.analyze(["加微信私聊 " + text], spans_from_model=False)
    assert lexicon.decision == "block"  # a blocking lexicon rule is not capped


def test_model_only_block_needs_the_score_floor(registered) -> None:
    registry, _, result, _ = registered
    model = FalseMarketingModel.from_bundle(registry.load(result.manifest.tag), device="cpu")
    assert model.model_only_block_floor == result.manifest.serving_params["model_only_block_floor"] == 0.5
    text = "家人们这款面霜的质地很细腻"  # ordinary talk: the model's score is far below 0.5
    model.thresholds = {c: Thresholds(block=0.0, review=0.0) for c in MARKETING_CATEGORIES}
    [analysis] = model.analyze([text], spans_from_model=False)
    assert max(analysis.scores.values()) < 0.5
    assert analysis.decision == "review" and analysis.capped
    model.model_only_block_floor, model.novelty_cutoff = 0.0, 1.0
    assert model.analyze([text], spans_from_model=False)[0].decision == "block"


def test_card_says_plainly_when_real_checks_are_missing() -> None:
    section = real_world_section(missing("../shared/data was not found when this ran"),
                                 missing("not run"))
    text = to_markdown(ModelCard(model_name="false-marketing", version="v0", sections=[section]))
    assert "Real-world checks are MISSING" in text and "synthetic only" in text


def test_model_spans_stop_at_the_budget_highest_scores_first(registered) -> None:
    registry, data, result, _ = registered
    model = FalseMarketingModel.from_bundle(registry.load(result.manifest.tag), device="cpu")
    unexplained = [t for t, y in zip(data.texts, data.labels, strict=True)
                   if y.any() and not match_lexicon(normalize_text(t))][:200]
    full = model.analyze(unexplained)
    needing = [a for a in full if any(s.source == "model" for s in a.spans)]
    assert len(needing) >= 5 and all(a.spans_complete for a in full)
    model.span_budget_chars = 3 * max(len(t) ** 2 for t in unexplained) // 5  # room for about three
    cut = model.analyze(unexplained)
    explained = [a for a in cut if any(s.source == "model" for s in a.spans)]
    short = [a for a in cut if not a.spans_complete]
    assert 1 <= len(explained) < len(needing) and short
    assert min(a.score for a in explained) >= max(a.score for a in short)  # the strongest are explained
    assert all(not any(s.source == "model" for s in a.spans) for a in short)
    assert [a.decision for a in cut] == [a.decision for a in full]  # spans never change a decision


def test_scoring_groups_together_answers_each_group_as_alone(registered) -> None:
    registry, data, result, _ = registered
    model = FalseMarketingModel.from_bundle(registry.load(result.manifest.tag), device="cpu")
    violating = [t for t, y in zip(data.texts, data.labels, strict=True) if y.any()]
    groups = [[{"text": t} for t in violating[k:k + 6]] for k in range(0, 36, 6)]
    model.span_budget_chars = 400  # small enough that some groups run out of their own budget
    together = model.score_groups(groups)
    for group, batched in zip(groups, together, strict=True):
        alone = model.score(group)
        assert batched.decisions == alone.decisions
        np.testing.assert_allclose(batched.scores, alone.scores, atol=0.02)  # int8 activations are quantized per batch
        assert [a.labels for a in batched.segments] == [a.labels for a in alone.segments]
        assert [a.spans_complete for a in batched.segments] == [a.spans_complete for a in alone.segments]
    assert any(not a.spans_complete for g in together for a in g.segments)  # the budget is per group


@pytest.mark.parametrize("space", ["probability", "logit"])
def test_the_bounded_window_search_finds_the_same_spans_as_scoring_every_window(registered, space) -> None:
    registry, data, result, _ = registered
    model = FalseMarketingModel.from_bundle(registry.load(result.manifest.tag), device="cpu")
    model.blend_space = space  # bundles without blend_space blend probabilities; newer ones log-odds
    model.transformer_weight = min(model.transformer_weight, 0.5)  # a blend, whatever the tiny model chose
    texts = [t for t, y in zip(data.texts, data.labels, strict=True) if y.any()][:300]

    def jobs():
        normalized = [normalize_text(t) for t in texts]
        return span_jobs(model, normalized, model.analyze(texts, spans_from_model=False), 10**9)

    bounded, exhaustive = jobs(), jobs()
    encoded: list[int] = []
    predict_pieces = model.encoder.predict_pieces
    model.encoder.predict_pieces = lambda pieces, *a, **k: (encoded.append(len(pieces)), predict_pieces(pieces, *a, **k))[1]
    add_model_spans(model, bounded)
    search_all_windows(model, exhaustive)
    spans = [[(s.start, s.end, s.category) for s in job.result.spans if s.source == "model"] for job in bounded]
    reference = [[(s.start, s.end, s.category) for s in job.result.spans if s.source == "model"] for job in exhaustive]
    assert len(bounded) >= 20 and any(spans)
    assert np.mean([a == b for a, b in zip(spans, reference, strict=True)]) >= 0.97  # int8 batch noise may swap near-ties
    all_windows = sum(len(job.variants) for job in exhaustive)
    assert sum(encoded[:-1]) < 0.6 * all_windows  # the last call was the exhaustive search's


def test_real_files_are_held_out_by_room_for_thresholds_and_headline(transcript_file, tmp_path) -> None:
    """`train false-marketing --real FILE`: the real rows are scored by runs that never saw their
    room, thresholds and the blend come from those scores, and the card leads with them."""
    frame = pd.read_parquet(transcript_file)
    generated, real = frame.iloc[:1500], frame.iloc[1500:2400].copy()
    real["room"] = [f"room-{i % 9}" for i in range(len(real))]  # nine made-up rooms
    generated.to_parquet(tmp_path / "generated.parquet")
    real[["text", "labels", "room"]].to_json(tmp_path / "real.jsonl", orient="records", lines=True, force_ascii=False)
    config = tmp_path / "config.json"
    # The folds in turn in this process: spawning a process per fold cost 21 s more CPU here
    # (the side-by-side test below checks both ways score the same).
    config.write_text(json.dumps({**TINY_MARKETING_CONFIG, "real_folds": 2, "min_real_positives": 10,
                                  "parallel_folds": 1}))
    home = tmp_path / "home"
    run_cli("train", "false-marketing", "--data", str(tmp_path / "generated.parquet"), "--real",
            str(tmp_path / "real.jsonl"), "--config", str(config), home=home)
    with pytest.MonkeyPatch.context() as mp:
        point_at_home(mp, home)
        bundle = ModelRegistry().load("false-marketing:candidate")
    manifest = bundle.manifest
    heldout = manifest.metrics.real_heldout.by_key()
    assert heldout["binary_f1"].rows == len(real) and heldout["roc_auc"].value is not None
    assert heldout["clean_flagged"].rows == int((real["labels"] == "").sum())
    held = manifest.metrics.details["held_out_rooms"]
    assert held == {**held, "folds": 2, "rows": len(real), "groups": 9}
    assert manifest.serving_params["blend_chosen_on"] == "held-out real rooms"
    assert set(manifest.serving_params["rule_evidence"]) <= {r.rule_id for r in RULES}
    roles = {f.role for f in manifest.lineage.training_files}
    chat = {"real in-game chat, off_platform TF-IDF scorer only"} if SHARED_DATA.is_dir() else set()
    assert roles == {"generated", "real labelled, held out by room"} | chat
    card = (bundle.path / "card.md").read_text(encoding="utf-8")
    assert card.index("Real held-out rooms (headline)") < card.index("Evaluation on test")
    assert "never saw its group" in card
    # Disguised copies of the held-out violating sentences, decided as served, beside the originals.
    evasions, originals = heldout["heldout_evasions_caught"], heldout["heldout_evasions_originals_caught"]
    violating = int((real["labels"] != "").sum())
    assert violating <= evasions.rows <= 5 * violating and originals.rows == evasions.rows
    kinds = [check for key, check in heldout.items() if key.startswith("heldout_evasions_caught_")]
    assert len(kinds) >= 3 and sum(k.rows for k in kinds) == evasions.rows
    assert sum(k.count for k in kinds) == evasions.count
    assert "evasions generated from held-out rooms' violating sentences" in card


def test_a_card_without_real_files_says_the_headline_is_missing(registered) -> None:
    registry, _, result, _ = registered
    card = (registry.load(result.manifest.tag).path / "card.md").read_text(encoding="utf-8")
    assert "MISSING: this version was trained without real labelled files" in card


def test_held_out_folds_score_the_same_side_by_side_as_one_after_the_other(transcript_file, tmp_path) -> None:
    """Fold trainings in processes of their own (``parallel_folds``) are seeded as they are in
    turn, so the held-out scores that choose thresholds do not depend on how they ran."""
    frame = pd.read_parquet(transcript_file)
    generated, real = frame.iloc[:600], frame.iloc[600:900].copy()
    real["room"] = [f"room-{i % 6}" for i in range(len(real))]
    generated.to_parquet(tmp_path / "generated.parquet")
    real[["text", "labels", "room"]].to_json(tmp_path / "real.jsonl", orient="records", lines=True, force_ascii=False)
    data = load_training_data([tmp_path / "generated.parquet"], [tmp_path / "real.jsonl"])
    texts = normalize_many(list(data.texts))
    train_rows = np.flatnonzero(~data.real)[:500]
    validation = ([texts[i] for i in np.flatnonzero(~data.real)[500:]], data.labels[np.flatnonzero(~data.real)[500:]])
    held, served = {}, {}
    for parallel in (1, 2):
        config = FalseMarketingConfig(**{**TINY_MARKETING_CONFIG, "real_folds": 2, "parallel_folds": parallel,
                                         "epochs": 1})  # equal scores either way, whatever the epochs
        trainer = FalseMarketingTrainer(config)
        job = EncoderJob(trainer._training_rows(data, np.flatnonzero(~data.real)[:300], texts), validation,
                         tmp_path / f"served{parallel}", select_best=False)
        held[parallel], training = trainer._held_out_rooms(data, texts, train_rows, validation,
                                                           tmp_path / f"work{parallel}", job)
        assert len(training["history"]) == config.epochs  # the served encoder trained beside the folds
        served[parallel] = trainer._parts_from_files(job, training).int8.predict(validation[0])
    assert np.allclose(served[1], served[2], atol=1e-6)
    assert np.allclose(held[1].transformer, held[2].transformer, atol=1e-6)
    assert np.allclose(held[1].novelty, held[2].novelty)
    assert np.array_equal(np.isnan(held[1].tfidf), np.isnan(held[2].tfidf))
    assert np.allclose(np.nan_to_num(held[1].tfidf), np.nan_to_num(held[2].tfidf))
    # The disguised copies of each fold's violating rows, scored by that fold's run, alike either way.
    evasions = held[1].evasions
    assert np.array_equal(evasions.source, held[2].evasions.source)
    assert np.allclose(evasions.transformer, held[2].evasions.transformer, atol=1e-6)
    assert len(evasions.source) >= data.labels[held[1].rows].any(axis=1).sum()
    assert data.labels[held[1].rows[evasions.source]].any(axis=1).all()
    assert set(evasions.kind) <= {"homophone", "filler", "look_alike", "mask", "pinyin"}
    copies, originals = normalize_many(evasions.texts), [texts[i] for i in held[1].rows[evasions.source]]
    assert all(c != o for c, o in zip(copies, originals, strict=True))
    assert all(_one_local_edit(c, data.texts[i]) for c, i in zip(evasions.texts, held[1].rows[evasions.source],
                                                                 strict=True))
    assert evasions.transformer.shape == (len(evasions.source), len(MARKETING_CATEGORIES))
    # The copies are scored apart: without them every real row scores exactly the same.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fitting, "fold_evasions", lambda data, positions, rows, seed: fitting.FoldEvasions(
            np.zeros(0, dtype=np.int64), [], [], []))
        alone, _ = trainer._held_out_rooms(data, texts, train_rows, validation, tmp_path / "alone")
    assert len(alone.evasions.source) == 0
    assert np.allclose(alone.transformer, held[2].transformer, atol=1e-7, rtol=0)


def _one_local_edit(copy: str, original: str) -> bool:
    """True when ``copy`` is ``original`` with one stretch of at most a few characters rewritten."""

    def same_run(a: str, b: str) -> int:
        return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))

    return same_run(copy, original) + same_run(copy[::-1], original[::-1]) >= len(original) - 4


def test_fold_evasions_point_at_their_own_violating_sentences() -> None:
    efficacy = MARKETING_CATEGORIES.index("efficacy_claim")
    texts = ["欢迎来到直播间", "这个能降血压的", "今天天气很好呀", "吃了治疗失眠的", "保证有效果的哦"]
    labels = np.zeros((len(texts), len(MARKETING_CATEGORIES)))
    labels[[1, 3, 4], efficacy] = 1
    data = MarketingData(texts, labels, groups=np.array(["a", "b", "a", "b", "c"]))
    positions = np.array([4, 0, 3, 1])  # the held-out rows' positions, out of order
    rows = np.array([1, 0, 3, 4])  # the data rows at those positions
    made = fold_evasions(data, positions, rows, seed=3)
    assert len(made.source) >= 3 and set(made.kind) <= {"homophone", "filler", "look_alike", "mask", "pinyin"}
    row_at = dict(zip(positions.tolist(), rows.tolist(), strict=True))
    for position, text, normalized in zip(made.source, made.texts, made.normalized, strict=True):
        original = texts[row_at[int(position)]]
        assert labels[row_at[int(position)]].any() and _one_local_edit(text, original)
        assert normalized and normalized != normalize_text(original).text  # a real disguise, not undone
    assert {row_at[int(p)] for p in made.source} == {1, 3, 4}
    clean = fold_evasions(data, np.array([0, 1]), np.array([0, 2]), seed=3)
    assert len(clean.source) == 0 and clean.source.dtype == np.int64 and clean.texts == []


def test_evasion_checks_count_copies_by_kind_and_resample_rooms() -> None:
    kinds = np.array(["homophone", "mask", "homophone", "pinyin", "mask", "homophone"], dtype=object)
    none = np.zeros((6, len(MARKETING_CATEGORIES)))
    evasions = fitting.HeldOutEvasions(np.array([0, 0, 1, 2, 3, 3]), kinds, ["t"] * 6, none, none, np.zeros(6))
    caught = np.array([True, False, True, False, True, True])
    flagged = np.array([True, True, False, True])  # the held-out rows at positions 0..3
    rooms = np.array(["a", "a", "a", "b", "c", "c"])
    checks = {c.key: c for c in evasion_checks(evasions, caught, flagged, rooms, n_boot=200)}
    assert checks["heldout_evasions_caught"].count == 4 and checks["heldout_evasions_caught"].rows == 6
    assert checks["heldout_evasions_caught"].target == 0.70
    assert checks["heldout_evasions_originals_caught"].count == 5  # rows 0, 0, 1, 3, 3 flagged; row 2 not
    by_kind = {k: checks[f"heldout_evasions_caught_{k}"] for k in ("homophone", "mask", "pinyin")}
    assert [(c.count, c.rows) for c in by_kind.values()] == [(3, 3), (1, 2), (0, 1)]
    assert "heldout_evasions_caught_filler" not in checks
    overall = checks["heldout_evasions_caught"]
    assert overall.low is not None and overall.low <= overall.value <= overall.high
    wilson = {c.key: c for c in evasion_checks(evasions, caught, flagged, rooms, n_boot=0)}
    assert wilson["heldout_evasions_caught"].low is not None  # no bootstrap: the per-copy interval


def test_host_evasion_checks_read_word_internal_mou_only() -> None:
    texts = ["对关某节不舒服 吃它", "免某力也上来了", "某某棒一桶的价格", "身体中的某一个小板块", "关某节吃它没用", "欢迎来到直播间"]
    violating = np.array([True, True, True, False, False, False])
    flagged = np.array([True, False, True, True, True, True])
    rooms = np.array(["a", "b", "a", "c", "c", "d"])
    checks = {c.key: c for c in host_evasion_checks(texts, violating, flagged, rooms, n_boot=0)}
    caught, clean = checks["heldout_host_evasions_caught"], checks["heldout_host_evasions_clean_flagged"]
    assert (caught.count, caught.rows) == (1, 2)  # 关某节 caught, 免某力 missed; 某某 and 某一 are no disguise
    assert (clean.count, clean.rows) == (1, 1)
    assert host_evasion_checks(texts[2:4], violating[2:4], flagged[2:4], rooms[2:4], n_boot=0) == []
    plain = ["这是某品牌的", "听某专家讲", "在某地发货", "某某棒", "某天晚上"]
    assert host_evasion_checks(plain, np.ones(5, dtype=bool), np.ones(5, dtype=bool), np.array(list("abcde")),
                               n_boot=0) == []


def test_a_bundle_with_an_unknown_blend_space_is_refused_with_what_to_do(registered) -> None:
    registry, _, result, _ = registered
    bundle = registry.load(result.manifest.tag)
    assert bundle.manifest.serving_params["blend_space"] == "logit"  # the default
    params = {**bundle.manifest.serving_params, "blend_space": "median"}
    with pytest.raises(ValueError, match="blend_space is 'median'.*upgrade shopguard or retrain"):
        FalseMarketingModel.from_folder(bundle.path, bundle.manifest.thresholds, params, bundle.tag)
    # A bundle written before the key blends probabilities, as it did when it was trained.
    older = {k: v for k, v in bundle.manifest.serving_params.items() if k != "blend_space"}
    model = FalseMarketingModel.from_folder(bundle.path, bundle.manifest.thresholds,
                                            {**older, "transformer_weight": 0.5}, bundle.tag)
    texts = normalize_many(["家人们 这个能降血压 一定有效果", "欢迎来到直播间"])
    assert model.blend_space == "probability"
    encoder, tfidf = model.encoder.predict_pieces(texts), model.tfidf_matrix(texts)
    np.testing.assert_allclose(model.predict_normalized(texts),
                               np.where(np.isnan(tfidf), encoder, 0.5 * encoder + 0.5 * tfidf))


def test_a_jobs_progress_lines_start_with_its_label(tmp_path: Path) -> None:
    texts = ["这个产品能治疗所有疾病", "今天直播间有新款外套", "全网最低价只有今天", "欢迎大家来到直播间"] * 4
    labels = np.zeros((len(texts), len(MARKETING_CATEGORIES)), dtype=np.float32)
    labels[::4, MARKETING_CATEGORIES.index("efficacy_claim")] = 1
    labels[2::4, MARKETING_CATEGORIES.index("absolute_claim")] = 1
    seen: list[str] = []
    fitter = PartsFitter(FalseMarketingConfig(**{**TINY_MARKETING_CONFIG, "epochs": 1}), progress=seen.append)
    rows = (texts, labels, np.ones(len(texts)), None, np.zeros(len(texts), dtype=bool))
    fitter.run_job(fitting.EncoderJob(rows, (texts[:8], labels[:8]), tmp_path / "encoder", False, label="fold 2/3"))
    assert any(line.startswith("fold 2/3: epoch 1/1: loss") for line in seen), seen
    assert all(line.startswith("fold 2/3: ") for line in seen), seen
