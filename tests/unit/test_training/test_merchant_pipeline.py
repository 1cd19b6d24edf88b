import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from kinds.merchant_risk.generator import MerchantGenerationConfig, generate_merchants
from kinds.merchant_risk.pipeline import (
    MerchantRiskConfig,
    MerchantRiskTrainer,
    MerchantTable,
    load_merchant_table,
)
from kinds.merchant_risk.record import MerchantRecord
from kinds.merchant_risk.runtime import MerchantRiskModel
from tests.conftest import FAST_MERCHANT_CONFIG, SHARED_DATA, point_at_home, run_cli
from training.data.loaders import DataValidationError

OWN_COLUMNS = ["account_age_days", "refund_rate", "complaint_rate"]


@pytest.fixture(scope="module")
def registered(merchant_training):
    """The session's merchant-risk training (``tests/conftest.py``), its home pointed at."""
    with pytest.MonkeyPatch.context() as mp:
        point_at_home(mp, merchant_training[0].settings.home)
        yield merchant_training


def test_generator_is_seeded_and_has_rings_lookalikes_and_noise() -> None:
    config = MerchantGenerationConfig(n=3000, seed=5)
    first, links = generate_merchants(config)
    second, _ = generate_merchants(config)
    pd.testing.assert_frame_equal(first, second)
    assert set(links["link_type"]) == {"shared_device", "shared_payout_account",
                                       "shared_return_address", "shared_owner_id"}
    assert 0.03 < first["is_suspicious"].mean() < 0.2
    ring = first[first["ring_member"]]
    assert 0.5 < ring["is_suspicious"].mean() < 1.0  # some ring members not yet caught
    assert first["label_flipped"].any()


def test_test_labels_never_become_features(registered) -> None:
    registry, table, result = registered
    graph, _ = MerchantRiskTrainer(MerchantRiskConfig()).features(table, result.splits.train)
    assert np.isnan(graph.known_labels[result.splits.test]).all()
    assert np.isnan(graph.known_labels[result.splits.validation]).all()
    assert not np.isnan(graph.known_labels[result.splits.train]).any()


def test_held_out_quality_and_round_trip(registered) -> None:
    registry, table, result = registered
    assert result.test_metrics.roc_auc > 0.8
    model = MerchantRiskModel.from_bundle(registry.load(result.manifest.tag))
    frame = pd.read_parquet(registry.load(result.manifest.tag).path / "reference_merchants.parquet")
    rows = frame.iloc[result.splits.test].drop(columns=["known_label"]).to_dict(orient="records")
    scores = model.score(rows, explain="none").scores
    np.testing.assert_allclose(scores, result.test_scores, rtol=0, atol=1e-12)


def test_graph_features_help_on_ring_data(registered, merchant_files) -> None:
    _, table, with_graph = registered
    config = MerchantRiskConfig(**{**FAST_MERCHANT_CONFIG, "graph_features": False})
    without = MerchantRiskTrainer(config).fit(load_merchant_table(*merchant_files), with_graph.splits)
    assert with_graph.test_metrics.pr_auc > without.test_metrics.pr_auc + 0.03


def test_ring_evidence_appears_in_reasons(registered) -> None:
    registry, table, result = registered
    model = MerchantRiskModel.from_bundle(registry.load(result.manifest.tag))
    frame = pd.read_parquet(registry.load(result.manifest.tag).path / "reference_merchants.parquet")
    records = frame.drop(columns=["known_label"]).to_dict(orient="records")
    scored = model.score(records, explain="all")
    codes = {r.code for reasons in scored.reasons for r in reasons}
    assert any(code.startswith("linked_to_flagged") for code in codes)
    details = [r.detail for reasons in scored.reasons for r in reasons if r.code.startswith("linked_to_flagged_by")]
    assert any("flagged merchant(s) by shared_" in d for d in details)


def _generic_table(folder: Path, separation: float = 1.5, links: int = 600) -> MerchantTable:
    """1,500 accounts (15% fraud) in generic columns, with an edge list among the fraudulent ones."""
    rng = np.random.default_rng(0)
    n = 1500
    label = (rng.random(n) < 0.15).astype(int)
    table = pd.DataFrame({"account": [f"A{i}" for i in range(n)], "fraud": label,
                          "score_a": rng.normal(label * separation, 1.0), "score_b": rng.normal(0, 1, n),
                          "note": ["text"] * n})
    fraud = np.flatnonzero(label)
    edges = pd.DataFrame({"src": [f"A{i}" for i in rng.choice(fraud, links)],
                          "dst": [f"A{i}" for i in rng.choice(fraud, links)]})
    table.to_csv(folder / "accounts.csv", index=False)
    edges.to_csv(folder / "edges.csv", index=False)
    return load_merchant_table(folder / "accounts.csv", folder / "edges.csv", label_column="fraud",
                               id_column="account")


