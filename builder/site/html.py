"""The HTML browse pages: a home page, a table per category, a page per model (jinja2, `templates/`: package
data of `builder.site`, read through importlib.resources).

Plain HTML rendered on the server (the tables are complete without JavaScript; `assets/table.js` adds
the filters, and the NSFW toggle is a CSS checkbox), readable on a phone. Every value from data is
escaped: the Environment autoescapes, and the few fragments built here (the generic field table) go
through `markupsafe.escape` too. Only `http(s)` URLs from data become links.

Speed matters (the whole corpus builds in well under a second, ~930 pages included): one Environment
with a bytecode cache in the build cache, templates compiled once per build, and the per-page work
done in plain Python (`model_context`) so the model template stays lean.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from builder.categories import CATEGORIES, description_of, title_of
from builder.memo import MemoTable, cache_dir, digest
from builder.records import CategoryData
from builder.routes import model_key, schema_file, v1_key, v2_key
from builder.site.catalog import schema_paths
from builder.site.pages import ASSETS, HOME, category_page, href, model_page, root_of
from builder.site.source import SourceFacts, github_origin

if TYPE_CHECKING:
    from pathlib import Path

    from markupsafe import Markup

__all__ = ["Renderer", "SiteConfig", "environment", "fields_html", "html_files", "human_bytes", "human_params",
           "human_gb", "image_url", "linkable", "model_context", "nav_html", "row_context", "showcases_of", "size_of",
           "table_context", "value_html"]

#: the page templates and their assets (the memo's TEMPLATES_DIR is the same folder)
TEMPLATES = files("builder.site") / "templates"
REPOSITORY_ENV = "HMR_REPOSITORY_URL"
BRANCH_ENV = "HMR_REPOSITORY_BRANCH"
SITE_URL_ENV = "HMR_SITE_URL"
_LINKABLE = ("https://", "http://")
#: the static files beside the pages (templates/assets/), published under assets/
ASSET_FILES = ("site.css", "table.js", "site.js")
#: fields the model page shows in their own sections; the generic table shows the rest
_SHOWN_APART = ("name", "description", "config")


class SiteConfig:
    """Where the pages link to: the repository holding data/ (for edit links) and the site's own URL."""

    __slots__ = ("repository_url", "branch", "data_path", "site_url")

    def __init__(self, repository_url: str | None = None, branch: str = "main", data_path: str = "data",
                 site_url: str | None = None) -> None:
        self.repository_url, self.branch, self.data_path, self.site_url = repository_url, branch, data_path, site_url

    @classmethod
    def load(cls, start: Path | None = None, data_dir: Path | None = None) -> SiteConfig:
        """`[tool.hmr]` (`repository_url`, `repository_branch`, `repository_data_path`, `site_url`) of the
        nearest pyproject.toml, overridden by HMR_REPOSITORY_URL, HMR_REPOSITORY_BRANCH, HMR_SITE_URL.
        Without a configured repository, a GitHub `origin` of the git checkout holding `data_dir` is used
        (with the data folder's path in it)."""
        from builder.config import project_settings

        s = project_settings(start)
        repo = os.environ.get(REPOSITORY_ENV) or s.get("repository_url") or None
        site = os.environ.get(SITE_URL_ENV) or s.get("site_url") or None
        data_path = str(s.get("repository_data_path") or "data").strip("/")
        if not repo and data_dir is not None:
            found = github_origin(data_dir)
            if found is not None:
                repo, data_path = found
        return cls(
            repository_url=str(repo).rstrip("/") if repo else None,
            branch=os.environ.get(BRANCH_ENV) or str(s.get("repository_branch") or "main"),
            data_path=data_path,
            site_url=str(site) if site else None,
        )


# ---------------------------------------------------------------------------------------------------
# small formatting helpers


