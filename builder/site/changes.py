"""The change feed: what was added, removed or changed, per field, from one generation to the next.

`hmr build --previous DIR|URL` names the previous build (a site directory, or the base URL of a
deployed site); without it, the output directory's current content is the previous build. The diff
compares the v2 records: only categories whose v2 file's sha256 differs from the previous manifest's
are read (and checked against that sha256), so a URL costs a few requests, not a download of the site.

- `CHANGES_FILE` (`v2/changes.json`): `{"schema_version": 1, "history": [entry, ...]}`, newest
  first, at most `HISTORY_LIMIT` generations that changed models. An entry:
  `{"generation", "previous_generation", "built_at", "source_commit", "added": [{"category", "key"}],
  "removed": [...], "changed": [{"category", "key", "fields": [{"field", "old", "new"}]}]}`; `field` is a
  JSON pointer into the v2 record, and `old` (`new`) is left out when the field was absent (removed).
- `ATOM_FILE` (`v2/changes.atom`): the same history as an Atom feed.

The entry of a new generation carries the number and time the manifest gives it (a model change
always changes a v2 file, hence the manifest); a build without model changes carries the history
over unchanged, so a no-change rebuild writes the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import orjson

from builder.categories import CATEGORIES
from builder.errors import HmrError, Problem
from builder.routes import ATOM_FILE, CHANGES_FILE, MANIFEST_FILE, v2_file
from builder.site.pages import HOME, href, model_page

__all__ = ["ATOM_FILE", "CHANGES_FILE", "CHANGES_SCHEMA_VERSION", "FEED_TITLE", "HISTORY_LIMIT", "Feed",
           "ModelChanges", "PreviousSite", "change_feed", "changes_atom", "changes_json", "diff_category",
           "entry_title", "field_changes", "model_changes", "new_history", "open_previous", "previous_history",
           "previous_manifest_doc", "quoteattr", "uuid5_urn", "xml_escape"]

CHANGES_SCHEMA_VERSION = 1
HISTORY_LIMIT = 20
FEED_TITLE = "AI-Horde model reference: changes"
#: from the feed's location back to the site root, for relative links when no site URL is configured
_FEED_ROOT = "../../../"
_EPOCH = "1970-01-01T00:00:00Z"


def xml_escape(text: str) -> str:
    """`text` escaped for XML character data."""
    # xml.sax.saxutils would do, but importing it pulls in urllib.request and http.client (~40 ms a build)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quoteattr(text: str) -> str:
    """`text` as a double-quoted XML attribute value."""
    return '"' + xml_escape(text).replace('"', "&quot;") + '"'


def uuid5_urn(name: str) -> str:
    """The RFC 4122 name-based (SHA-1) UUID of `name` in the URL namespace, as a URN (the uuid module's
    uuid5, without its import cost)."""
    namespace = bytes.fromhex("6ba7b8119dad11d180b400c04fd430c8")
    h = bytearray(hashlib.sha1(namespace + name.encode("utf-8")).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"urn:uuid:{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


# ---------------------------------------------------------------------------------------------------
# the previous build


class PreviousSite:
    """Read access to the previous build: a site directory or a deployed site's base URL; `None` is
    "no previous build" (a first build into a new folder), where every read answers None."""

    def __init__(self, location: str | Path | None, explicit: bool = True):
        self.present = location is not None
        self.location = str(location) if location is not None else ""
        self.is_url = self.location.startswith(("http://", "https://"))
        self._client: Any = None
        self.root = Path(location) if location is not None and not self.is_url else None
        if self.root is not None:
            if explicit and not self.root.is_dir():
                raise HmrError(f"--previous {self.location}: not a directory (a built site) or an http(s) URL")

    def read(self, rel: str) -> bytes | None:
        """The bytes of the site file `rel`, or None if the previous build has no such file."""
        if not self.present:
            return None
        if self.root is not None:
            try:
                return (self.root / rel).read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as e:
                raise HmrError(f"{self.root / rel}: unreadable ({e.strerror})") from None
        import httpx  # only a URL needs it (and its import cost)

        if self._client is None:
            self._client = httpx.Client(timeout=30, follow_redirects=True)
        url = self.location.rstrip("/") + "/" + quote(rel, safe="/")
        try:
            r = self._client.get(url)
        except httpx.HTTPError as e:
            raise HmrError(f"--previous: cannot fetch {url} ({type(e).__name__}: {e})") from None
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            # a previous build we cannot read must not silently restart the generation count
            raise HmrError(f"--previous: {url} answered HTTP {r.status_code}")
        return r.content

    def manifest(self) -> bytes | None:
        """The previous build's manifest, or None."""
        return self.read(MANIFEST_FILE)

    def close(self) -> None:
        """Release the HTTP client, if a URL needed one."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> PreviousSite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_previous(previous: str | Path | None, out_dir: Path) -> PreviousSite:
    """The previous build: `previous` (a site directory or base URL) when given, else what `out_dir`
    holds; none when `out_dir` is not there yet.

    Raises:
        HmrError: `previous` names neither a directory nor an http(s) URL.
    """
    if previous is not None:
        return PreviousSite(previous, explicit=True)
    return PreviousSite(out_dir if out_dir.is_dir() else None, explicit=False)


# ---------------------------------------------------------------------------------------------------
# the diff


def _same(a: Any, b: Any) -> bool:
    # JSON equality: Python's `True == 1` and `1 == 1.0` must not hide a change of type
    return a is b or orjson.dumps(a) == orjson.dumps(b)


def _pointer(path: str, key: str) -> str:
    return path + "/" + key.replace("~", "~0").replace("/", "~1")


def field_changes(old: Mapping[str, Any], new: Mapping[str, Any], path: str = "") -> list[dict[str, Any]]:
    """Per field (a JSON pointer; objects are compared member by member), what changed."""
    out: list[dict[str, Any]] = []
    for k, v in new.items():
        p = _pointer(path, k)
        if k not in old:
            out.append({"field": p, "new": v})
        elif isinstance(v, dict) and isinstance(old[k], dict):
            out += field_changes(old[k], v, p)
        elif not _same(old[k], v):
            out.append({"field": p, "old": old[k], "new": v})
    for k, v in old.items():
        if k not in new:
            out.append({"field": _pointer(path, k), "old": v})
    return out


class ModelChanges:
    """The models added, removed and changed (per field) between two builds."""

    __slots__ = ("added", "removed", "changed")

    def __init__(self) -> None:
        self.added: list[dict[str, str]] = []
        self.removed: list[dict[str, str]] = []
        self.changed: list[dict[str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def diff_category(category: str, old: Mapping[str, Any], new: Mapping[str, Any], into: ModelChanges) -> None:
    """Add the differences of one category's records (`old` -> `new`) to `into`."""
    for key, rec in new.items():
        if key not in old:
            into.added.append({"category": category, "key": key})
        else:
            fields = field_changes(old[key], rec)
            if fields:
                into.changed.append({"category": category, "key": key, "fields": fields})
    for key in old:
        if key not in new:
            into.removed.append({"category": category, "key": key})


