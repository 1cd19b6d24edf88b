"""Saved-model bundles, the store (BentoML model store), aliases with history, model cards."""
