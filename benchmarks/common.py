"""What every benchmark prints first: the machine and the software it ran on."""

from __future__ import annotations

import os
import platform
import sys


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"machine: {cpu}, {os.cpu_count()} cores; Python {sys.version.split()[0]} "
        f"({platform.python_implementation()}) on {platform.system()} {platform.release()}"
    )