def previous_manifest_doc(raw: bytes | None) -> dict[str, Any] | None:
    """The previous manifest as far as the diff needs it (an object with `files`), or None."""
    if raw is None:
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("files"), dict) else None


def model_changes(previous: PreviousSite, prev_manifest: Mapping[str, Any] | None,
                  v2: Mapping[str, Mapping[str, Any]], files: Mapping[str, bytes],
                  warnings: list[Problem]) -> ModelChanges | None:
    """The model changes from the previous build to this one; None when there is no previous build."""
    listed = prev_manifest.get("files", {}) if prev_manifest else {}
    if prev_manifest is None and all(previous.read(v2_file(c.name)) is None for c in CATEGORIES):
        return None  # no manifest and no category file: nothing was built there
    out = ModelChanges()
    for c in CATEGORIES:
        rel = v2_file(c.name)
        new_bytes = files.get(rel)
        entry = listed.get(rel)
        if entry is not None and new_bytes is not None and entry.get("sha256") == hashlib.sha256(new_bytes).hexdigest():
            continue  # same bytes as before: nothing in this category changed
        raw = previous.read(rel)
        if raw is not None and entry is not None and hashlib.sha256(raw).hexdigest() != entry.get("sha256"):
            warnings.append(Problem(previous.location, "/" + rel,
                                    "previous file does not match its manifest; its changes are not listed",
                                    "warning"))
            continue
        try:
            old = orjson.loads(raw) if raw is not None else {}
        except orjson.JSONDecodeError:
            warnings.append(Problem(previous.location, "/" + rel, "previous file is not JSON; its changes are not "
                                                                  "listed", "warning"))
            continue
        if not isinstance(old, dict):
            old = {}
        diff_category(c.name, old, v2.get(c.name, {}), out)
    return out


