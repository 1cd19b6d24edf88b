"""Settings from ``SHOPGUARD_*`` environment variables (pydantic-settings), each with a default.

Settings are read once at the edge of a process (the CLI, the service, a benchmark) and
passed in; runtimes and trainers take what they need as arguments.
"""

from __future__ import annotations

import getpass
import os
import warnings
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.errors import ShopGuardError

Device = Literal["cpu", "cuda", "auto"]
ENV_PREFIX = "SHOPGUARD_"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Settings(BaseSettings):
    """Where ShopGuard keeps its state and how it runs (``SHOPGUARD_<FIELD>`` variables).

    - ``SHOPGUARD_HOME``: model store and default database (default ``./.shopguard``)
    - ``SHOPGUARD_DATABASE_URL``: any SQLAlchemy URL (default SQLite under the home)
    - ``SHOPGUARD_DEVICE``: ``cpu``, ``cuda`` or ``auto`` (default ``auto``)
    - ``SHOPGUARD_OWNER``: the team named as owner in model cards
    - ``SHOPGUARD_ACTOR``: who acts, for the alias history (default: the login name)
    - ``SHOPGUARD_DECISION_LOG_FLUSH_SECONDS``: longest wait before queued decision records
      are written (default 0.2)
    - ``SHOPGUARD_DECISION_LOG``: ``on`` (default) or ``off``; ``off`` exists only to measure
      the log's overhead (``benchmarks/listing_throughput.py``) and is never for production
    - ``SHOPGUARD_PROMOTION_PR_AUC_TOLERANCE``: how far a candidate's test PR-AUC may fall
      below production's before ``promote`` refuses it without ``--force`` (default 0.01)
    - ``SHOPGUARD_MAX_IN_FLIGHT``: scoring calls a worker works on at once; the next ones are
      shed with 503 + ``Retry-After`` (default 8, measured on 2 cores)
    - ``SHOPGUARD_MAX_OPEN_REQUESTS``: calls a worker holds open at once, bodies still
      arriving included; the next ones are shed with 503 + ``Retry-After`` (default 1024)
    - ``SHOPGUARD_BODY_TIMEOUT_SECONDS``: how long a request body may take to arrive; a
      slower one is answered 408 and its connection closed (default 15)
    - ``SHOPGUARD_REQUEST_BUDGET_SECONDS``: how long a call may take once admitted; then it
      is answered 503 with the fallback and its work cancelled (default 30)
    - ``SHOPGUARD_COMPUTE_THREADS``: threads each worker's models use (ONNX Runtime,
      LightGBM); default 0: the cores divided among the workers
    - ``SHOPGUARD_AUTH``: ``on`` (default; bearer tokens with scopes) or ``off`` (local
      experiments only; the service says so loudly at start)
    - ``SHOPGUARD_METRICS``: ``on`` collects BentoML's request metrics and serves Prometheus
      ``/metrics`` (``read`` scope); ``off`` (default) collects none and answers 404
    - ``SHOPGUARD_POLICY``: the policy file (``policy/default_policy.yaml`` when unset): the
      per-call rules and enforcement over time; a file that does not validate is refused
      naming the key (``shopguard enforcement check FILE``)
    - ``SHOPGUARD_ENFORCEMENT``: ``on`` (default) or ``off``; ``off`` answers every call on
      its own (no rooms, credit or points) and exists only to measure enforcement's cost
      (``benchmarks/stream_throughput.py --enforcement``); never for production
    - ``SHOPGUARD_ENFORCEMENT_TICK_SECONDS``: how often each worker applies what fell due
      (credit recoveries, point expiries, penalty ends) and verdicts not yet applied (default 60)
    - ``SHOPGUARD_STREAM_BATCH_SEGMENTS`` / ``SHOPGUARD_STREAM_BATCH_WAIT_MS``: batching of
      concurrent stream calls (``serving/microbatch.py``): at most this many segments per
      encoder batch (default 256); how long a batch waits for more calls (default 0: it takes
      the calls that queued while the previous batch ran, so an idle service adds no wait)
    - ``SHOPGUARD_FOLLOW_SECONDS``: how often each worker checks the ``production`` aliases
      and swaps in a promoted or rolled-back version without a restart (default 10; 0: never,
      serve what was production at start)
    - ``SHOPGUARD_RELEASE``: a release file (``shopguard bento build``); when set, the
      service serves exactly the versions it pins instead of the ``production`` aliases (a
      Bento sets it)

    BentoML's model store lives in ``BENTOML_HOME`` (BentoML's own variable; default
    ``<home>/bentoml``). BentoML fixes its store at first use in a process.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    home: Path = Path(".shopguard")
    database_url: str = ""
    device: Device = "auto"
    owner: str = "ShopGuard trust-and-safety ML team"
    actor: str = Field(default_factory=_login_name)
    decision_log_flush_seconds: float = Field(0.2, gt=0)
    promotion_pr_auc_tolerance: float = Field(0.01, ge=0)
    decision_log: bool = True
    workers: int = Field(1, ge=1, le=64, description="service worker processes (``shopguard serve --workers``)")
    max_in_flight: int = Field(8, ge=1, description="scoring calls worked on at once per worker; more get 503")
    max_open_requests: int = Field(1024, ge=1, le=100_000, description=(
        "calls held open at once per worker (bodies still arriving included); more get 503"))
    body_timeout_seconds: float = Field(15.0, gt=0, le=600, description=(
        "how long a request body may take to arrive; slower ones get 408"))
    request_budget_seconds: float = Field(30.0, gt=0, le=3600, description=(
        "how long an admitted call may take; then 503 with the fallback, and its work is cancelled"))
    compute_threads: int = Field(0, ge=0, le=256, description=(
        "threads each worker's models use (ONNX Runtime, LightGBM); 0: the cores divided among the workers"))
    auth: bool = True
    metrics: bool = False
    enforcement: bool = True
    policy: Path | None = Field(None, description="the policy file (None: the shipped policy/default_policy.yaml)")
    enforcement_tick_seconds: float = Field(60.0, gt=0, le=86_400, description=(
        "how often each worker applies what fell due and verdicts not yet applied"))
    stream_batch_segments: int = Field(256, ge=1, le=10_000, description=(
        "most segments one encoder batch takes from concurrent stream calls"))
    stream_batch_wait_ms: float = Field(0.0, ge=0, le=1000, description=(
        "how long a stream batch waits for more calls (0: only those queued while the last ran)"))
    follow_seconds: float = Field(10.0, ge=0, le=3600, description=(
        "how often each worker follows the production aliases (0: never)"))
    release: Path | None = Field(None, description="a release file pinning the served versions (set in a Bento)")

    def threads_per_worker(self) -> int:
        """``compute_threads``, or the machine's cores divided among the workers (at least 1):
        a worker's Python side holds one core, so two workers that each ran their model on
        every core would fight over them (2 workers x 1 ONNX Runtime thread: 1.8-2.0 ms of CPU
        a stream segment, against 2.1-2.3 ms with 2 threads each)."""
        if self.compute_threads:
            return self.compute_threads
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, cores // self.workers)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("device", mode="before")
    @classmethod
    def _lower_device(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("decision_log", "auth", "metrics", "enforcement", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lower() not in ("on", "off"):
                raise ValueError("must be on or off")
            return value.lower() == "on"
        return value

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:  # SQLite in the home unless SHOPGUARD_DATABASE_URL is set
            object.__setattr__(self, "database_url", f"sqlite:///{self.home / 'shopguard.db'}")
        return self

    @property
    def bentoml_home(self) -> Path:
        """The BentoML home holding the model store."""
        return Path(os.environ.get("BENTOML_HOME") or self.home / "bentoml")


def load_settings() -> Settings:
    """Read settings from the environment; a wrong value is refused naming its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        variable = ENV_PREFIX + str(error["loc"][0]).upper()
        raise ShopGuardError(f"{variable}={error.get('input')!r} is invalid: {error['msg']}. "
                             "Fix or unset the variable.") from exc


