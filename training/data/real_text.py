"""Real public text from ``../shared/data`` (see its README): loaders, the one held-out rule,
and the label choices made for each source.

Nothing here is copied into the repository or into a bundle: the files are read where
they lie, and a bundle's lineage records their sha256 and row counts.

Held-out rule: a text belongs to the **check** part when a salted hash of it falls in the
lowest ``CHECK_SHARE`` of buckets; the generators only ever use the **train** part, and the
real-world checks only the check part. The rule depends on the text alone, so it gives the
same answer in the generator, the trainer, ``shopguard evaluate`` and the tests, and texts
that an analyst's own training file shares with a check set are dropped from that check.

Label choices (also written into the data cards):

- product titles: ordinary goods, used as honest listing titles and as clean background
  text; the few risk words some carry (外贸原单, 明星同款) are left in place as real noise.
- shopping reviews: buyers' opinions. 最好用 in a review is an opinion, not an advertising
  claim, but the same words from a seller are. Reviews that any lexicon rule matches are
  dropped from training (so the model is never taught that seller-claim wording is clean);
  the rest are clean background. Long reviews are cut into segment-sized pieces.
- ad copy: real promotional seller text, mostly lawful: clean background, and the carrier
  into which violating clauses are embedded. Pieces a lexicon rule matches are dropped.
- regulator cases: real penalised ads (Traditional Chinese). A case was penalised as a
  whole, so its fragments are joined into case-level pieces of segment length (never one
  short fragment alone) and labelled ``efficacy_claim``, plus ``guarantee_claim`` or
  ``fake_endorsement`` where a lexicon rule of that category matches the piece.
- in-game ads: real ad spam with QQ / WeChat contacts; label 1 -> ``off_platform``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from common.errors import ShopGuardError
from registry.bundle import sha256_file

CHECK_SHARE = 0.3
_SALT = "shopguard-real-holdout-v1"
SHARED_DATA_ENV = "SHOPGUARD_SHARED_DATA"
TITLES_FILE = "ecommerce_text/product_titles.tsv.gz"
REVIEWS_FILE = "ecommerce_text/reviews_online_shopping.csv.gz"
AD_COPY_FILE = "ecommerce_text/ad_copy.jsonl.gz"
REGULATOR_FILE = "regulator_ads/taipei_ad_penalties.jsonl.gz"
INGAME_TRAIN_FILE = "ingame_ads/train.txt"
INGAME_VALIDATION_FILE = "ingame_ads/validation.txt"
MAX_PIECE = 94  # the longest real ASR segment the maintainers describe
MIN_PIECE = 14


class RealDataMissing(ShopGuardError, RuntimeError):
    """``../shared/data`` (or one of its files) is not here (a user error: the CLI says so in one line)."""


def shared_data_dir() -> Path | None:
    """``$SHOPGUARD_SHARED_DATA`` when set (None if it is not a folder), else
    ``../shared/data`` beside the repository or the working directory; None when absent."""
    explicit = os.environ.get(SHARED_DATA_ENV)
    if explicit:
        return Path(explicit) if Path(explicit).is_dir() else None
    candidates = [Path(__file__).resolve().parents[2].parent / "shared" / "data",
                  Path.cwd().parent / "shared" / "data"]
    return next((c for c in candidates if c.is_dir()), None)


def require_shared_data() -> Path:
    """The shared data folder, or a ``RealDataMissing`` that says how to provide it."""
    root = shared_data_dir()
    if root is None:
        raise RealDataMissing(f"../shared/data is not here; set {SHARED_DATA_ENV} to the folder holding "
                              "ecommerce_text/, regulator_ads/ and ingame_ads/.")
    return root


def warn_missing(what: str) -> None:
    """The one warning given when a run goes on without the real data."""
    warnings.warn(f"../shared/data not found: {what} (set {SHARED_DATA_ENV} to use it).",
                  RuntimeWarning, stacklevel=2)


def is_check_text(text: str, share: float = CHECK_SHARE) -> bool:
    """True when ``text`` belongs to the held-out check part (salted hash; see module doc)."""
    digest = hashlib.sha1(f"{_SALT}:{text}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def _path(root: Path, relative: str) -> Path:
    path = root / relative
    if not path.is_file():
        raise RealDataMissing(f"{path} is missing from the shared data folder.")
    return path


_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…\n])")


def pieces(text: str, max_len: int = MAX_PIECE, min_len: int = MIN_PIECE) -> list[str]:
    """Cut a long text at sentence ends into pieces of ``min_len``-``max_len`` characters
    (a sentence longer than ``max_len`` is cut at ``max_len``)."""
    out, current = [], ""
    for sentence in (s.strip() for s in _SENTENCE_END.split(text) if s.strip()):
        while len(sentence) > max_len:
            out.append(sentence[:max_len])
            sentence = sentence[max_len:]
        if len(current) + len(sentence) > max_len:
            out.append(current)
            current = ""
        current += sentence
    out.append(current)
    return [p for p in out if len(p) >= min_len]


@lru_cache(maxsize=2)
def product_titles(root: Path) -> tuple[str, ...]:
    """The real Taobao titles (non-empty, de-duplicated, file order)."""
    frame = pd.read_csv(_path(root, TITLES_FILE), sep="\t", quoting=csv.QUOTE_NONE, dtype=str)
    titles = frame["title"].fillna("").str.strip()
    return tuple(dict.fromkeys(t for t in titles if len(t) >= 4))


@lru_cache(maxsize=2)
def reviews(root: Path) -> pd.DataFrame:
    """The real shopping reviews: columns ``cat``, ``label``, ``review``."""
    frame = pd.read_csv(_path(root, REVIEWS_FILE), encoding="utf-8-sig", dtype={"review": str})
    return frame.dropna(subset=["review"]).reset_index(drop=True)


@lru_cache(maxsize=2)
def ad_copy(root: Path) -> tuple[str, ...]:
    """The real ad texts (``summary``)."""
    with gzip.open(_path(root, AD_COPY_FILE), "rt", encoding="utf-8") as handle:
        return tuple(json.loads(line)["summary"] for line in handle if line.strip())


@dataclass(frozen=True)
class RegulatorCase:
    """One penalised ad: product, category, violation type and its quoted claims."""

    product: str
    category: str
    violation_type: str
    fragments: tuple[str, ...]

    @property
    def key(self) -> str:
        """What the held-out rule hashes: the case's own words."""
        return self.product + "|" + "…".join(self.fragments)

    def segments(self, max_len: int = MAX_PIECE, min_fragment: int = 4) -> list[str]:
        """The case's claims as segment-sized pieces (fragments joined in order)."""
        out, current = [], ""
        for fragment in (f.strip() for f in self.fragments if len(f.strip()) >= min_fragment):
            fragment = fragment[:max_len]
            if current and len(current) + len(fragment) + 1 > max_len:
                out.append(current)
                current = ""
            current = f"{current} {fragment}".strip()
        if current:
            out.append(current)
        return out