def test_generic_table_with_plain_edge_list(tmp_path: Path) -> None:
    loaded = _generic_table(tmp_path)
    assert loaded.spec.own_features == ("score_a", "score_b")  # text column skipped
    assert loaded.spec.link_types == ("link",)
    result = MerchantRiskTrainer(MerchantRiskConfig(**FAST_MERCHANT_CONFIG)).fit(loaded)
    assert result.test_metrics.roc_auc > 0.85
    assert "flagged_link" in result.manifest.feature_set.features


def test_a_generic_table_model_is_not_promoted_to_serve_the_api(tmp_path: Path) -> None:
    _generic_table(tmp_path)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(FAST_MERCHANT_CONFIG), encoding="utf-8")
    home = tmp_path / "home"
    run_cli("train", "merchant-risk", "--data", str(tmp_path / "accounts.csv"), "--links", str(tmp_path / "edges.csv"),
            "--label-column", "fraud", "--id-column", "account", "--config", str(config), home=home)
    refused = run_cli("models", "promote", "merchant-risk:candidate", "--reason", "try", "--force", home=home,
                      check=False)
    assert refused.returncode != 0
    assert "uses features score_a, score_b that the API's MerchantRecord lacks" in " ".join(refused.stderr.split())
    listed = run_cli("models", "list", home=home).stdout
    assert "production" not in listed  # nothing was promoted


