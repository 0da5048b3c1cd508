"""A local directory as the deploy target (`file:///path`): for a plain web server or GitHub Pages.

Same semantics as object storage: one file per object key, the same plan, order, snapshots and
prune. Each file is written with `builder.fs.atomic_write`, so a web server serving the directory
never sends half a file. A directory cannot hold content type or cache-control per file: the web
server decides them (`hmr build` writes a matching nginx config to `site/_config/nginx.conf`;
extensionless keys are JSON). Like every store with a filesystem underneath, a directory cannot hold
a key that is also a folder of other keys: here the outer extensionless key is the one left out,
since its `.json` twin holds the same bytes and the web server maps one onto the other.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from builder.errors import ConfigError, PublishError
from builder.fs import atomic_write, prune_empty_dirs, walk_files
from builder.publish.store import Head, Listed, Target

__all__ = ["DirTarget"]

#: the temporary name `atomic_write` writes beside a file before the rename: what an interrupted
#: write leaves behind is not an object
_TMP = re.compile(r"\.tmp-\d+-[0-9a-f]{8}$")


class DirTarget(Target):
    """The directory `path` (absolute) as a store: the object `k` is the file `path/k`."""

    nests = False
    #: the web server in front answers `x` with `x.json` (the generated nginx config's rewrite): a key
    #: that is also a folder is left out for its `.json` twin, not the keys under it (builder.publish.plan)
    serves_json_twins = True

    def __init__(self, path: str):
        if not path or not os.path.isabs(path):
            raise ConfigError(f"file://{path}: the path must be absolute (file:///PATH)")
        self.root = Path(path)
        self.url = f"file://{path.rstrip('/')}/"

    def _path(self, key: str) -> Path:
        # keys come from the route table, which refuses "..", "." and empty segments; check anyway
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts) or "\\" in key or "\0" in key:
            raise PublishError(f"{self.url}: refusing the unsafe key {key!r}", key=key)
        return self.root.joinpath(*parts)

    def open(self) -> None:
        """Create the directory if its parent exists; check that it is writable."""
        if not self.root.parent.is_dir():
            raise PublishError(f"{self.url}: {self.root.parent} does not exist")
        try:
            self.root.mkdir(exist_ok=True)
        except OSError as e:
            raise PublishError(f"{self.url}: {e.strerror or e}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PublishError(f"{self.url}: not writable")

    def list(self, under: str = "", exclude: str | None = None) -> dict[str, Listed]:
        """Every file under `under` with its size and sha256 (a directory has no ETag to trust)."""
        start = self.root / under if under else self.root
        base = under.rstrip("/") + "/" if under else ""
        skip = exclude.rstrip("/") if exclude else None
        files: set[str] = set()
        if skip is None or under:
            files = walk_files(start)
        elif start.is_dir():  # every top-level entry but the excluded folder, which is never walked
            for entry in os.scandir(start):
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != skip:
                        files.update(f"{entry.name}/{rel}" for rel in walk_files(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    files.add(entry.name)
        out: dict[str, Listed] = {}
        for rel in sorted(files):
            if _TMP.search(rel):
                continue
            key = base + rel
            try:
                data = (start / rel).read_bytes()
            except OSError as e:
                raise PublishError(f"{start / rel}: {e.strerror or e}", key=key) from None
            out[key] = Listed(len(data), sha256=hashlib.sha256(data).hexdigest())
        return out

    def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when there is no such file."""
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as e:
            raise PublishError(f"{self.url}{key}: {e.strerror or e}", key=key) from None

    def head(self, key: str) -> Head | None:
        """Size and sha256 of the file (no headers: the web server decides them)."""
        data = self.get(key)
        if data is None:
            return None
        return Head(len(data), None, None, hashlib.sha256(data).hexdigest())

    def put(self, key: str, data: bytes, content_type: str, cache_control: str, sha256: str,
            md5: str | None = None) -> None:
        """Replace the file in one rename; the headers are the web server's business."""
        try:
            # 0666 & umask, as a plain open() gives: readable by the web server
            atomic_write(self._path(key), data, mode=0o666)
        except OSError as e:
            raise PublishError(f"{self.url}{key}: write failed: {e.strerror or e}", key=key) from None

    def delete(self, keys: Iterable[str]) -> None:
        """Delete the files, and the folders that deleting them emptied (as object stores have none)."""
        for key in keys:
            path = self._path(key)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as e:
                raise PublishError(f"{self.url}{key}: delete failed: {e.strerror or e}", key=key) from None
            prune_empty_dirs(self.root, path.parent)

    def probe_nesting(self, under: str | None) -> bool:
        """Never: a file cannot also be a folder."""
        return False
