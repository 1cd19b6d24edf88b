"""The kinds' contract suite (``shopguard/kind_checks.py``) run over every kind, the three
built-ins and the test tree's plug-in, each trained with tiny data; and a broken kind fails
with the right check named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kinds import FALSE_MARKETING, LISTING_QUALITY, MERCHANT_RISK, ModelKind
from kinds.runtime import Scores
from shopguard.kind_checks import KindCheckError, KindData, check_kind, kind_checks
from tests.conftest import FAST_LISTING_CONFIG, FAST_MERCHANT_CONFIG, TINY_MARKETING_CONFIG
from tests.fourth_kind.kind import REVIEW_SPAM
from tests.fourth_kind.runtime import ReviewSpamModel
from tests.fourth_kind.training import generate_reviews

LISTINGS = [
    {"listing_id": "L1", "merchant_id": "M1", "title": "加厚珊瑚绒毛毯 冬季午睡盖毯 办公室沙发毯 1.5x2米",
     "category": "home", "price": 89.0, "list_price": 89.0, "image_count": 5},
    {"listing_id": "L2", "merchant_id": "M1", "title": "香奈儿 高仿 口红 1:1", "description": "和专柜一模一样",
     "category": "beauty", "price": 19.9, "list_price": 399.0, "image_count": 3},
    {"listing_id": "L3", "title": "深海鱼油软胶囊 降血压 三天见效", "category": "supplements", "price": 59.0},
    {"listing_id": "L4", "title": "儿童纯棉短袖T恤 夏季新款", "category": "baby", "price": 39.0, "list_price": 49.0,
     "image_count": 4},
]
SEGMENTS = [
    {"text": "家人们这个鱼油是软胶囊的 一天两粒饭后吃 一瓶能吃一个多月 四十八小时内发货", "start_ms": 0, "end_ms": 6000},
    {"text": "糖友们注意了 这个吃上一个月 血糖稳稳的 药都可以停了", "start_ms": 6000, "end_ms": 12000},
    {"text": "家人们 加 薇 信 私聊下单 原價九百九十九今天只要九十九", "start_ms": 12000, "end_ms": 17000},
    {"text": "这款毛毯是珊瑚绒的 摸起来很软 尺寸有三个可以选", "start_ms": 17000, "end_ms": 22000},
]
REVIEWS = [
    {"review_id": "a", "text": "cheap followers click the link winner promo"},
    {"review_id": "b", "text": "fits well soft colour arrived quickly"},
    {"review_id": "c", "text": "sturdy small the was fits free discount"},
    {"review_id": "d", "text": "arrived quickly soft colour was small", "merchant_id": "M9"},
]


def _config(folder: Path, values: dict[str, Any]) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps(values))
    return path


def listing_data(folder: Path) -> KindData:
    from kinds.listing_quality.generator import ListingGenerationConfig, generate_listings
    from training.data.files import write_table

    data = folder / "listings.parquet"
    write_table(generate_listings(ListingGenerationConfig(n=1500, seed=7), progress=False), data)
    return KindData(["--data", str(data), "--config", str(_config(folder, FAST_LISTING_CONFIG))], LISTINGS)


def merchant_data(folder: Path) -> KindData:
    from kinds import MERCHANT_RISK
    from kinds.merchant_risk.generator import MerchantGenerationConfig, generate_merchants
    from training.data.files import write_table

    merchants, links = generate_merchants(MerchantGenerationConfig(n=600, seed=3))
    write_table(merchants, folder / "merchants.parquet")
    write_table(links, folder / "links.parquet")
    fields = [f for f in MERCHANT_RISK.record.model_fields if f != "links"]
    records = [{f: (str(row[f]) if f == "merchant_id" else None if pd.isna(row[f]) else float(row[f]))
                for f in fields} for row in merchants.head(4).to_dict(orient="records")]
    return KindData(["--data", str(folder / "merchants.parquet"), "--links", str(folder / "links.parquet"),
                     "--config", str(_config(folder, FAST_MERCHANT_CONFIG))], records)


def marketing_data(folder: Path) -> KindData:
    from kinds.false_marketing.generator import TranscriptGenerationConfig, generate_transcripts
    from training.data.files import write_table

    data = folder / "transcripts.parquet"
    write_table(generate_transcripts(TranscriptGenerationConfig(n=600, seed=5), progress=False), data)
    return KindData(["--data", str(data), "--config", str(_config(folder, TINY_MARKETING_CONFIG))], SEGMENTS,
                    request={"stream_id": "S1", "merchant_id": "M1"}, env={"SHOPGUARD_DEVICE": "cpu"})


def review_data(folder: Path) -> KindData:
    data = folder / "reviews.csv"
    generate_reviews(300, seed=1).to_csv(data, index=False)
    return KindData(["--data", str(data)], REVIEWS)


KINDS = [(LISTING_QUALITY, listing_data), (MERCHANT_RISK, merchant_data), (FALSE_MARKETING, marketing_data),
         (REVIEW_SPAM, review_data)]


# Contracts a built-in kind breaks today, found by this suite: reported, not loosened. The
# kind's other checks run; ``test_the_known_breaks_still_fail`` fails once one is fixed
# (then delete its line here).
KNOWN_BREAKS: dict[str, dict[str, str]] = {
    "false-marketing": {
        "check_batch_equals_single": "a segment's score moves by ~1e-4 with the segments batched beside it "
                                     "(the int8 ONNX encoder's batches)",
        "check_batch_size_independent": "the same, for batches of 2 and the micro-batcher's groups",
    },
}


@pytest.fixture(scope="module")
def generated_checks(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Each kind trained once for this module (``check_kind(generate_only=True)``: its train
    command in a fresh home, then loaded): ``(name, check)`` pairs, none run yet."""
    cache: dict[str, list[tuple[str, Any]]] = {}

    def checks(kind: ModelKind, make_data: Any) -> list[tuple[str, Any]]:
        if kind.name not in cache:
            folder = tmp_path_factory.mktemp(f"kind-{kind.name}")
            cache[kind.name] = check_kind(kind, make_data(folder), workdir=folder / "checks", generate_only=True)
        return cache[kind.name]

    return checks


