"""The policy: every rule that turns model scores into decisions and decisions into actions.

- ``decisions.py``: ``decide(score, thresholds)`` and the order of decisions (pure);
- ``segments.py``: how a transcript segment is decided from its category scores, lexicon
  matches and novelty (the bundle holds its thresholds and floors);
- ``calls.py``: the per-call rules applied after the model (stream burst rule, listing
  wording rule, merchant penalty rule, the fallback);
- ``document.py`` + ``default_policy.yaml``: the policy file, versioned (declared name +
  content hash), typed and strict: the per-call rule parameters and enforcement over time;
- ``engine.py``: enforcement over time (rooms, creator credit, merchant points, appeals) as
  a pure function of events, run live by ``store.py`` and in shadow by ``replay.py``.

Model thresholds are not here: each model's bundle holds those chosen at training.
"""
