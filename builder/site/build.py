"""`hmr build`: load, validate, compile, write atomically. Any validation error: nothing is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from builder.cache import RecordCache
from builder.config import canonical_format
from builder.errors import Problem, ValidationFailed
from builder.records import CategoryData, load, load_legacy
from builder.site.assemble import complete_site
from builder.site.nginx import NGINX_CONF, nginx_config
from builder.site.outputs import compile_outputs
from builder.site.routes import routes
from builder.site.writer import WriteStats, write_tree
from builder.validate import validate


@dataclass
class BuildResult:
    files: dict[str, bytes]
    stats: WriteStats
    warnings: list[Problem] = field(default_factory=list)


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


def build(data_dir: Path, out_dir: Path, previous_manifest: bytes | None = None,
          previous: str | Path | None = None, sign_key: Path | None = None) -> BuildResult:
    """`previous_manifest` (default: the one of the previous build) continues the generation count;
    `previous` is the previous build for the change feed (a site directory or base URL; default:
    `out_dir`); `sign_key` (an Ed25519 private key file) adds `manifest.json.sig`."""
    cats, warnings = load_valid(data_dir)
    files = compile_outputs(cats)
    # the manifest covers every published key, so it comes after all outputs (metadata, index, feeds,
    # HTML: builder.site.assemble); the nginx config (build-private, not a key) comes last so that
    # it routes the manifest too
    warnings += complete_site(files, cats, data_dir, out_dir, previous_manifest, previous, sign_key)
    files[NGINX_CONF] = nginx_config(routes(files)).encode()
    stats = write_tree(out_dir, files)
    return BuildResult(files, stats, warnings)
