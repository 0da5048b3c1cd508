"""`hmr check-urls`: are the download URLs alive, and do they serve what the records say?

For each distinct `config.download[].file_url` (records sharing a URL are checked once): a HEAD
request, following redirects; if the HEAD is refused (any status >= 400: some hosts and presigned
links answer HEAD with 403/405 but serve GET), a GET of the first byte only (`Range: bytes=0-0`),
whose body is never read beyond it. Reported per URL: the final status, the redirect chain, the
content length (206 `Content-Range` total, else `Content-Length`) against the download's
`size_bytes` and, for a single-file record, `size_on_disk_bytes`, and the time taken.

Outcomes: `ok`; `dead` (final status >= 400), `timeout`, `unreachable` (DNS, connection, TLS,
redirect loop) and `wrong-length` (content length differs from `size_bytes`) are failures, and any
failure makes the command exit 1. Warnings do not fail: slow answers, a redirect to plain http, a
length the server does not tell, a length that differs from `size_on_disk_bytes` (which describes
the installed model, so it may legitimately differ from one file's size).

TLS is always verified. `--ca-bundle` adds trust in a private CA (a corporate proxy, or the local
test server of the test suite); there is no switch to skip verification.

The API: `check_urls(data_dir=... | site_dir=..., changed_since=...)` reads the records and probes
their URLs (what `hmr check-urls` runs); `targets_of` and `check` are its two halves; `render` turns
the results into the text, JSON or markdown report.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builder.errors import ConfigError

__all__ = ["FAILURES", "Result", "Target", "check", "check_async", "check_urls", "render", "render_json",
           "render_markdown", "render_text", "summary_line", "targets_of"]

USER_AGENT = "hmr-check-urls (AI-Horde model reference; +https://github.com/Haidra-Org)"
FAILURES = ("dead", "timeout", "unreachable", "wrong-length")


@dataclass
class Target:
    """One distinct download URL, every record download using it, and the sizes they declare."""

    url: str
    #: "category/key: file name" of every download using this URL
    refs: list[str] = field(default_factory=list)
    size_bytes: int | None = None
    size_on_disk_bytes: int | None = None


@dataclass
class Result:
    """What probing a URL found: the outcome (ok or a failure kind), the answer, warnings."""

    url: str
    refs: list[str]
    outcome: str
    status: int | None = None
    method: str | None = None
    final_url: str | None = None
    redirects: list[str] = field(default_factory=list)
    content_length: int | None = None
    expected_bytes: int | None = None
    elapsed: float = 0.0
    error: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether the outcome is a failure (dead, timeout, unreachable, wrong-length)."""
        return self.outcome in FAILURES


def targets_of(v2: Mapping[str, Mapping[str, Any]], only: Mapping[str, Iterable[str]] | None = None) -> list[Target]:
    """One target per distinct download URL of the records (of `only`'s keys, when given)."""
    by_url: dict[str, Target] = {}
    wanted = {c: set(keys) for c, keys in only.items()} if only is not None else None
    for cat, records in v2.items():
        for key, rec in records.items():
            if wanted is not None and key not in wanted.get(cat, ()):
                continue
            config = rec.get("config") if isinstance(rec, dict) else None
            downloads = config.get("download") if isinstance(config, dict) else None
            if not isinstance(downloads, list):
                continue
            downloads = [d for d in downloads if isinstance(d, dict)]
            for d in downloads:
                url = d.get("file_url")
                if not isinstance(url, str) or not url:
                    continue
                t = by_url.setdefault(url, Target(url))
                t.refs.append(f"{cat}/{key}: {d.get('file_name')}")
                if t.size_bytes is None and isinstance(d.get("size_bytes"), int):
                    t.size_bytes = d["size_bytes"]
                disk = rec.get("size_on_disk_bytes")
                if t.size_on_disk_bytes is None and len(downloads) == 1 and isinstance(disk, int) and disk > 0:
                    t.size_on_disk_bytes = disk
    return list(by_url.values())


