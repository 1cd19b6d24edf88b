"""Feedback says what it is about, and lands on that entity's decision (real SQLite): a
listing, a merchant and a stream may share an id."""

from __future__ import annotations

import pytest

from database.engine import make_engine
from serving.decision_log import DecisionLogWriter, DecisionRecord
from serving.feedback import Feedback, FeedbackError, FeedbackStore, feedback_target


@pytest.mark.parametrize(("entity_type", "model", "expected"), [
    ("listing", None, ("listing", None)),
    (None, "merchant-risk", ("merchant", None)),
    (None, "false-marketing:v2", ("stream", "false-marketing:v2")),
    ("merchant", "merchant-risk:v1", ("merchant", "merchant-risk:v1")),
])
def test_the_target_comes_from_the_entity_type_or_the_model(entity_type, model, expected) -> None:
    assert feedback_target(entity_type, model) == expected


@pytest.mark.parametrize(("entity_type", "model", "field"), [
    (None, None, "entity_type"),  # entity_id alone: ambiguous
    ("listing", "merchant-risk", "model"),  # the two disagree
    (None, "fraud-model", "model"),
    (None, "merchant-risk:", "model"),
])
def test_an_ambiguous_or_unknown_target_is_400_naming_the_field(entity_type, model, field) -> None:
    with pytest.raises(FeedbackError) as error:
        feedback_target(entity_type, model)
    assert error.value.status == 400 and error.value.field == field


@pytest.fixture()
def store(tmp_path) -> FeedbackStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'fb.db'}")
    writer = DecisionLogWriter(engine)
    writer.record([
        DecisionRecord("r-listing", "listing", "X1", "allow", 0.1, "listing-quality:v1", [], {"title": "t"}),
        DecisionRecord("r-merchant-1", "merchant", "x1", "review", 0.6, "merchant-risk:v1", [], {}),
        DecisionRecord("r-merchant-2", "merchant", "x1", "block", 0.9, "merchant-risk:v2", [], {}),
    ])
    writer.close()
    return FeedbackStore(engine)


def test_feedback_lands_on_the_named_entity_type(store) -> None:
    on_listing = store.add(Feedback("X1", "ok", "ana", "listing"))
    assert (on_listing["entity_type"], on_listing["request_id"]) == ("listing", "r-listing")
    on_merchant = store.add(Feedback(" Ｘ1\u200b", "ok", "ana", "merchant"))  # any form of the merchant's id
    assert (on_merchant["entity_type"], on_merchant["entity_id"], on_merchant["request_id"]) == (
        "merchant", "x1", "r-merchant-2")
    with pytest.raises(FeedbackError) as error:
        store.add(Feedback("X1", "inferior", "ana", "merchant"))  # a listing's label on the merchant
    assert error.value.field == "label"


def test_a_named_version_finds_that_versions_decision_or_says_who_decided(store) -> None:
    older = store.add(Feedback("x1", "suspicious", "ana", "merchant", model_version="merchant-risk:v1"))
    assert older["request_id"] == "r-merchant-1" and older["model"] == "merchant-risk:v1"
    with pytest.raises(FeedbackError) as error:
        store.add(Feedback("X1", "ok", "ana", "listing", model_version="listing-quality:v9"))
    assert error.value.field == "model" and error.value.status == 422 and "listing-quality:v1" in str(error.value)


def test_no_decision_of_that_type_is_404_saying_which_type_has_the_id(store) -> None:
    with pytest.raises(FeedbackError) as error:
        store.add(Feedback("X1", "ok", "ana", "stream"))
    assert error.value.status == 404 and error.value.field == "entity_id"
    assert "a listing and a merchant with that id" in str(error.value)