def human_bytes(n: Any) -> str:
    """A byte count as people read it ("2.1 GB"); "" for anything but a non-negative integer."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(n)


def human_params(n: Any) -> str:
    """A parameter count as people read it ("7B", "350M"); "" for anything but a positive number."""
    if not isinstance(n, int | float) or isinstance(n, bool) or n <= 0:
        return ""
    b = n / 1e9
    return f"{b:.3g}B" if b >= 1 else f"{n / 1e6:.3g}M"


def linkable(value: Any) -> bool:
    """Whether `value` may become a link: an http(s) URL with nothing that could leave the attribute."""
    return isinstance(value, str) and value.startswith(_LINKABLE) and not any(c in value for c in "\n\r\t\"'<>` ")


def image_url(value: Any) -> bool:
    """Whether `value` may be an <img> source: an https URL only (a page served over https must not pull
    plain-http images, and `javascript:` or `data:` never reach an attribute)."""
    return linkable(value) and value.startswith("https://") and len(value) > len("https://")


def showcases_of(rec: Mapping[str, Any]) -> list[str]:
    """The record's showcase image URLs that may be shown (https only), in record order."""
    shows = rec.get("showcases")
    return [s for s in shows if image_url(s)] if isinstance(shows, list) else []


def _markup(text: str) -> Markup:
    """markupsafe.Markup(text), imported only when a page is rendered (a warm build renders none)."""
    from markupsafe import Markup

    return Markup(text)


def _esc(text: str) -> str:
    """html.escape (the stdlib module costs ~6 ms to import for these five replacements)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#x27;"))


def _value(v: Any) -> str:
    # plain str and html.escape (C speed): markupsafe's Markup arithmetic costs ~1 us per operation,
    # which for ~7,000 fields adds up to a quarter of the build
    if v is None:
        return '<span class="muted">null</span>'
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, str):
        if linkable(v):
            e = _esc(v)
            return f'<a href="{e}" rel="nofollow noopener">{e}</a>'
        return _esc(v)
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, list):
        if not v:
            return '<span class="muted">[]</span>'
        if all(not isinstance(x, dict | list) for x in v):
            return ", ".join([_value(x) for x in v])
        return "<ol>" + "".join([f"<li>{_value(x)}</li>" for x in v]) + "</ol>"
    if isinstance(v, dict):
        if not v:
            return '<span class="muted">{}</span>'
        return "<dl>" + "".join([f"<dt>{_esc(str(k))}</dt><dd>{_value(x)}</dd>" for k, x in v.items()]) + "</dl>"
    return _esc(str(v))


def value_html(v: Any) -> Markup:
    """Any JSON value as escaped HTML (objects as definition lists, URLs as links)."""
    return _markup(_value(v))


def fields_html(rec: Mapping[str, Any]) -> Markup:
    """The table rows of every field not shown in a section of its own."""
    return _markup("".join([f"<tr><th>{_esc(str(k))}</th><td>{_value(v)}</td></tr>"
                           for k, v in rec.items() if k not in _SHOWN_APART]))


def nav_html(root: str) -> Markup:
    """The category navigation of a page whose way back to the site root is `root`."""
    return _markup(" ".join(f'<a href="{_esc(root + href(category_page(c.name)))}">{_esc(title_of(c.name))}</a>'
                           for c in CATEGORIES))


# ---------------------------------------------------------------------------------------------------
# contexts


def size_of(rec: Mapping[str, Any]) -> str:
    """A record's size for the tables: its bytes on disk, else its parameter count."""
    if rec.get("size_on_disk_bytes") is not None:
        return human_bytes(rec["size_on_disk_bytes"])
    return human_params(rec.get("parameters"))


