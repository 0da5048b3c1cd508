"""`hmr`: thin click wrappers over the Python API. No logic lives here.

Errors are converted once, for every command of every group, by `HmrGroup.invoke`: an `HmrError`
(validation problems first, one per line) or an `OSError` becomes one `error: ...` line on stderr and
exit status 1; `--debug`, accepted before or after the command name, shows the traceback instead.
Modules are imported inside the commands so that `hmr build` does not pay for what `hmr deploy` needs.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import NoReturn

import click

from builder.errors import HmrError, Problem, ValidationFailed


def fail(message: str) -> NoReturn:
    """Print `error: message` on stderr and exit 1 (for failures a command finds itself)."""
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(1)


def report(problems: list[Problem]) -> None:
    """Print validation problems (warnings included) on stderr, one per line."""
    for p in problems:
        click.echo(str(p), err=True)


def _convert(e: BaseException) -> NoReturn:
    """The one place an exception becomes what the user sees."""
    if isinstance(e, ValidationFailed):
        report(e.problems)
        fail(str(e))
    if isinstance(e, HmrError):
        problems = getattr(e, "problems", None) or []
        click.echo(f"error: {e}", err=True)
        for p in problems[1:]:  # an EditRefused names its first problem in the message
            click.echo(f"  {p}", err=True)
        raise click.exceptions.Exit(1)
    assert isinstance(e, OSError)
    fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "))


#: commands that live beside their subsystem: name -> "module:attribute", imported only when used, so
#: `hmr build` does not pay for boto3 or httpx. A module that is not there yet is simply not listed.
LAZY_COMMANDS = {
    "deploy": "builder.publish.cli:deploy",
    "sync-legacy": "builder.publish.cli:sync_legacy",
    "get": "builder.replica.cli:get",
    "source-info": "builder.replica.cli:source_info",
    "model": "builder.contrib.cli:model",
    "diff": "builder.contrib.cli:diff",
    "check-urls": "builder.contrib.cli:check_urls",
}


class ErrorGroup(click.Group):
    """A group with the package's one error conversion, and `--debug` anywhere on the line.

    Any group of commands (`hmr`, the GitHub workflow steps) uses it, so every command prints an
    `HmrError` or `OSError` the same way: one `error:` line, exit status 1, a traceback with `--debug`.
    """

    def main(self, args=None, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN201 - click's signature
        """Run the CLI; a `--debug` after the command name counts as given before it."""
        argv = list(sys.argv[1:] if args is None else args)
        end = argv.index("--") if "--" in argv else len(argv)
        if "--debug" in argv[1:end]:  # `hmr build --debug` means `hmr --debug build`
            argv.remove("--debug")
            argv.insert(0, "--debug")
        return super().main(argv, *a, **kw)

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - whatever the command returns
        """Run the command; an HmrError or OSError becomes one `error:` line and exit 1."""
        try:
            return super().invoke(ctx)
        except (HmrError, OSError) as e:
            if ctx.params.get("debug"):
                report(getattr(e, "problems", None) or [])  # the traceback says where, these say what
                raise
            _convert(e)


class HmrGroup(ErrorGroup):
    """The `hmr` group: its subsystem commands are imported only when run (see LAZY_COMMANDS)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The group's own commands and the lazy ones whose module is installed."""
        lazy = [n for n, target in LAZY_COMMANDS.items() if _module_exists(target.split(":")[0])]
        return sorted(set(super().list_commands(ctx)) | set(lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """The command `name`, importing its module if it is a lazy one."""
        if name in LAZY_COMMANDS and name not in self.commands:
            import importlib

            module, attr = LAZY_COMMANDS[name].split(":")
            if not _module_exists(module):
                return None
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


def _module_exists(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@click.group(cls=HmrGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
# the installed distribution's version (package metadata), so a wheel and a checkout report what pip knows
@click.version_option(None, "-V", "--version", package_name="horde-model-reference-site", message="hmr %(version)s")
def main(debug: bool) -> None:
    """AI-Horde model reference: validate, build, publish and read the static site."""


#: the pull-request gate: what imported legacy data is forgiven (its quirks, its lenient findings) is an error
_STRICT = click.option("--strict", is_flag=True, help="Hold imported legacy data to the rules of new records: "
                                                       "import quirks and legacy leniencies are errors.")


def _strictness(strict: bool) -> contextlib.AbstractContextManager:
    from builder.validate import strict_legacy

    return strict_legacy() if strict else contextlib.nullcontext()


@main.command()
@click.option("--data", "data_dir", default="data", type=click.Path(path_type=Path), show_default=True)
@_STRICT
def validate(data_dir: Path, strict: bool) -> None:
    """Check every data file; print every problem as FILE:POINTER: message."""
    from builder import api

    with _strictness(strict):
        result = api.validate(data_dir)
    result.raise_for_errors()
    report(result.problems)
    click.echo(result.summary())


@main.command("import-legacy")
@click.argument("src")
@click.option("--data", "data_dir", default="data", type=click.Path(path_type=Path), show_default=True)
def import_legacy(src: str, data_dir: Path) -> None:
    """Import legacy files from SRC (a directory or a raw GitHub base URL) into data/."""
    from builder import api

    progress = None
    if sys.stderr.isatty():  # long imports show where they are; pipes and CI logs stay clean

        def progress(category: str) -> None:
            click.echo(f"  converted {category}", err=True)

    summary = api.import_legacy(src, data_dir, progress)
    for w in summary.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(summary.describe())


@main.command("import-v2")
@click.argument("src")
@click.option("--data", "data_dir", default="data", type=click.Path(path_type=Path), show_default=True)
@click.option("--prune", is_flag=True,
              help="Remove records of an imported category that SRC does not have (default: keep them).")
def import_v2(src: str, data_dir: Path, prune: bool) -> None:
    """Merge v2 records from SRC (a directory of v2 category files, or a PRIMARY's https://host/api)
    into data/: records keep their legacy blocks, v2-only records and fields are added."""
    from builder import api

    click.echo(api.import_v2(src, data_dir, prune=prune).describe())


@main.command()
@click.option("--data", "data_dir", default="data", type=click.Path(path_type=Path), show_default=True)
@click.option("--out", "out_dir", default="site", type=click.Path(path_type=Path), show_default=True)
@click.option("--previous", metavar="DIR|URL", default=None,
              help="The previous build (site directory or base URL) for the change feed and the generation "
                   "count. Default: what --out holds.")
@click.option("--sign-key", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Ed25519 private key (PEM, or base64 of the 32-byte seed): write manifest.json.sig.")
@_STRICT
def build(data_dir: Path, out_dir: Path, previous: str | None, sign_key: Path | None, strict: bool) -> None:
    """Validate data/, then write the site; on any error write nothing."""
    from builder import api

    with _strictness(strict):
        result = api.build(data_dir, out_dir, previous=previous, sign_key=sign_key)
    report(result.warnings)
    s = result.stats
    click.echo(f"{len(result.files)} files: {s.written} written, {s.removed} removed, {s.unchanged} unchanged")
    counts = models_per_category(result.files)
    per = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
    click.echo(f"{sum(counts.values())} models{': ' + per if per else ''}")
    serve_hint = "hmr serve" if out_dir == Path("site") else f"hmr serve --site {out_dir}"
    click.echo(f"site written to {out_dir}/; preview it with `{serve_hint}`")


def models_per_category(files: dict[str, bytes]) -> dict[str, int]:
    """Category -> how many models a build's v2 documents hold, in the categories' order."""
    import orjson

    from builder.categories import CATEGORIES
    from builder.routes import v2_file

    out = {}
    for c in CATEGORIES:
        doc = files.get(v2_file(c.name))
        out[c.name] = len(orjson.loads(doc)) if doc else 0
    return out


@main.command()
@click.option("--site", "site_dir", default="site", type=click.Path(path_type=Path), show_default=True)
@click.option("--port", default=8000, type=click.IntRange(0, 65535), show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--quiet", is_flag=True, help="No access log.")
def serve(site_dir: Path, port: int, host: str, quiet: bool) -> None:
    """Preview server for a built site: the route table, ETag/Last-Modified, 304, content types."""
    from builder.site.serve import make_server

    server = make_server(site_dir, host, port, quiet)
    click.echo(f"serving {site_dir} at {server.url}/ (API base {server.url}/api); Ctrl-C stops", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
