"""Cards leave the training machine's file system behind."""

from __future__ import annotations


def test_cards_carry_no_path_of_the_training_machine() -> None:
    from registry.cards import without_machine_paths

    text = ("Held-out part of /work/shared/data (checked); | /work/shared/data/ads/x.jsonl.gz | "
            "base (/root/.shopguard/base_models/char-bert-1) see https://example.org/a/b/c and ../shared/data/y.csv")
    cut = without_machine_paths({"rows": [[text, 3]]})["rows"][0]
    assert cut[1] == 3 and "/work/" not in cut[0] and "/root/" not in cut[0]
    assert "…/ads/x.jsonl.gz" in cut[0] and "…/base_models/char-bert-1" in cut[0] and "…/shared/data " in cut[0]
    assert "https://example.org/a/b/c" in cut[0] and "../shared/data/y.csv" in cut[0]


def test_a_path_relative_to_the_trainers_folder_loses_its_hidden_home() -> None:
    from registry.cards import without_machine_paths

    cut = without_machine_paths("base model .shopguard/base_models/char-bert-1 (cached); https://x.org/.well-known/a")
    assert cut == "base model …/base_models/char-bert-1 (cached); https://x.org/.well-known/a"
    assert without_machine_paths("a .env file and v0.9/b") == "a .env file and v0.9/b"
