"""listing-quality: inferior goods among product listings (LightGBM over numeric + text features).

Serving half: ``record.py`` (the API's record), ``features.py`` (feature set
``listing_quality_v1``), ``runtime.py``, ``answers.py`` (results and response). Training half,
never imported by serving: ``training.py`` (``shopguard train listing-quality``), ``pipeline.py``,
``card.py`` (the card's content), ``generator.py`` (synthetic listings)."""