# ---------------------------------------------------------------------------------------------------
# the history and its two serialisations


def previous_history(raw: bytes | None, warnings: list[Problem]) -> list[dict[str, Any]]:
    """The history of the previous changes.json (empty, with a warning, when it is unusable)."""
    if raw is None:
        return []
    try:
        doc = orjson.loads(raw)
        history = doc["history"]
        if not isinstance(history, list) or not all(
                isinstance(e, dict) and isinstance(e.get("generation"), int) for e in history):
            raise TypeError("history is not a list of entries")
        return history
    except (orjson.JSONDecodeError, KeyError, TypeError) as e:
        warnings.append(Problem(CHANGES_FILE, "", f"previous change history unusable ({e}); it starts afresh",
                                "warning"))
        return []


def new_history(history: list[dict[str, Any]], changes: ModelChanges | None, generation: int,
                previous_generation: int | None, built_at: str | Callable[[], str],
                source_commit: str | None) -> list[dict[str, Any]]:
    """The history with this build's entry in front (when models changed), at most HISTORY_LIMIT long."""
    if not changes:
        return history
    entry = {
        "generation": generation,
        "previous_generation": previous_generation,
        "built_at": built_at() if callable(built_at) else built_at,
        "source_commit": source_commit,
        "added": changes.added,
        "removed": changes.removed,
        "changed": changes.changed,
    }
    kept = [e for e in history if e["generation"] < generation]
    return [entry, *kept][:HISTORY_LIMIT]


def changes_json(history: list[dict[str, Any]]) -> bytes:
    """changes.json of `history`."""
    return orjson.dumps({"schema_version": CHANGES_SCHEMA_VERSION, "history": history})


def entry_title(e: Mapping[str, Any]) -> str:
    """A history entry's one-line title ("Generation 3: 1 added, ...")."""
    return (f"Generation {e['generation']}: {len(e.get('added', []))} added, {len(e.get('removed', []))} removed, "
            f"{len(e.get('changed', []))} changed")


def _short(value: Any, limit: int = 160) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _entry_html(e: Mapping[str, Any]) -> str:
    from markupsafe import escape

    def link(item: Mapping[str, str]) -> str:
        return (f'<a href="{escape(href(model_page(item["category"], item["key"])))}">'
                f'{escape(item["category"])}/{escape(item["key"])}</a>')

    parts = []
    for label, items in (("Added", e.get("added", [])), ("Removed", e.get("removed", []))):
        if items:
            # a removed model has no page any more: plain text
            names = [link(i) if label == "Added" else f"{escape(i['category'])}/{escape(i['key'])}" for i in items]
            parts.append(f"<p>{label}: {', '.join(names)}</p>")
    if e.get("changed"):
        rows = []
        for c in e["changed"]:
            fields = "".join(
                f"<li><code>{escape(f['field'])}</code>: "
                f"{escape(_short(f['old'])) if 'old' in f else '<i>absent</i>'} → "
                f"{escape(_short(f['new'])) if 'new' in f else '<i>absent</i>'}</li>" for f in c["fields"])
            rows.append(f"<li>{link(c)}<ul>{fields}</ul></li>")
        parts.append(f"<p>Changed:</p><ul>{''.join(rows)}</ul>")
    return "".join(parts)


