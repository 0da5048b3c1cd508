"""`hmr build`: load, validate, compile, write atomically. Any validation error: nothing is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import Problem
from builder.load import load_valid
from builder.records import CategoryData
from builder.routes import routes
from builder.site.assemble import complete_site
from builder.site.nginx import NGINX_CONF, nginx_config
from builder.site.outputs import compile_outputs
from builder.site.writer import WriteStats, write_tree


@dataclass
class BuildResult:
    files: dict[str, bytes]
    stats: WriteStats
    warnings: list[Problem] = field(default_factory=list)


#: the modules whose code decides the compiled category files (part of their memo key)
COMPILE_MODULES = ("builder.site.outputs", "builder.legacy.jsonrec", "builder.legacy.jsonfmt", "builder.legacy.text",
                   "builder.legacy.textgroups", "builder.categories", "builder.records")


def compiled_outputs(cats: dict[str, CategoryData]) -> dict[str, bytes]:
    """`compile_outputs(cats)`, remembered by the digests of the record and settings files (in order):
    the same data compiles to the same bytes, so a build of unchanged data skips the ~0.15 s."""
    from builder.site.memo import memoized_files

    parts = []
    for name, cd in cats.items():
        if any(not rec.digest for rec in cd.records.values()):
            return compile_outputs(cats)  # records converted in memory (canonical_format legacy): no digests
        parts.append([name, cd.settings_digest, [[k, rec.digest] for k, rec in cd.records.items()]])
    import orjson

    return memoized_files("compiled", [orjson.dumps(parts)], lambda: compile_outputs(cats), COMPILE_MODULES)


def site_nginx_config(files: dict[str, bytes]) -> bytes:
    """The nginx config of the route table of `files`: a function of the file names only, remembered."""
    from builder.site.memo import memoized

    names = sorted(files)
    return memoized("nginx", ["\n".join(names).encode()], lambda: nginx_config(routes(names)).encode(),
                    ("builder.routes", "builder.site.nginx"))


def build(data_dir: Path, out_dir: Path, previous_manifest: bytes | None = None,
          previous: str | Path | None = None, sign_key: Path | None = None) -> BuildResult:
    """`previous_manifest` (default: the one of the previous build) continues the generation count;
    `previous` is the previous build for the change feed (a site directory or base URL; default:
    `out_dir`); `sign_key` (an Ed25519 private key file) adds `manifest.json.sig`."""
    cats, warnings = load_valid(data_dir)
    files = compiled_outputs(cats)
    # the manifest covers every published key, so it comes after all outputs (metadata, index, feeds,
    # HTML: builder.site.assemble); the nginx config (build-private, not a key) comes last so that
    # it routes the manifest too
    warnings += complete_site(files, cats, data_dir, out_dir, previous_manifest, previous, sign_key)
    files[NGINX_CONF] = site_nginx_config(files)
    stats = write_tree(out_dir, files)
    return BuildResult(files, stats, warnings)
