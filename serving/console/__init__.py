"""The review and audit console: HTML pages served by the service under ``/console``.

Reviewers work the queue of ``review`` decisions and give verdicts (stored by the same code
as ``POST /v1/feedback``); auditors read models, cards, promotion history, decisions and
charts. Sign-in exchanges a token for a session (``session.py``); every page is rendered by
Jinja2 with auto-escaping under a strict Content-Security-Policy (``security.py``); reads go
through ``queries.py``. Nothing here is built by a front-end toolchain: the CSS and the one
script are static files.
"""

from serving.console.app import console_app

__all__ = ["console_app"]
