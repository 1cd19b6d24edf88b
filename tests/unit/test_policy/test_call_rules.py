from policy.calls import burst_segments, capped_reason, stream_decision


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


def test_the_burst_rule_blocks_on_the_reviews_inside_its_window_only() -> None:
    decisions = ["review", "review", "review", "allow", "review"]
    starts = [0, 5_000, 10_000, 20_000, 600_000]  # the last review is ten minutes later
    assert stream_decision(decisions, starts)[0] == "block"
    assert burst_segments(decisions, starts) == [0, 1, 2]
    # Two bursts in one call: both windows' reviews; a call with a block is blocked on it instead.
    assert burst_segments(["review"] * 6, [0, 1, 2, 600_000, 600_001, 600_002]) == [0, 1, 2, 3, 4, 5]
    assert burst_segments(["review"] * 3 + ["block"], [0, 1, 2, 3]) == []
    assert burst_segments(["review"] * 3, [0, 100_000, 200_000]) == []
