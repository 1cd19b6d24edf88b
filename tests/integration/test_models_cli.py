"""``shopguard models list / card / promote / rollback / history`` and the CLI's error path
(``error: ...``, exit 2), on the test tree's review-spam kind (a training takes a second)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from kinds import PLUGINS_ENV
from tests.conftest import REPO, run_cli
from tests.fourth_kind.training import generate_reviews

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory) -> Iterator[tuple]:
    """A home with two review-spam versions, each promoted in turn."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PLUGINS_ENV, "tests.fourth_kind.kind:REVIEW_SPAM")
        mp.setenv("PYTHONPATH", str(REPO))
        folder = tmp_path_factory.mktemp("models-cli")
        home, data = folder / "home", folder / "reviews.csv"
        generate_reviews(300, seed=2).to_csv(data, index=False)
        tags = []
        for _ in range(2):
            printed = run_cli("train", "review-spam", "--data", str(data), home=home).stdout
            tags.append(re.search(r"registered (review-spam:\S+) as candidate", printed).group(1))
            run_cli("models", "promote", tags[-1], "--reason", "next", "--force", home=home)
        yield home, tags


def test_list_history_rollback_and_card(two_versions) -> None:
    home, (first, second) = two_versions
    listed = run_cli("models", "list", "review-spam", home=home).stdout
    assert first.split(":")[1] in listed and second.split(":")[1] in listed
    assert listed.index(second.split(":")[1]) < listed.index(first.split(":")[1])  # newest first
    rolled = run_cli("models", "rollback", "review-spam", "--reason", "bad week", home=home).stdout
    assert f"production {second.split(':')[1]} -> {first.split(':')[1]}" in rolled
    history = run_cli("models", "history", "review-spam", home=home).stdout
    assert "rollback" in history and "bad week" in history
    card = run_cli("models", "card", "review-spam", home=home).stdout
    assert first.split(":")[1] in card and "bad week" in card  # the registry history of the production version


def test_user_errors_are_one_line_and_exit_2(two_versions) -> None:
    home, _ = two_versions
    missing = run_cli("models", "card", "review-spam:v19990101-000000-abcdef", home=home, check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr
    unknown = run_cli("models", "promote", "no-such-model:candidate", "--reason", "x", home=home, check=False)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: 'no-such-model' is not a ShopGuard model")
