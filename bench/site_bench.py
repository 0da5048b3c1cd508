"""Benchmark the site as a whole: build time with HTML and feeds, its size, and the filter latency of the
image table in a real browser (a measurement script, not a test).

    python bench/site_bench.py [--repeat N] [--keystrokes TEXT] [--workdir DIR] [--keep]

Measures, through the `hmr` CLI in a subprocess (process start included):
  a. `hmr build` of the imported corpus into a new output folder, N times (median; target < 1 s), with
     the build cache the first (cold) build left, the way `../shared/checks/A5-build-speed` runs it;
     the cold build itself; and a no-change rebuild (files whose mtime changed: must be 0);
  b. the site: number of files, total bytes, the largest HTML page and the largest file;
  c. the filter latency of models/image_generation/index.html in headless Chromium (Debian `chromium`,
     Playwright): for each keystroke typed with real key events, the time from the keydown event to
     the table being updated (the page's `hmr:filtered` event) and to the next animation frame (the
     update painted), both measured in the page with performance.now().
HMR_CACHE_DIR points into the work folder, so the user's ~/.cache is neither read nor written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: the corpus the tests read (HMR_CORPUS, default ../shared/corpus beside the project)
CORPUS = Path(os.environ.get("HMR_CORPUS") or os.path.normpath(ROOT / ".." / "shared" / "corpus")) / "legacy" / "current"
HMR = [sys.executable, "-m", "builder.cli"]
CHROMIUM = "/usr/lib/chromium/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TARGET_S = 1.0

#: injected before the page's own script: keydown times, and per table update the delays to it and to
#: the next frame (requestAnimationFrame fires before the paint of the frame that shows the update)
PROBE = """
window.__lat = []; let down = null;
window.addEventListener('keydown', () => { down = performance.now(); }, true);
document.addEventListener('hmr:filtered', (e) => {
  if (down === null) return;
  const start = down, handled = performance.now(); down = null;
  requestAnimationFrame(() => window.__lat.push({handler: handled - start, frame: performance.now() - start,
                                                 shown: e.detail.shown}));
});
"""


def hmr(*args: str, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t = time.perf_counter()
    r = subprocess.run([*HMR, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"hmr {' '.join(args)} failed: {r.stderr.strip()[-500:]}")
    return dt, r


def mtimes(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def site_size(site: Path) -> tuple[int, int, tuple[int, str], tuple[int, str]]:
    files = [p for p in site.rglob("*") if p.is_file() and "_config" not in p.parts]
    sizes = [(p.stat().st_size, str(p.relative_to(site))) for p in files]
    html = [s for s in sizes if s[1].endswith(".html")]
    return len(files), sum(s for s, _ in sizes), max(html), max(sizes)


def filter_latency(site: Path, keystrokes: str, rounds: int) -> list[dict]:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    from builder.site.serve import make_server

    server = make_server(site, "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    out: list[dict] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.add_init_script(PROBE)
            for _ in range(rounds):
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/models/image_generation/index.html")
                page.locator("#q").press_sequentially(keystrokes, delay=60)
                page.wait_for_function(f"window.__lat.length >= {len(keystrokes)}")
                out += page.evaluate("window.__lat")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keystrokes", default="stable xl")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="hmr-site-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HMR_CACHE_DIR=str(work / "cache"))
    one, five, _ = os.getloadavg()
    print(f"load average {one:.2f} {five:.2f} on {os.cpu_count()} CPU(s); work folder {work}")
    ok = True
    try:
        data = work / "data"
        hmr("import-legacy", str(CORPUS), "--data", str(data), env=env)
        cold, r = hmr("build", "--data", str(data), "--out", str(work / "site"), env=env)
        print(f"cold build (empty cache): {cold:.3f} s; {r.stdout.strip()}")
        times = [hmr("build", "--data", str(data), "--out", str(work / f"site-{i}"), env=env)[0]
                 for i in range(a.repeat)]
        med = statistics.median(times)
        ok &= med < TARGET_S
        print(f"corpus build, new output folder, warm cache: median {med:.3f} s (min {min(times):.3f}, "
              f"max {max(times):.3f}) - target {TARGET_S} s: {'met' if med < TARGET_S else 'NOT met'}")
        before = mtimes(work / "site")
        again, _ = hmr("build", "--data", str(data), "--out", str(work / "site"), env=env)
        rewritten = sum(1 for p, m in mtimes(work / "site").items() if before.get(p) != m)
        ok &= rewritten == 0
        print(f"no-change rebuild: {again:.3f} s, {rewritten} files rewritten")
        n, total, page, biggest = site_size(work / "site")
        print(f"site: {n} files, {total / 1e6:.2f} MB; largest page {page[1]} {page[0] / 1e3:.1f} kB; "
              f"largest file {biggest[1]} {biggest[0] / 1e6:.2f} MB")
        lat = filter_latency(work / "site", a.keystrokes, a.rounds)
        handler = sorted(x["handler"] for x in lat)
        frame = sorted(x["frame"] for x in lat)
        print(f"filter latency, image table (161 rows), {len(lat)} keystrokes: keydown -> table updated "
              f"median {statistics.median(handler):.2f} ms (max {handler[-1]:.2f}); keydown -> next frame "
              f"median {statistics.median(frame):.2f} ms (max {frame[-1]:.2f})")
    finally:
        if not a.keep and a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
