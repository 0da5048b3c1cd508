"""Load and validate `data/`: the one entry point that validate, build, diff and model edits share."""

from __future__ import annotations

from pathlib import Path

from builder.cache import RecordCache
from builder.config import canonical_format
from builder.errors import Problem, ValidationFailed
from builder.legacy.source import load_legacy
from builder.records import CategoryData, load
from builder.validate import validate

__all__ = ["load_valid", "remember"]


def load_valid(data_dir: Path) -> tuple[dict[str, CategoryData], list[Problem]]:
    """Records that passed validation, and the warnings; raises ValidationFailed on any error."""
    if canonical_format(data_dir) == "legacy":  # data/ holds the legacy files; v2 is derived
        cats, problems = load_legacy(data_dir)
        problems += validate(cats)
    else:
        cache = RecordCache(data_dir)
        cats, problems = load(data_dir, cache)
        problems += validate(cats)
        remember(cache, cats)
    if any(p.severity == "error" for p in problems):
        raise ValidationFailed(sorted(problems))
    return cats, problems


def remember(cache: RecordCache, cats: dict[str, CategoryData]) -> None:
    """Store schema-valid records in the cache (and forget files that are gone)."""
    live = set()
    for cd in cats.values():
        if cd.settings_digest:
            live.add(cd.settings_digest)
        for rec in cd.records.values():
            live.add(rec.digest)
            if rec.schema_ok:
                cache.put(rec.digest, rec.data)
    cache.retain(live)
    cache.save()
