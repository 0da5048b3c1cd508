"""Benchmark the replica client against the existing one (a measurement script, not a test).

    python bench/replica_bench.py [--runs N] [--workdir DIR] [--keep]

Both clients read the same site, built from corpus/legacy/current and served by nginx with the build's
config, through a counting pass-through server (tests/replica_support.FaultServer with no fault) that
logs every request and its body bytes. The existing client is horde-model-reference 8.6.2 in its Python
3.12 venv (tests/site_support.client_venv_dir; made here if missing). Measured, in one run:

  a. a refresh when nothing changed: requests and body bytes of one read of all 15 categories after the
     TTL (1 s) expired, in a process that had read them all before (target: ours 1 request, 0 bytes);
  b. process start to first image_generation records, cold cache, median of N fresh processes: the
     process runs `len(get_model_reference(image_generation))` and exits (target: >= 4x faster);
     also with a warm cache on disk (a second worker process within the TTL);
  c. warm `get_model_reference("text_generation")` latency within the TTL, in-process, per call
     (target: >= 10x faster).
Each client runs in its own clean venv (ours: ~/.cache/hmr-bench/ours-*, the project installed editable).
The exit status is 1 if a target is missed or a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import LEGACY_CURRENT  # noqa: E402
from tests.replica_support import FaultServer, proxy_origin  # noqa: E402
from tests.site_support import CLIENT_PYTHON, CLIENT_VERSION, Nginx, client_venv_dir  # noqa: E402

TARGET_START = 4.0
TARGET_WARM = 10.0

# -- what each client runs (same protocol: print markers, wait for the parent where it must count) --------

OURS_REFRESH = r"""
import sys
from builder.replica import ReplicaClient
c = ReplicaClient()
n = sum(len(v) for v in c.get_all_model_references_or_none().values() if v is not None)
print("WARM", n, flush=True); sys.stdin.readline()
import time; time.sleep(1.2)  # past the 1 s TTL
n = sum(len(v) for v in c.get_all_model_references_or_none().values() if v is not None)
print("DONE", n, flush=True)
"""
THEIRS_REFRESH = r"""
import sys
from horde_model_reference import ModelReferenceManager
m = ModelReferenceManager()
n = sum(len(v) for v in m.get_all_model_references().values() if v is not None)
print("WARM", n, flush=True); sys.stdin.readline()
import time; time.sleep(1.2)  # past the 1 s TTL
n = sum(len(v) for v in m.get_all_model_references().values() if v is not None)
print("DONE", n, flush=True)
"""
OURS_START = ("from builder.replica import ReplicaClient\n"
              "print(len(ReplicaClient().get_model_reference('image_generation')))\n")
THEIRS_START = ("from horde_model_reference import ModelReferenceManager, MODEL_REFERENCE_CATEGORY as C\n"
                "print(len(ModelReferenceManager().get_model_reference(C.image_generation)))\n")
WARM_LOOP = r"""
import time, json
{setup}
get()  # the first read fetches; every later one is within the TTL
per = []
for _ in range(7):
    n = {n}
    t = time.perf_counter()
    for _ in range(n):
        get()
    per.append((time.perf_counter() - t) / n)
