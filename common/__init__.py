"""What every layer shares and nothing of ours below it: the errors ShopGuard raises on purpose
(``errors.py``), the decision vocabulary and ``decide`` (``decisions.py``), the settings read from
the environment (``settings.py``), users' table files (``tables.py``) and CLI output
(``terminal.py``). This package imports no other ShopGuard package."""
