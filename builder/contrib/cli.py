"""Click commands of the contributor workflow: `hmr model ...`, `hmr diff`, `hmr check-urls`.

Registered lazily by `builder.cli.LAZY_COMMANDS`; thin wrappers over the API (`builder.api`:
`add_model`, `update_model`, `remove_model`, `rename_model`, `diff`). Errors are raised, and shown
by the root group (`builder.cli.HmrGroup`) as one line, exit status 1 (`--debug`: the traceback).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from builder.cli import report
from builder.errors import EditRefused

if TYPE_CHECKING:
    from builder.contrib.crud import EditResult

_DATA = click.option("--data", "data_dir", default="data", show_default=True, type=click.Path(path_type=Path),
                     help="The data directory.")
_BY = click.option("--by", default=None, help="Who makes the edit (metadata.created_by / updated_by).")


class _Assignment(click.ParamType):
    """`PATH=VALUE`; with `yaml` the value is read as YAML (`true`, `12`, `[a, b]`, `null`)."""

    name = "FIELD=VALUE"

    def __init__(self, yaml: bool):
        self.yaml = yaml

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, Any]:
        """(dotted path, value) of one `--set`/`--set-str` argument."""
        if isinstance(value, tuple):
            return value
        path, sep, raw = str(value).partition("=")
        if not sep or not path:
            self.fail(f"{value!r}: expected FIELD=VALUE", param, ctx)
        if not self.yaml:
            return path.strip(), raw
        import yaml

        try:
            return path.strip(), yaml.safe_load(raw)
        except yaml.YAMLError as e:
            self.fail(f"{value!r}: value is not valid YAML ({' '.join(str(e).split())})", param, ctx)


_SET = click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", type=_Assignment(yaml=True),
                    help="Set a field (dotted path, e.g. config.download.0.sha256sum); VALUE is YAML: "
                         "true, 12, [a, b], null. Repeatable.")
_SET_STR = click.option("--set-str", "set_strs", multiple=True, metavar="FIELD=TEXT", type=_Assignment(yaml=False),
                        help="Like --set, but TEXT is taken as a string as is (e.g. version=2).")


def _done(result: EditResult) -> None:
    """Print an edit's warnings (stderr) and its one-line message."""
    report(result.warnings)
    click.echo(result.message)


@click.group()
def model() -> None:
    """Add, change, remove or rename a model in data/ (every edit is validated before it is written)."""


@model.command("add")
@click.argument("category")
@click.argument("key")
@click.option("-f", "--file", "source", default=None, metavar="FILE",
              help="Read the record from a YAML/JSON file; '-' reads standard input.")
@click.option("--description", default=None)
@click.option("--baseline", default=None)
@click.option("--nsfw/--sfw", "nsfw", default=None, help="The nsfw flag.")
@click.option("--style", default=None)
@click.option("--url", "url", default=None, help="Download URL (https://) of the model's file.")
@click.option("--file-name", default=None, help="File name of that download (default: the URL's last segment).")
@click.option("--sha256", default=None, help="sha256 of that download (64 hex digits).")
@click.option("--size-bytes", type=click.IntRange(0), default=None, help="Size of that download in bytes.")
@_SET
@_SET_STR
@_BY
@_DATA
def add(category: str, key: str, source: str | None, description: str | None, baseline: str | None,
        nsfw: bool | None, style: str | None, url: str | None, file_name: str | None, sha256: str | None,
        size_bytes: int | None, sets: tuple[tuple[str, Any], ...], set_strs: tuple[tuple[str, Any], ...],
        by: str | None, data_dir: Path) -> None:
    """Add model KEY to CATEGORY, from flags and/or a YAML/JSON file (or '-' for standard input)."""
    from builder import api
    from builder.contrib.crud import read_record_source

    if url is None and (sha256 is not None or file_name is not None or size_bytes is not None):
        raise click.UsageError("--file-name, --sha256 and --size-bytes describe a download: give --url too")
    record = read_record_source(source) if source else {}
    fields = {"description": description, "baseline": baseline, "nsfw": nsfw, "style": style}
    record.update({k: v for k, v in fields.items() if v is not None})
    download = api.Download(url, file_name, sha256, size_bytes) if url is not None else None
    try:
        result = api.add_model(data_dir, category, key, record, download=download, sets=sets + set_strs, by=by)
    except EditRefused as e:
        raise _with_flags(e) from None
    _done(result)


#: required fields that `hmr model add` has a flag for: the problem says which to pass
_FLAG_OF = {"nsfw": "--nsfw or --sfw", "baseline": "--baseline"}


