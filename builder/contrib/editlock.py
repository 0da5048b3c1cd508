"""The lock of a data folder that every `hmr model` edit holds, so concurrent edits never lose one.

An edit reads records and `_category.yaml`, tries the change, then writes: two edits interleaving
those steps would each write over what the other wrote, both reporting success. `locked` holds
an exclusive lock on the data folder itself (flock; released when the process dies) from the first
read to the last write, so the second edit waits, then reads what the first wrote. It gives up after `LOCK_WAIT`
seconds with one line saying so, nothing written.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from builder.errors import LockTimeout
from builder.fs import wait_for_flock

__all__ = ["LOCK_WAIT", "folder_lock", "locked"]

#: how long an edit waits for another one to finish before it gives up (nothing written)
LOCK_WAIT = 60.0

_F = TypeVar("_F", bound=Callable[..., Any])


@contextmanager
def folder_lock(folder: Path, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold an exclusive lock on `folder` itself (flock on the folder's descriptor: no lock file is
    left in data/, and the kernel releases it when the process dies).

    Raises:
        LockTimeout: another process held it for over `wait` seconds.
    """
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not wait_for_flock(fd, wait):
            raise LockTimeout(f"{folder}: another edit has held this data folder for over {wait:g}s; "
                              "nothing was written (retry when it is done)")
        yield
    finally:
        os.close(fd)  # releases the lock


def locked(fn: _F) -> _F:
    """Run an edit holding the data folder's lock: two edits at once are serialized, and each reads
    the records (and `_category.yaml`) under the lock, so neither writes over what the other wrote."""

    @functools.wraps(fn)
    def run(data_dir: Path, *args: Any, **kwargs: Any) -> Any:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            return fn(data_dir, *args, **kwargs)  # its own one-line refusal
        with folder_lock(data_dir):
            return fn(data_dir, *args, **kwargs)

    return cast(_F, run)
