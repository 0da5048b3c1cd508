"""The read API every replica client offers, derived from four primitives, and its value helpers.

`ReadAPI` defines the `_or_none` variants, `get_model`, `get_all_model_references` and the `*_async`
twins in terms of what a client implements: `get_model_reference`, `get_all_model_references_or_none`,
`get_legacy`, `refresh`, plus `_fresh_value` (a copy fresh in memory, for the async fast path) and
`_reasons` (why a document is unavailable). So `client.py` holds only the fallback chain.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self

from builder.categories import BY_NAME, NAMES, Category
from builder.replica.errors import CategoryError, ModelNotFound, SourceUnavailable

if TYPE_CHECKING:
    from builder.replica.query import ModelQuery

__all__ = ["ReadAPI", "ReadOnlyRecords", "category_of", "freeze", "thaw"]

#: model key -> record, read-only all the way down
ReadOnlyRecords = Mapping[str, Mapping[str, Any]]
_ALIASES = {"stable_diffusion": "image_generation"}
_EMPTY: ReadOnlyRecords = MappingProxyType({})


def freeze(value: Any) -> Any:
    """A read-only view of parsed JSON: objects become MappingProxyType, arrays tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A mutable (and JSON-serialisable) deep copy of what the client returned."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def category_of(category: Any, legacy: bool = False) -> Category:
    """The category `category` names: a name, the v1 alias `stable_diffusion`, or an enum member.

    Raises:
        CategoryError: it names none, or (`legacy`) one without a v1 (legacy format) document.
    """
    name = getattr(category, "value", category)
    if not isinstance(name, str):
        raise CategoryError(f"not a category: {category!r}")
    cat = BY_NAME.get(_ALIASES.get(name, name))
    if cat is None:
        raise CategoryError(f"unknown category {name!r} (known: {', '.join(NAMES)})")
    if legacy and not (cat.has_legacy or cat.managed_elsewhere):
        raise CategoryError(f"{cat.name} has no legacy (v1) format")
    return cat


