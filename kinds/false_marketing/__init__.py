"""false-marketing: false-marketing categories per livestream transcript segment, with evidence
spans (transformer encoder served through ONNX Runtime, blended with TF-IDF, plus lexicon rules).

Serving half: ``record.py`` (a segment), ``runtime.py`` (``encoder.py``, ``char_ids.py``,
``blend.py``, ``spans.py``), ``answers.py`` (segments, the stream's decision, the room).
Training half, never imported by serving: ``training.py``, ``pipeline.py``, ``card.py``,
``generator.py``."""
