"""Runtimes that turn a verified bundle into a scoring object (used by serving and evaluation)."""
