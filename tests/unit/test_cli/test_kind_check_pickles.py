"""The contract suite finds pickles by their bytes, without unpickling anything."""

from __future__ import annotations

import numpy as np

from shopguard.kind_checks import _is_pickle


def test_pickles_are_found_by_their_frame_and_safe_files_pass(tmp_path) -> None:
    (tmp_path / "model.bin").write_bytes(b"\x80\x04K\x01.")  # the pickle of 1, protocol 4, written by hand
    np.save(tmp_path / "weights.npy", np.arange(4, dtype=np.uint64))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "card.json").write_text('{"a": 1}')
    (tmp_path / "almost.bin").write_bytes(b"\x80\x04K\x01")  # a PROTO opcode but no STOP: not a pickle
    (tmp_path / "x.joblib").write_bytes(b"anything")
    found = {p.name for p in tmp_path.iterdir() if _is_pickle(p)}
    assert found == {"model.bin", "objects.npy", "x.joblib"}