@lru_cache(maxsize=2)
def regulator_cases(root: Path) -> tuple[RegulatorCase, ...]:
    """The penalised ad cases with at least one usable claim fragment."""
    cases = []
    with gzip.open(_path(root, REGULATOR_FILE), "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            case = RegulatorCase(row.get("product", ""), row.get("category", ""),
                                 row.get("violation_type", ""), tuple(row.get("claim_fragments") or ()))
            if case.segments():
                cases.append(case)
    return tuple(cases)


@lru_cache(maxsize=4)
def ingame_ads(root: Path, part: str = "train") -> pd.DataFrame:
    """The in-game chat messages (``label``, ``text``) of ``train`` or ``validation``."""
    relative = INGAME_TRAIN_FILE if part == "train" else INGAME_VALIDATION_FILE
    frame = pd.read_csv(_path(root, relative), sep="\t", quoting=csv.QUOTE_NONE, dtype={"text": str})
    return frame.dropna(subset=["text"]).reset_index(drop=True)


def source_hashes(root: Path) -> dict[str, str]:
    """sha256 of every real file the text pipelines read, by path (for lineage and cards)."""
    return {str(path): sha256_file(path) for path in source_files(root).values()}


def source_files(root: Path) -> dict[str, Path]:
    """The real files the text pipelines read, by a short name."""
    return {name: root / relative for name, relative in (
        ("product_titles", TITLES_FILE), ("reviews", REVIEWS_FILE), ("ad_copy", AD_COPY_FILE),
        ("regulator_cases", REGULATOR_FILE), ("ingame_train", INGAME_TRAIN_FILE),
        ("ingame_validation", INGAME_VALIDATION_FILE)) if (root / relative).is_file()}


UNSEEN_SOURCES = ("unseen real ad copy", "unseen real reviews", "unseen real titles")


def unseen_train_part(root: Path, seen: set[str], limit: int = 1500, seed: int = 0) -> dict[str, list[str]]:
    """Clean real text of the train part (never the check part) that a training file does not
    hold, by source: ad copy and review pieces as the generators cut them, and titles; at most
    ``limit`` of each (a seeded sample). A model never read them, so the review budget can be
    held on them: validation holds only the few pieces the generator drew."""
    rng = np.random.default_rng(seed)
    ads = [p for a in ad_copy(root) if not is_check_text(a) for p in pieces(a)]
    first_pieces = [p for r in reviews(root)["review"] if not is_check_text(r) for p in pieces(r)[:1]]
    titles = [t for t in product_titles(root) if not is_check_text(t)]
    out = {}
    for name, texts in zip(UNSEEN_SOURCES, (ads, first_pieces, titles), strict=True):
        unseen = list(dict.fromkeys(t for t in texts if t not in seen))
        if len(unseen) > limit:
            unseen = [unseen[i] for i in np.sort(rng.choice(len(unseen), size=limit, replace=False))]
        out[name] = unseen
    return out