def _length(response: Any) -> int | None:
    if response.status_code == 206:
        total = response.headers.get("content-range", "").rpartition("/")[2]
        return int(total) if total.isdigit() else None
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


async def _probe(client: Any, t: Target, slow_after: float) -> Result:
    import httpx

    res = Result(t.url, t.refs, "ok", expected_bytes=t.size_bytes)
    start = time.monotonic()
    try:
        r = await client.head(t.url)
        res.method = "HEAD"
        if r.status_code >= 400:
            # HEAD refused: ask for one byte with GET; the body stream is closed unread
            async with client.stream("GET", t.url, headers={"Range": "bytes=0-0"}) as g:
                r = g
                res.method = "GET"
        res.status = r.status_code
        res.final_url = str(r.url)
        res.redirects = [str(h.url) for h in r.history]
        res.content_length = _length(r) if r.status_code < 300 else None
    except httpx.TimeoutException as e:
        res.outcome, res.error = "timeout", f"no answer in time ({type(e).__name__})"
    except httpx.TooManyRedirects:
        res.outcome, res.error = "unreachable", "too many redirects"
    except (httpx.HTTPError, ssl.SSLError, OSError) as e:
        res.outcome, res.error = "unreachable", f"{type(e).__name__}: {' '.join(str(e).split()) or 'failed'}"
    res.elapsed = round(time.monotonic() - start, 3)
    if res.outcome != "ok":
        return res
    assert res.status is not None
    if res.status >= 400:
        res.outcome, res.error = "dead", f"HTTP {res.status}"
        return res
    if res.final_url and res.final_url.startswith("http://"):
        res.warnings.append(f"redirects to plain http ({res.final_url})")
    if t.size_bytes is not None:
        if res.content_length is None:
            res.warnings.append("the server does not tell the length")
        elif res.content_length != t.size_bytes:
            res.outcome = "wrong-length"
            res.error = f"content length {res.content_length} != size_bytes {t.size_bytes}"
    if t.size_on_disk_bytes is not None and res.content_length is not None \
            and res.content_length != t.size_on_disk_bytes:
        res.warnings.append(f"content length {res.content_length} != size_on_disk_bytes {t.size_on_disk_bytes}")
    if res.elapsed > slow_after:
        res.warnings.append(f"slow: {res.elapsed:.2f} s")
    return res


async def check_async(targets: list[Target], concurrency: int = 8, timeout: float = 30.0, slow_after: float = 10.0,
                      ca_bundle: Path | None = None) -> list[Result]:
    """`check` for a running event loop."""
    import httpx

    verify: Any = True
    if ca_bundle is not None:
        verify = ssl.create_default_context(cafile=str(ca_bundle))
    sem = asyncio.Semaphore(max(1, concurrency))
    limits = httpx.Limits(max_connections=max(1, concurrency), max_keepalive_connections=max(1, concurrency))
    async with httpx.AsyncClient(follow_redirects=True, max_redirects=10, timeout=httpx.Timeout(timeout),
                                 verify=verify, limits=limits, headers={"User-Agent": USER_AGENT}) as client:

        async def one(t: Target) -> Result:
            async with sem:
                try:
                    # a hard cap: per-read timeouts alone let a trickling server hold a slot forever
                    return await asyncio.wait_for(_probe(client, t, slow_after), timeout * 3)
                except TimeoutError:
                    return Result(t.url, t.refs, "timeout", expected_bytes=t.size_bytes, elapsed=timeout * 3,
                                  error="no complete answer in time")

        return list(await asyncio.gather(*(one(t) for t in targets)))


def check(targets: list[Target], concurrency: int = 8, timeout: float = 30.0, slow_after: float = 10.0,
          ca_bundle: Path | None = None) -> list[Result]:
    """Probe every target (at most `concurrency` at once); results in the targets' order."""
    return asyncio.run(check_async(targets, concurrency, timeout, slow_after, ca_bundle))


