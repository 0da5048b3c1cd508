"""Everything the site holds beyond the compiled category files, in dependency order:

1. the metadata endpoints (`builder.site.metadata`), the search index, the include_group variant and
   the schemas (`builder.site.catalog`);
2. the change feed against the previous build (`builder.site.changes`), which needs the v2 files;
3. the HTML pages (`builder.site.html`), whose home page shows the last change;
4. the manifest over all of it (`builder.site.manifest`), then its signature (`builder.signing`).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from builder.categories import CATEGORIES
from builder.errors import Problem
from builder.records import CategoryData
from builder.site.catalog import catalog_files
from builder.site.changes import PreviousSite, change_feed
from builder.site.manifest import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    add_manifest,
    generation_time,
    parse_previous,
    read_previous,
    source_commit,
    source_time_of,
)
from builder.site.metadata import category_times, metadata_files

V2 = "api/model_references/v2"


def complete_site(files: dict[str, bytes], cats: dict[str, CategoryData], data_dir: Path, out_dir: Path,
                  previous_manifest: bytes | None = None, previous: str | Path | None = None,
                  sign_key: Path | None = None, html: bool = True) -> list[Problem]:
    """Add every derived object, the manifest and (with `sign_key`) its signature to `files`, in place.

    `previous` is the previous build (a site directory or base URL; default: `out_dir` if it holds
    one); `previous_manifest` overrides its manifest (the generation count continues from it).
    """
    warnings: list[Problem] = []
    key = None
    if sign_key is not None:
        from builder.signing import load_private_key

        key = load_private_key(Path(sign_key))  # a bad key fails the build before anything is done
    prev_site: PreviousSite | None = None
    if previous is not None:
        prev_site = PreviousSite(previous, explicit=True)
    elif out_dir.is_dir():
        prev_site = PreviousSite(out_dir, explicit=False)
    try:
        if previous_manifest is None:
            previous_manifest = prev_site.read(MANIFEST_FILE) if prev_site is not None else read_previous(out_dir)
        try:
            prev_doc = parse_previous(previous_manifest)
        except ValueError:
            prev_doc = None  # make_manifest reports it

        newest_seen: list[float] = []
        times = category_times(data_dir, cats, newest_seen)
        files.update(metadata_files(cats, times))
        v2 = {c.name: orjson.loads(files[f"{V2}/{c.name}.json"]) for c in CATEGORIES if f"{V2}/{c.name}.json" in files}
        files.update(catalog_files(v2, files))

        git = source_commit(data_dir)
        # outside git the source's time is the newest mtime in data/: the metadata walk found it already
        source_time = (lambda: newest_seen[0]) if git is None and newest_seen else source_time_of(data_dir, git)
        generation = prev_doc["generation"] + 1 if prev_doc else 1
        from builder.site.html import SiteConfig

        config = SiteConfig.load(data_dir=data_dir)
        feed = change_feed(prev_site, previous_manifest, v2, files, generation,
                           lambda: generation_time(prev_doc, source_time),
                           git[0] if git else None, config.site_url, warnings)
        files.update(feed.files)
    finally:
        if prev_site is not None:
            prev_site.close()
    if html:
        from builder.site.html import html_files

        files.update(html_files(cats, v2, data_dir, times, feed.history, config))
    warnings += add_manifest(files, data_dir, out_dir, previous_manifest, git=git, source_time=source_time)
    if key is not None:
        from builder.signing import sign

        files[SIGNATURE_FILE] = sign(files[MANIFEST_FILE], key)
    return warnings
