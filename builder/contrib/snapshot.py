"""What a build publishes, as `hmr diff` and `hmr check-urls` compare it: a `Snapshot` of a built
site directory, of a data directory (validated and compiled in memory by the same code as `hmr
build`), or of a git ref (its `data/` read with `git archive`; nothing is written to the working tree).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from builder.categories import CATEGORIES
from builder.errors import ConfigError, DataError, FetchError, ParseError
from builder.routes import RENAMES_FILE, V2, v1_file, v2_file

__all__ = ["Snapshot", "resolve", "snapshot_from", "snapshot_of_data", "snapshot_of_ref", "snapshot_of_site"]


@dataclass
class Snapshot:
    """The published documents of one build that a diff compares, parsed."""

    label: str
    #: category -> key -> v2 record, in published order
    v2: dict[str, dict[str, dict]] = field(default_factory=dict)
    #: category -> key -> legacy record (image-repo JSON categories only)
    v1: dict[str, dict[str, dict]] = field(default_factory=dict)
    #: category -> former key -> current key
    renames: dict[str, dict[str, str]] = field(default_factory=dict)


def snapshot_from(label: str, read: Callable[[str], bytes | None]) -> Snapshot:
    """A snapshot from a site's files (`read(relative path)` -> bytes, or None when absent)."""
    snap = Snapshot(label)
    for cat in CATEGORIES:
        raw = read(v2_file(cat.name))
        snap.v2[cat.name] = _object(label, cat.name, raw)
        if cat.legacy_kind in ("image", "generic"):
            snap.v1[cat.name] = _object(label, f"v1 {cat.name}", read(v1_file(cat.name)))
    renames = _object(label, "renames", read(RENAMES_FILE))
    snap.renames = {c: r for c, r in renames.items() if isinstance(r, dict)}
    return snap


def _object(label: str, what: str, raw: bytes | None) -> dict:
    if raw is None:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ParseError(f"{label}: {what} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise DataError(f"{label}: {what} is not a JSON object")
    return value


def snapshot_of_site(site_dir: Path, label: str | None = None) -> Snapshot:
    """The snapshot of a built site directory.

    Raises:
        ConfigError: `site_dir` is not a built site.
        ParseError, DataError: a published document is not a JSON object.
    """
    if not (site_dir / V2).is_dir():
        raise ConfigError(f"{site_dir}: not a built site (no {V2}/)")

    def read(rel: str) -> bytes | None:
        p = site_dir / rel
        return p.read_bytes() if p.is_file() else None

    return snapshot_from(label or str(site_dir), read)


def snapshot_of_data(data_dir: Path, label: str | None = None, cache_of: Path | None = None) -> Snapshot:
    """Validate and compile `data_dir` in memory (the bytes `hmr build` would write), then read them.

    `cache_of`: a data directory whose record cache may serve unchanged files (read only: a temporary
    directory's own cache would only pile up).

    Raises:
        DataError: the data does not validate (the message names the first error).
    """
    from builder.errors import ValidationFailed
    from builder.load import load_valid
    from builder.site.outputs import compile_outputs

    name = label or str(data_dir)
    try:
        cats, _ = load_valid(data_dir, cache_from=cache_of)
    except ValidationFailed as e:
        errors = [p for p in e.problems if p.severity == "error"]
        raise DataError(f"{name}: the data does not validate ({len(errors)} problem(s); first: {errors[0]})") from None
    files = compile_outputs(cats)
    return snapshot_from(name, files.get)


def _git(repo: Path, *args: str, binary: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=not binary, timeout=120)


def snapshot_of_ref(ref: str, repo: Path, data_dir: Path) -> Snapshot:
    """The data of git `ref` (the path of `data_dir` inside `repo`), compiled in memory.

    Raises:
        ConfigError: `ref` is not a ref of the repository (or there is no repository).
        FetchError: git cannot read the ref's files.
        DataError: that data does not validate.
    """
    top = _git(repo, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise ConfigError(f"{ref}: not a directory, and {repo} is not in a git repository")
    root = Path(top.stdout.strip())
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit.returncode != 0:
        raise ConfigError(f"{ref}: neither a directory nor a git ref of {root}")
    sha = commit.stdout.strip()
    try:
        rel = data_dir.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ConfigError(f"{data_dir} is not inside the git repository {root}") from None
    with tempfile.TemporaryDirectory(prefix="hmr-diff-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        # pyproject.toml comes along: it says which format that commit's data/ holds
        paths = [p for p in (rel, "pyproject.toml") if _git(root, "cat-file", "-e", f"{sha}:{p}").returncode == 0]
        if paths:
            archive = _git(root, "archive", "--format=tar", sha, "--", *paths, binary=True)
            if archive.returncode != 0:
                raise FetchError(f"{ref}: git archive failed: {archive.stderr.decode(errors='replace').strip()}",
                                 url=f"{root}@{sha}")
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tf:
                _extract(tf, src)
        (src / rel).mkdir(parents=True, exist_ok=True)  # a commit from before data/ existed: nothing
        return snapshot_of_data(src / rel, f"{ref} ({sha[:12]})", cache_of=data_dir if data_dir.is_dir() else None)


def _extract(tf: tarfile.TarFile, dest: Path) -> None:
    """Extract regular files and folders only, never outside `dest` (the "data" filter where Python has it)."""
    if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
        tf.extractall(dest, filter="data")
        return
    for m in tf.getmembers():
        parts = Path(m.name).parts
        if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in parts:
            raise DataError(f"git archive holds an unexpected entry {m.name!r}", file=m.name)
    tf.extractall(dest)  # noqa: S202 - members checked above


def resolve(spec: str, repo: Path | None = None, data_dir: Path = Path("data")) -> Snapshot:
    """BASE/NEW of `hmr diff`: a site directory, a data directory, or a git ref (of `repo`, by default
    the repository holding `data_dir`).

    Raises:
        ConfigError: `spec` is none of these.
        DataError: the data of a data directory or ref does not validate.
    """
    p = Path(spec)
    if p.is_dir():
        if (p / V2).is_dir():
            return snapshot_of_site(p)
        if any((p / c.name).is_dir() for c in CATEGORIES):
            return snapshot_of_data(p)
        raise ConfigError(f"{spec}: neither a built site (no {V2}/) nor a data directory")
    if repo is None:
        repo = data_dir if data_dir.is_dir() else Path(".")
    return snapshot_of_ref(spec, repo, data_dir)
