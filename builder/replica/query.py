"""`query()`: filter, sort and page the read-only records in memory, with the old client's semantics.

The existing library (8.6.2) offers `manager.query(category)`, a lazy and immutable fluent builder over
the records it holds, and `manager.query_all()` across categories; the old API's `/search` endpoints are
that builder behind query parameters. `ModelQuery` here keeps its semantics over our read-only records
(mappings, not Pydantic objects), so code written against the old client keeps its answers:

- every method returns a new query; nothing runs until `to_list`, `first`, `count`, `distinct`, `group_by`;
- `where(field=value)` is equality; a non-string iterable value means "in"; Django-style suffixes
  `__lt __lte __gt __gte __ne __in __contains`; nested fields as `config__download` (a missing
  intermediate key raises ValueError, as the old client does). A positional argument is a predicate
  (any callable taking a record);
- a field name is checked against the category's record fields (the common ones, the category's own,
  and any key the records carry); an unknown one raises ValueError, as in the old client, so a typo
  does not silently match nothing. A declared field a record omits reads as its default (None; False for
  `inpainting`, and for `nsfw` outside image_generation, where 8.6.2 requires it);
- `tags_any` / `tags_all` never match a record without tags; `tags_none` always does;
- `order_by(field, descending=False)`: records without the field sort last ascending (first descending),
  the sort is stable; values that cannot be compared raise ValueError;
- `offset`, then `limit`, apply after sorting; results are de-duplicated by name, first one wins
  (only `query_all()` can hold two records of one name: one per category);
- category helpers: `for_baseline`, `only_nsfw`, `exclude_nsfw`, `only_inpainting`, `exclude_inpainting`
  (image), `for_backend`, `exclude_backend_variations`, `only_quantized`, `exclude_quantized`,
  `group_by_base_model` (text), `for_style`, `group_by_style` (controlnet). They are available on every
  query, as plain predicates: on a category without the field they match what the field's default does.
- `search(...)` takes the old `/search` endpoint's parameters (nsfw, baseline, inpainting, tags_any,
  tags_all, tags_none, name_contains, backend, exclude_backend_variations, quantized, sort_by, sort_desc,
  offset, limit) in one call; `hmr get` exposes it.

`query_all()` accepts the fields of any category (the old client checks them against the generic record
only, which refuses `tags_any` although its `/search` endpoint offers it across categories).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Self

from builder.categories import BY_NAME, CATEGORIES
from builder.replica.errors import QueryError

__all__ = ["BACKEND_PREFIXES", "ModelQuery", "fields_of"]

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]

#: the fields every v2 record may carry (8.6.2's GenericModelRecord)
COMMON_FIELDS = ("record_type", "name", "description", "version", "finetune_series", "metadata", "config",
                 "model_classification", "size_on_disk_bytes", "licensing")
#: text backends -> the prefix of their duplicate entries in the legacy text file
BACKEND_PREFIXES = {"aphrodite": "aphrodite/", "koboldcpp": "koboldcpp/"}

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "ne": operator.ne,
    "in": lambda val, choices: val in choices,
    "contains": lambda val, item: item in val,
}
_MISSING = object()


def fields_of(category: str | None, records: Iterable[Record] = ()) -> frozenset[str]:
    """The field names a query over `category` (None: every category) accepts: the common ones, the
    category's own, and every key `records` carry."""
    cats = CATEGORIES if category is None else (BY_NAME[category],)
    names = set(COMMON_FIELDS)
    for c in cats:
        names.update(c.v2_fields)
    for rec in records:
        names.update(rec)
    return frozenset(names)


def _default(category: str | None, field: str) -> Any:
    """What a declared field a record omits reads as (the old client's record defaults)."""
    if field == "inpainting":
        return False
    if field == "nsfw" and category != "image_generation":
        return False
    if field == "record_type":
        return category
    return None


def _iterable(value: object) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, str | bytes)


def _hashable(field: str, value: object) -> Hashable:
    candidate = tuple(value) if isinstance(value, list | tuple) else value
    try:
        hash(candidate)
    except TypeError:
        raise QueryError(f"field {field!r} holds an unhashable {type(value).__name__}: cannot use it for "
                         "distinct/group_by") from None
    return candidate


