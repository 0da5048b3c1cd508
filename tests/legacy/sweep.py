"""The history sweep: every upstream version of the legacy files, imported, built and compared.

One process reads every version through `git cat-file --batch` and imports them in order into one
data directory (so each import only rewrites what the version changed), then validates and compiles
the legacy outputs in memory and compares each to the upstream file: parse-equal in the same key
order always, byte-identical where the upstream file is machine-formatted.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import HmrError, ValidationFailed
from builder.legacy.convert import legacy_files
from builder.legacy.importer import import_legacy
from builder.load import load_valid


@dataclass
class Outcome:
    """One version's result: the failure reason (None when it passed) and its detail."""

    repo: str
    commit: str
    reason: str | None = None
    detail: str = ""


@dataclass
class SweepResult:
    """Every version's outcome and the sweep's wall time."""

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[Outcome]:
        """The versions that did not pass."""
        return [o for o in self.outcomes if o.reason]

    def summary(self) -> str:
        """Versions OK / failing by reason, one line each."""
        ok = len(self.outcomes) - len(self.failures)
        lines = [f"{ok}/{len(self.outcomes)} versions OK ({self.seconds:.0f}s)"]
        for reason, n in Counter(o.reason for o in self.failures).most_common():
            first = next(o for o in self.failures if o.reason == reason)
            lines.append(f"  {n:4d} {reason}  (e.g. {first.repo}@{first.commit[:8]}: {first.detail[:200]})")
        return "\n".join(lines)


def versions(repo: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(commit, file name -> bytes) of every commit of `repo`, oldest first, read with one cat-file."""
    commits = subprocess.run(["git", "-C", str(repo), "rev-list", "--reverse", "HEAD"], check=True,
                             capture_output=True, text=True).stdout.split()
    names = subprocess.run(["git", "-C", str(repo), "log", "--format=", "--name-only"], check=True,
                           capture_output=True, text=True).stdout.split()
    names = sorted(set(names))
    proc = subprocess.Popen(["git", "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdin and proc.stdout
    try:
        for commit in commits:
            files: dict[str, bytes] = {}
            for name in names:
                proc.stdin.write(f"{commit}:{name}\n".encode())
                proc.stdin.flush()
                head = proc.stdout.readline().split()
                if head[-1] == b"missing":
                    continue
                body = proc.stdout.read(int(head[2]) + 1)[:-1]
                files[name] = body
            yield commit, files
    finally:
        proc.stdin.close()
        proc.stdout.close()
        proc.wait()


def machine_formatted(raw: bytes) -> bool:
    """True when upstream's file is exactly what a JSON writer produces (indent 4 or tabs, LF or
    CRLF, with or without a final newline), so its bytes must come back too."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError:
        return False
    text = raw.decode("utf-8")
    for indent in (4, "\t"):
        for ascii_only in (True, False):
            base = json.dumps(doc, indent=indent, ensure_ascii=ascii_only)
            for nl in ("\n", "\r\n"):
                body = base.replace("\n", nl)
                if text in (body, body + nl):
                    return True
    return False


def _ordered(raw: bytes) -> object:
    return json.loads(raw.decode("utf-8-sig"), object_pairs_hook=list)


def _csv_rows(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def compare(name: str, upstream: bytes, ours: bytes) -> str | None:
    """Why our output of `name` does not stand for upstream's, or None."""
    if name.endswith(".csv"):
        return None if _csv_rows(upstream) == _csv_rows(ours) else "csv rows differ"
    try:
        if _ordered(upstream) != _ordered(ours):
            return "not parse-equal (or key order differs)"
    except ValueError as e:
        return f"unparsable: {e}"
    if upstream != ours and machine_formatted(upstream):
        return "machine-formatted but bytes differ"
    return None


#: files upstream generates from others: compared only when upstream's copy is up to date
_GENERATED = {"db.json"}


def check_version(repo: str, commit: str, files: dict[str, bytes], src: Path, data: Path) -> Outcome:
    """Import one version's files, validate, compile the legacy outputs and compare them."""
    out = Outcome(repo, commit)
    for old in src.iterdir():
        old.unlink()
    for name, raw in files.items():
        (src / name).write_bytes(raw)
    try:
        summary = import_legacy(str(src), data)
    except HmrError as e:
        out.reason, out.detail = f"import: {_reason(str(e))}", str(e)
        return out
    try:
        cats, _warnings = load_valid(data)
    except ValidationFailed as e:
        errs = [p for p in e.problems if p.severity == "error"]
        out.reason, out.detail = "validation: " + _reason(errs[0].message), str(errs[0])
        return out
    built: dict[str, bytes] = {}
    for cd in cats.values():
        if cd.category.name in summary.categories:
            built.update(legacy_files(cd))
    stale_db = any("db.json: differs" in w for w in summary.warnings)
    for name, raw in sorted(files.items()):
        if name not in built:
            continue
        if name in _GENERATED and stale_db:
            continue
        why = compare(name, raw, built[name])
        if why:
            out.reason, out.detail = f"output: {name}: {why}", ""
            return out
    return out


def _reason(message: str) -> str:
    """A message with its variable parts (names, numbers, quoted values) cut, to group by."""
    import re

    m = re.sub(r"'[^']*'", "'…'", message)
    m = re.sub(r"\d+", "N", m)
    m = re.sub(r"^[^:]*?/[^:]*: ", "", m)
    return m[:120]


def sweep(repos: dict[str, Path], limit: int | None = None) -> SweepResult:
    """Every version of each repository (name -> clone), or the first `limit` of each."""
    result = SweepResult()
    start = time.monotonic()
    for name, repo in repos.items():
        with tempfile.TemporaryDirectory() as tmp:
            src, data = Path(tmp, "src"), Path(tmp, "data")
            src.mkdir()
            data.mkdir()
            for i, (commit, files) in enumerate(versions(repo)):
                if limit is not None and i >= limit:
                    break
                result.outcomes.append(check_version(name, commit, files, src, data))
    result.seconds = time.monotonic() - start
    return result


if __name__ == "__main__":
    import sys

    res = sweep({"image": Path(sys.argv[1]), "text": Path(sys.argv[2])},
                int(sys.argv[3]) if len(sys.argv) > 3 else None)
    print(res.summary())
