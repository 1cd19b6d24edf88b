"""A ``shopguard`` process that stays, for CLI calls with plug-in kinds (``SHOPGUARD_KINDS``).

The kinds table is read when the CLI is imported, so a call with plug-in kinds cannot run in
the test process. This process is started with the plug-ins in its environment (it imports
the CLI, hence reads the table, as every process a user starts) and then runs one command
after another through Click's runner, each with the caller's environment, without the 2-3 s
of a fresh interpreter per command. ``tests/conftest.py``'s ``run_cli`` starts one per
plug-in setting and talks to it: a JSON line in (arguments, environment), one out (exit
status, stdout, stderr). Anything else written to this process's stdout goes to its stderr.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import typer
from typer.testing import CliRunner


def _run(app: typer.Typer, args: list[str], environ: dict[str, str]) -> dict[str, object]:
    os.environ.clear()
    os.environ.update(environ)
    outcome = CliRunner().invoke(app, args, catch_exceptions=True)
    stderr = outcome.stderr
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        stderr += "".join(traceback.format_exception(outcome.exception))
    return {"returncode": outcome.exit_code, "stdout": outcome.stdout, "stderr": stderr}


def main() -> None:
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # a library printing to fd 1 must not break the answers
    kinds = os.environ.get("SHOPGUARD_KINDS", "")
    from shopguard.cli import app  # the kinds table is read now, with this process's plug-ins

    for line in sys.stdin:
        request = json.loads(line)
        if request["environ"].get("SHOPGUARD_KINDS", "") != kinds:
            answer = {"returncode": 99, "stdout": "", "stderr": f"cli_worker: started with SHOPGUARD_KINDS={kinds!r}"}
        else:
            answer = _run(app, request["args"], request["environ"])
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