class ModelQuery:
    """A lazy, immutable query over records (see the module docstring). Made by `client.query(category)`
    or `client.query_all()`; `records` holds (category, model key, record) triples."""

    __slots__ = ("_cats", "_fields", "_limit", "_offset", "_predicates", "_records", "_sort", "category")

    def __init__(self, records: Sequence[tuple[str, str, Record]], category: str | None,
                 fields: frozenset[str] | None = None, *, predicates: tuple[Predicate, ...] = (),
                 sort: tuple[str, bool] | None = None, offset: int = 0, limit: int | None = None):
        self.category = category
        self._records = records
        self._fields = fields if fields is not None else fields_of(category, (r for _, _, r in records))
        self._predicates = predicates
        self._sort = sort
        self._offset = offset
        self._limit = limit
        self._cats: dict[int, str] | None = None

    def _clone(self, **changes: Any) -> Self:
        kw: dict[str, Any] = {"predicates": self._predicates, "sort": self._sort, "offset": self._offset,
                              "limit": self._limit}
        kw.update(changes)
        return type(self)(self._records, self.category, self._fields, **kw)

    def _and(self, *preds: Predicate) -> Self:
        return self._clone(predicates=(*self._predicates, *preds))

    def _check(self, field: str) -> None:
        top = field.split("__", 1)[0]
        if top not in self._fields:
            where = self.category or "any category"
            raise QueryError(f"field {top!r} does not exist on records of {where}; valid fields: "
                             f"{', '.join(sorted(self._fields))}")

    def _value(self, record: Record, path: str) -> Any:
        """The value at `path` (`a__b__c`); a top-level field the record omits reads as its default."""
        parts = path.split("__")
        value = record.get(parts[0], _MISSING)
        if value is _MISSING:
            value = _default(self._category_of(record), parts[0])
        for part in parts[1:]:
            if value is None:
                raise QueryError(f"field path {path!r} is missing segment {part!r} (encountered None)")
            if not isinstance(value, Mapping) or part not in value:
                raise QueryError(f"field path {path!r} is missing key {part!r}")
            value = value[part]
        return value

    def _category_of(self, record: Record) -> str | None:
        if self.category is not None:
            return self.category
        if self._cats is None:  # query_all: which category each record came from, made on first need
            self._cats = {id(r): c for c, _, r in self._records}
        return self._cats.get(id(record))

    # -- filters ------------------------------------------------------------------------------

    def where(self, *predicates: Predicate, **fields: Any) -> Self:
        """Keep the records every predicate and every `field=value` (see the module docstring) accepts."""
        preds = list(predicates)
        for raw, value in fields.items():
            field, op = raw, None
            head, sep, tail = raw.rpartition("__")
            if sep and tail in _OPS:
                field, op = head, tail
            self._check(field)
            if op is None and _iterable(value):
                op = "in"
            preds.append(self._eq(field, value) if op is None else self._cmp(field, op, value))
        return self._and(*preds)

    def _eq(self, field: str, value: Any) -> Predicate:
        return lambda r: self._value(r, field) == value

    def _cmp(self, field: str, op: str, value: Any) -> Predicate:
        fn = _OPS[op]
        if op == "in" and not _iterable(value):
            raise QueryError("the '__in' operator requires a non-string iterable value")

        def pred(r: Record) -> bool:
            v = self._value(r, field)
            if v is None:
                return False
            if op == "contains" and not _iterable(v):
                return False
            return fn(v, value)

        return pred

    def filter(self, predicate: Predicate) -> Self:
        """Keep the records `predicate` accepts."""
        return self._and(predicate)

    def _tags(self, r: Record) -> set[str]:
        tags = self._value(r, "tags")
        return set(tags) if tags else set()

    def tags_any(self, tags: Iterable[str]) -> Self:
        """Keep records tagged with any of `tags`."""
        wanted = set(tags)
        self._check("tags")
        return self._and(lambda r: bool(wanted & self._tags(r)))

    def tags_all(self, tags: Iterable[str]) -> Self:
        """Keep records tagged with all of `tags` (a record without tags never matches)."""
        wanted = set(tags)
        self._check("tags")
        return self._and(lambda r: bool(self._value(r, "tags")) and wanted <= self._tags(r))

    def tags_none(self, tags: Iterable[str]) -> Self:
        """Drop records tagged with any of `tags`."""
        unwanted = set(tags)
        self._check("tags")
        return self._and(lambda r: not (unwanted & self._tags(r)))

    def name_contains(self, text: str) -> Self:
        """Keep records whose name contains `text`, case-insensitively (the `/search` parameter)."""
        needle = text.lower()
        return self._and(lambda r: needle in str(r.get("name", "")).lower())

    def for_baseline(self, baseline: str) -> Self:
        """Keep models of baseline `baseline` (exact match)."""
        return self._and(lambda r: self._value(r, "baseline") == baseline)

    def only_nsfw(self) -> Self:
        """Keep NSFW models."""
        return self._and(lambda r: bool(r.get("nsfw")))

    def exclude_nsfw(self) -> Self:
        """Drop NSFW models."""
        return self._and(lambda r: not r.get("nsfw"))

    def only_inpainting(self) -> Self:
        """Keep inpainting models."""
        return self._and(lambda r: bool(r.get("inpainting")))

    def exclude_inpainting(self) -> Self:
        """Drop inpainting models."""
        return self._and(lambda r: not r.get("inpainting"))

    def for_backend(self, backend: str) -> Self:
        """Keep the text entries of backend `backend` (`aphrodite`, `koboldcpp`: their prefixed names).

        Raises:
            ValueError: an unknown backend.
        """
        prefix = BACKEND_PREFIXES.get(getattr(backend, "value", backend))
        if prefix is None:
            raise QueryError(f"unknown backend {backend!r}; valid backends: {sorted(BACKEND_PREFIXES)}")
        return self._and(lambda r: str(r.get("name", "")).startswith(prefix))

    def exclude_backend_variations(self) -> Self:
        """Drop the backend-prefixed duplicates of text models."""
        prefixes = tuple(BACKEND_PREFIXES.values())
        return self._and(lambda r: not str(r.get("name", "")).startswith(prefixes))

    def only_quantized(self) -> Self:
        """Keep quantised variants (the name carries a quantisation: Q4_K_M, GGUF, AWQ, ...)."""
        return self._and(_quantized)

    def exclude_quantized(self) -> Self:
        """Drop quantised variants."""
        return self._and(lambda r: not _quantized(r))

    def for_style(self, style: str) -> Self:
        """Keep ControlNet models of `controlnet_style` `style`."""
        return self._and(lambda r: r.get("controlnet_style") == style)

    def search(self, *, nsfw: bool | None = None, baseline: str | None = None, inpainting: bool | None = None,
               tags_any: Iterable[str] = (), tags_all: Iterable[str] = (), tags_none: Iterable[str] = (),
               name_contains: str | None = None, backend: str | None = None,
               exclude_backend_variations: bool = False, quantized: bool | None = None,
               sort_by: str | None = None, sort_desc: bool = False, offset: int | None = None,
               limit: int | None = None) -> Self:
        """The old `/search` endpoint's parameters in one call (unset ones do not filter)."""
        q = self
        if nsfw is not None:
            q = q.where(nsfw=nsfw)
        if baseline is not None:
            q = q.where(baseline=baseline)
        if inpainting is not None:
            q = q.where(inpainting=inpainting)
        tags_any, tags_all, tags_none = list(tags_any), list(tags_all), list(tags_none)
        if tags_any:
            q = q.tags_any(tags_any)
        if tags_all:
            q = q.tags_all(tags_all)
        if tags_none:
            q = q.tags_none(tags_none)
        if name_contains:
            q = q.name_contains(name_contains)
        if backend is not None:
            q = q.for_backend(backend)
        if exclude_backend_variations:
            q = q.exclude_backend_variations()
        if quantized is not None:
            q = q.only_quantized() if quantized else q.exclude_quantized()
        if sort_by is not None:
            q = q.order_by(sort_by, descending=sort_desc)
        if offset is not None:
            q = q.offset(offset)
        if limit is not None:
            q = q.limit(limit)
        return q

    # -- ordering and paging ------------------------------------------------------------------

    def order_by(self, field: str, *, descending: bool = False) -> Self:
        """Sort by `field` (records without it last ascending, first descending)."""
        self._check(field)
        return self._clone(sort=(field, descending))

    def offset(self, n: int) -> Self:
        """Skip the first `n` results."""
        if n < 0:
            raise QueryError(f"offset must be >= 0, not {n}")
        return self._clone(offset=n)

    def limit(self, n: int) -> Self:
        """Return at most `n` results."""
        if n < 0:
            raise QueryError(f"limit must be >= 0, not {n}")
        return self._clone(limit=n)

    # -- results --------------------------------------------------------------------------------

    def _pairs(self) -> list[tuple[str, Record]]:
        preds = self._predicates
        seen: set[Any] = set()
        out: list[tuple[str, Record]] = []
        for _, k, r in self._records:
            if all(p(r) for p in preds):
                name = r.get("name", k)
                if name in seen:
                    continue  # query_all: the first category holding a name wins, as in the old client
                seen.add(name)
                out.append((k, r))
        if self._sort is not None:
            field, desc = self._sort

            def key(kr: tuple[str, Record]) -> tuple[int, Any]:
                v = self._value(kr[1], field)
                return (1, "") if v is None else (0, v)

            try:
                out.sort(key=key, reverse=desc)
            except TypeError:
                kinds = sorted({type(self._value(r, field)).__name__ for _, r in out})
                raise QueryError(f"cannot order by {field!r}: its values are not mutually comparable "
                                 f"({', '.join(kinds)})") from None
        if self._offset:
            out = out[self._offset:]
        if self._limit is not None:
            out = out[: self._limit]
        return out

    def _run(self) -> list[Record]:
        return [r for _, r in self._pairs()]

    def to_list(self) -> list[Record]:
        """The matching records (read-only mappings), sorted and paged."""
        return self._run()

    def keys(self) -> list[str]:
        """The model keys of the matching records, in order."""
        return [k for k, _ in self._pairs()]

    def to_dict(self) -> dict[str, Record]:
        """Model key -> record of the matching records, in order."""
        return dict(self._pairs())

    def first(self) -> Record | None:
        """The first matching record, or None."""
        out = self.limit(1)._run()
        return out[0] if out else None

    def count(self) -> int:
        """How many records match (paging applied, as in the old client)."""
        return len(self._run())

    def total(self) -> int:
        """How many records match before paging (the `/search` answer's `total`)."""
        return self._clone(offset=0, limit=None).count()

    def distinct(self, field: str) -> list[Any]:
        """The distinct values of `field` over the matching records, in order of appearance."""
        self._check(field)
        seen: set[Hashable] = set()
        out = []
        for r in self._run():
            v = self._value(r, field)
            h = _hashable(field, v)
            if h not in seen:
                seen.add(h)
                out.append(v)
        return out

    def group_by(self, field: str) -> dict[Hashable, list[Record]]:
        """Value of `field` -> the matching records holding it."""
        self._check(field)
        groups: dict[Hashable, list[Record]] = {}
        for r in self._run():
            groups.setdefault(_hashable(field, self._value(r, field)), []).append(r)
        return groups

    def group_by_base_model(self) -> dict[str, list[Record]]:
        """Base model name (the text name rules) -> the matching records."""
        from builder.legacy.textgroups import base_name

        groups: dict[str, list[Record]] = {}
        for r in self._run():
            groups.setdefault(base_name(str(r.get("name", ""))), []).append(r)
        return groups

    def group_by_style(self) -> dict[str, list[Record]]:
        """ControlNet style -> the matching records (records without a style are left out)."""
        groups: dict[str, list[Record]] = {}
        for r in self._run():
            style = r.get("controlnet_style")
            if style is not None:
                groups.setdefault(style, []).append(r)
        return groups

    def __iter__(self):  # noqa: ANN204 - an iterator of records
        return iter(self._run())

    def __len__(self) -> int:
        return self.count()


def _quantized(r: Record) -> bool:
    from builder.legacy.textgroups import parse_name  # the name rules: only for quantisation filters

    return parse_name(str(r.get("name", ""))).quant is not None