def human_gb(n: Any) -> str:
    """A file size in GB, the one unit of the tables ("2.13 GB", "0.335 GB"); "" for a non-size."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return ""
    gb = n / 1e9
    return f"{gb:.3g} GB" if gb >= 0.01 else "<0.01 GB"


def _str(rec: Mapping[str, Any], field: str) -> str:
    v = rec.get(field)
    return v if isinstance(v, str) else ""


def _num(v: Any) -> int | float | None:
    return v if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 else None


def row_context(category: str, key: str, rec: Mapping[str, Any]) -> dict[str, Any]:
    """One model's row of a category table (`sort`: the readable name's sort key)."""
    tags = [t for t in rec.get("tags") or () if isinstance(t, str)]
    name = str(rec.get("display_name") or rec.get("name") or key)
    size, params = _num(rec.get("size_on_disk_bytes")), _num(rec.get("parameters"))
    return {
        "name": name,
        "key": key,
        "sort": (name.casefold(), key),
        "href": href(model_page(category, key)[len(f"models/{category}/"):]),
        "q": " ".join([key, *([name] if name != key else []), *tags]).lower(),
        "baseline": _str(rec, "baseline"),
        "style": _str(rec, "style"),
        "group": _str(rec, "text_model_group"),
        "nsfw": rec.get("nsfw") is True,
        "size": human_gb(size) if size is not None else "",
        "size_v": size if size is not None else "",
        "params": human_params(params),
        "params_v": params if params is not None else "",
        "tags": ", ".join(tags),
        "tagkey": "|".join(tags),
        "thumb": next(iter(showcases_of(rec)), ""),
    }


def table_context(category: str, recs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A category table: its rows sorted by readable name, the columns and filters its data has (a
    column no model fills is left out, a filter with fewer than two choices is not offered)."""
    rows = sorted((row_context(category, k, rec) for k, rec in recs.items()), key=lambda r: r["sort"])
    has = {f: any(r[f] for r in rows) for f in ("baseline", "style", "size", "params", "tags", "thumb")}
    # (column id, heading, kind): the Name column is always there; "num" columns sort by data-v
    cols = [(f, label, kind) for f, label, kind in (
        ("baseline", "Baseline", "text"), ("style", "Style", "text"), ("size", "File size", "num"),
        ("params", "Parameters", "num"), ("tags", "Tags", "text")) if has[f]]
    # the table is laid out as a grid (rows skip layout off screen: content-visibility), so its columns
    # are set here; minmax(0, ...) lets long names wrap instead of pushing the page sideways
    widths = {"thumb": "56px", "name": "minmax(0,3fr)", "baseline": "minmax(0,2fr)", "style": "minmax(0,1.2fr)",
              "size": "minmax(6.5em,.8fr)", "params": "minmax(6.5em,.8fr)", "tags": "minmax(0,2fr)"}
    grid = " ".join(widths[c] for c in (["thumb"] if has["thumb"] else []) + ["name"] + [c for c, _, _ in cols])
    nsfw = sum(1 for r in rows if r["nsfw"])
    baselines = sorted({r["baseline"] for r in rows if r["baseline"]})
    styles = sorted({r["style"] for r in rows if r["style"]})
    tags = sorted({t for rec in recs.values() for t in rec.get("tags") or () if isinstance(t, str)})
    return {
        "category": category, "title": title_of(category), "description": description_of(category),
        "rows": rows, "cols": [{"id": c, "label": label, "num": kind == "num"} for c, label, kind in cols],
        "colids": [c for c, _, _ in cols], "thumbs": has["thumb"], "grid": grid, "nsfw_count": nsfw,
        "nsfw_toggle": 0 < nsfw,
        "baselines": baselines if len(baselines) > 1 else [], "styles": styles if len(styles) > 1 else [],
        "tags": tags if len(tags) > 1 else [],
    }


