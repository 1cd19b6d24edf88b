"""Synthetic data generators and loaders for training files."""
