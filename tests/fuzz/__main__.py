"""`python3 -m tests.fuzz --inputs N [--target NAME]`: a fuzz campaign over every target (N inputs in
all, split evenly), reporting inputs run, time and findings (the shrunk failing input of each)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tests.fuzz")
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--target", action="append")
    args = parser.parse_args()
    os.environ.setdefault("HMR_CACHE_DIR", tempfile.mkdtemp(prefix="hmr-fuzz-"))
    from hypothesis import HealthCheck, Phase, given, settings

    from tests.fuzz.targets import TARGETS

    names = args.target or list(TARGETS)
    per = max(1, args.inputs // len(names))
    findings = 0
    total_t = time.monotonic()
    for name in names:
        test, count = _campaign(TARGETS[name], per, given, settings, HealthCheck, Phase)
        t0 = time.monotonic()
        try:
            test()
            outcome = "no finding"
        except Exception as e:  # noqa: BLE001 - a finding: report it and go on to the next target
            findings += 1
            found = list(e.exceptions) if isinstance(e, BaseExceptionGroup) else [e]
            outcome = "FINDING: " + "; ".join(f"{type(x).__name__}: {' '.join(str(x).split())[:200]}" for x in found)
        print(f"{name}: {count[0]} inputs in {time.monotonic() - t0:.1f} s: {outcome}", flush=True)
    print(f"total: {time.monotonic() - total_t:.1f} s, {findings} finding(s)")
    return 1 if findings else 0


def _campaign(target: tuple, per: int, given: Any, settings: Any, health: Any, phase: Any) -> tuple[Any, list[int]]:
    fn, strategy = target
    count = [0]

    def run(kw: dict) -> None:
        count[0] += 1
        fn(**kw)

    test = settings(max_examples=per, deadline=None, database=None, suppress_health_check=list(health),
                    phases=[phase.generate, phase.shrink])(given(strategy)(run))
    return test, count


if __name__ == "__main__":
    sys.exit(main())
