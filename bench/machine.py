"""One line that says which machine a benchmark ran on, for the figures it prints and records."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe(*, keras: bool = False) -> str:
    """Cores, CPU model and Python version; with ``keras=True`` also Keras and its backend."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}"
    if keras:
        import keras as k

        text += f", Keras {k.__version__} ({k.backend.backend()})"
    return text
