"""Settings come from SHOPGUARD_* variables; a wrong value is refused naming the variable."""

from __future__ import annotations

import pytest

from common.errors import ShopGuardError
from common.settings import load_settings


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


def test_the_actor_comes_from_settings_and_reading_settings_creates_nothing(tmp_path, monkeypatch) -> None:
    home = tmp_path / "not-yet"
    monkeypatch.setenv("SHOPGUARD_HOME", str(home))
    monkeypatch.setenv("SHOPGUARD_ACTOR", "auditor-7")
    settings = load_settings()
    assert settings.actor == "auditor-7" and settings.home == home.resolve()
    assert not home.exists()  # folders are made by the registry that uses them, not by reading


def test_an_unknown_device_value_is_refused_with_what_to_do(isolated_home, monkeypatch) -> None:
    monkeypatch.setenv("SHOPGUARD_DEVICE", "tpu")
    with pytest.raises(ShopGuardError, match="SHOPGUARD_DEVICE='tpu' is invalid.*Fix or unset"):
        load_settings()


def test_compute_threads_share_the_cores_among_workers(isolated_home, monkeypatch) -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    workers = min(cores, 64)  # the most workers the settings take
    monkeypatch.setenv("SHOPGUARD_WORKERS", str(workers))
    assert load_settings().threads_per_worker() == max(1, cores // workers)
    monkeypatch.setenv("SHOPGUARD_WORKERS", "64")
    assert load_settings().threads_per_worker() == max(1, cores // 64)
    monkeypatch.setenv("SHOPGUARD_WORKERS", "1")
    assert load_settings().threads_per_worker() == cores
    monkeypatch.setenv("SHOPGUARD_COMPUTE_THREADS", "3")
    assert load_settings().threads_per_worker() == 3
    monkeypatch.setenv("SHOPGUARD_COMPUTE_THREADS", "-1")
    with pytest.raises(ShopGuardError, match="SHOPGUARD_COMPUTE_THREADS"):
        load_settings()
