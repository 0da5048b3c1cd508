"""Paths and runners every test module shares (one definition each). Fixtures live in conftest.py files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the shared corpus, read in place (never copied into the repo); HMR_CORPUS overrides the default
CORPUS = Path(os.environ.get("HMR_CORPUS") or ROOT.parent / "shared" / "corpus").resolve()
LEGACY_CURRENT = CORPUS / "legacy" / "current"
REFERENCE_V2 = CORPUS / "reference-v2"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
HMR = [sys.executable, "-m", "builder.cli"]


def run_hmr(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """`hmr ARGS` in a subprocess with this interpreter (so the work tree's code runs), text output."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([*HMR, *args], capture_output=True, text=True, env=e, cwd=cwd or ROOT, timeout=timeout)


def tree_digest(root: Path) -> str:
    """A digest of a tree's paths, bytes, mtimes and inodes: equal only if nothing was rewritten."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(root)}|{st.st_mtime_ns}|{st.st_ino}".encode())
            h.update(p.read_bytes())
    return h.hexdigest()