per.sort()
print("WARM", json.dumps({{"median": per[3], "best": per[0], "models": len(get())}}), flush=True)
"""
OURS_WARM = WARM_LOOP.format(setup="from builder.replica import ReplicaClient\nc = ReplicaClient()\n"
                                   "get = lambda: c.get_model_reference('text_generation')", n=100_000)
THEIRS_WARM = WARM_LOOP.format(setup="from horde_model_reference import ModelReferenceManager, "
                                     "MODEL_REFERENCE_CATEGORY as C\nm = ModelReferenceManager()\n"
                                     "get = lambda: m.get_model_reference(C.text_generation)", n=1_000)


def our_python() -> Path:
    """A clean venv holding only this project and its dependencies, as the existing client has its own.
    (The development interpreter may carry unrelated packages that slow every start: with `trio`
    installed, httpcore imports it, ~0.1 s; an editable install keeps the venv on the working tree.)"""
    import hashlib

    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    venv = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hmr-bench" / f"ours-{key}"
    py = venv / "bin" / "python"
    if (venv / ".ok").exists() and py.exists():
        return py
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "-e", str(ROOT)], check=True)
    (venv / ".ok").write_text("ok\n")
    return py


def their_python() -> Path:
    """The venv of the existing client, as the site tests make it (shared cache across runs)."""
    venv = client_venv_dir()
    py = venv / "bin" / "python"
    if (venv / ".ok").exists() and py.exists():
        return py
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYENV_VERSION=CLIENT_PYTHON)
    subprocess.run(["python3.12", "-m", "venv", str(venv)], check=True, env=env)
    subprocess.run([str(py), "-m", "pip", "install", "-q", f"horde-model-reference=={CLIENT_VERSION}"], check=True)
    (venv / ".ok").write_text("ok\n")
    return py


def clean_env(api: str, home: Path, ttl: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith("HORDE_MODEL_REFERENCE_") and k != "AIWORKER_CACHE_HOME"}
    env.pop("PYTHONPATH", None)
    env.update({"HORDE_MODEL_REFERENCE_PRIMARY_API_URL": api, "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "false",
                "HORDE_MODEL_REFERENCE_REPLICATE_MODE": "REPLICA", "HORDE_MODEL_REFERENCE_CACHE_TTL_SECONDS": ttl,
                "AIWORKER_CACHE_HOME": str(home)})
    home.mkdir(parents=True, exist_ok=True)
    return env


def refresh_cost(py: Path, script: str, env: dict[str, str], proxy: FaultServer, cwd: Path) -> dict:
    p = subprocess.Popen([str(py), "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=env, cwd=cwd)
    assert p.stdin is not None and p.stdout is not None
    warm = p.stdout.readline().split()
    if not warm or warm[0] != "WARM":
        p.kill()
        raise RuntimeError(f"{py}: no WARM line")
    time.sleep(0.2)
    proxy.clear()
    p.stdin.write("go\n")
    p.stdin.flush()
    done = p.stdout.readline().split()
    p.wait(60)
    log = list(proxy.log)
    return {"models": int(warm[1]), "models_after": int(done[1]) if done else None, "requests": len(log),
            "body_bytes": sum(e.body_bytes for e in log), "statuses": sorted({e.status for e in log})}


def start_time(py: Path, script: str, env: dict[str, str], home: Path, runs: int, cwd: Path, cold: bool) -> dict:
    times, out = [], ""
    if not cold:  # one process fills the cache; the measured ones start within the TTL
        subprocess.run([str(py), "-c", script], env=env, cwd=cwd, capture_output=True, check=True)
    for _ in range(runs):
        if cold:
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
        t = time.perf_counter()
        r = subprocess.run([str(py), "-c", script], env=env, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise RuntimeError(f"{py}: {r.stderr.strip().splitlines()[-1:]}")
        out = r.stdout.strip()
    return {"median": statistics.median(times), "min": min(times), "records": int(out)}


def warm_latency(py: Path, script: str, env: dict[str, str], cwd: Path) -> dict:
    r = subprocess.run([str(py), "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("WARM ")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"{py}: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1][5:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="processes per start-time median (default 5)")
    ap.add_argument("--workdir", type=Path, help="work folder (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="replica-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HMR_CACHE_DIR", str(work / "hmr-cache"))

    from builder.legacy.importer import import_legacy
    from builder.site.build import build

    import_legacy(str(LEGACY_CURRENT), work / "data")
    build(work / "data", work / "site")
    theirs_py = their_python()
    ours_py = our_python()
    nginx = Nginx(work / "site", work / "nginx").start()
    proxy = FaultServer(proxy_origin(nginx.port)).start()
    failures: list[str] = []
    try:
        api = proxy.api
        print(f"site: corpus/legacy/current built into {work / 'site'}, nginx on :{nginx.port}, "
              f"counted through :{proxy.port}")
        print(f"ours: {ours_py} (builder.replica, clean venv); existing: {theirs_py} "
              f"(horde-model-reference {CLIENT_VERSION})\n")

        # a. refresh with nothing changed
        ours_r = refresh_cost(ours_py, OURS_REFRESH, clean_env(api, work / "a-ours", "1"), proxy, ROOT)
        theirs_r = refresh_cost(theirs_py, THEIRS_REFRESH, clean_env(api, work / "a-theirs", "1"), proxy, work)
        print("a. refresh after the TTL, nothing changed (all 15 categories read)")
        for who, r in (("ours", ours_r), ("existing", theirs_r)):
            print(f"   {who:9} {r['requests']:3} request(s), {r['body_bytes']:8} body bytes, statuses {r['statuses']}"
                  f" ({r['models']} records)")
        if not (ours_r["requests"] == 1 and ours_r["body_bytes"] == 0):
            failures.append("a: ours is not 1 request / 0 bytes")

        # b. process start to first image_generation records
        home_o, home_t = work / "b-ours", work / "b-theirs"
        ours_c = start_time(ours_py, OURS_START, clean_env(api, home_o, "60"), home_o, args.runs, ROOT, cold=True)
        theirs_c = start_time(theirs_py, THEIRS_START, clean_env(api, home_t, "60"), home_t, args.runs, work,
                              cold=True)
        ours_w = start_time(ours_py, OURS_START, clean_env(api, home_o, "60"), home_o, args.runs, ROOT, cold=False)
        theirs_w = start_time(theirs_py, THEIRS_START, clean_env(api, home_t, "60"), home_t, args.runs, work,
                              cold=False)
        cold_x = theirs_c["median"] / ours_c["median"]
        warm_x = theirs_w["median"] / ours_w["median"]
        print(f"\nb. process start to first image_generation records (median of {args.runs})")
        print(f"   cold cache: ours {ours_c['median']:.3f}s, existing {theirs_c['median']:.3f}s, {cold_x:.1f}x "
              f"({ours_c['records']} / {theirs_c['records']} records)")
        print(f"   warm cache: ours {ours_w['median']:.3f}s, existing {theirs_w['median']:.3f}s, {warm_x:.1f}x")
        if cold_x < TARGET_START:
            failures.append(f"b: cold start only {cold_x:.1f}x faster (target {TARGET_START}x)")

        # c. warm read latency
        ours_l = warm_latency(ours_py, OURS_WARM, clean_env(api, work / "c-ours", "3600"), ROOT)
        theirs_l = warm_latency(theirs_py, THEIRS_WARM, clean_env(api, work / "c-theirs", "3600"), work)
        lat_x = theirs_l["median"] / ours_l["median"]
        print("\nc. warm get_model_reference('text_generation'), per call (median of 7 batches)")
        print(f"   ours {ours_l['median'] * 1e6:.2f} us, existing {theirs_l['median'] * 1e6:.1f} us, {lat_x:.0f}x "
              f"({ours_l['models']} / {theirs_l['models']} models)")
        if lat_x < TARGET_WARM:
            failures.append(f"c: warm read only {lat_x:.1f}x faster (target {TARGET_WARM}x)")
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        failures.append(f"error: {e}")
    finally:
        proxy.stop()
        nginx.stop()
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    for f in failures:
        print(f"FAIL {f}")
    print("all targets met" if not failures else f"{len(failures)} target(s) missed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
