"""Benchmark `hmr import-legacy` and `hmr build` (a measurement script, not a test).

    python bench/build_bench.py [--quick] [--profile] [--workdir DIR] [--keep]

Measures, each through the `hmr` CLI in a subprocess (process start included):
  a. import of the legacy corpus (median of 5) and a fresh build of it into a new output folder (median
     of 5), once with an empty record cache (cold) and once with the cache the cold build left (warm);
  b. a no-change rebuild: how many site files changed mtime (must be 0) and its time (median of 5);
  c. `cp -r` of the built site (median of 5), the I/O floor, and the ratio build / cp;
  d. builds of synthetic data sets of 10,000 and 100,000 models (bench/synth.py; `--quick` skips 100k),
     one run each, timing only `hmr build`; time per model and the ratio 100k / 10k (target <= 1.2x).
A failing command is reported with its last stderr line; the exit status is 1 if anything failed.
`hmr build` keeps a disk memo (builder.memo: records, compiled files, validators, pages); every run
here points HMR_CACHE_DIR into the work folder, so the user's ~/.cache is neither read nor written and
"cold" really is cold.
"""

from __future__ import annotations

import argparse
import os
import pstats
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from synth import CORPUS, hmr_command  # noqa: E402

TARGET_CORPUS_S = 1.0
TARGET_SCALING = 1.2
REPEAT = 5


@dataclass
class Run:
    cmd: list[str]
    seconds: float
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def line(self, text: str) -> None:
        print(text, flush=True)

    def row(self, what: str, value: str, note: str = "") -> None:
        self.rows.append((what, value, note))
        self.line(f"{what}: {value}" + (f" ({note})" if note else ""))

    def fail(self, what: str) -> None:
        self.failures.append(what)
        self.line(f"FAILED: {what}")

    def table(self) -> None:
        if not self.rows:
            return
        w1 = max(len(r[0]) for r in self.rows)
        w2 = max(len(r[1]) for r in self.rows)
        print()
        print(f"{'measure':<{w1}}  {'value':>{w2}}  note")
        print(f"{'-' * w1}  {'-' * w2}  ----")
        for what, value, note in self.rows:
            print(f"{what:<{w1}}  {value:>{w2}}  {note}")


def last_line(text: str) -> str:
    """The last non-blank line of stderr, plus the first one when there are several (the first problem)."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return "(no stderr)"
    return lines[-1] if len(lines) == 1 else f"{lines[-1]} (first of {len(lines)} lines: {lines[0]})"


def run(cmd: list[str], report: Report, timeout: float | None = None, cache: Path | None = None) -> Run:
    """Run cmd (with HMR_CACHE_DIR=cache), timing it from spawn to exit; a failure is reported with its
    last stderr line."""
    env = dict(os.environ)
    if cache is not None:
        env["HMR_CACHE_DIR"] = str(cache)
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        result = Run(cmd, time.perf_counter() - started, proc.returncode, proc.stdout, proc.stderr)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        result = Run(cmd, time.perf_counter() - started, -1, "", err + f"\ntimed out after {timeout:.0f} s")
    if not result.ok:
        report.fail(f"`{shlex.join(cmd)}` exited {result.returncode} after {result.seconds:.2f} s; "
                    f"last stderr line: {last_line(result.stderr)}")
    return result


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def median_of(runs: list[Run]) -> float | None:
    return statistics.median(r.seconds for r in runs) if runs and all(r.ok for r in runs) else None


def spread(runs: list[Run]) -> str:
    times = [r.seconds for r in runs]
    return f"min {min(times):.3f}, max {max(times):.3f}"


def load_note() -> str:
    """The 1/5/15-minute load averages against the CPU count: other work on the machine skews timings."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPU(s)"


def snapshot(root: Path) -> dict[str, int]:
    """Relative path -> st_mtime_ns of every file under root."""
    out: dict[str, int] = {}
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, root)] = os.lstat(p).st_mtime_ns
    return out


def build_cmd(data: Path, out: Path) -> list[str]:
    return [*hmr_command(), "build", "--data", str(data), "--out", str(out)]