class ReadAPI(abc.ABC):
    """The public read API over a client's primitives (see the module docstring)."""

    _reasons: dict[str, list[str]]

    @abc.abstractmethod
    def get_model_reference(self, category: Any, overwrite_existing: bool = False) -> ReadOnlyRecords:
        """Model key -> record of `category` (read-only)."""

    @abc.abstractmethod
    def get_all_model_references_or_none(self, overwrite_existing: bool = False
                                         ) -> Mapping[str, ReadOnlyRecords | None]:
        """Category -> records, None where no source has them."""

    @abc.abstractmethod
    def get_legacy(self, category: Any, overwrite_existing: bool = False) -> bytes:
        """The v1 (legacy format) document of `category`, as bytes."""

    @abc.abstractmethod
    def refresh(self, categories: Iterable[Any] | None = None) -> None:
        """Check the sources now (ignoring the TTL)."""

    @abc.abstractmethod
    def _fresh_value(self, name: str) -> Any | None:
        """What the client holds for document `name` if it is fresh in memory (no I/O), else None."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the client holds open (connections)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_model_reference_or_none(self, category: Any, overwrite_existing: bool = False
                                    ) -> ReadOnlyRecords | None:
        """As `get_model_reference`, but None where that raises SourceUnavailable."""
        try:
            return self.get_model_reference(category, overwrite_existing)
        except SourceUnavailable:
            return None

    def _renamed(self, category: str, key: str) -> str | None:
        """The key model `key` of `category` was renamed to, if the site says so (default: no renames)."""
        return None

    def _lookup(self, category: Any, records: ReadOnlyRecords, key: str) -> Mapping[str, Any] | None:
        """`records[key]`, following renames (old key -> new key, a few hops at most) on a miss."""
        rec = records.get(key)
        if rec is not None:
            return rec
        name = category_of(category).name
        for _ in range(8):  # a chain of renames, never a loop
            new = self._renamed(name, key)
            if new is None:
                return None
            key = new
            if key in records:
                return records[key]
        return None

    def get_model(self, category: Any, key: str) -> Mapping[str, Any]:
        """The record of model `key` in `category` (read-only); an old key is followed through the
        site's renames table (`source_info()["renames_followed"]` lists what was followed).

        Raises:
            ModelNotFound: the category holds no such model, under this key or a later one (a KeyError).
            SourceUnavailable: no source, the cache included, has the category.
        """
        rec = self._lookup(category, self.get_model_reference(category), key)
        if rec is None:
            raise ModelNotFound(category_of(category).name, key)
        return rec

    def get_model_or_none(self, category: Any, key: str) -> Mapping[str, Any] | None:
        """The record of model `key` (renames followed), or None when there is none or no source has
        the category."""
        records = self.get_model_reference_or_none(category)
        return None if records is None else self._lookup(category, records, key)

    def get_all_model_references(self, overwrite_existing: bool = False) -> Mapping[str, ReadOnlyRecords]:
        """Category -> records for every category, as 8.6.2 returns them: what the sources have, and an
        empty mapping for a category none has (its reason stays in `source_info()`). Never raises
        SourceUnavailable."""
        out = self.get_all_model_references_or_none(overwrite_existing)
        return MappingProxyType({c: _EMPTY if v is None else v for c, v in out.items()})

    def query(self, category: Any) -> ModelQuery:
        """A query (filter, sort, page; `builder.replica.query`) over the records of `category`, with the
        old client's semantics: `client.query("image_generation").where(nsfw=False).limit(5).to_list()`.

        Raises:
            SourceUnavailable: no source, the cache included, has the category (as `get_model_reference`).
        """
        from builder.replica.query import ModelQuery  # not on the cold path of a plain read

        name = category_of(category).name
        records = self.get_model_reference(category)
        return ModelQuery([(name, k, r) for k, r in records.items()], name)

    def query_all(self) -> ModelQuery:
        """A query over the records of every category (those no source has count as empty); a model key
        held by two categories is returned once, from the first category in `NAMES` order."""
        from builder.replica.query import ModelQuery

        refs = self.get_all_model_references()
        return ModelQuery([(c, k, r) for c in NAMES if c in refs for k, r in refs[c].items()], None)

    def get_legacy_or_none(self, category: Any, overwrite_existing: bool = False) -> bytes | None:
        """As `get_legacy`, but None where that raises SourceUnavailable."""
        try:
            return self.get_legacy(category, overwrite_existing)
        except SourceUnavailable:
            return None

    # -- async twins: a fresh in-memory copy is returned at once; a refresh runs in a worker thread so
    # the event loop never blocks on the network or the file lock

    async def get_model_reference_async(self, category: Any, overwrite_existing: bool = False) -> ReadOnlyRecords:
        """`get_model_reference` without blocking the event loop."""
        hit = None if overwrite_existing else self._fresh_value(f"v2/{category_of(category).name}")
        if hit is not None:
            return hit
        return await _in_thread(self.get_model_reference, category, overwrite_existing)

    async def get_model_reference_or_none_async(self, category: Any, overwrite_existing: bool = False
                                                ) -> ReadOnlyRecords | None:
        """`get_model_reference_or_none` without blocking the event loop."""
        try:
            return await self.get_model_reference_async(category, overwrite_existing)
        except SourceUnavailable:
            return None

    async def get_model_async(self, category: Any, key: str) -> Mapping[str, Any]:
        """`get_model` without blocking the event loop."""
        records = await self.get_model_reference_async(category)
        rec = records.get(key)
        if rec is None:
            rec = await _in_thread(self._lookup, category, records, key)
        if rec is None:
            raise ModelNotFound(category_of(category).name, key)
        return rec

    async def get_model_or_none_async(self, category: Any, key: str) -> Mapping[str, Any] | None:
        """`get_model_or_none` without blocking the event loop."""
        records = await self.get_model_reference_or_none_async(category)
        if records is None:
            return None
        rec = records.get(key)
        return rec if rec is not None else await _in_thread(self._lookup, category, records, key)

    async def get_all_model_references_async(self, overwrite_existing: bool = False
                                             ) -> Mapping[str, ReadOnlyRecords]:
        """`get_all_model_references` in a worker thread."""
        return await _in_thread(self.get_all_model_references, overwrite_existing)

    async def get_all_model_references_or_none_async(self, overwrite_existing: bool = False
                                                     ) -> Mapping[str, ReadOnlyRecords | None]:
        """`get_all_model_references_or_none` in a worker thread."""
        return await _in_thread(self.get_all_model_references_or_none, overwrite_existing)

    async def get_legacy_async(self, category: Any, overwrite_existing: bool = False) -> bytes:
        """`get_legacy` without blocking the event loop."""
        hit = None if overwrite_existing else self._fresh_value(f"v1/{category_of(category).name}")
        if hit is not None:
            return hit
        return await _in_thread(self.get_legacy, category, overwrite_existing)

    async def get_legacy_or_none_async(self, category: Any, overwrite_existing: bool = False) -> bytes | None:
        """`get_legacy_or_none` without blocking the event loop."""
        try:
            return await self.get_legacy_async(category, overwrite_existing)
        except SourceUnavailable:
            return None

    async def refresh_async(self, categories: Iterable[Any] | None = None) -> None:
        """`refresh` in a worker thread."""
        await _in_thread(self.refresh, categories)


async def _in_thread(fn: Any, *args: Any) -> Any:
    import asyncio  # not at module level: the CLI and sync users do not pay for importing it

    return await asyncio.to_thread(fn, *args)
