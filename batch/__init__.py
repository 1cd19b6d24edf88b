"""Offline jobs: catalogue-wide batch scoring with the service's runtimes and answers
(``jobs.py``: local; ``ray_engine.py``: Ray Data; ``cli.py``: ``shopguard batch ...``)."""
