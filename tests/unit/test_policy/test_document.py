"""The policy file: typed, strict, versioned by content, shipped with its defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy.document import DEFAULT_POLICY_FILE, PolicyDocument, PolicyError, load_policy


def test_the_shipped_file_states_every_default_of_the_schema() -> None:
    shipped = load_policy()
    assert shipped == PolicyDocument(name="shopguard-default")
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    for section in ("calls", "rooms", "creators", "merchants", "charging", "appeals"):
        assert f"\n{section}:" in text  # every section written out, with where its values come from


def test_the_version_is_the_name_and_a_hash_of_the_resolved_content(tmp_path: Path) -> None:
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps(load_policy().model_dump(mode="json")), encoding="utf-8")
    short = tmp_path / "short.yaml"
    short.write_text("name: shopguard-default\n", encoding="utf-8")
    assert load_policy(explicit).version == load_policy(short).version == load_policy().version
    changed = tmp_path / "changed.yaml"
    changed.write_text("name: shopguard-default\nappeals: {deadline_days: 14}\n", encoding="utf-8")
    assert load_policy(changed).version != load_policy().version
    assert load_policy(changed).version.startswith("shopguard-default@")


@pytest.mark.parametrize(("text", "named"), [
    ("name: x\nrooms: {rungz: []}\n", "rooms.rungz: unknown key"),
    ("name: x\ncreators: {points: {efficacy: 2}}\n", "creators.points"),
    ("name: x\nrooms: {rungs: [{action: stop, weight: 6}, {action: warn, weight: 2}]}\n", "rooms"),
    ("name: x\nmerchants: {milestones: [{points: 24, penalty: review_hold}, {points: 12, penalty: suspension}]}\n",
     "merchants"),
    ("name: x\ncreators: {start: 13}\n", "creators"),
    ("name: x\nappeals: {deadline_days: -1}\n", "appeals.deadline_days"),
    ("name: x\nrooms: {review_weight: .nan}\n", "rooms.review_weight: Input should be a finite number"),
    ("rooms: {}\n", "name: Field required"),
    ("- a list\n", "a policy is a mapping"),
    ("name: [unclosed\n", "not valid YAML at line"),
    ("name: x\nrooms: {review_weight: 1}\nname: y\n", "line 3: key 'name' is given twice"),  # the last won
    ("name: x\nrooms: {review_weight: 1, review_weight: 2}\n", "key 'review_weight' is given twice"),
    # values of the wrong type are refused, not coerced (true was a window of 1 segment)
    ("name: x\nrooms: {window_segments: true}\n", "rooms.window_segments: Input should be a valid integer"),
    ("name: x\nrooms: {stop_for_creator_penalty: 'yes'}\n", "rooms.stop_for_creator_penalty"),
    ("name: x\ncalls: {stream_review_burst: {segments: '3'}}\n", "calls.stream_review_burst.segments"),
    ("name: x\nrooms: {window_segments: 2, rungs: [{action: warn, weight: 1, blocks: 3}]}\n",
     "rung warn needs 3 blocks among the last 2 segments"),
    ("name: x\nrooms: {window_segments: 5}\n", "rung stop needs weight 6, more than the last 5 segments"),
    ("name: x\ncreators: {penalties: [{at_or_below: 20, kind: limit_live_selling, days: 7}]}\n",
     "at_or_below 20 is not below start 10"),
    ("name: x\nappeals: {deadline_days: 2026-01-01}\n", "not plain data"),
    ("name: x\ncreators: {penalties: [{at_or_below: -1, kind: withdraw_ecommerce}]}\n",
     "creators.penalties.0.at_or_below"),  # credit never falls below 0
])
def test_a_policy_that_does_not_validate_is_refused_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    assert named in str(refused.value) and str(path) in str(refused.value)


def test_numbers_in_exponent_form_are_numbers(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("name: x\nrooms: {review_weight: 1e-1}\nappeals: {deadline_days: 1.4E1}\n", encoding="utf-8")
    policy = load_policy(path)
    assert (policy.rooms.review_weight, policy.appeals.deadline_days) == (0.1, 14.0)
    path.write_text("name: x\nrooms: {window_segments: 2e2}\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="window_segments: Input should be a valid integer"):
        load_policy(path)  # a count is written as a whole number


def test_a_points_map_naming_some_categories_keeps_the_defaults_of_the_others(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("name: x\ncreators: {points: {counterfeit: 10}}\nmerchants: {points: {off_platform: 0}}\n",
                    encoding="utf-8")
    policy, shipped = load_policy(path), load_policy()
    assert policy.creators.points == {**shipped.creators.points, "counterfeit": 10}
    assert policy.merchants.points == {**shipped.merchants.points, "off_platform": 0}


def test_a_missing_policy_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(tmp_path / "absent.yaml")


def test_yaml_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("name: x\nbase: &w {review_weight: 1}\nrooms:\n  <<: *w\n  review_weight: 2\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="base: unknown key"):  # merged and overridden, then validated as usual
        load_policy(path)
    path.write_text("name: x\n? [a, b]\n: 1\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="a key must be a plain value"):  # was a TypeError traceback
        load_policy(path)
