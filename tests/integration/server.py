"""Start the real service with ``bentoml serve`` on a free port and wait until ready."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import BIN, REPO, auth_headers


def api_post(url: str, **options: object) -> httpx.Response:
    """POST with the test token (scopes score, feedback, read)."""
    headers = {**auth_headers(), **dict(options.pop("headers", None) or {})}  # type: ignore[call-overload]
    return httpx.post(url, headers=headers, **options)  # type: ignore[arg-type]


def api_get(url: str, **options: object) -> httpx.Response:
    """GET with the test token."""
    headers = {**auth_headers(), **dict(options.pop("headers", None) or {})}  # type: ignore[call-overload]
    return httpx.get(url, headers=headers, **options)  # type: ignore[arg-type]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_server(home: Path, extra_env: dict[str, str] | None = None,
                   timeout: float = 90.0, target: str = "serving.service:ShopGuard",
                   cwd: Path = REPO, started: Callable[[httpx.Response], bool] | None = None) -> Iterator[str]:
    """Yield the base URL of ``bentoml serve TARGET`` (the checkout's service, or a Bento's
    tag) over ``home``, once ``/readyz`` answers 200 (or satisfies ``started``)."""
    started = started or (lambda response: response.status_code == 200)
    port = free_port()
    env = {**os.environ, "SHOPGUARD_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true", **(extra_env or {})}
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"server-{port}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [str(BIN / "bentoml"), "serve", target, "--port", str(port), "--host", "127.0.0.1"],
        cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited early; log:\n{log_path.read_text()}")
            try:
                if started(httpx.get(f"{base}/readyz", timeout=2)):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in {timeout}s; log:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@contextmanager
def running_servers(home: Path, count: int, **options: object) -> Iterator[list[str]]:
    """The base URLs of ``count`` servers over one home (replicas), started side by side and
    stopped together; each as ``running_server`` starts and stops it."""
    from concurrent.futures import ThreadPoolExecutor
    from contextlib import ExitStack

    managers = [running_server(home, **options) for _ in range(count)]  # type: ignore[arg-type]
    with ExitStack() as stack:
        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(manager.__enter__) for manager in managers]
        failures = []
        for manager, future in zip(managers, futures, strict=True):
            if future.exception() is None:
                stack.push(manager.__exit__)
            else:
                failures.append(future.exception())
        if failures:
            raise failures[0]
        yield [future.result() for future in futures]


def error_detail(response: httpx.Response, status: int) -> list[dict]:
    """The ``detail`` of a refused call, once its body is checked against the one documented
    shape of 4xx answers: an ``error`` code, and ``detail``, objects each with ``loc`` (the
    field, never behind a ``body`` / ``path`` / ``query`` prefix), ``msg`` and ``type``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("error"), str) and re.fullmatch(r"[a-z][a-z_]*", body["error"]), body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("detail"), list) and body["detail"], body
    for item in body["detail"]:
        assert {"loc", "msg", "type"} <= set(item) and isinstance(item["loc"], list), item
        assert item["loc"] == ["body"] or item["loc"][0] not in ("body", "path", "query"), item
    return body["detail"]