def check_urls(*, data_dir: Path | None = None, site_dir: Path | None = None, changed_since: str | None = None,
               repo: Path | None = None, concurrency: int = 8, timeout: float = 30.0, slow_after: float = 10.0,
               ca_bundle: Path | None = None) -> list[Result]:
    """Probe the download URLs of the records in `data_dir` (default: data) or of the built `site_dir`.

    `changed_since`: only the models added or changed since it (a site directory, a data directory or
    a git ref, read from `repo` or the repository holding the data). The rest as `check`.

    Raises:
        ConfigError: both `data_dir` and `site_dir` are given.
        HmrError: the records or `changed_since` cannot be read (as `builder.contrib.diff` raises).
    """
    from builder.contrib import diff

    if data_dir is not None and site_dir is not None:
        raise ConfigError("check a data directory or a built site, not both")
    data = data_dir or Path("data")
    current = diff.snapshot_of_site(site_dir) if site_dir is not None else diff.snapshot_of_data(data)
    only = None
    if changed_since is not None:
        only = diff.compare(diff.resolve(changed_since, repo, data), current).changed_keys()
    return check(targets_of(current.v2, only), concurrency, timeout, slow_after, ca_bundle)


# --- reports --------------------------------------------------------------------------------------

def _counts(results: list[Result]) -> dict[str, int]:
    out = {"checked": len(results), "ok": 0, **{f: 0 for f in FAILURES}, "warnings": 0}
    for r in results:
        out[r.outcome] += 1
        out["warnings"] += bool(r.warnings)
    return out


def summary_line(results: list[Result]) -> str:
    """The counts in one line: checked, ok, each failure kind, how many have warnings."""
    c = _counts(results)
    parts = [f"{c['checked']} URL(s) checked: {c['ok']} ok"] + [f"{c[f]} {f}" for f in FAILURES if c[f]]
    if c["warnings"]:
        parts.append(f"{c['warnings']} with warnings")
    return ", ".join(parts)


def render_text(results: list[Result]) -> str:
    """One line per URL (outcome, status, URL, the records using it, details), then the summary line."""
    lines = []
    for r in results:
        status = str(r.status) if r.status is not None else "-"
        detail = [r.error] if r.error else []
        if r.redirects:
            detail.append(f"{len(r.redirects)} redirect(s) -> {r.final_url}")
        if r.content_length is not None:
            detail.append(f"{r.content_length} bytes")
        detail += [f"warning: {w}" for w in r.warnings]
        lines.append(f"{r.outcome.upper():<12} {status:>3} {r.url}  [{'; '.join(r.refs)}]"
                     + (f"  ({'; '.join(detail)})" if detail else ""))
    lines.append(summary_line(results))
    return "\n".join(lines) + "\n"


def render_markdown(results: list[Result]) -> str:
    """The summary, a table of the failures and a folded table of the warnings (for an issue or a comment)."""
    failed = [r for r in results if r.failed]
    warned = [r for r in results if not r.failed and r.warnings]
    out = ["### Download URL check", "", f"**{summary_line(results)}**", ""]
    if failed:
        out += ["| outcome | URL | used by | detail |", "|---|---|---|---|"]
        out += [f"| {r.outcome} | {_md(r.url)} | {_md('; '.join(r.refs))} | {_md(r.error)} |" for r in failed]
        out.append("")
    if warned:
        out += ["<details><summary>Warnings</summary>", "", "| URL | used by | warning |", "|---|---|---|"]
        out += [f"| {_md(r.url)} | {_md('; '.join(r.refs))} | {_md('; '.join(r.warnings))} |" for r in warned]
        out += ["", "</details>", ""]
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_json(results: list[Result]) -> str:
    """`{"summary": counts, "results": [every field of each result, and "failed"]}`."""
    doc = {"summary": _counts(results), "results": [{**asdict(r), "failed": r.failed} for r in results]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render(results: list[Result], fmt: str) -> str:
    """The report in `fmt`: "json", "markdown", or anything else for text."""
    return {"json": render_json, "markdown": render_markdown}.get(fmt, render_text)(results)