def _entry_id(e: Mapping[str, Any], site_url: str | None) -> str:
    if site_url:
        return f"{site_url.rstrip('/')}/{CHANGES_FILE}#generation-{e['generation']}"
    # stable across builds of the same history, unique per generation and time
    return uuid5_urn(f"hmr-changes:{e['generation']}:{e.get('built_at')}")


def changes_atom(history: list[dict[str, Any]], site_url: str | None = None) -> bytes:
    """The history as an Atom 1.0 feed; links are relative to the site root (or `site_url`)."""
    base = site_url.rstrip("/") + "/" if site_url else _FEED_ROOT
    updated = history[0]["built_at"] if history else _EPOCH
    feed_id = f"{base}{ATOM_FILE}" if site_url else uuid5_urn("hmr-changes")
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:base={quoteattr(base)}>',
        f"<title>{xml_escape(FEED_TITLE)}</title>",
        f"<id>{xml_escape(feed_id)}</id>",
        f"<updated>{xml_escape(updated)}</updated>",
        f'<link rel="self" type="application/atom+xml" href={quoteattr(ATOM_FILE)}/>',
        f'<link rel="alternate" type="text/html" href={quoteattr(HOME)}/>',
        "<author><name>AI-Horde model reference</name></author>",
    ]
    for e in history:
        out += [
            "<entry>",
            f"<id>{xml_escape(_entry_id(e, site_url))}</id>",
            f"<title>{xml_escape(entry_title(e))}</title>",
            f"<updated>{xml_escape(e.get('built_at') or _EPOCH)}</updated>",
            f'<link rel="alternate" type="application/json" href={quoteattr(CHANGES_FILE)}/>',
            f'<content type="html">{xml_escape(_entry_html(e))}</content>',
            "</entry>",
        ]
    out.append("</feed>")
    return ("\n".join(out) + "\n").encode("utf-8")


class Feed(NamedTuple):
    """The change feed of a build: its history (newest first), its files and the warnings on the way."""

    history: list[dict[str, Any]]
    files: dict[str, bytes]
    warnings: list[Problem]


def change_feed(previous: PreviousSite, prev_manifest_raw: bytes | None, v2: Mapping[str, Mapping[str, Any]],
                files: Mapping[str, bytes], generation: int, built_at: str | Callable[[], str],
                source_commit: str | None, site_url: str | None) -> Feed:
    """changes.json and changes.atom of this build against `previous` (`generation` and `built_at`:
    what the manifest will say if anything changed; `built_at` may be a function, asked only then).

    Raises:
        HmrError: the previous build cannot be read (a URL answering an error, an unreadable file).
    """
    warnings: list[Problem] = []
    prev_doc = previous_manifest_doc(prev_manifest_raw)
    history: list[dict[str, Any]] = []
    changes = None
    if previous.present:  # without a previous build (a given manifest alone) there is nothing to compare
        history = previous_history(previous.read(CHANGES_FILE), warnings)
        changes = model_changes(previous, prev_doc, v2, files, warnings)
    prev_gen = prev_doc.get("generation") if prev_doc else None
    history = new_history(history, changes, generation, prev_gen if isinstance(prev_gen, int) else None,
                          built_at, source_commit)
    return Feed(history, {CHANGES_FILE: changes_json(history), ATOM_FILE: changes_atom(history, site_url)}, warnings)
