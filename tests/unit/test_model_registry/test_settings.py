"""Settings come from SHOPGUARD_* variables; a wrong value is refused naming the variable."""

from __future__ import annotations

import pytest

from features.errors import ShopGuardError
from model_registry.settings import load_settings


@pytest.mark.parametrize(("variable", "value"), [("SHOPGUARD_DEVICE", "tpu"), ("SHOPGUARD_DECISION_LOG", "maybe")])
def test_a_wrong_setting_is_refused_naming_the_variable(isolated_home, monkeypatch, variable, value) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ShopGuardError, match=variable):
        load_settings()


def test_defaults_keep_the_decision_log_on_and_a_strict_promotion_guard(isolated_home, monkeypatch) -> None:
    monkeypatch.delenv("SHOPGUARD_DECISION_LOG", raising=False)
    monkeypatch.delenv("SHOPGUARD_PROMOTION_PR_AUC_TOLERANCE", raising=False)
    settings = load_settings()
    assert settings.decision_log is True and settings.promotion_pr_auc_tolerance == 0.01
    assert settings.database_url.startswith("sqlite:///") and str(isolated_home) in settings.database_url