def _with_flags(e: EditRefused) -> EditRefused:
    """`e` with each `'FIELD' is required` naming the flag that gives FIELD."""
    def hinted(text: str) -> str:
        for name, flag in _FLAG_OF.items():
            said = f"{name!r} is required"
            if said in text and f"{said} (pass" not in text:
                text = text.replace(said, f"{said} (pass {flag})")
        return text

    problems = [replace(p, message=hinted(p.message)) for p in e.problems]
    return EditRefused(hinted(e.message), problems, e.file, e.pointer)


@model.command("update")
@click.argument("category")
@click.argument("key")
@_SET
@_SET_STR
@click.option("--unset", "unsets", multiple=True, metavar="FIELD", help="Remove a field (dotted path). Repeatable.")
@_BY
@_DATA
def update(category: str, key: str, sets: tuple[tuple[str, Any], ...], set_strs: tuple[tuple[str, Any], ...],
           unsets: tuple[str, ...], by: str | None, data_dir: Path) -> None:
    """Change fields of model KEY in CATEGORY."""
    from builder import api

    _done(api.update_model(data_dir, category, key, sets + set_strs, unsets, by=by))


@model.command("remove")
@click.argument("category")
@click.argument("key")
@_DATA
def remove(category: str, key: str, data_dir: Path) -> None:
    """Remove model KEY from CATEGORY (its file, pinned position and renames that led to it)."""
    from builder import api

    _done(api.remove_model(data_dir, category, key))


@model.command("rename")
@click.argument("category")
@click.argument("old")
@click.argument("new")
@_BY
@_DATA
def rename(category: str, old: str, new: str, by: str | None, data_dir: Path) -> None:
    """Rename model OLD to NEW in CATEGORY; keeps its legacy position and publishes OLD -> NEW."""
    from builder import api

    _done(api.rename_model(data_dir, category, old, new, by=by))


@click.command("diff")
@click.argument("base")
@click.argument("new")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The git repository git refs are read from (default: the one holding --data).")
@_DATA
@click.option("--exit-code", is_flag=True, help="Exit 1 when the builds differ (like git diff --exit-code).")
def diff(base: str, new: str, fmt: str, repo: Path | None, data_dir: Path, exit_code: bool) -> None:
    """Semantic diff of two builds: per category, models added, removed, renamed and changed (field by field).

    BASE and NEW are each a built site directory, a data directory, or a git ref (whose data/, the
    path of --data inside --repo, is compiled in memory). Security-relevant changes are flagged.
    """
    from builder import api
    from builder.contrib.diff import render

    result = api.diff(base, new, repo, data_dir)
    click.echo(render(result, fmt), nl=False)
    if exit_code and result.categories:
        sys.exit(1)


@click.command("check-urls")
@click.option("--data", "data_dir", default=None, type=click.Path(path_type=Path, file_okay=False),
              help="Check the records of this data directory (default: data).")
@click.option("--site", "site_dir", default=None, type=click.Path(path_type=Path, file_okay=False),
              help="Check the models of this built site instead.")
@click.option("--changed-only", "base", default=None, metavar="BASE",
              help="Only models added or changed since BASE (a site directory, data directory or git ref).")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The git repository a git ref BASE is read from (default: the one holding --data).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Requests in flight at most.")
@click.option("--timeout", type=click.FloatRange(0.05), default=30.0, show_default=True,
              help="Seconds to wait for a connection or a response.")
@click.option("--slow-after", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Warn when an answer takes longer than this (seconds).")
@click.option("--ca-bundle", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="PEM file of CA certificates to trust (e.g. a private CA); TLS is always verified.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True)
def check_urls(data_dir: Path | None, site_dir: Path | None, base: str | None, repo: Path | None,
               concurrency: int, timeout: float, slow_after: float, ca_bundle: Path | None, fmt: str) -> None:
    """Check download URLs: HEAD (ranged GET if refused), status, redirects, length vs the declared size.

    Exit status 1 when any URL is dead, times out, is unreachable or serves a different length than
    its size_bytes.
    """
    from builder.contrib import urls

    if data_dir is not None and site_dir is not None:
        raise click.UsageError("give --data or --site, not both")
    results = urls.check_urls(data_dir=data_dir, site_dir=site_dir, changed_since=base, repo=repo,
                              concurrency=concurrency, timeout=timeout, slow_after=slow_after, ca_bundle=ca_bundle)
    click.echo(urls.render(results, fmt), nl=False)
    if any(r.failed for r in results):
        sys.exit(1)