def model_context(category: str, key: str, rec: Mapping[str, Any], source: str, config: SiteConfig,
                  has_v1: bool) -> dict[str, Any]:
    """Everything the model template shows of one record (`source`: its data file, for the edit link)."""
    page = model_page(category, key)
    root = root_of(page)
    downloads = []
    files = ((rec.get("config") or {}).get("download") or []) if isinstance(rec.get("config"), dict) else []
    single = len(files) == 1
    for d in files:
        if not isinstance(d, dict):
            continue
        size = d.get("size_bytes")
        if size is None and single:
            size = rec.get("size_on_disk_bytes")  # one file: the model's size is that file's
        url = d.get("file_url") or ""
        downloads.append({"name": d.get("file_name") or "", "url": url, "url_ok": linkable(url),
                          "size": human_bytes(size), "sha": d.get("sha256sum") or ""})
    badges = [str(rec[f]) for f in ("baseline", "style") if isinstance(rec.get(f), str) and rec.get(f)]
    if rec.get("nsfw") is True:
        badges.append("nsfw")
    if rec.get("inpainting") is True:
        badges.append("inpainting")
    size = size_of(rec)
    if size:
        badges.append(size)
    links = [{"url": rec[f], "label": label} for f, label in (("homepage", "Homepage"), ("url", "Model page"))
             if linkable(rec.get(f))]
    title = rec.get("display_name") or rec.get("name") or key
    shows = showcases_of(rec)
    showcases = [{"url": s, "alt": f"Showcase {i} of {len(shows)}: an image made with {title}"}
                 for i, s in enumerate(shows, 1)]
    ekey = href(key)
    json_links = [
        {"href": f"{root}{model_key(category, ekey)}", "label": f"v2 record: {model_key(category, key)}"},
        {"href": f"{root}{v2_key(category)}", "label": f"v2 category: {v2_key(category)}"},
    ]
    if has_v1:
        json_links.append({"href": f"{root}{v1_key(category)}", "label": f"v1 (legacy) category: {v1_key(category)}"})
    edit = None
    if config.repository_url:
        edit = f"{config.repository_url}/edit/{quote(config.branch, safe='')}/{href(source)}"
    return {
        "root": root, "category": category, "key": key,
        "title": title,
        "description": rec.get("description") if isinstance(rec.get("description"), str) else "",
        "badges": badges, "links": links, "downloads": downloads, "showcases": showcases,
        "fields": fields_html(rec), "json": json_links, "edit": edit, "source": source,
    }


def _last_change(history: Sequence[Mapping[str, Any]], limit: int = 12) -> dict[str, Any] | None:
    if not history:
        return None
    from builder.site.changes import entry_title

    e = history[0]
    items = []
    for what, group in (("added", e.get("added", [])), ("removed", e.get("removed", [])),
                        ("changed", e.get("changed", []))):
        for i in group:
            label = f"{i['category']}/{i['key']}"
            fields = ", ".join(f["field"] for f in i.get("fields", []))
            items.append({"what": what, "label": label, "fields": fields,
                          "href": None if what == "removed" else href(model_page(i["category"], i["key"]))})
    return {"title": entry_title(e), "built_at": e.get("built_at"), "items": items[:limit],
            "more": max(0, len(items) - limit)}


# ---------------------------------------------------------------------------------------------------
# rendering


def environment() -> Any:
    """The jinja2 Environment of the templates, with its bytecode cache in the build cache."""
    import jinja2

    cache = cache_dir()
    bcc = None
    if cache is not None:
        (cache / "jinja").mkdir(parents=True, exist_ok=True)
        bcc = jinja2.FileSystemBytecodeCache(str(cache / "jinja"))
    return jinja2.Environment(loader=jinja2.PackageLoader("builder.site", "templates"), autoescape=True,
                              bytecode_cache=bcc, auto_reload=False, trim_blocks=True, lstrip_blocks=True)


class Renderer:
    """Renders pages, remembering each page in the disk memo by a digest of everything it is made of
    (its record or table, its links; the memo's key covers the templates and this code), so a build
    re-renders only what changed. A miss renders, and an unwritable memo costs time only. jinja2
    itself is imported on the first miss (a warm build does not pay for it)."""

    def __init__(self) -> None:
        self.table = MemoTable("pages")
        self.used: set[str] = set()
        self._templates: dict[str, Any] = {}

    def template(self, name: str) -> Any:
        """The compiled template `name` (the Environment is made on the first call)."""
        t = self._templates.get(name)
        if t is None:
            if not self._templates:
                self._env = environment()
            t = self._templates[name] = self._env.get_template(name)
        return t

    def render(self, name: str, inputs: bytes, context: Callable[[], dict[str, Any]]) -> bytes:
        """Template `name` with `context()`, unless a page made of the same `inputs` is remembered."""
        k = digest(name.encode() + b"\0" + inputs)
        page = self.table.get(k)
        if page is None:
            page = self.template(name).render(context())
            self.table.put(k, page)
        self.used.add(k)
        return page.encode("utf-8")

    def save(self) -> None:
        """Keep this build's pages only (the memo never grows) and write them if anything changed."""
        self.table.retain(self.used)
        self.table.save()


