"""Where benchmark results go: printed, and saved as JSON under ``benchmarks/results/``."""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["save"]

RESULTS = Path(__file__).parent / "results"


def save(name: str, results: Mapping[str, object]) -> Path:
    """Write ``results`` with a description of the machine; return the file written."""
    RESULTS.mkdir(exist_ok=True)
    record = {
        "benchmark": name,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "results": results,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
