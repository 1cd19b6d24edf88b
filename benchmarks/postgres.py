"""A throwaway PostgreSQL cluster for benchmarks: ``initdb`` + ``pg_ctl`` in a temporary folder
(as the ``postgres`` user when run as root), one database, removed afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bin() -> Path:
    """The server tools: ``SHOPGUARD_PG_BIN``, else the newest ``/usr/lib/postgresql/<v>/bin``."""
    if "SHOPGUARD_PG_BIN" in os.environ:
        return Path(os.environ["SHOPGUARD_PG_BIN"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not versions:
        raise SystemExit("PostgreSQL server tools not found: install postgresql or set SHOPGUARD_PG_BIN")
    return versions[-1]


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def server_cpu_seconds() -> float:
    """CPU seconds so far of every PostgreSQL server process on this machine (the benchmark's
    cluster is the only one running while it runs)."""
    import psutil

    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        if (process.info["name"] or "").startswith("postgres") and process.info["cpu_times"]:
            total += process.info["cpu_times"].user + process.info["cpu_times"].system
    return round(total, 1)


@contextmanager
def temporary_postgres() -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh database on a temporary cluster."""
    from benchmarks.load import free_port

    tools = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="shopguard-bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(_as_postgres([str(tools / "initdb"), "-D", str(data), "-U", "shopguard", "--auth=trust"]),
                   check=True, capture_output=True)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=300"
    subprocess.run(_as_postgres([str(tools / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                                 str(folder / "server.log"), "start"]), check=True, capture_output=True)
    try:
        subprocess.run(_as_postgres([str(tools / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "shopguard",
                                     "shopguard"]), check=True, capture_output=True)
        yield f"postgresql+psycopg://shopguard@127.0.0.1:{port}/shopguard"
    finally:
        subprocess.run(_as_postgres([str(tools / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
