"""The fuzz campaign: `python -m tests.fuzz [--inputs N] [--target NAME ...] [--out DIR]`.

Each target runs in its own process under atheris (coverage-guided libFuzzer over the `builder`
package, `pip install atheris`) for N inputs, starting from the seeds of `tests/fuzz/seeds.py`; where
atheris does not install, hypothesis generates the inputs instead (no coverage guidance). A failing
input is kept under `--out` (default `test-artifacts/fuzz/`) as `crash-<sha1>`, ready to become a test
fixture. The summary prints inputs run, wall time and findings per target, and the exit status is 1 if
any target found something.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.seeds import SEEDS

# no builder module is imported before the atheris child instruments them: targets are named here
TARGET_NAMES = ("client_state", "data_record", "data_record_json", "document", "legacy_csv", "legacy_json",
                "manifest", "serve_request")
#: what the targets run, imported under instrumentation so libFuzzer sees their branches
INSTRUMENTED = ("builder.load", "builder.records", "builder.validate", "builder.v2", "builder.legacy.convert",
                "builder.legacy.text", "builder.legacy.jsonrec", "builder.replica.trust", "builder.replica.state",
                "builder.site.serve")

ROOT = Path(__file__).resolve().parents[2]


def _atheris_child(name: str, runs: int, corpus: Path, out: Path) -> None:
    import atheris

    with atheris.instrument_imports(include=["builder"]):
        for module in INSTRUMENTED:
            importlib.import_module(module)
        from tests.fuzz import targets
    target = targets.TARGETS[name]
    # the data walk reads every file: the fuzzer's own artefacts stay out of the scratch folder
    atheris.Setup([sys.argv[0], f"-runs={runs}", "-max_len=8192", "-timeout=20", "-rss_limit_mb=3072",
                   f"-artifact_prefix={out}/{name}-", "-print_final_stats=1", str(corpus)], target)
    atheris.Fuzz()


def run_atheris(name: str, runs: int, out: Path) -> tuple[int, float, list[str]]:
    """(inputs run, seconds, findings) of one target's atheris run, in a child process."""
    with tempfile.TemporaryDirectory(prefix=f"hmr-fuzz-{name}-") as tmp:
        corpus = Path(tmp)
        for i, seed in enumerate(SEEDS[name]):
            (corpus / f"seed-{i}").write_bytes(seed)
        start = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "tests.fuzz", "--atheris-child", name, str(runs), str(corpus),
                            str(out)], cwd=ROOT, capture_output=True, text=True, errors="replace")
        seconds = time.monotonic() - start
    m = re.findall(r"stat::number_of_executed_units: (\d+)", r.stderr)
    count = int(m[-1]) if m else 0
    findings = []
    if r.returncode != 0:
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        # the Python traceback atheris prints, and libFuzzer's lines naming the input it kept
        start = next((i for i, line in enumerate(lines) if "Uncaught Python exception" in line), len(lines) - 12)
        kept = lines[start:start + 30] + [line for line in lines if "Test unit written" in line]
        findings.append("\n".join(dict.fromkeys(kept)))
    return count, seconds, findings


def run_hypothesis(name: str, runs: int, out: Path) -> tuple[int, float, list[str]]:
    """The same without atheris: hypothesis's generators for `runs` inputs (tests/fuzz/test_fuzz.py's)."""
    from hypothesis import HealthCheck, given, settings

    from tests.fuzz.targets import TARGETS
    from tests.fuzz.test_fuzz import STRATEGIES

    count = 0

    @settings(max_examples=runs, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(STRATEGIES[name])
    def run(data: bytes) -> None:
        nonlocal count
        count += 1
        try:
            TARGETS[name](data)
        except BaseException:
            (out / f"{name}-crash-{count}").write_bytes(data)
            raise

    start = time.monotonic()
    try:
        run()
        findings: list[str] = []
    except Exception as e:  # noqa: BLE001 - reported, the campaign goes on
        findings = [f"{type(e).__name__}: {e}"]
    return count, time.monotonic() - start, findings


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--atheris-child":
        _atheris_child(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
        return 0
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", type=int, default=10_000, help="inputs per target (default 10000)")
    p.add_argument("--target", action="append", choices=TARGET_NAMES, help="only these targets")
    p.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "fuzz")
    p.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if importlib.util.find_spec("atheris") else "hypothesis"
    os.environ.setdefault("HMR_NO_CACHE", "1")
    total, wall, found = 0, 0.0, 0
    print(f"engine: {engine}, {args.inputs} inputs per target")
    for name in args.target or TARGET_NAMES:
        run = run_atheris if engine == "atheris" else run_hypothesis
        count, seconds, findings = run(name, args.inputs, args.out)
        total, wall, found = total + count, wall + seconds, found + len(findings)
        print(f"{name:18s} {count:9d} inputs {seconds:8.1f} s  {len(findings)} finding(s)", flush=True)
        for f in findings:
            print("    " + f.replace("\n", "\n    "))
    print(f"total: {total} inputs in {wall:.0f} s, {found} finding(s); failing inputs under {args.out}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
