"""Load and validate `data/`: the one path that `hmr validate`, `hmr build`, `hmr diff` and the model
edits share.

`load_checked` reads a data directory (v2 records, or the legacy files themselves under
`canonical_format = legacy`) and validates it, collecting every problem; `load_valid` is the same
but fails on any error, and `validate` turns the findings into a `ValidationReport`. The record
cache (`builder.cache.RecordCache`) lets unchanged files skip parsing and the schema check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from builder.cache import RecordCache
from builder.categories import BY_NAME
from builder.config import canonical_format
from builder.errors import ConfigError, Problem, ValidationFailed
from builder.legacy.source import load_legacy
from builder.records import CategoryData, load, load_category
from builder.validate import validate as validate_records

__all__ = ["ValidationReport", "load_checked", "load_valid", "remember", "validate"]


@dataclass(frozen=True)
class ValidationReport:
    """What `validate` found in a data directory: every problem (sorted) and how many models it holds."""

    data_dir: Path
    problems: list[Problem]
    models: int

    @property
    def errors(self) -> list[Problem]:
        """The problems that make the data invalid."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """The problems that do not block a build."""
        return [p for p in self.problems if p.severity != "error"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise ValidationFailed (holding every problem) if there is any error."""
        if not self.ok:
            raise ValidationFailed(self.problems)

    def summary(self) -> str:
        """The line `hmr validate` prints for valid data."""
        return f"{self.models} models valid ({len(self.warnings)} warning(s))"


def load_checked(data_dir: Path, cache: RecordCache | None = None, categories: Iterable[str] | None = None,
                 legacy: bool | None = None) -> tuple[dict[str, CategoryData], list[Problem]]:
    """Every category's records (or only `categories`) and every problem met reading and validating
    them, unsorted; nothing is raised for bad data and nothing is stored in `cache`.

    `legacy`: whether `data_dir` holds the legacy files (converted in memory, no cache applies);
    None reads it from the `canonical_format` setting.

    Raises:
        ConfigError: `data_dir` is not a directory, or the project settings are unusable.
    """
    if not data_dir.is_dir():  # not bad data but the wrong place: one line that says where to be
        raise ConfigError(f"data directory not found: {data_dir} (run from the repository root or pass --data DIR)")
    wanted = None if categories is None else list(categories)
    if legacy is None:
        legacy = canonical_format(data_dir) == "legacy"
    if legacy:  # data/ holds the legacy files; v2 is derived
        cats, problems = load_legacy(data_dir)
        if wanted is not None:
            cats = {n: cats[n] for n in wanted}
    elif wanted is None:
        cats, problems = load(data_dir, cache)
    else:
        problems = []
        cats = {n: load_category(data_dir, BY_NAME[n], problems, cache) for n in wanted}
    return cats, problems + validate_records(cats)


def load_valid(data_dir: Path, cache_from: Path | None = None) -> tuple[dict[str, CategoryData], list[Problem]]:
    """Records that passed validation, and the warnings.

    The record cache of `data_dir` serves unchanged files and learns the valid ones; with
    `cache_from`, the cache of that data directory serves them instead and is left as it is (for
    a temporary copy of a data set, whose own cache would only pile up).

    Raises:
        ValidationFailed: any error (it holds every problem, warnings included).
        ConfigError: the project settings are unusable.
    """
    cats, problems = _load_remembered(data_dir, cache_from)
    if any(p.severity == "error" for p in problems):
        raise ValidationFailed(sorted(problems))
    return cats, problems


def validate(data_dir: Path) -> ValidationReport:
    """Check every file of `data_dir` (what `hmr validate` does); bad data is reported, not raised.

    Raises:
        ConfigError: the project settings are unusable.
    """
    cats, problems = _load_remembered(data_dir, None)
    return ValidationReport(data_dir, sorted(problems), sum(len(cd.records) for cd in cats.values()))


def _load_remembered(data_dir: Path, cache_from: Path | None) -> tuple[dict[str, CategoryData], list[Problem]]:
    cache = RecordCache(cache_from or data_dir)
    cats, problems = load_checked(data_dir, cache)
    if cache_from is None:
        remember(cache, cats)
    return cats, problems


def remember(cache: RecordCache, cats: dict[str, CategoryData], retain: bool = True) -> None:
    """Store the schema-valid records in the cache and save it.

    With `retain`, entries of files that are gone are dropped; without it (when `cats` is only part
    of the data set) the cache keeps serving the categories not loaded.
    """
    live = set()
    for cd in cats.values():
        if cd.settings_digest:
            live.add(cd.settings_digest)
        for rec in cd.records.values():
            if not rec.digest:  # converted in memory from legacy files: nothing to remember
                continue
            live.add(rec.digest)
            if rec.schema_ok:
                cache.put(rec.digest, rec.data)
    if retain:
        cache.retain(live)
    cache.save()