def bench_corpus(work: Path, report: Report) -> tuple[Path | None, Path | None, float | None]:
    """(a) import + fresh build of the corpus; returns (data dir, site dir, build median)."""
    report.line(f"corpus: {CORPUS}")
    if not CORPUS.is_dir():
        report.fail(f"corpus not found at {CORPUS}")
        return None, None, None
    imports = []
    data = work / "corpus-data"
    for i in range(REPEAT):
        target = work / f"corpus-import-{i}"
        r = run([*hmr_command(), "import-legacy", str(CORPUS), "--data", str(target)], report)
        imports.append(r)
        if not r.ok:
            return None, None, None
        if i == REPEAT - 1:
            target.rename(data)
        else:
            shutil.rmtree(target)
    import_s = median_of(imports)
    assert import_s is not None
    report.row("corpus import median", fmt_s(import_s), spread(imports))
    site = work / "corpus-site"
    cold = fresh_builds(work, data, "cold", report)
    if cold is None:
        return data, None, None
    warm = fresh_builds(work, data, "warm", report, keep_site=site)
    if warm is None:
        return data, None, None
    for label, runs in (("cold", cold), ("warm", warm)):
        t = median_of(runs)
        assert t is not None
        report.row(f"corpus build median ({label} cache)", fmt_s(t),
                   f"target {TARGET_CORPUS_S} s: {t / TARGET_CORPUS_S:.2f}x; {spread(runs)}; "
                   f"{runs[-1].stdout.strip()}")
    build_s = median_of(cold)
    assert build_s is not None
    report.row("corpus import + build", fmt_s(import_s + build_s), "medians, cold cache, end to end")
    return data, site, build_s


def fresh_builds(work: Path, data: Path, mode: str, report: Report,
                 keep_site: Path | None = None) -> list[Run] | None:
    """REPEAT builds of data into new output folders. cold: each with an empty record cache, the last
    one's cache kept as work/cache; warm: all with work/cache. keep_site receives the last site."""
    runs = []
    for i in range(REPEAT):
        out = work / f"corpus-site-{mode}-{i}"
        cache = work / f"cache-cold-{i}" if mode == "cold" else work / "cache"
        r = run(build_cmd(data, out), report, cache=cache)
        runs.append(r)
        if mode == "cold":
            if r.ok and i == REPEAT - 1 and cache.exists():
                shutil.rmtree(work / "cache", ignore_errors=True)
                cache.rename(work / "cache")
            else:
                shutil.rmtree(cache, ignore_errors=True)
        if r.ok and keep_site is not None and i == REPEAT - 1:
            out.rename(keep_site)
        else:
            shutil.rmtree(out, ignore_errors=True)
        if not r.ok:
            return None
    return runs


def bench_rebuild(data: Path, site: Path, report: Report) -> None:
    """(b) a build over an unchanged site must touch nothing."""
    before = snapshot(site)
    time.sleep(0.05)  # so that a rewrite would show even on a coarse-mtime file system
    runs = [run(build_cmd(data, site), report, cache=data.parent / "cache") for _ in range(REPEAT)]
    after = snapshot(site)
    changed = sum(1 for rel, m in after.items() if rel in before and before[rel] != m)
    added = len(after.keys() - before.keys())
    removed = len(before.keys() - after.keys())
    note = f"{len(after)} files; {added} added, {removed} removed"
    report.row("no-change rebuild: files with changed mtime", str(changed), f"must be 0; {note}")
    if changed or added or removed:
        report.fail(f"no-change rebuild changed the site: {changed} mtime(s), {added} added, {removed} removed")
    t = median_of(runs)
    if t is not None:
        report.row("no-change rebuild median", fmt_s(t), f"{spread(runs)}; {runs[-1].stdout.strip()}")


def bench_copy(work: Path, site: Path, build_s: float, report: Report) -> None:
    """(c) `cp -r` of the site tree: the I/O floor a build cannot beat."""
    runs = []
    for i in range(REPEAT):
        dest = work / f"cp-{i}"
        r = run(["cp", "-r", str(site), str(dest)], report)
        runs.append(r)
        shutil.rmtree(dest, ignore_errors=True)
        if not r.ok:
            return
    t = median_of(runs)
    assert t is not None
    report.row("cp -r of the site median", fmt_s(t), spread(runs))
    report.row("corpus build (cold) / cp -r", f"{build_s / t:.1f}x", "I/O floor ratio")


