"""Generate a synthetic, valid data set of N models from the real corpus (a benchmark helper, not a test).

    python bench/synth.py N OUTDIR [--templates DATA_DIR] [--models-per-org K]

The legacy corpus (../shared/corpus/legacy/current beside the project root) is imported once with
`hmr import-legacy` into a temporary folder (or `--templates` names an already imported data folder);
its records are the templates. OUTDIR receives N record files spread over the categories in the
corpus proportions (largest-remainder rounding), each a copy of a template with a unique key and
`name` equal to the key. A copy keeps its template's first line (the `# yaml-language-server` hint:
templates are picked so that the key depth, and so the hint's relative path, is the same) and its
`legacy:` block. Copied `_category.yaml` files lose `order:` (order then falls back to
metadata.created_at, then key); text_generation's `defaults` and `generation_params` are kept.

Keys: text `synthetic-org-<j>/<model>-<i>` (j = i // K, K the corpus' models per organisation unless
`--models-per-org` says otherwise; 1 gives one folder per model), others `<template key>-<i>`.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
#: the corpus the tests read (HMR_CORPUS, default ../shared/corpus beside the project)
CORPUS = Path(os.environ.get("HMR_CORPUS") or os.path.normpath(ROOT / ".." / "shared" / "corpus")) / "legacy" / "current"
SETTINGS_FILE = "_category.yaml"
TEXT = "text_generation"
HINT = "# yaml-language-server: $schema="


def hmr_command() -> list[str]:
    """The `hmr` entry point beside this interpreter (a pyenv shim would add ~0.1 s per call)."""
    local = Path(sys.executable).parent / "hmr"
    if local.exists():
        return [str(local)]
    found = shutil.which("hmr")
    if found:
        return [found]
    return [sys.executable, "-m", "builder.cli"]


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=yaml.CSafeLoader)


def dump_yaml(value: Any) -> str:
    return yaml.dump(value, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True, width=1 << 30)


class Template:
    """One imported record: its key, first line and parsed data."""

    def __init__(self, key: str, first_line: str, data: dict) -> None:
        self.key = key
        self.first_line = first_line
        self.data = data


def import_corpus(dest: Path) -> None:
    cmd = [*hmr_command(), "import-legacy", str(CORPUS), "--data", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no stderr)"]
        raise SystemExit(f"synth: {' '.join(cmd)} failed (exit {proc.returncode}): {lines[-1]}")


def read_templates(data_dir: Path) -> tuple[dict[str, list[Template]], dict[str, dict]]:
    """Per category: the record templates (sorted by key) and the settings mapping."""
    templates: dict[str, list[Template]] = {}
    settings: dict[str, dict] = {}
    for cat_dir in sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        cat = cat_dir.name
        recs: list[Template] = []
        for dirpath, dirnames, filenames in os.walk(cat_dir):
            dirnames.sort()
            for fname in sorted(filenames):
                path = Path(dirpath) / fname
                rel = path.relative_to(cat_dir).as_posix()
                if rel == SETTINGS_FILE:
                    loaded = load_yaml(path.read_text(encoding="utf-8"))
                    settings[cat] = loaded if isinstance(loaded, dict) else {}
                    continue
                if path.suffix != ".yaml":
                    continue
                text = path.read_text(encoding="utf-8")
                first, _, _rest = text.partition("\n")
                data = load_yaml(text)
                if not first.startswith(HINT) or not isinstance(data, dict):
                    continue
                recs.append(Template(rel[: -len(".yaml")], first + "\n", data))
        if recs:
            templates[cat] = recs
    return templates, settings


def apportion(n: int, weights: dict[str, int]) -> dict[str, int]:
    """Split n over the keys of weights in proportion (largest remainder); sums to n exactly."""
    total = sum(weights.values())
    exact = {k: n * w / total for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    short = n - sum(counts.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))[:short]:
        counts[k] += 1
    return counts


def with_depth(first_line: str, depth: int) -> str:
    """The schema hint line with its `../` prefix set for a key of `depth` slashes."""
    rest = first_line[len(HINT):]
    while rest.startswith("../"):
        rest = rest[3:]
    return f"{HINT}{'../' * (depth + 2)}{rest}"


def eligible(cat: str, recs: list[Template]) -> list[Template]:
    """Templates whose key depth equals the synthetic key depth (so the first line stays correct)."""
    want = 1 if cat == TEXT else 0
    same = [t for t in recs if t.key.count("/") == want]
    return same or recs


def models_per_org(recs: list[Template]) -> int:
    orgs = {t.key.split("/", 1)[0] for t in recs if "/" in t.key}
    with_org = sum("/" in t.key for t in recs)
    return max(1, round(with_org / len(orgs))) if orgs else 1


def synthesize(n: int, out: Path, templates: dict[str, list[Template]], settings: dict[str, dict],
               per_org: int | None = None) -> dict[str, int]:
    counts = apportion(n, {cat: len(recs) for cat, recs in templates.items()})
    per_org = per_org or models_per_org(templates.get(TEXT, []))
    out.mkdir(parents=True, exist_ok=True)
    made_dirs: set[Path] = set()
    i = 0
    for cat, count in counts.items():
        if count == 0:
            continue
        cat_dir = out / cat
        cat_dir.mkdir(exist_ok=True)
        conf = {k: v for k, v in settings.get(cat, {}).items() if k != "order"}
        if conf:
            (cat_dir / SETTINGS_FILE).write_text(dump_yaml(conf), encoding="utf-8")
        pool = eligible(cat, templates[cat])
        for j in range(count):
            t = pool[j % len(pool)]
            if cat == TEXT:
                model = t.key.rsplit("/", 1)[-1]
                key = f"synthetic-org-{i // per_org}/{model}-{i}"
            else:
                key = f"{t.key.replace('/', '_')}-{i}"
            data = copy.copy(t.data)  # shallow: only `name` changes, the rest is dumped as is
            data["name"] = key
            first = t.first_line if t.key.count("/") == key.count("/") else with_depth(t.first_line, key.count("/"))
            path = cat_dir / f"{key}.yaml"
            if path.parent not in made_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(path.parent)
            path.write_text(first + dump_yaml(data), encoding="utf-8")
            i += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("n", type=int, help="number of models")
    ap.add_argument("outdir", type=Path, help="data folder to create (must not exist or be empty)")
    ap.add_argument("--templates", type=Path, help="an already imported data folder (skips the import)")
    ap.add_argument("--models-per-org", type=int, help="text models per synthetic organisation "
                                                       "(default: the corpus ratio)")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("N must be at least 1")
    if args.outdir.exists() and any(args.outdir.iterdir()):
        ap.error(f"{args.outdir} exists and is not empty")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hmr-synth-") as tmp:
        src = args.templates
        if src is None:
            src = Path(tmp) / "data"
            import_corpus(src)
        templates, settings = read_templates(src)
    if not templates:
        raise SystemExit(f"synth: no templates found in {src}")
    counts = synthesize(args.n, args.outdir, templates, settings, args.models_per_org)
    summary = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    print(f"synth: {args.n} models in {args.outdir} ({summary}) in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
