"""GitHub steps of the workflows, through PyGithub: `python -m builder.contrib.github ...`.

- `comment`: post a pull-request comment (the `hmr diff --format markdown` output) once, and update
  that same comment on later runs instead of adding another;
- `issue-open`: open one issue (e.g. "publishing failed", "dead download URLs"), or update the one
  that is already open;
- `issue-close`: close that issue (with a comment) when the problem is gone.

Each posted body carries a hidden marker (`<!-- hmr:NAME -->`), which is how a later run finds its
own comment or issue. Configuration is what GitHub Actions provides: `GITHUB_TOKEN`,
`GITHUB_API_URL` (the REST base; tests point it at a local stand-in), `GITHUB_REPOSITORY`.
The token is never printed: a failed API call is a `FetchError` of one line (HTTP status and
GitHub's message), which the command group prints as `error: ...` (with `--debug`, a traceback).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from builder.cli import ErrorGroup
from builder.errors import FetchError

__all__ = ["Outcome", "close_issue", "connect", "main", "marker", "open_issue", "upsert_comment", "with_marker"]

#: GitHub rejects comment and issue bodies over 65536 characters
BODY_LIMIT = 65000
DEFAULT_API = "https://api.github.com"


def marker(name: str) -> str:
    """The hidden marker by which a later run finds the post named `name`."""
    return f"<!-- hmr:{name} -->"


def with_marker(body: str, name: str) -> str:
    """`body` (cut to GitHub's limit) after the marker of `name`."""
    text = body if len(body) <= BODY_LIMIT else body[:BODY_LIMIT] + "\n\n_(truncated)_"
    return f"{marker(name)}\n{text}"


def connect(token: str, base_url: str = DEFAULT_API) -> Any:
    """A PyGithub client for the REST API at `base_url`, authenticated by `token`."""
    from github import Auth, Github

    # lazy: objects are fetched only when read (a comment upsert is one listing plus one write);
    # reads unthrottled (a step makes a handful), writes one second apart as GitHub asks of clients
    return Github(base_url=base_url.rstrip("/"), auth=Auth.Token(token), lazy=True,
                  seconds_between_requests=0, seconds_between_writes=1)


@dataclass
class Outcome:
    """What a step did to a comment or an issue, and which one it was."""

    action: str  # created, updated, unchanged, opened, closed, none
    number: int | None = None
    url: str | None = None


@contextmanager
def _api_errors(gh: Any) -> Iterator[None]:
    """A GitHub API failure as one line (status and message), never a traceback with request details."""
    from github import GithubException

    try:
        yield
    except GithubException as e:
        msg = e.data.get("message") if isinstance(e.data, dict) else e.data
        url = str(getattr(getattr(gh, "requester", None), "base_url", "") or "")
        raise FetchError(f"GitHub API: HTTP {e.status}: {msg}", url=url, status=e.status) from None


def upsert_comment(gh: Any, repo: str, number: int, body: str, name: str) -> Outcome:
    """The PR/issue comment carrying marker `name`: created once, then edited in place.

    Raises:
        FetchError: a GitHub API call failed (`status`: its HTTP status).
    """
    with _api_errors(gh):
        issue = gh.get_repo(repo).get_issue(number)
        text = with_marker(body, name)
        for c in issue.get_comments():
            if marker(name) in (c.body or ""):
                if c.body == text:
                    return Outcome("unchanged", c.id, c.html_url)
                c.edit(text)
                return Outcome("updated", c.id, c.html_url)
        c = issue.create_comment(text)
        return Outcome("created", c.id, c.html_url)


def _own_open_issues(gh: Any, repo: str, name: str) -> list[Any]:
    out = []
    for issue in gh.get_repo(repo).get_issues(state="open"):
        # the marker first: reading `pull_request`, absent on plain issues, costs PyGithub a request
        if marker(name) in (issue.body or "") and issue.pull_request is None:
            out.append(issue)
    return out


def open_issue(gh: Any, repo: str, title: str, body: str, name: str, labels: list[str] | None = None) -> Outcome:
    """One open issue carrying marker `name`: opened if there is none, else its title and body updated.

    Raises:
        FetchError: a GitHub API call failed (`status`: its HTTP status).
    """
    text = with_marker(body, name)
    with _api_errors(gh):
        found = _own_open_issues(gh, repo, name)
        if found:
            issue = found[0]
            if issue.body == text and issue.title == title:
                return Outcome("unchanged", issue.number, issue.html_url)
            issue.edit(title=title, body=text)
            return Outcome("updated", issue.number, issue.html_url)
        kwargs: dict[str, Any] = {"title": title, "body": text}
        if labels:
            kwargs["labels"] = labels
        issue = gh.get_repo(repo).create_issue(**kwargs)
        return Outcome("opened", issue.number, issue.html_url)


def close_issue(gh: Any, repo: str, name: str, comment: str | None = None) -> list[Outcome]:
    """Close every open issue carrying marker `name`, saying why.

    Raises:
        FetchError: a GitHub API call failed (`status`: its HTTP status).
    """
    out = []
    with _api_errors(gh):
        for issue in _own_open_issues(gh, repo, name):
            if comment:
                issue.create_comment(comment)
            issue.edit(state="closed")
            out.append(Outcome("closed", issue.number, issue.html_url))
    return out


# --- command line ---------------------------------------------------------------------------------

def _body(body: str | None, body_file: str | None) -> str:
    if body is not None and body_file is not None:
        raise click.UsageError("give --body or --body-file, not both")
    if body_file == "-":
        return sys.stdin.read()
    if body_file is not None:
        return Path(body_file).read_text(encoding="utf-8")
    if body is None:
        raise click.UsageError("give --body or --body-file")
    return body


def _gh() -> Any:
    token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    if not token:
        raise click.UsageError("GITHUB_TOKEN is not set")
    return connect(token, os.environ.get("GITHUB_API_URL") or DEFAULT_API)


_REPO = click.option("--repo", default=lambda: os.environ.get("GITHUB_REPOSITORY"), metavar="OWNER/NAME",
                     help="The repository (default: $GITHUB_REPOSITORY).")
_MARKER = click.option("--marker", "name", required=True, help="Name of the hidden marker that identifies the post.")


def _need_repo(repo: str | None) -> str:
    if not repo or "/" not in repo:
        raise click.UsageError("give --repo OWNER/NAME (or set GITHUB_REPOSITORY)")
    return repo


def _report(o: Outcome) -> None:
    click.echo(f"{o.action} #{o.number}" + (f" {o.url}" if o.url else ""))


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
def main(debug: bool) -> None:
    """GitHub steps of the hmr workflows (PR comment, failure issues)."""


@main.command()
@_REPO
@click.option("--pr", "number", type=int, required=True, help="Pull request (or issue) number.")
@_MARKER
@click.option("--body", default=None)
@click.option("--body-file", default=None, help="File holding the body; '-' reads standard input.")
def comment(repo: str | None, number: int, name: str, body: str | None, body_file: str | None) -> None:
    """Post the comment once; update it in place on later runs."""
    _report(upsert_comment(_gh(), _need_repo(repo), number, _body(body, body_file), name))


@main.command("issue-open")
@_REPO
@_MARKER
@click.option("--title", required=True)
@click.option("--label", "labels", multiple=True)
@click.option("--body", default=None)
@click.option("--body-file", default=None, help="File holding the body; '-' reads standard input.")
def issue_open(repo: str | None, name: str, title: str, labels: tuple[str, ...], body: str | None,
               body_file: str | None) -> None:
    """Open the issue, or update the one already open."""
    _report(open_issue(_gh(), _need_repo(repo), title, _body(body, body_file), name, list(labels)))


@main.command("issue-close")
@_REPO
@_MARKER
@click.option("--comment", "text", default=None, help="Comment posted before closing.")
def issue_close(repo: str | None, name: str, text: str | None) -> None:
    """Close the open issue(s) carrying the marker, if any."""
    closed = close_issue(_gh(), _need_repo(repo), name, text)
    for o in closed:
        _report(o)
    if not closed:
        click.echo("none open")


if __name__ == "__main__":
    main()