def bench_synthetic(work: Path, templates: Path | None, n: int, report: Report, timeout: float,
                    profile: bool, keep: bool) -> float | None:
    """(d) one fresh build of a synthetic data set of n models; returns seconds per model."""
    data, out = work / f"synth-{n}", work / f"synth-{n}-site"
    cmd = [sys.executable, str(BENCH / "synth.py"), str(n), str(data)]
    if templates is not None:
        cmd += ["--templates", str(templates)]
    gen = run(cmd, report)
    if not gen.ok:
        return None
    report.line(f"generated {n} models in {gen.seconds:.1f} s")
    r = run(build_cmd(data, out), report, timeout=timeout, cache=work / f"cache-{n}")
    shutil.rmtree(work / f"cache-{n}", ignore_errors=True)
    per_model: float | None = None
    if r.ok:
        per_model = r.seconds / n
        report.row(f"build {n} models (cold cache)", fmt_s(r.seconds), r.stdout.strip())
        report.row(f"build {n} per model", f"{per_model * 1e3:.3f} ms")
    if profile and r.ok:
        profile_build(work, data, n, report)
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
    return per_model


def profile_build(work: Path, data: Path, n: int, report: Report) -> None:
    """cProfile of one fresh build with a cold, then a warm record cache: top functions by own and by
    cumulative time."""
    hmr = hmr_command()
    if len(hmr) != 1:
        report.line("profile skipped: no hmr script to run under cProfile")
        return
    cache = work / f"cache-profile-{n}"
    for label in ("cold", "warm"):
        prof, out = work / f"build-{n}-{label}.prof", work / f"synth-{n}-profiled-site"
        r = run([sys.executable, "-m", "cProfile", "-o", str(prof), hmr[0], "build", "--data", str(data),
                 "--out", str(out)], report, cache=cache)
        shutil.rmtree(out, ignore_errors=True)
        if not r.ok:
            break
        report.line(f"\ncProfile of the {n}-model build, {label} cache ({r.seconds:.2f} s under the profiler):")
        stats = pstats.Stats(str(prof))
        stats.sort_stats("tottime").print_stats(12)
        stats.sort_stats("cumulative").print_stats(25)
    shutil.rmtree(cache, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="skip the 100,000-model build")
    ap.add_argument("--profile", action="store_true", help="also cProfile the 10,000-model build")
    ap.add_argument("--workdir", type=Path, help="where to put data and sites (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed for one synthetic build")
    args = ap.parse_args(argv)

    report = Report()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hmr-bench-", dir=args.workdir))
    os.environ["HMR_CACHE_DIR"] = str(work / "cache-other")  # whatever runs without its own: not ~/.cache
    report.line(f"hmr: {shlex.join(hmr_command())}; work folder: {work}")
    report.line(f"at start: {load_note()}")
    try:
        data, site, build_s = bench_corpus(work, report)
        if data is not None and site is not None and build_s is not None:
            bench_rebuild(data, site, report)
            bench_copy(work, site, build_s, report)
        sizes = (10_000,) if args.quick else (10_000, 100_000)
        per_model = {n: bench_synthetic(work, data, n, report, args.timeout, args.profile and n == 10_000,
                                         args.keep)
                     for n in sizes}
        small, large = per_model.get(10_000), per_model.get(100_000)
        if small and large:
            ratio = large / small
            report.row("per-model time 100k / 10k", f"{ratio:.2f}x", f"target <= {TARGET_SCALING}x: "
                       + ("met" if ratio <= TARGET_SCALING else "NOT met"))
        if build_s is not None:
            report.row("corpus build (cold) / 1.0 s target", f"{build_s / TARGET_CORPUS_S:.2f}x",
                       "met" if build_s <= TARGET_CORPUS_S else "NOT met")
    finally:
        if args.keep:
            report.line(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.line(f"at end: {load_note()}")
    report.table()
    if report.failures:
        print(f"\n{len(report.failures)} failure(s):")
        for f in report.failures:
            print(f"  {f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
