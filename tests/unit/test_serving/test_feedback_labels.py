"""Reviewer labels are checked against the model kinds' label sets and stored canonically."""

from __future__ import annotations

import pytest

from serving.feedback import FeedbackError, canonical_label


@pytest.mark.parametrize(("entity", "label"), [("listing", "inferior"), ("listing", " ok "),
                                               ("merchant", "suspicious"), ("merchant", "ok")])
def test_binary_labels_are_the_positive_label_or_ok(entity, label) -> None:
    assert canonical_label(entity, label, None, 0) == label.strip()


@pytest.mark.parametrize(("entity", "label", "segment", "field"), [
    ("listing", "suspicious", None, "label"),  # another kind's positive label
    ("merchant", "inferior", None, "label"),
    ("listing", "inferior", 0, "segment_index"),  # a listing has no segments
])
def test_wrong_binary_labels_name_the_field(entity, label, segment, field) -> None:
    with pytest.raises(FeedbackError) as error:
        canonical_label(entity, label, segment, 0)
    assert error.value.field == field and error.value.status == 422


def test_stream_categories_are_stored_in_taxonomy_order() -> None:
    stored = canonical_label("stream", "off_platform | absolute_claim", 1, 3)
    assert stored == "absolute_claim|off_platform"


def test_stream_ok_may_cover_the_whole_stream() -> None:
    assert canonical_label("stream", "ok", None, 3) == "ok"


@pytest.mark.parametrize(("label", "segment", "field", "message"), [
    ("made_up", 0, "label", "unknown category"),
    ("absolute_claim|made_up|other", 0, "label", "unknown categories"),
    ("absolute_claim", None, "segment_index", "needs the segment_index"),
    ("absolute_claim", 3, "segment_index", "outside the stream's 3 segment"),
])
def test_bad_stream_labels_say_what_is_allowed(label, segment, field, message) -> None:
    with pytest.raises(FeedbackError, match=message) as error:
        canonical_label("stream", label, segment, 3)
    assert error.value.field == field
