"""Training pipelines, data generators and loaders, evaluation and thresholds."""
