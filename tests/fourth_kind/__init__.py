"""A fourth model kind that lives in the test tree only: review spam. It proves that a kind is
its own files plus one line in the kinds table (``SHOPGUARD_KINDS=tests.fourth_kind.kind:REVIEW_SPAM``),
with no edit to any shared file: records and results (``kind.py``), runtime (``runtime.py``),
trainer, card and generator (``training.py``)."""
