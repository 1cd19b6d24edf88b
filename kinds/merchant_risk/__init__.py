"""merchant-risk: suspicious merchants (LightGBM over own + neighbour-aggregated features).

Serving half: ``record.py`` (merchant and links), ``features.py`` (graph features),
``graph_scale.py`` (the same features out of core), ``runtime.py``, ``answers.py``. Training
half, never imported by serving: ``training.py``, ``pipeline.py``, ``card.py``, ``generator.py``."""
