"""The README's API examples are answered by the real service with every field they show
(``benchmarks/readme_examples.py``; against the demo home it also compares the values)."""

from __future__ import annotations

import pytest

from benchmarks.readme_examples import differences, readme_examples
from tests.conftest import REPO
from tests.integration.server import api_post

pytestmark = pytest.mark.integration


def test_every_readme_example_is_answered_with_the_fields_it_shows(server) -> None:
    examples = readme_examples((REPO / "README.md").read_text(encoding="utf-8"))
    assert {e.path for e in examples} >= {"/v1/listings/score", "/v1/streams/score", "/v1/merchants/score"}
    for example in examples:
        response = api_post(f"{server}{example.path}", json=example.body, timeout=60)
        assert response.status_code == 200, (example.line, response.text)
        assert differences(example.answer, response.json(), shape_only=True) == [], example.line


def test_the_comparison_names_a_changed_decision_and_score() -> None:
    shown = {"request_id": "a", "decision": "block", "score": 0.9, "segments": [{"labels": ["x"], "...": "..."}],
             "model": "false-marketing:v1", "room": {"action": "stop"}}
    answered = {"request_id": "b", "decision": "review", "score": 0.5, "segments": [{"labels": ["x"], "y": 1}],
                "model": "false-marketing:v2", "room": {"action": "none"}}
    assert differences(shown, answered) == [".decision: README 'block', answered 'review'",
                                            ".score: README 0.9, answered 0.5"]
    assert differences(shown, {**answered, "decision": "block", "score": 0.9001}) == []
    assert differences(shown, {"decision": "block"}, shape_only=True) == [
        ".score: in the README, not in the answer", ".segments: in the README, not in the answer",
        ".model: in the README, not in the answer"]


def test_each_example_is_found_at_its_own_bash_block() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    examples = readme_examples("\n".join(lines))
    for example in examples:
        assert lines[example.line - 1] == "```bash", example.line
        block = lines[example.line:lines.index("```", example.line)]
        assert any(line.startswith(f"curl -s localhost:3000{example.path} ") for line in block), example.line
