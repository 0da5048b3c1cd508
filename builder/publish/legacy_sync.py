"""`hmr sync-legacy`: bring a legacy GitHub repository in line with a built site's `legacy/` files.

1. Clone the repository (or update a persistent working copy: `workdir`) at the base branch.
2. Write the built files that belong to it (image repo: the nine image files; text repo: `models.csv`,
   `db.json` and the converter settings; from `builder.categories`), byte for byte. Other files of
   the repository (README, scripts) are left alone, and so are files the build does not produce.
3. A file whose data equals the base branch's (parse-equal, in the same key and row order) is left
   as the branch has it, whatever its layout: only data changes are synced, and the summary names
   the files left alone. Nothing changed against the base branch: stop (no branch, no push, no API
   call).
4. Summarise each changed file in models added / removed / changed.
5. If an open proposal already holds exactly these files (a remote `sync/` branch), reuse it instead
   of pushing the same change again; otherwise commit on `sync/<category|multi>/<UTC timestamp>` and
   push that branch. Nothing is ever pushed to the base branch.
6. With `pr`: open a pull request for the branch (or keep the open one) through PyGithub and close
   the other open `sync/` pull requests with a comment pointing at it (they are superseded: each
   carries a full state of the same files).

`dry_run` reads (clone/fetch into a scratch or the given working copy) and reports; it commits,
pushes and calls the GitHub API not at all.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from builder.categories import IMAGE_REPO, LEGACY, TEXT_REPO, TEXT_SETTINGS_FILES
from builder.errors import ConfigError, PublishError
from builder.publish.git import Git, auth_env, redact
from builder.publish.legacy_diff import FileChange, compare
from builder.routes import LEGACY_DIR, MANIFEST_FILE

__all__ = ["KINDS", "SyncResult", "repo_files", "same_data", "sync_legacy"]

KINDS = {"image": IMAGE_REPO, "text": TEXT_REPO}
DEFAULT_IDENTITY = ("hmr sync-legacy", "hmr-sync-legacy@users.noreply.github.com")


def repo_files(kind: str) -> dict[str, str]:
    """File name in the legacy repository -> category, for the "image" or "text" repository."""
    repo = KINDS[kind]
    out: dict[str, str] = {}
    for c in LEGACY:
        if c.legacy_repo != repo:
            continue
        for f in (c.legacy_file, c.legacy_json_file):
            if f:
                out[f] = c.name
        if c.legacy_kind == "text":
            out.update({f: c.name for f in TEXT_SETTINGS_FILES})
    return out


@dataclass
class SyncResult:
    """What a sync found and did: the changed files in models, the branch, the pull request."""

    repo: str
    kind: str
    changes: list[FileChange] = field(default_factory=list)
    branch: str | None = None
    #: "up-to-date", "dry-run", "pushed", "reused" (an identical proposal already exists)
    status: str = "up-to-date"
    pr_url: str | None = None
    pr_number: int | None = None
    pr_created: bool = False
    closed: list[int] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    #: files whose data equals the branch's (only their bytes would change): left as they were
    kept: list[str] = field(default_factory=list)


def _kind_of(url: str, present: set[str]) -> str:
    name = re.sub(r"\.git$", "", url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]).lower()
    for kind, slug in KINDS.items():
        if name == slug.split("/")[1].lower():
            return kind
    image = present & set(repo_files("image"))
    text = present & set(repo_files("text"))
    if image and not text:
        return "image"
    if text and not image:
        return "text"
    raise ConfigError(f"{redact(url)}: cannot tell whether this is the image or the text legacy repository; "
                      "pass --kind image|text")


def _identity_env(git: Git) -> dict[str, str]:
    """Commit identity: the environment's or git's own; a neutral default only when neither has one."""
    env: dict[str, str] = {}
    for role in ("AUTHOR", "COMMITTER"):
        for part, config, default in (("NAME", "user.name", DEFAULT_IDENTITY[0]),
                                      ("EMAIL", "user.email", DEFAULT_IDENTITY[1])):
            var = f"GIT_{role}_{part}"
            if not git.env.get(var) and not git.run("config", "--get", config, check=False).strip():
                env[var] = default
    return env


def _site_stamp(site: Path) -> str:
    try:
        m = orjson.loads((site / MANIFEST_FILE).read_bytes())
        gen, commit = m.get("generation"), m.get("source_commit")
        return f"generation {gen}" + (f", source commit {commit[:12]}" if isinstance(commit, str) else "")
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return "unknown generation"


def _message(changes: list[FileChange], stamp: str) -> tuple[str, str]:
    cats = sorted({c.category for c in changes})
    what = cats[0] if len(cats) == 1 else f"{len(changes)} files"
    title = f"Sync {what} from the model reference ({stamp})"
    body = "\n".join(f"- {c.line()}" for c in changes)
    return title, body + "\n\nGenerated by `hmr sync-legacy` from the built site's `legacy/` files.\n"


def sync_legacy(site: Path, repo_url: str, *, branch: str = "main", kind: str | None = None,
                dry_run: bool = False, pr: bool = False, workdir: Path | None = None,
                github_api_url: str | None = None, github_repo: str | None = None,
                echo: Callable[[str], None] = lambda s: None, now: datetime | None = None) -> SyncResult:
    """Sync one legacy repository from the built `site`; see the module docstring. `echo` receives
    the progress lines (what changed, what was pushed, the pull request).

    Raises:
        ConfigError: an unusable setting (kind, credentials, working copy, branch).
        PublishError: the site has no legacy files, or git failed.
        FetchError: a GitHub API request failed.
    """
    from builder.publish import github

    legacy = site / LEGACY_DIR
    if not legacy.is_dir():
        raise PublishError(f"{site}: no {LEGACY_DIR}/ folder (not a built site? run `hmr build` first)")
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}")

    auth = github.auth_from_env()
    if pr and not dry_run and auth is None:
        raise ConfigError("--pr needs GitHub credentials: GITHUB_TOKEN (or HORDE_GITHUB_SYNC_GITHUB_TOKEN) or the "
                          "GitHub App variables (GITHUB_APP_ID, GITHUB_APP_INSTALLATION_ID, GITHUB_APP_PRIVATE_KEY)")
    client = github.PullRequests(auth, github_api_url) if auth is not None else None
    host = github.web_host(github_api_url)
    token = None
    u = urlsplit(repo_url)
    if client is not None and u.scheme == "https" and (u.hostname or "").lower() == host:
        token = client.token()  # git fetches and pushes with it, as an HTTP header for this host only

    scratch = Path(tempfile.mkdtemp(prefix="hmr-sync-")) if workdir is None else None
    work = scratch / "repo" if scratch is not None else workdir
    assert work is not None
    git = Git(work.parent, env=auth_env(repo_url, token, [host]), secrets=[token or ""])
    try:
        _checkout(git, work, repo_url, branch)
        present = set(git.run("ls-tree", "--name-only", "HEAD").split("\n")) - {""}
        kind = kind or _kind_of(repo_url, present)
        files = repo_files(kind)
        result = SyncResult(redact(repo_url), kind)

        written: list[str] = []
        for name in files:
            src = legacy / name
            if not src.is_file():
                result.missing.append(name)
                continue
            shutil.copyfile(src, work / name)
            written.append(name)
        if not written:
            raise PublishError(f"{legacy}: none of the {kind} repository's files ({', '.join(files)})")
        status = git.run("status", "--porcelain", "--untracked-files=all", "--", *written)
        changed = sorted({line[3:].strip() for line in status.splitlines() if line.strip()})
        for name in list(changed):
            old = git.run_bytes("show", f"HEAD:{name}") if name in present else None
            new = (work / name).read_bytes()
            if old is not None and same_data(name, old, new):
                # files third parties link to are not reformatted: only a change of data is synced
                (work / name).write_bytes(old)
                changed.remove(name)
                result.kept.append(name)
                continue
            result.changes.append(compare(name, files[name], old, new))
        if result.kept:
            echo(f"left as they were (data unchanged, layout differs): {', '.join(result.kept)}")
        if not changed:
            echo(f"{result.repo}: up to date with {branch}; nothing to sync")
            return result

        for c in result.changes:
            echo(c.line())

        cats = sorted({c.category for c in result.changes})
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
        new_branch = f"sync/{cats[0] if len(cats) == 1 else 'multi'}/{stamp}"
        existing = _identical_proposal(git, written)
        title, body = _message(result.changes, _site_stamp(site))

        if dry_run:
            result.status, result.branch = "dry-run", existing or new_branch
            what = f"reuse the pushed branch {existing}" if existing else f"commit on {new_branch} and push it"
            echo(f"dry run: would {what}" + (" and open a pull request" if pr else "") + "; nothing changed")
            return result

        if existing:
            result.status, result.branch = "reused", existing
            echo(f"{existing} already holds exactly these files; nothing pushed")
        else:
            git.env.update(_identity_env(git))
            git.run("checkout", "-q", "-b", new_branch)
            git.run("add", "--", *changed)
            git.run("commit", "-q", "--no-gpg-sign", "--no-verify", "-F", "-", input=f"{title}\n\n{body}".encode())
            git.run("push", "-q", "origin", f"HEAD:refs/heads/{new_branch}")
            result.status, result.branch = "pushed", new_branch
            echo(f"pushed {new_branch}")

        if pr:
            assert client is not None and result.branch is not None
            slug = github_repo or github.slug_from_url(repo_url, github_api_url) or KINDS[kind]
            pull = client.open_or_reuse(slug, branch, result.branch, title, body)
            result.pr_url, result.pr_number = pull.url, pull.number
            result.pr_created, result.closed = pull.created, pull.closed
            echo(f"{'opened' if pull.created else 'kept'} pull request #{pull.number} {pull.url}".rstrip())
            for n in pull.closed:
                echo(f"closed the superseded pull request #{n}")
        return result
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def same_data(file: str, old: bytes, new: bytes) -> bool:
    """Whether two versions of a legacy file hold the same data in the same order (JSON parse-equal
    with key order, CSV row for row), whatever their layout (indent, line endings, final newline)."""
    try:
        if file.endswith(".csv"):
            def rows(data: bytes) -> list[list[str]]:
                return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))

            return rows(old) == rows(new)
        return bool(json.loads(old, object_pairs_hook=list) == json.loads(new, object_pairs_hook=list))
    except (ValueError, UnicodeDecodeError, csv.Error):
        return False


def _checkout(git: Git, work: Path, repo_url: str, branch: str) -> None:
    """A clean working copy of `repo_url` at the tip of `branch` in `work` (cloned, or fetched and reset)."""
    if (work / ".git").is_dir():
        origin = git.run("remote", "get-url", "origin", cwd=work).strip()
        if origin != repo_url:
            raise ConfigError(f"{work}: a working copy of {redact(origin)}, not of {redact(repo_url)}")
        git.cwd = work
        git.run("fetch", "-q", "--prune", "--no-tags", "origin")
    else:
        if work.exists() and any(work.iterdir()):
            raise ConfigError(f"{work}: exists and is not a git working copy")
        work.parent.mkdir(parents=True, exist_ok=True)
        git.run("clone", "-q", "--no-tags", repo_url, str(work))
        git.cwd = work
    if not git.ok("rev-parse", "--verify", "-q", f"refs/remotes/origin/{branch}"):
        raise ConfigError(f"{redact(repo_url)}: no branch {branch!r}")
    # whatever an earlier run left (a sync branch checked out, stray files) is discarded
    git.run("checkout", "-q", "-f", "-B", branch, f"refs/remotes/origin/{branch}")
    git.run("clean", "-q", "-f", "-d", "-x")


def _identical_proposal(git: Git, files: list[str]) -> str | None:
    """The newest remote `sync/` branch whose copies of `files` equal the working tree's, if any."""
    refs = git.run("for-each-ref", "--sort=-committerdate", "--format=%(refname)", "refs/remotes/origin/sync/")
    if not refs.strip():
        return None
    mine = dict(zip(files, git.run("hash-object", "--", *files).split(), strict=True))
    for ref in refs.split():
        theirs = {}
        for line in git.run("ls-tree", ref, "--", *files).splitlines():
            meta, _, path = line.partition("\t")
            theirs[path] = meta.split()[2]
        if theirs == mine:
            return ref[len("refs/remotes/origin/"):]
    return None
