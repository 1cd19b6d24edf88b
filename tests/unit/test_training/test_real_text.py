import pytest

from tests.conftest import SHARED_DATA
from training.data import real_text

needs_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not here")


def test_held_out_rule_is_deterministic_and_about_the_configured_share() -> None:
    texts = [f"第{i}条商品标题" for i in range(5000)]
    first = [real_text.is_check_text(t) for t in texts]
    assert first == [real_text.is_check_text(t) for t in texts]
    assert abs(sum(first) / len(texts) - real_text.CHECK_SHARE) < 0.03


def test_pieces_are_segment_sized_and_keep_the_text() -> None:
    text = "这款连衣裙采用真丝面料。" * 20 + "很适合夏天穿"
    cut = real_text.pieces(text)
    assert all(real_text.MIN_PIECE <= len(p) <= real_text.MAX_PIECE for p in cut)
    assert "".join(cut) == text


@needs_shared_data
def test_real_sources_load_with_their_documented_sizes() -> None:
    root = real_text.require_shared_data()
    assert len(real_text.product_titles(root)) > 3000
    assert len(real_text.reviews(root)) > 60_000
    assert len(real_text.ad_copy(root)) == 1070
    cases = real_text.regulator_cases(root)
    assert len(cases) > 400 and all(c.segments() for c in cases)
    assert all(len(s) <= real_text.MAX_PIECE for c in cases for s in c.segments())
    assert set(real_text.ingame_ads(root, "validation")["label"]) == {0, 1}


@needs_shared_data
def test_unseen_train_part_leaves_out_the_check_part_and_what_training_read() -> None:
    root = real_text.require_shared_data()
    everything = real_text.unseen_train_part(root, set(), limit=200)
    assert set(everything) == set(real_text.UNSEEN_SOURCES)
    assert all(len(texts) == 200 for texts in everything.values())
    assert not any(real_text.is_check_text(t) for t in everything["unseen real titles"])
    seen = set(everything["unseen real ad copy"][:50])
    again = real_text.unseen_train_part(root, seen, limit=200)
    assert not seen & set(again["unseen real ad copy"])
    assert again["unseen real titles"] == everything["unseen real titles"]  # seeded: the same sample


def test_without_shared_data_generators_warn_and_checks_say_missing(tmp_path, monkeypatch) -> None:
    from kinds.false_marketing.generator import TranscriptGenerationConfig, generate_transcripts
    from kinds.listing_quality.generator import ListingGenerationConfig, generate_listings
    from training.real_checks import marketing_checks

    monkeypatch.setenv(real_text.SHARED_DATA_ENV, str(tmp_path / "absent"))
    assert real_text.shared_data_dir() is None
    with pytest.warns(RuntimeWarning, match="shared/data not found"):
        listings = generate_listings(ListingGenerationConfig(n=200, seed=0), progress=False)
    assert (listings["title_source"] == "template").all()
    with pytest.warns(RuntimeWarning, match="shared/data not found"):
        segments = generate_transcripts(TranscriptGenerationConfig(n=200, seed=0), progress=False)
    assert set(segments["source"]) == {"synthetic"}
    checks = marketing_checks(model=None)  # never reaches the model without data
    assert not checks.available and "MISSING" in checks.note
