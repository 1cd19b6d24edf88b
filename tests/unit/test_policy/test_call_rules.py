from policy.calls import capped_reason, stream_decision


def test_capped_reason_names_only_segments_the_cap_left_at_review() -> None:
    reason = capped_reason([["efficacy_claim"], [], ["price_fraud"]], ["review", "allow", "block"])
    assert reason is not None and reason.code == "model_only_capped"
    assert "[0]" in reason.detail and "2" not in reason.detail.split(":")[0]
    assert capped_reason([[], ["price_fraud"]], ["allow", "block"]) is None


def test_stream_decision_blocks_on_a_blocking_segment_or_a_review_burst() -> None:
    assert stream_decision(["allow", "block"], [0, 5000])[0] == "block"
    decision, reasons = stream_decision(["review"] * 3, [0, 10_000, 20_000])
    assert decision == "block" and reasons[0].code == "review_burst"
    decision, reasons = stream_decision(["review"] * 3, [0, 100_000, 200_000])
    assert decision == "review" and reasons[0].code == "review_segment"
    assert stream_decision(["allow", "allow"], [0, 1]) == ("allow", [])
