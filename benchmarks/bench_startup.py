"""Start-up time of the command line against importing torch, measured in the same run.

Run: ``python benchmarks/bench_startup.py [--repeat N]``. Each command runs in a fresh
interpreter N times (default 5); the median wall time is printed, and the ratio to the
median of ``python -c "import torch"``. ``gkaan predict nosuch.mp4`` must report its error
without importing torch, so its ratio is well under 1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    'python -c "import torch"': ["-c", "import torch"],
    "gkaan --help": ["-m", "gkaan_cli", "--help"],
    "gkaan predict --help": ["-m", "gkaan_cli", "predict", "--help"],
    "gkaan predict nosuch.mp4": ["-m", "gkaan_cli", "predict", "nosuch.mp4"],
}


def wall_time(args: list[str], cwd: str) -> float:
    """Seconds for one fresh ``python ARGS`` (output discarded)."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (median)")
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as cwd:
        for args in CASES.values():  # warm the file cache once
            wall_time(args, cwd)
        times: dict[str, list[float]] = {name: [] for name in CASES}
        for _ in range(repeat):  # interleaved, so load changes hit every case alike
            for name, args in CASES.items():
                times[name].append(wall_time(args, cwd))
    medians = {name: statistics.median(values) for name, values in times.items()}
    torch_time = medians['python -c "import torch"']
    for name, seconds in medians.items():
        print(f"{name:<28} {seconds:6.2f} s  {seconds / torch_time:5.2f}x import torch")


if __name__ == "__main__":
    main()