def test_generic_table_errors_name_the_column(tmp_path: Path) -> None:
    pd.DataFrame({"id": ["a"], "y": [2], "v": [1.0]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataValidationError, match="'y' must hold 0/1"):
        load_merchant_table(tmp_path / "t.csv", label_column="y", id_column="id")
    with pytest.raises(DataValidationError, match="missing column 'label'"):
        load_merchant_table(tmp_path / "t.csv", label_column="label", id_column="id")
    pd.DataFrame({"from": ["a"], "to": ["b"]}).to_csv(tmp_path / "e.csv", index=False)
    pd.DataFrame({"id": ["a"], "y": [1], "v": [1.0]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataValidationError, match="missing link column"):
        load_merchant_table(tmp_path / "t.csv", tmp_path / "e.csv", label_column="y", id_column="id")


def test_merchant_ids_the_service_cannot_tell_apart_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"id": ["M1", "b", "ｍ1 "], "y": [1, 0, 0], "v": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    with pytest.raises(DataValidationError) as info:
        load_merchant_table(path, label_column="y", id_column="id")
    assert info.value.field == "id"
    assert "'M1' and 'ｍ1 ' name one merchant (row 1 (line 2); row 3 (line 4))" in str(info.value)
    pd.DataFrame({"id": ["a", "a"], "y": [1, 0], "v": [1.0, 2.0]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataValidationError, match=r"'a' appears in row 1; row 2: give each merchant one row"):
        load_merchant_table(tmp_path / "t.parquet", label_column="y", id_column="id")


@pytest.mark.parametrize("missing", [None, "  ", "\u200b"])
def test_a_merchant_without_an_id_is_refused_naming_its_row(tmp_path: Path, missing: str | None) -> None:
    pd.DataFrame({"id": ["a", missing, "c", missing], "y": [1, 0, 0, 1], "v": [1.0, 2.0, 3.0, 4.0]}).to_parquet(
        tmp_path / "t.parquet")
    with pytest.raises(DataValidationError, match=r"'id' is empty in row 2 and 1 more row\(s\): give every merchant an id"):
        load_merchant_table(tmp_path / "t.parquet", label_column="y", id_column="id")


def test_config_rejects_unknown_keys_and_aggregates() -> None:
    with pytest.raises(ValidationError):
        MerchantRiskConfig(ensemble=3)
    with pytest.raises(ValidationError, match="unknown graph aggregates"):
        MerchantRiskConfig(graph_aggregates=["median"])
    assert MerchantRiskConfig().review_budget == 0.05 and MerchantRiskConfig().review_budget_confidence == 0.95
    for bad in ({"review_budget": 0}, {"review_budget": 1.0}, {"review_budget_confidence": 0.4},
                {"review_budget": "a lot"}, {"review_budgets": 0.1}):
        with pytest.raises(ValidationError):
            MerchantRiskConfig(**bad)


def test_review_budget_holds_on_held_out_merchants_and_the_card_states_it(registered) -> None:
    registry, table, result = registered
    choice, cost = result.threshold_choice, result.review_budget
    test_y = table.labels[result.splits.test]
    served = result.test_scores >= choice.thresholds.review
    share = served[test_y == 0].mean()
    assert share <= 0.05 and cost.data == "test" and cost.at_budget.ordinary_share == share
    assert cost.at_budget.recall == served[test_y == 1].mean()
    # the recall target alone floods the queue: the budget is what holds it, at a cost in recall
    free = result.test_scores >= choice.review_at_recall_target
    assert choice.review_raised_by_budget and free[test_y == 0].mean() == cost.at_recall_target.ordinary_share > 0.2
    assert cost.at_recall_target.recall == free[test_y == 1].mean() > cost.at_budget.recall
    assert choice.block_precision >= 0.95 and choice.thresholds.review <= choice.thresholds.block
    bundle = registry.load(result.manifest.tag)
    assert bundle.manifest.thresholds["default"] == choice.thresholds
    assert bundle.manifest.lineage.parameters["review_budget"] == 0.05  # what the console's budget line reads
    assert bundle.manifest.metrics.details["review_budget_held_out"]["at_budget"]["ordinary_share"] == share
    card = (bundle.path / "card.md").read_text(encoding="utf-8")
    assert "at most 5% of ordinary (non-suspicious) merchants may reach review" in card
    assert f"sends {share:.1%} of ordinary merchants to review (within the budget)" in card
    assert f"catches {cost.at_budget.recall:.1%} of suspicious merchants" in card
    assert f"would catch {cost.at_recall_target.recall:.1%} but send {free[test_y == 0].mean():.1%}" in card
    assert f"the budget costs {100 * cost.recall_cost:.1f} points of recall" in card
    assert "What the review budget costs, measured on the held-out test split" in card


def test_review_budget_is_configurable(tmp_path: Path) -> None:
    table = _generic_table(tmp_path, separation=1.0, links=100)  # a weak signal: recall 0.90 floods review
    default = MerchantRiskTrainer(MerchantRiskConfig(**FAST_MERCHANT_CONFIG)).fit(table)
    config = MerchantRiskConfig(**{**FAST_MERCHANT_CONFIG, "review_budget": 0.25, "review_budget_confidence": 0.5})
    wider = MerchantRiskTrainer(config).fit(table, default.splits)
    choice = wider.threshold_choice
    assert choice.review_budget == 0.25 and choice.review_budget_confidence is None and choice.review_raised_by_budget
    assert "at most 25.0% of ordinary traffic goes to review" in choice.objective
    assert choice.thresholds.review < default.threshold_choice.thresholds.review
    assert wider.review_budget.at_budget.recall > default.review_budget.at_budget.recall
    assert default.review_budget.at_budget.ordinary_share < 0.1 < wider.review_budget.at_budget.ordinary_share


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED_DATA / "amazon_users" / "Amazon.mat").is_file(),
                    reason="../shared/data/amazon_users/Amazon.mat not present (fresh clone)")
def test_amazon_one_split_reaches_the_reference(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
    from merchant_amazon import DATA, export_amazon, run

    table_path, edges_path = export_amazon(DATA, tmp_path)
    result = run(table_path, edges_path, graph=True, seeds=[0])
    assert result["roc_auc_mean"] > 0.975
    assert result["ap_mean"] > 0.90


def _full_width(value: str) -> str:
    """``value`` with its ASCII letters and digits in their full-width forms (``M0`` -> ``Ｍ０``)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in value)


def test_reference_graph_finds_a_merchant_under_any_form_of_its_id(registered) -> None:
    """``M0-1``, ``m0-1``, ``" M0-1 "`` and ``Ｍ０-１`` are one merchant (``features/ids.py``), for
    the scored merchant's own reference links and for the links a request names."""
    registry, _, result = registered
    model = MerchantRiskModel.from_bundle(registry.load(result.manifest.tag))
    merchants, links = model.reference_tables()
    flagged = set(merchants.loc[merchants["known"] == 1, "merchant_id"])
    ring = links[links["dst"].isin(flagged)].groupby("src").size().sort_values().index[-1]
    row = merchants[merchants["merchant_id"] == ring].drop(columns=["known"]).iloc[0].to_dict()
    neighbours = links.loc[(links["src"] == ring) & links["dst"].isin(flagged), ["dst", "link_type"]]
    forms = [ring.lower(), f" {ring} ", _full_width(ring)]

    own = model.score([row], explain="none").scores[0]
    unknown = model.score([{**row, "merchant_id": "nobody-known"}], explain="none").scores[0]
    assert own != pytest.approx(unknown, abs=1e-3)  # the reference links matter to this merchant
    for form in forms:
        assert model.score([{**row, "merchant_id": form}], explain="none").scores[0] == own, form

    newcomer = {**row, "merchant_id": "new-shop"}
    def linked_by(variant: Callable[[str], str]) -> float:
        links = [{"merchant_id": variant(m), "link_type": t} for m, t in neighbours.itertuples(index=False)]
        return float(model.score([{**newcomer, "links": links}], explain="none").scores[0])

    canonical = linked_by(str)
    assert canonical != pytest.approx(float(model.score([newcomer], explain="none").scores[0]), abs=1e-3)
    for variant in (str.lower, lambda m: f"{m} ", _full_width):
        assert linked_by(variant) == canonical
    # a batch job's call (the graph features out of core) compares the same way
    records = [MerchantRecord.model_validate({**row, "merchant_id": _full_width(ring).lower()}),
               MerchantRecord.model_validate({**newcomer, "links": [{"merchant_id": f" {m.lower()}", "link_type": t}
                                                                    for m, t in neighbours.itertuples(index=False)]})]
    np.testing.assert_allclose(model.score_catalogue(records).scores, [own, canonical], rtol=0, atol=1e-9)


def test_links_are_matched_as_the_service_compares_ids_and_unused_ones_are_said(tmp_path: Path) -> None:
    # Links whose ids differed in case, or of a type the model does not use, were dropped in
    # silence (PR-AUC 0.77 -> 0.42), while the service folds case when it reads links.
    pd.DataFrame({"id": ["M1", "M2", "M3"], "y": [1, 1, 0], "v": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "t.csv",
                                                                                           index=False)
    pd.DataFrame({"src": ["m1", "Ｍ2", "M1", "M1"], "dst": ["M2", "m3 ", "M9", "m1"],
                  "link_type": ["shared_bank"] * 4}).to_csv(tmp_path / "e.csv", index=False)
    said: list[str] = []
    table = load_merchant_table(tmp_path / "t.csv", tmp_path / "e.csv", label_column="y", id_column="id",
                                warn=said.append)
    assert table.links == [("M1", "M2", "shared_bank"), ("M2", "M3", "shared_bank")]
    assert table.link_rows == 4  # what the lineage records of the links file: its rows
    assert len(said) == 1 and "2 links not used: 1 names a merchant not in the table; 1 from a merchant to itself" \
        in said[0]


def test_a_number_column_with_a_stray_text_cell_is_refused_in_generic_mode(tmp_path: Path) -> None:
    # One "abc" once removed the whole column from the features, with no word.
    frame = pd.DataFrame({"id": [f"a{i}" for i in range(20)], "y": [i % 2 for i in range(20)],
                          "gmv": [str(float(i)) for i in range(20)], "v": [float(i) for i in range(20)]})
    frame.loc[7, "gmv"] = "abc"
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataValidationError, match=r"column 'gmv' holds numbers but row 8 \(line 9\) holds 'abc'"):
        load_merchant_table(tmp_path / "t.csv", label_column="y", id_column="id")


def test_merchant_labels_read_as_listing_labels_do_and_a_bad_one_is_named(tmp_path: Path) -> None:
    pd.DataFrame({"id": ["a", "b"], "y": [True, False], "v": [1.0, 2.0]}).to_parquet(tmp_path / "t.parquet")
    assert load_merchant_table(tmp_path / "t.parquet", label_column="y", id_column="id").labels.tolist() == [1, 0]
    pd.DataFrame({"id": ["a", "b"], "y": [1, "yes"], "v": [1.0, 2.0]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataValidationError, match=r"column 'y' must hold 0/1 labels; found 'yes'"):
        load_merchant_table(tmp_path / "t.csv", label_column="y", id_column="id")


def test_a_config_leaving_too_few_rows_to_train_is_refused() -> None:
    with pytest.raises(ValidationError, match="leave at least 20% of the rows to train on"):
        MerchantRiskConfig(test_size=0.49, validation_size=0.49)
