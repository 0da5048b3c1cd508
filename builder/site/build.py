"""`hmr build`: the whole pipeline, read top to bottom in `build()`.

Each stage is a function of data that returns its files (relative path -> bytes); `build()` calls
them in order, gathers their files and warnings, and writes once at the end. Nothing is written when
any stage fails (validation errors included), and a build that changes nothing writes nothing.

    load_valid            data/ -> records (raises ValidationFailed on any error)
    source_facts          git, times, SOURCE_DATE_EPOCH: read once, passed to the stages
    v2_records            the published v2 records, as data for every later stage
    compiled_files        v1, v2, per-model and legacy files (memoized by the record digests)
    metadata_files        the old API's metadata/... endpoints
    catalog_files         search index, include_group variant, schemas
    statistics_files      the old API's statistics/{category} (and the grouped text variant)
    text_api_files        the old API's v2/text_generation/{groups, distinct_baselines, ...}
    change_feed           changes.json / changes.atom against the previous build
    html_files            the browse pages
    manifest_files        the manifest over every key above, and its signature
    nginx_files           the nginx config of the route table (build-private, last: it routes the manifest)
    write_tree            the atomic, minimal write
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from builder.errors import Problem
from builder.fs import atomic_write
from builder.load import load_valid
from builder.memo import memoized_files
from builder.records import ALIASES_FILE
from builder.routes import MANIFEST_FILE, v1_file, v2_file
from builder.site.catalog import catalog_files
from builder.site.changes import change_feed, open_previous
from builder.site.html import SiteConfig, html_files
from builder.site.manifest import generation_time, manifest_files, parse_previous, read_previous
from builder.site.metadata import metadata_files
from builder.site.nginx import nginx_files
from builder.site.outputs import compiled_files, v2_records
from builder.site.source import source_facts
from builder.site.stats import statistics_files
from builder.site.textapi import load_aliases, text_api_files
from builder.site.writer import WriteStats, write_tree

__all__ = ["BuildResult", "build"]


@dataclass
class BuildResult:
    """What a build made: every file of the site, what the write did, the warnings of every stage."""

    files: dict[str, bytes]
    stats: WriteStats
    warnings: list[Problem] = field(default_factory=list)


def build(data_dir: Path, out_dir: Path, previous_manifest: bytes | None = None,
          previous: str | Path | None = None, sign_key: Path | None = None) -> BuildResult:
    """Validate `data_dir` and write its site to `out_dir`.

    `previous` is the previous build for the change feed (a site directory or base URL; default:
    `out_dir`); `previous_manifest` (default: that build's) continues the generation count; `sign_key`
    (an Ed25519 private key file) adds `manifest.json.sig`.

    Raises:
        ValidationFailed: the data has errors (nothing is written).
        DataError: the group aliases file is unusable (nothing is written).
        HmrError: a setting, the key or the previous build is unusable (nothing is written).
    """
    key = None
    if sign_key is not None:
        from builder.signing import load_private_key

        key = load_private_key(Path(sign_key))  # a bad key fails the build before anything is done
    cats, warnings = load_valid(data_dir)
    facts = source_facts(data_dir)
    config = SiteConfig.load(data_dir=data_dir)

    v2 = v2_records(cats)
    files = compiled_files(cats, v2)
    files.update(metadata_files(cats, facts.category_times))
    files.update(catalog_files(v2, files.get(v1_file("text_generation"))))
    # statistics and text utilities are functions of the compiled v2 files (and the build time):
    # remembered by their bytes, so a build of unchanged data skips them
    v2_bytes = [files.get(v2_file(c), b"") for c in v2]
    when = facts.source_date_epoch if facts.source_date_epoch is not None else facts.source_time()
    times = {c: t.last_updated for c, t in facts.category_times.items()}
    files.update(memoized_files("statistics", [repr((when, sorted(times.items()))).encode(), *v2_bytes],
                                lambda: statistics_files(v2, times, when)))
    v1_text = files.get(v1_file("text_generation"))
    aliases = load_aliases(data_dir / "text_generation" / ALIASES_FILE)
    files.update(memoized_files("text_api", [files.get(v2_file("text_generation"), b""), v1_text or b"",
                                             orjson.dumps(aliases)],
                                lambda: text_api_files(v2["text_generation"], orjson.loads(v1_text) if v1_text else (),
                                                       aliases)))

    with open_previous(previous, out_dir) as prev:
        prev_manifest = previous_manifest if previous_manifest is not None else prev.manifest()
        try:
            prev_doc = parse_previous(prev_manifest)
        except ValueError:
            prev_doc = None  # the manifest stage reports it
        feed = change_feed(prev, prev_manifest, v2, files, prev_doc["generation"] + 1 if prev_doc else 1,
                           lambda: generation_time(prev_doc, facts.source_time, facts.source_date_epoch),
                           facts.commit, config.site_url)
    files.update(feed.files)
    warnings += feed.warnings
    files.update(html_files(cats, v2, facts, feed.history, config))

    # a --previous without a manifest of its own still continues what out_dir holds
    base = prev_manifest if prev_manifest is not None else read_previous(out_dir)
    base, problems = _at_least(base, read_generation(out_dir))
    warnings += problems
    manifest, problems = manifest_files(files, base, facts, key)
    files.update(manifest)
    warnings += problems
    files.update(nginx_files(files))

    save_generation(out_dir, orjson.loads(manifest[MANIFEST_FILE])["generation"])  # before the swap: never behind
    stats = write_tree(out_dir, files)
    return BuildResult(files, stats, warnings)


def generation_file(out_dir: Path) -> Path:
    """Where the last published generation is kept, beside the site (it survives losing `site/`)."""
    return out_dir.parent / f".{out_dir.name}.generation"


def read_generation(out_dir: Path) -> int:
    """The last generation a build of `out_dir` published (0: none known or unreadable)."""
    try:
        value = int(generation_file(out_dir).read_text().strip())
    except (OSError, ValueError):
        return 0
    return value if value > 0 else 0


def save_generation(out_dir: Path, generation: int) -> None:
    """Remember `generation` if it is past the one kept (durably: it must survive a power cut)."""
    if generation > read_generation(out_dir):
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(generation_file(out_dir), f"{generation}\n".encode(), durable=True)


def _at_least(base: bytes | None, floor: int) -> tuple[bytes | None, list[Problem]]:
    """The previous manifest, or, when it is missing, unusable or behind the kept generation (site/
    was lost, damaged or replaced by an older copy), a stand-in at that generation: the count never
    goes backwards. And the warning of an unusable one."""
    if floor <= 0:
        return base, []
    try:
        prev = parse_previous(base)
    except ValueError as e:
        prev = None
        warned = [Problem(MANIFEST_FILE, "", f"previous manifest unusable ({e}); generation continues from the "
                                             f"one kept beside the site ({floor})", "warning")]
    else:
        warned = []
    if prev is not None and prev["generation"] >= floor:
        return base, []
    stand_in: dict[str, object] = {"schema_version": 1, "generation": floor, "built_at": prev.get("built_at") if prev else None,
                "source_commit": None, "files": {}}
    return orjson.dumps(stand_in), warned
