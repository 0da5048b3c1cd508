"""`hmr deploy` and `hmr sync-legacy`: click wrappers over `builder.publish.deploy.deploy` /
`pull_manifest` and `builder.publish.legacy_sync.sync_legacy` (no logic of their own).

Registered lazily by `builder.cli.LAZY_COMMANDS`, so `hmr build` never imports boto3 or PyGithub.
Failures are `HmrError`s, printed by the root group (`builder.cli.HmrGroup`) as one line, exit 1.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from builder.routes import LEGACY_DIR


@contextmanager
def _progress_bar(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr when it is a terminal (none in logs and pipes)."""
    if not sys.stderr.isatty():
        yield None
        return
    lock = threading.Lock()
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        def tick(n: int) -> None:
            with lock:
                bar.update(n)

        yield tick


@click.command()
@click.option("--site", "site_dir", default="site", type=click.Path(path_type=Path), show_default=True,
              help="The built site.")
@click.option("--to", "to", required=True, metavar="URL", help="s3://BUCKET/PREFIX or file:///PATH")
@click.option("--endpoint-url", default=None, metavar="URL",
              help="S3 endpoint of R2, MinIO, B2, ... (default: AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL).")
@click.option("--dry-run", is_flag=True, help="Print the plan (uploads, unchanged, deletions); change nothing.")
@click.option("--prune", is_flag=True, help="After the new manifest is live, delete keys it no longer lists.")
@click.option("--verify-url", default=None, metavar="URL",
              help="After the upload (in a dry run: now), read every key back through this base URL (the CDN) "
                   "and compare its sha256 with the manifest; exit 1 on any difference.")
@click.option("--check-metadata", is_flag=True,
              help="HEAD every object and compare its sha256 metadata and headers (for stores that lose metadata).")
@click.option("--pull-manifest", is_flag=True,
              help="Only download the live manifest into --site, so that `hmr build` continues its generation.")
@click.option("--workers", default=8, type=click.IntRange(1, 64), show_default=True, help="Parallel requests.")
def deploy(site_dir: Path, to: str, endpoint_url: str | None, dry_run: bool, prune: bool, verify_url: str | None,
           check_metadata: bool, pull_manifest: bool, workers: int) -> None:
    """Publish a built site to S3-compatible storage (or a directory): snapshot, changed keys, manifest last."""
    from builder.publish import deploy as api

    if pull_manifest:
        pulled = api.pull_manifest(site_dir, to, endpoint_url=endpoint_url, workers=workers)
        if pulled.generation is None:
            click.echo(f"no live manifest at {pulled.target}: the next build starts at generation 1")
        else:
            click.echo(f"live generation {pulled.generation} written to {site_dir}; the next build continues from it")
        return
    result = api.deploy(site_dir, to, endpoint_url=endpoint_url, dry_run=dry_run, prune=prune,
                        check_metadata=check_metadata, verify_base=verify_url, workers=workers,
                        progress=lambda n: _progress_bar(n, "uploading"))
    for note in result.plan.notes:
        click.echo(f"warning: {note}", err=True)
    if dry_run:
        for line in result.plan.describe():
            click.echo(line)
        click.echo(result.plan.summary())
    else:
        click.echo(result.summary())
    if verify_url is not None:
        for m in result.mismatches:
            click.echo(f"verify: {m}", err=True)
        result.raise_for_mismatches()
        click.echo(f"verified {result.verified} keys at {verify_url}: all match the manifest")


@click.command("sync-legacy")
@click.option("--site", "site_dir", default="site", type=click.Path(path_type=Path), show_default=True,
              help="The built site (its legacy/ folder is synced).")
@click.option("--repo", "repo_url", required=True, metavar="URL",
              help="The legacy repository: a git URL or path (the image or the text repository).")
@click.option("--branch", default="main", show_default=True, help="The branch the pull request targets.")
@click.option("--kind", type=click.Choice(["image", "text"]), default=None,
              help="Which legacy repository this is (default: from the URL's name, else from its files).")
@click.option("--dry-run", is_flag=True, help="Show what would change; commit, push and open nothing.")
@click.option("--pr", is_flag=True, help="Open a pull request (GITHUB_TOKEN or GitHub App credentials).")
@click.option("--github-api-url", default=None, metavar="URL",
              help="GitHub API base URL, for GitHub Enterprise (default https://api.github.com).")
@click.option("--github-repo", default=None, metavar="OWNER/NAME",
              help="The repository on GitHub, when --repo is not a GitHub URL (default: the upstream legacy repo).")
@click.option("--workdir", type=click.Path(path_type=Path), default=None,
              help="Keep the working copy here and update it on later runs (default: a temporary clone).")
def sync_legacy(site_dir: Path, repo_url: str, branch: str, kind: str | None, dry_run: bool, pr: bool,
                github_api_url: str | None, github_repo: str | None, workdir: Path | None) -> None:
    """Bring a legacy GitHub repository in line with the built legacy/ files: branch, push, pull request."""
    from builder.publish.legacy_sync import sync_legacy as run_sync

    result = run_sync(site_dir, repo_url, branch=branch, kind=kind, dry_run=dry_run, pr=pr, workdir=workdir,
                      github_api_url=github_api_url, github_repo=github_repo, echo=click.echo)
    for name in result.missing:
        click.echo(f"warning: {site_dir}/{LEGACY_DIR}/{name} not built; left as the repository has it", err=True)
