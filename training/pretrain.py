"""A reusable base encoder: masked-language-model pretraining of the character BERT on real
Chinese text from ``../shared/data`` (live-room speech, shopping reviews, product titles, ad
copy, regulator cases, chat), before any labelled fine-tuning.

The base is a ``save_pretrained`` checkpoint folder (config, safetensors weights, tokenizer)
with its own ``base_manifest.json``: the sha256 of every file, the corpus (sources, rows,
sha256 of each real file), the parameters, the loss history, library versions and the git
commit. ``train false-marketing --base-model FOLDER`` fine-tunes it, checks the hashes first
and records the base manifest's sha256 in the new version's lineage.

Held out from the corpus: the check part of every real source (``real_text.is_check_text``,
what the real-world checks read) and every *labelled* live-room sentence (the rows the
grouped figures are measured on). Unlabelled sentences of the labelled rooms are in it: the
card says so next to the grouped figures.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from common.errors import ShopGuardError
from features.text import normalize_many
from kinds.false_marketing.encoder import MAX_TOKENS
from registry.bundle import sha256_file
from training.data import live_asr, real_text
from training.lineage import git_commit, library_versions
from training.pipeline import Progress, no_progress

BASE_MANIFEST = "base_manifest.json"
# Bump when the corpus recipe or the objective changes: a cached base of another recipe is rebuilt.
RECIPE_VERSION = 1
FIRST_PLAIN_TOKEN = 5  # ids below are [PAD] [UNK] [CLS] [SEP] [MASK] (text_encoder.SPECIAL_TOKENS)


class PretrainConfig(BaseModel):
    """Parameters of a base-encoder pretraining run. Unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, le=2**32 - 1)
    hidden_size: int = Field(128, ge=16)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    intermediate_size: int = Field(256, ge=16)
    dropout: float = Field(0.1, ge=0, lt=1)
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    mask_probability: float = Field(0.15, gt=0, lt=1)
    min_char_frequency: int = Field(2, ge=1)
    sound_embeddings: bool = Field(True, description=(
        "a part of each Han character's embedding shared by its toneless pinyin syllable "
        "(training/sound_embeddings.py), and every common character (GB2312 level 1) in the vocabulary, "
        "so that a character the corpus lacks is still read by its sound"))
    max_texts: int | None = Field(None, ge=100, description="cap on corpus texts (a seeded sample)")
    sources: list[str] = Field(
        default_factory=lambda: ["live_asr", "reviews", "titles", "ad_copy", "regulator", "ingame"],
        description="real sources in the corpus")
    source_caps: dict[str, int] = Field(
        default_factory=lambda: {"reviews": 10_000, "ingame": 5_000},
        description="most texts taken from a source (a seeded sample): spoken live-room text is kept whole, "
                    "buyers' reviews and game chat are sampled so that speech dominates and a CPU run stays short")
    evaluation_share: float = Field(0.02, gt=0, lt=0.5, description="texts held out for the MLM loss")
    num_threads: int = Field(1, ge=0, description=(
        "PyTorch threads (0: one per core). One is the default: the small encoder's steps are short, "
        "and on a busy 2-core machine two threads ran a step 10x slower than one"))
    max_train_seconds: float | None = Field(None, gt=0)

    def cache_key(self, source_hashes: dict[str, str]) -> str:
        """What a cached base depends on: these parameters, the corpus files and the recipe."""
        payload = json.dumps({"config": self.model_dump(exclude={"num_threads", "max_train_seconds"}),
                              "sources": sorted(source_hashes.values()), "recipe": RECIPE_VERSION},
                             sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass
class Corpus:
    """Normalized pretraining texts and how many came from each source."""

    texts: list[str]
    rows_per_source: dict[str, int]
    files: dict[str, str] = field(default_factory=dict)  # real file -> sha256


def _spoken_windows(sentences: list[str], rooms: list[str], max_chars: int = MAX_TOKENS - 2) -> list[str]:
    """Each sentence, and each pair of consecutive sentences of one room that fits a window
    (live segments often run across a sentence end)."""
    out = list(sentences)
    for (a, room_a), (b, room_b) in zip(zip(sentences, rooms, strict=True),
                                        zip(sentences[1:], rooms[1:], strict=True), strict=False):
        if room_a == room_b and len(a) + len(b) <= max_chars:
            out.append(a + b)
    return out


def _source_texts(root: Path, source: str) -> list[str]:
    """The train part of one real source: documents whose check-part hash is false
    (``real_text.is_check_text`` on the whole review, ad or case, as the checks hash them)."""
    if source == "live_asr":
        sentences = live_asr.clip_sentences(root)
        labelled = set(live_asr.labelled_sentences(root)["text"])
        kept = sentences[~sentences["text"].isin(labelled)]
        return _spoken_windows(kept["text"].tolist(), kept["room"].tolist())
    if source == "reviews":
        return [p for r in real_text.reviews(root)["review"] if not real_text.is_check_text(r) for p in real_text.pieces(r)]
    if source == "titles":
        return [t for t in real_text.product_titles(root) if not real_text.is_check_text(t)]
    if source == "ad_copy":
        return [p for a in real_text.ad_copy(root) if not real_text.is_check_text(a) for p in real_text.pieces(a)]
    if source == "regulator":
        return [s for case in real_text.regulator_cases(root) if not real_text.is_check_text(case.key) for s in case.segments()]
    if source == "ingame":
        return real_text.ingame_ads(root, "train")["text"].astype(str).tolist()
    raise ShopGuardError(f"unknown pretraining source {source!r}; use live_asr, reviews, titles, ad_copy, "
                         "regulator or ingame.")


def build_corpus(root: Path, config: PretrainConfig) -> Corpus:
    """The normalized, de-duplicated pretraining texts of ``config.sources`` (train parts only)."""
    rows, texts = {}, []
    rng = np.random.default_rng(config.seed)
    for source in config.sources:
        part = _source_texts(root, source)
        cap = config.source_caps.get(source)
        if cap is not None and len(part) > cap:
            part = [part[i] for i in np.sort(rng.choice(len(part), cap, replace=False))]
        rows[source] = len(part)
        texts.extend(part)
    texts = [t for t in dict.fromkeys(normalize_many(texts)) if len(t) >= 2]
    if config.max_texts and len(texts) > config.max_texts:
        keep = np.sort(np.random.default_rng(config.seed).choice(len(texts), config.max_texts, replace=False))
        texts = [texts[i] for i in keep]
    files = {**real_text.source_hashes(root),
             **{str(p): sha256_file(p) for p in live_asr.source_files(root).values()}}
    return Corpus(texts, rows, files)


def mask_tokens(ids: Any, special: Any, mask_id: int, vocab_size: int, probability: float,
                generator: Any) -> tuple[Any, Any]:
    """BERT masking: ``probability`` of the non-special tokens are targets; of those 80% become
    [MASK], 10% a random token, 10% stay. Returns (inputs, labels with -100 off target)."""
    import torch

    labels = ids.clone()
    chosen = (torch.rand(ids.shape, generator=generator) < probability) & ~special
    labels[~chosen] = -100
    inputs = ids.clone()
    to_mask = chosen & (torch.rand(ids.shape, generator=generator) < 0.8)
    inputs[to_mask] = mask_id
    to_random = chosen & ~to_mask & (torch.rand(ids.shape, generator=generator) < 0.5)
    inputs[to_random] = torch.randint(FIRST_PLAIN_TOKEN, vocab_size, ids.shape, generator=generator)[to_random]
    return inputs, labels


def masked_lm_loss(model: Any, inputs: Any, attention: Any, labels: Any) -> tuple[Any, Any]:
    """Cross-entropy of the masked positions only: the vocabulary head runs on the ~15% of
    tokens that are targets instead of all of them (most of a step's cost on a CPU)."""
    import torch

    states = model.bert(input_ids=inputs, attention_mask=attention).last_hidden_state
    target = labels != -100
    logits = model.cls(states[target])
    return torch.nn.functional.cross_entropy(logits, labels[target]), logits


class BaseEncoderTrainer:
    """Pretrains the character BERT with a masked-LM objective and writes the base folder."""

    def __init__(self, config: PretrainConfig, progress: Progress | None = None) -> None:
        self.config = config
        self._progress = progress or no_progress

    def fit(self, corpus: Corpus, out: Path) -> dict[str, Any]:
        """Train on ``corpus`` and write the checkpoint, tokenizer and base manifest into ``out``."""
        import torch
        from transformers import BertConfig, BertForMaskedLM

        from training import sound_embeddings
        from training.data.evasions import common_characters
        from training.text_encoder import build_char_tokenizer, quiet_transformers

        config = self.config
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        order = rng.permutation(len(corpus.texts))
        n_eval = max(1, int(config.evaluation_share * len(order)))
        evaluation = [corpus.texts[i] for i in order[:n_eval]]
        train = [corpus.texts[i] for i in order[n_eval:]]
        extra = common_characters() if config.sound_embeddings else ()
        tokenizer = build_char_tokenizer(train, config.min_char_frequency, extra_chars=extra)
        model = BertForMaskedLM(BertConfig(
            vocab_size=len(tokenizer), hidden_size=config.hidden_size, num_hidden_layers=config.layers,
            num_attention_heads=config.heads, intermediate_size=config.intermediate_size,
            max_position_embeddings=MAX_TOKENS, hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout, attn_implementation="eager"))
        if config.sound_embeddings:
            sound_embeddings.attach(model, tokenizer)
        self._progress(f"pretraining the base encoder on {len(train):,} real texts "
                       f"({sum(p.numel() for p in model.parameters()):,} parameters)")
        history = self._train(model, tokenizer, train, evaluation)
        sound_embeddings.merge(model)
        out.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
        return history

    def _batches(self, tokenizer: Any, texts: list[str], rng: np.random.Generator | None):
        """Length-bucketed batches (similar lengths pad less), in random order when ``rng``."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[s:s + self.config.batch_size] for s in range(0, len(order), self.config.batch_size)]
        if rng is not None:
            chunks = [chunks[i] for i in rng.permutation(len(chunks))]
        for chunk in chunks:
            encoded = tokenizer([texts[i] for i in chunk], padding=True, truncation=True,
                                max_length=MAX_TOKENS, return_tensors="pt", return_special_tokens_mask=True)
            special = encoded["special_tokens_mask"].bool() | (encoded["attention_mask"] == 0)
            yield encoded["input_ids"], encoded["attention_mask"], special

    def _train(self, model: Any, tokenizer: Any, train: list[str], evaluation: list[str]) -> dict[str, Any]:
        import torch

        config = self.config
        generator = torch.Generator().manual_seed(config.seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        steps = config.epochs * math.ceil(len(train) / config.batch_size)
        warmup = max(1, int(config.warmup_ratio * steps))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: (
            (step + 1) / warmup if step < warmup else max(0.0, (steps - step) / max(1, steps - warmup))))
        rng, history, began = np.random.default_rng(config.seed), [], time.perf_counter()
        for epoch in range(config.epochs):
            model.train()
            losses = []
            for ids, attention, special in self._batches(tokenizer, train, rng):
                inputs, labels = mask_tokens(ids, special, tokenizer.mask_token_id, len(tokenizer),
                                             config.mask_probability, generator)
                loss, _ = masked_lm_loss(model, inputs, attention, labels)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                losses.append(float(loss.detach()))
            evaluation_loss, accuracy = self._evaluate(model, tokenizer, evaluation)
            history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                            "evaluation_loss": evaluation_loss, "masked_accuracy": accuracy})
            self._progress(f"pretraining epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.3f}, "
                           f"held-out loss {evaluation_loss:.3f}, masked-token accuracy {accuracy:.3f}")
            if config.max_train_seconds and time.perf_counter() - began > config.max_train_seconds:
                break
        model.eval()
        return {"history": history, "train_seconds": time.perf_counter() - began, "train_texts": len(train),
                "evaluation_texts": len(evaluation)}

    def _evaluate(self, model: Any, tokenizer: Any, texts: list[str]) -> tuple[float, float]:
        """Masked-LM loss and accuracy on held-out texts (a fixed masking seed)."""
        import torch

        generator = torch.Generator().manual_seed(12345)
        model.eval()
        losses, correct, total = [], 0, 0
        with torch.no_grad():
            for ids, attention, special in self._batches(tokenizer, texts, None):
                inputs, labels = mask_tokens(ids, special, tokenizer.mask_token_id, len(tokenizer),
                                             self.config.mask_probability, generator)
                loss, logits = masked_lm_loss(model, inputs, attention, labels)
                target = labels[labels != -100]
                losses.append(float(loss) * len(target))
                correct += int((logits.argmax(-1) == target).sum())
                total += len(target)
        return (sum(losses) / max(1, total), correct / max(1, total))


def write_base_manifest(folder: Path, config: PretrainConfig, corpus: Corpus, training: dict[str, Any]) -> dict:
    """``base_manifest.json``: the sha256 of every file in ``folder``, corpus, parameters, history."""
    manifest = {
        "kind": "shopguard char-bert base encoder (masked-LM)",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "recipe_version": RECIPE_VERSION,
        "parameters": config.model_dump(),
        "corpus": {"texts": len(corpus.texts), "rows_per_source": corpus.rows_per_source,
                   "files": corpus.files,
                   "held_out": "check part of every real source; every labelled live-room sentence"},
        "training": training,
        "git_commit": git_commit(),
        "library_versions": library_versions(),
        "files": {p.name: sha256_file(p) for p in sorted(folder.iterdir())
                  if p.is_file() and p.name != BASE_MANIFEST},
    }
    (folder / BASE_MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest


def verify_base_model(folder: Path) -> dict | None:
    """The base manifest of ``folder`` after checking every file's sha256 against it (None for
    a checkpoint folder without one, e.g. a user's own). A mismatch is refused, naming the file."""
    path = folder / BASE_MANIFEST
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for name, expected in manifest["files"].items():
        file = folder / name
        if not file.is_file() or sha256_file(file) != expected:
            raise ShopGuardError(f"base model {folder}: {name} does not match its sha256 in {BASE_MANIFEST}; "
                                 "the checkpoint was changed or damaged. Rebuild it with "
                                 "`shopguard train base-encoder --force`.")
    return manifest


def base_model_folder(home: Path, config: PretrainConfig, root: Path) -> Path:
    """Where the base of ``config`` over the corpus at ``root`` is cached in ``home``."""
    files = {**real_text.source_hashes(root), **{str(p): sha256_file(p) for p in live_asr.source_files(root).values()}}
    return home / "base_models" / f"char-bert-{config.cache_key(files)}"


def pretrain_base_model(config: PretrainConfig, root: Path, out: Path, progress: Progress = no_progress,
                        force: bool = False) -> tuple[Path, dict]:
    """Pretrain into ``out`` unless a verified base is already there (``force`` retrains).
    Returns the folder and its manifest."""
    if not force and (out / BASE_MANIFEST).is_file():
        manifest = verify_base_model(out)
        assert manifest is not None
        progress(f"reusing the cached base encoder {out}")
        return out, manifest
    progress("building the pretraining corpus from ../shared/data")
    corpus = build_corpus(root, config)
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        import shutil

        shutil.rmtree(staging)
    training = BaseEncoderTrainer(config, progress).fit(corpus, staging)
    manifest = write_base_manifest(staging, config, corpus, training)
    staging.replace(out) if not out.exists() else _replace_folder(staging, out)
    return out, manifest


def _replace_folder(staging: Path, out: Path) -> None:
    import shutil

    shutil.rmtree(out)
    staging.replace(out)
