"""Runtimes loaded with a thread count use it and score exactly as with the default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from common.settings import load_settings
from kinds import FALSE_MARKETING, LISTING_QUALITY, MERCHANT_RISK
from registry.store import ModelRegistry
from tests.conftest import point_at_home

pytestmark = pytest.mark.integration  # the shared trained home


def _load(kind, threads: int):
    return kind.runtime_class().from_bundle(ModelRegistry(load_settings()).load(f"{kind.name}:production"),
                                            device="cpu", threads=threads)


def test_one_thread_per_worker_scores_as_every_core(trained_home, listing_file, merchant_files, transcript_file,
                                                    monkeypatch) -> None:
    point_at_home(monkeypatch, trained_home)
    marketing = _load(FALSE_MARKETING, 1)
    assert marketing.encoder.session.get_session_options().intra_op_num_threads == 1
    segments = pd.read_parquet(transcript_file).head(64)[["text"]]
    np.testing.assert_allclose(marketing.score(segments).scores, _load(FALSE_MARKETING, 0).score(segments).scores,
                               atol=1e-6)
    listings = pd.read_parquet(listing_file).head(500)
    one, default = _load(LISTING_QUALITY, 1), _load(LISTING_QUALITY, 0)
    assert (one.threads, default.threads) == (1, 0)
    first, second = one.score(listings), default.score(listings)
    np.testing.assert_array_equal(first.scores, second.scores)
    assert first.reasons == second.reasons
    merchants = pd.read_parquet(merchant_files[0]).head(300)
    np.testing.assert_array_equal(_load(MERCHANT_RISK, 1).score(merchants).scores,
                                  _load(MERCHANT_RISK, 0).score(merchants).scores)
