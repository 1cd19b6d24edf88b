"""Settings from ``SHOPGUARD_*`` environment variables, each with an embedded default."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from features.errors import ShopGuardError

Device = Literal["cpu", "cuda", "auto"]


@dataclass(frozen=True)
class Settings:
    """Where ShopGuard keeps its state and how it runs.

    - ``SHOPGUARD_HOME``: model store and default database (default ``./.shopguard``)
    - ``SHOPGUARD_DATABASE_URL``: any SQLAlchemy URL (default SQLite under the home)
    - ``SHOPGUARD_DEVICE``: ``cpu``, ``cuda`` or ``auto`` (default ``auto``)
    - ``SHOPGUARD_OWNER``: the team named as owner in model cards
    - ``SHOPGUARD_DECISION_LOG_FLUSH_SECONDS``: longest wait before queued decision records
      are written (default 0.2)
    - ``SHOPGUARD_DECISION_LOG``: ``on`` (default) or ``off``; ``off`` exists only to measure
      the log's overhead (``benchmarks/listing_throughput.py``) and is never for production
    - ``SHOPGUARD_PROMOTION_PR_AUC_TOLERANCE``: how far a candidate's test PR-AUC may fall
      below production's before ``promote`` refuses it without ``--force`` (default 0.01)
    """

    home: Path
    database_url: str
    device: Device
    owner: str
    decision_log_flush_seconds: float = 0.2
    promotion_pr_auc_tolerance: float = 0.01
    decision_log: bool = True

    @property
    def bentoml_home(self) -> Path:
        """The BentoML home holding the model store."""
        return self.home / "bentoml"


def load_settings() -> Settings:
    """Read settings from the environment and make sure the home folder exists."""
    home = Path(os.environ.get("SHOPGUARD_HOME", ".shopguard")).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    device = os.environ.get("SHOPGUARD_DEVICE", "auto").lower()
    if device not in ("cpu", "cuda", "auto"):
        raise ShopGuardError(f"SHOPGUARD_DEVICE={device!r} is not one of cpu, cuda, auto; set one of those.")
    return Settings(
        home=home,
        database_url=os.environ.get("SHOPGUARD_DATABASE_URL", f"sqlite:///{home / 'shopguard.db'}"),
        device=device,  # type: ignore[arg-type]
        owner=os.environ.get("SHOPGUARD_OWNER", "ShopGuard trust-and-safety ML team"),
        decision_log_flush_seconds=float(os.environ.get("SHOPGUARD_DECISION_LOG_FLUSH_SECONDS", "0.2")),
        promotion_pr_auc_tolerance=float(os.environ.get("SHOPGUARD_PROMOTION_PR_AUC_TOLERANCE", "0.01")),
        decision_log=_on_off("SHOPGUARD_DECISION_LOG", default="on"),
    )


def _on_off(variable: str, default: str) -> bool:
    value = os.environ.get(variable, default).lower()
    if value not in ("on", "off"):
        raise ShopGuardError(f"{variable}={value!r} must be on or off.")
    return value == "on"


def configure_bentoml_home(settings: Settings) -> None:
    """Point BentoML's model store into the ShopGuard home unless the user chose one."""
    if "BENTOML_HOME" not in os.environ:
        os.environ["BENTOML_HOME"] = str(settings.bentoml_home)
    Path(os.environ["BENTOML_HOME"]).mkdir(parents=True, exist_ok=True)


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