def existing_home(settings: Settings | None = None, *, model_store: bool = True) -> Settings:
    """Settings for a command that only reads: refused, naming where it looked, when the home
    holds no database (SQLite) or, with ``model_store``, no model store, instead of creating an
    empty home in the current folder and answering that nothing is there."""
    from sqlalchemy.engine import make_url

    settings = settings or load_settings()
    missing = []
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).expanduser().exists():
        missing.append(f"no database at {url.database}")
    if model_store and not settings.bentoml_home.exists():
        missing.append(f"no model store at {settings.bentoml_home}")
    if missing:
        raise ShopGuardError(f"No ShopGuard home at {settings.home}: {' and '.join(missing)}. Run this from the folder "
                             f"that holds your .shopguard, or set {ENV_PREFIX}HOME to it (`make train-demo` makes one).")
    return settings


def configure_bentoml_home(settings: Settings, create: bool = True) -> Path:
    """Point BentoML's model store into the ShopGuard home unless the user chose one, and
    make the folders (``create``; a command that only reads the database makes none). Call
    before BentoML first touches its store."""
    os.environ.setdefault("BENTOML_HOME", str(settings.home / "bentoml"))
    home = Path(os.environ["BENTOML_HOME"])
    if create:
        (home / "models").mkdir(parents=True, exist_ok=True)
    return home


def onnx_providers(device: Device) -> list[str]:
    """ONNX Runtime providers for the requested device, falling back to CPU with a warning."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        warnings.warn(
            "SHOPGUARD_DEVICE=cuda but ONNX Runtime has no CUDA provider "
            "(install onnxruntime-gpu and a CUDA runtime); running on CPU.",
            RuntimeWarning,
            stacklevel=2,
        )
    return ["CPUExecutionProvider"]
