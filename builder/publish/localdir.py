"""A local directory as the deploy target (`file:///path`): for a plain web server or GitHub Pages.

Same semantics as object storage: one file per object key, the same plan, order, snapshots and
prune. Each file is written to a temporary name and renamed into place, so a web server serving the
directory never sends half a file. A directory cannot hold content type or cache-control per file:
the web server decides them (`hmr build` writes a matching nginx config to `site/_config/nginx.conf`;
extensionless keys are JSON). Like every store with a filesystem underneath, a directory cannot hold
a key that is also a folder of other keys (see `deploy`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from builder.errors import HmrError
from builder.publish.targets import Head, Listed, Target

_TMP = ".hmr-tmp-"


class DirTarget(Target):
    nests = False

    def __init__(self, path: str):
        if not path or not os.path.isabs(path):
            raise HmrError(f"file://{path}: the path must be absolute (file:///PATH)")
        self.root = Path(path)
        self.url = f"file://{path.rstrip('/')}/"

    def _path(self, key: str) -> Path:
        # keys come from the route table, which refuses "..", "." and empty segments; check anyway
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts) or "\\" in key or "\0" in key:
            raise HmrError(f"{self.url}: refusing the unsafe key {key!r}")
        return self.root.joinpath(*parts)

    def open(self) -> None:
        if not self.root.parent.is_dir():
            raise HmrError(f"{self.url}: {self.root.parent} does not exist")
        try:
            self.root.mkdir(exist_ok=True)
        except OSError as e:
            raise HmrError(f"{self.url}: {e.strerror or e}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise HmrError(f"{self.url}: not writable")

    def list(self, under: str = "", exclude: str | None = None) -> dict[str, Listed]:
        out: dict[str, Listed] = {}
        start = self.root / under if under else self.root
        skip = exclude.rstrip("/") if exclude else None
        for dirpath, dirs, names in os.walk(start):
            rel = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            rel = "" if rel == "." else rel + "/"
            if rel == "" and skip:
                dirs[:] = [d for d in dirs if d != skip]
            for n in names:
                if n.startswith(_TMP):
                    continue  # an interrupted write's temporary file: not an object
                p = os.path.join(dirpath, n)
                try:
                    data = Path(p).read_bytes()
                except OSError as e:
                    raise HmrError(f"{p}: {e.strerror or e}") from None
                out[rel + n] = Listed(len(data), sha256=hashlib.sha256(data).hexdigest())
        return out

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as e:
            raise HmrError(f"{self.url}{key}: {e.strerror or e}") from None

    def head(self, key: str) -> Head | None:
        data = self.get(key)
        if data is None:
            return None
        return Head(len(data), None, None, hashlib.sha256(data).hexdigest())

    def put(self, key: str, data: bytes, content_type: str, cache_control: str, sha256: str,
            md5: str | None = None) -> None:
        path = self._path(key)
        tmp = path.parent / f"{_TMP}{os.getpid()}-{path.name}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:  # default mode (0666 & umask): readable by the web server
                f.write(data)
            os.replace(tmp, path)
        except OSError as e:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise HmrError(f"{self.url}{key}: write failed: {e.strerror or e}") from None

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            path = self._path(key)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as e:
                raise HmrError(f"{self.url}{key}: delete failed: {e.strerror or e}") from None
            # remove folders the deletion emptied, as object stores do
            parent = path.parent
            while parent != self.root:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def probe_nesting(self, under: str | None) -> bool:
        return False