def html_files(cats: Mapping[str, CategoryData], v2: Mapping[str, Mapping[str, Mapping[str, Any]]],
               facts: SourceFacts, history: Sequence[Mapping[str, Any]], config: SiteConfig) -> dict[str, bytes]:
    """Relative path -> bytes of every page and asset (`history`: the change feed's, for the home page)."""
    from datetime import UTC, datetime

    data_dir, times = facts.data_dir, facts.category_times
    r = Renderer()
    out: dict[str, bytes] = {}
    for name in ASSET_FILES:
        out[f"{ASSETS}/{name}"] = (TEMPLATES / "assets" / name).read_bytes()
    data_root = str(data_dir).rstrip("/") + "/"
    conf = orjson.dumps([config.repository_url, config.branch, config.data_path])
    summary: list[dict[str, Any]] = []
    navs: dict[str, Markup] = {}

    def nav(root: str) -> Markup:
        n = navs.get(root)
        if n is None:
            n = navs[root] = nav_html(root)
        return n

    for c in CATEGORIES:
        recs = v2.get(c.name, {})
        records = cats[c.name].records if c.name in cats else {}
        has_v1 = c.has_legacy or c.managed_elsewhere  # lora and ti answer `{}` under v1
        page = category_page(c.name)
        nsfw = sum(1 for rec in recs.values() if rec.get("nsfw") is True)

        def table(c: Any = c, recs: Mapping[str, Any] = recs, page: str = page) -> dict[str, Any]:
            root = root_of(page)
            return {**table_context(c.name, recs), "root": root, "nav": nav(root),
                    "v1": c.has_legacy or c.managed_elsewhere}

        out[page] = r.render("category.html", c.name.encode() + b"\0" + orjson.dumps(recs), table)
        for key, rec in recs.items():
            record = records.get(key)
            if record is not None:
                # records are found under data_dir, so their paths start with it (os.path.relpath costs 40 us)
                path = str(record.path)
                source = path[len(data_root):] if path.startswith(data_root) else os.path.basename(path)
                source = f"{config.data_path}/{source}" if config.data_path else source
            else:
                source = f"{config.data_path}/{c.name}/{key}.yaml"

            def model(c: Any = c, key: str = key, rec: Mapping[str, Any] = rec, source: str = source) -> dict[str, Any]:
                ctx = model_context(c.name, key, rec, source, config, c.has_legacy)
                ctx["nav"] = nav(ctx["root"])
                return ctx

            inputs = b"\0".join([c.name.encode(), key.encode(), source.encode(), conf, orjson.dumps(rec)])
            out[model_page(c.name, key)] = r.render("model.html", inputs, model)
        t = times.get(c.name)
        updated = (datetime.fromtimestamp(t.last_updated, UTC).strftime("%Y-%m-%d")
                   if t is not None and t.last_updated else "")
        summary.append({"name": c.name, "title": title_of(c.name), "description": description_of(c.name),
                        "count": len(recs), "nsfw": nsfw, "updated": updated, "v1": has_v1})
    home = {
        "root": "", "categories": summary, "total": sum(s["count"] for s in summary),
        "last": _last_change(history), "schemas": [{"name": p.name, "href": href(schema_file(p.name))}
                                                   for p in schema_paths()],
    }
    out[HOME] = r.render("home.html", orjson.dumps(home), lambda: {**home, "nav": nav("")})
    r.save()
    return out