@pytest.mark.parametrize(("kind", "make_data"), KINDS, ids=[k.name for k, _ in KINDS])
def test_every_kind_passes_the_contract_suite(kind: ModelKind, make_data: Any, generated_checks: Any) -> None:
    """Every check but the kind's known breaks, in ``check_kind``'s order (the training is
    ``check_trains_and_registers``: it passed when the checks were generated)."""
    known = KNOWN_BREAKS.get(kind.name, {})
    checks = [(name, run) for name, run in generated_checks(kind, make_data) if name not in known]
    ran = []
    for name, run in checks:
        run()
        ran.append(name)
    assert _with_training(kind, ran) == [name for name in kind_checks(kind) if name not in known]


def _with_training(kind: ModelKind, ran: list[str]) -> list[str]:
    """``ran`` with ``check_trains_and_registers`` where ``kind_checks`` lists it."""
    order = kind_checks(kind)
    position = order.index("check_trains_and_registers")
    before = set(order[:position])
    return [n for n in ran if n in before] + ["check_trains_and_registers"] + [n for n in ran if n not in before]


@pytest.mark.parametrize("kind_name", sorted(KNOWN_BREAKS))
def test_the_known_breaks_still_fail(kind_name: str, generated_checks: Any) -> None:
    kind, make_data = next((k, make) for k, make in KINDS if k.name == kind_name)
    checks = dict(generated_checks(kind, make_data))
    for name in KNOWN_BREAKS[kind_name]:
        with pytest.raises(KindCheckError) as failure:
            checks[name]()
        assert failure.value.check == name


# -- a broken kind fails with the right check named ------------------------------------------

class OverOne(ReviewSpamModel):
    """Scores 1.5 for spam."""

    def score(self, records: Any, explain: Any = "flagged") -> Scores:
        scored = super().score(records, explain)
        return Scores(np.where(scored.scores > 0.5, 1.5, scored.scores), scored.decisions, scored.reasons)


class BatchDependent(ReviewSpamModel):
    """Scores shift with the size of the batch (a statistic over the batch)."""

    def score(self, records: Any, explain: Any = "flagged") -> Scores:
        scored = super().score(records, explain)
        return Scores(scored.scores * (0.9 if len(scored) > 1 else 1.0), scored.decisions, scored.reasons)


class HardCodedThresholds(ReviewSpamModel):
    """Ignores the bundle's thresholds."""

    @classmethod
    def from_bundle(cls, bundle: Any, *, device: str = "cpu", threads: int = 0) -> HardCodedThresholds:
        from tests.fourth_kind.training import THRESHOLDS

        model = super().from_bundle(bundle, device=device, threads=threads)
        model.thresholds = THRESHOLDS
        return model


@pytest.mark.parametrize(("runtime", "check"), [
    ("OverOne", "check_scores_in_unit_interval"),
    ("BatchDependent", "check_batch_equals_single"),
    ("HardCodedThresholds", "check_thresholds_followed"),
])
def test_a_broken_kind_fails_naming_the_check(runtime: str, check: str, tmp_path: Path) -> None:
    from dataclasses import replace

    broken = replace(REVIEW_SPAM, runtime_path=f"{__name__}:{runtime}")
    with pytest.raises(KindCheckError) as failure:
        check_kind(broken, review_data(tmp_path), workdir=tmp_path / "checks",
                   skip=("check_serving_imports_no_training",))
    assert failure.value.check == check
    assert f"[{check}]" in str(failure.value) and "How to fix:" in str(failure.value)


def test_generate_only_lists_the_checks_bound_to_one_trained_kind(tmp_path: Path) -> None:
    checks = check_kind(REVIEW_SPAM, review_data(tmp_path), workdir=tmp_path / "checks", generate_only=True)
    names = [name for name, _ in checks]
    assert names == [n for n in kind_checks(REVIEW_SPAM) if n != "check_trains_and_registers"]
    for _, run in checks:
        run()


def test_a_record_schema_that_accepts_unknown_fields_fails(tmp_path: Path) -> None:
    from dataclasses import replace

    from pydantic import BaseModel

    class Lenient(BaseModel):
        review_id: str
        text: str
        merchant_id: str | None = None

    with pytest.raises(KindCheckError) as failure:
        check_kind(replace(REVIEW_SPAM, record=Lenient), review_data(tmp_path), workdir=tmp_path / "checks")
    assert failure.value.check == "check_record_schema" and "extra='forbid'" in str(failure.value)
