"""The copies a client holds: parsed in memory, and verified on disk through `DiskCache`.

Three ways to answer without asking a source: the warm path (a copy fresh in memory), adopting a copy
another process (or this one) confirmed within the TTL, and the last good copy when every source
failed (the site's copy first, then GitHub's). Which copy is current is what `State.served` says; its
bytes are read by sha256, so a damaged file is never served.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from builder.replica.api import freeze
from builder.replica.cache import SLOTS, DiskCache
from builder.replica.errors import TrustError
from builder.replica.state import Served, State
from builder.replica.trust import parse_document

__all__ = ["Copies", "Loaded"]


class Loaded:
    """A document in memory: `value` is the frozen records (v2) or the bytes (v1), fresh until `valid_until`."""

    # a plain slotted class: read on every warm call, and cheaper to define than a dataclass at cold start
    __slots__ = ("count", "sha256", "valid_until", "value")

    def __init__(self, sha256: str, value: Any, count: int, valid_until: float):
        self.sha256, self.value, self.count, self.valid_until = sha256, value, count, valid_until


def load(name: str, body: bytes, sha: str, valid_until: float, doc: dict[str, Any] | None = None) -> Loaded:
    """What the client holds in memory for a verified copy of document `name`."""
    if doc is None:
        doc = parse_document(body)  # verified by sha256 already: parsing it cannot fail in practice
    if name.startswith("v2/"):
        return Loaded(sha, freeze(doc), len(doc), valid_until)
    return Loaded(sha, bytes(body), len(doc), valid_until)


class Copies:
    """The memory (`mem`: document name -> Loaded) over the disk cache, and why a document is unavailable
    (`reasons`). Not thread-safe on its own: the client calls it under its lock, except for `mem` reads."""

    def __init__(self, disk: DiskCache, ttl: float, old_client_dir: Path | None = None):
        self.disk = disk
        self.ttl = ttl
        self.mem: dict[str, Loaded] = {}
        self.reasons: dict[str, list[str]] = {}
        #: where the existing library (8.6.2) keeps its converted v2 files: `<AIWORKER_CACHE_HOME>/horde_model_reference`
        self.old_client_dir = old_client_dir
        #: document name -> what was served from the existing library's files (for `source_info()`)
        self.old_client: dict[str, dict[str, Any]] = {}

    def keep(self, name: str, loaded: Loaded, state: State, served: Served) -> None:
        """Hold `loaded` as what is now served for `name`, as `served` describes it."""
        self.mem[name] = loaded
        state.served[name] = served
        self.reasons.pop(name, None)

    def held(self, name: str, sha: str, body: bytes | None = None, doc: dict[str, Any] | None = None,
             slot: str = "site") -> Loaded | None:
        """The copy of `name` whose digest is `sha`: from memory, else from `body` (verified by the
        caller), else from the disk copy in `slot`; None if it is nowhere."""
        loaded = self.mem.get(name)
        if loaded is not None and loaded.sha256 == sha:
            return loaded
        if body is None:
            body = self.disk.read_copy(slot, name, sha)
            if body is None:
                return None
        return load(name, body, sha, 0.0, doc)

    def adopt(self, name: str, served: Served | None, valid_until: float) -> bool:
        """Take the copy `served` names (memory, or the disk), fresh until `valid_until`."""
        if served is None or served.slot is None or served.sha256 is None:
            return False
        loaded = self.held(name, served.sha256, slot=served.slot)
        if loaded is None:
            return False
        loaded.valid_until = valid_until
        self.mem[name] = loaded
        if served.reason:
            self.reasons[name] = [served.reason]
        return True

    def from_cache(self, names: list[str], now: float, reason: str) -> None:
        """Answer `names` from the cache alone, without the lock (offline, or the lock is held elsewhere):
        the copies last served, else the last good ones; `reason` says why no source was asked."""
        # Copies are content-addressed, so the state read here names files that exist unless a prune
        # came in between: then one re-read of the state finds the new ones. The copies are fresh for
        # one TTL, so an offline reader sees the refreshes of the process that owns the network.
        state = self.disk.read_state()
        for name in names:
            if self.adopt(name, state.served_copy(name), now + self.ttl):
                continue
            state = self.disk.read_state()
            if not self.adopt(name, state.served_copy(name), now + self.ttl):
                self.last_good(name, state, now, [reason], write=False)

    def adopt_fresh(self, name: str, state: State, now: float) -> bool:
        """Adopt the copy served for `name` if it was confirmed within this client's TTL."""
        served = state.served_copy(name)
        return served is not None and served.fresh_from + self.ttl > now and self.adopt(
            name, served, served.fresh_from + self.ttl)

    def last_good(self, name: str, state: State, now: float, errors: list[str], write: bool) -> bool:
        """Serve the last good copy of `name` for one TTL after every source failed with `errors`
        (`write`: record it in `state.served`); False when there is none."""
        reason = "; ".join(errors) or None
        self.reasons[name] = errors
        for slot in SLOTS:  # a verified site copy is better than a converted one
            copy = state.copies(slot).get(name)
            loaded = None if copy is None else self.held(name, copy.sha256, slot=slot)
            if copy is None or loaded is None:
                continue
            loaded.valid_until = now + self.ttl
            self.mem[name] = loaded
            if write:
                state.served[name] = Served(
                    "cache", now, now, reason, slot, copy.sha256, loaded.count, copy.url, cached_from=copy.source,
                    generation=copy.generation, source_commit=copy.source_commit, fetched_at=copy.fetched_at,
                    check=copy.check)
            return True
        loaded = self.mem.get(name)
        if loaded is not None:  # the cache folder was emptied under us: keep serving what we hold
            loaded.valid_until = now + self.ttl
            return True
        if self._from_old_client(name, now, reason):
            return True
        if write:
            state.served[name] = Served(None, now, 0.0, reason)
        return False

    def _from_old_client(self, name: str, now: float, reason: str | None) -> bool:
        """The v2 file the existing library (8.6.2) wrote for `name`, when this client has no copy: a
        worker that switched clients keeps working offline. 8.6.2 writes each category's v2 records,
        converted, at `<AIWORKER_CACHE_HOME>/horde_model_reference/<file>.json` (image_generation as
        `stable_diffusion.json`); nothing there says where the bytes came from, so they are checked for
        shape only and reported unverified. Read, never written."""
        if self.old_client_dir is None or not name.startswith("v2/"):
            return False
        cat = name[3:]
        path = self.old_client_dir / ("stable_diffusion.json" if cat == "image_generation" else f"{cat}.json")
        try:
            body = path.read_bytes()
            doc = parse_document(body)
        except (OSError, TrustError):
            return False
        sha = hashlib.sha256(body).hexdigest()
        self.mem[name] = load(name, body, sha, now + self.ttl, doc)
        self.old_client[name] = {"path": str(path), "models": len(doc), "sha256": sha, "verified": False,
                                 "verification": "unverified: a file the existing library (8.6.2) wrote",
                                 "reason": reason}
        return True

    @staticmethod
    def previous_count(name: str, state: State) -> int | None:
        """The model count of the copy last served for `name`: the reference of shrink protection."""
        served = state.served_copy(name)
        if served is not None and served.count is not None:
            return served.count
        counts = [c.count for c in (state.site.get(name), state.github.get(name)) if c is not None]
        return max(counts) if counts else None
