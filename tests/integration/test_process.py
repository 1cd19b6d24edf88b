"""``shopguard serve`` owns its server: after a SIGKILL of the command alone, the BentoML
server and its worker exit (parent-death signal), the port is free and a restart works."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

import httpx
import psutil
import pytest

from tests.conftest import BIN, REPO
from tests.integration.server import free_port

pytestmark = pytest.mark.integration


def _serve(home, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SHOPGUARD_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    return subprocess.Popen([str(BIN / "shopguard"), "serve", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_ready(port: int, seconds: float = 90) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_sigkilled_serve_leaves_nothing_on_the_port(tmp_path) -> None:
    port = free_port()
    command = _serve(tmp_path / "home", port)
    try:
        assert _wait_ready(port)
        children = psutil.Process(command.pid).children(recursive=True)
        assert children  # the BentoML server and its worker
        os.kill(command.pid, signal.SIGKILL)  # the command alone, not its group
        command.wait()
        gone, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
        assert _port_free(port)
        again = _serve(tmp_path / "home", port)
        try:
            assert _wait_ready(port)
        finally:
            os.killpg(again.pid, signal.SIGTERM)
            again.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(command.pid, signal.SIGKILL)
