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
from builder.routes import SITEMAP_FILE, model_key, schema_file, v1_key, v2_key
from builder.site.catalog import schema_paths
from builder.site.pages import (
    ASSETS,
    HOME,
    _num,
    _str,
    category_page,
    href,
    human_bytes,
    human_gb,
    human_params,
    image_url,
    linkable,
    model_dates,
    model_page,
    related_models,
    root_of,
    row_context,
    showcases_of,
    table_context,
)
from builder.site.source import SourceFacts, github_origin

if TYPE_CHECKING:
    from pathlib import Path

    from markupsafe import Markup

__all__ = ["Renderer", "SiteConfig", "environment", "fields_html", "html_files", "human_bytes", "human_params",
           "human_gb", "image_url", "linkable", "model_context", "model_dates", "nav_html", "related_models", "row_context", "showcases_of", "size_of",
           "table_context", "value_html"]

#: the page templates and their assets (the memo's TEMPLATES_DIR is the same folder)
TEMPLATES = files("builder.site") / "templates"
REPOSITORY_ENV = "HMR_REPOSITORY_URL"
BRANCH_ENV = "HMR_REPOSITORY_BRANCH"
SITE_URL_ENV = "HMR_SITE_URL"
#: the static files beside the pages (templates/assets/), published under assets/
ASSET_FILES = ("site.css", "table.js", "site.js", "favicon.svg")
#: stands for the site's address in a usage snippet when no site URL is configured (the page's script
#: puts the address it was loaded from in its place)
SITE_PLACEHOLDER = "https://<this site>"
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


def model_context(category: str, key: str, rec: Mapping[str, Any], source: str, config: SiteConfig,
                  has_v1: bool, dates: Mapping[str, Any] | None = None,
                  related: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Everything the model template shows of one record (`source`: its data file, for the edit link;
    `dates`: its model_dates entry; `related`: its related_models)."""
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
    mc_raw = rec.get("model_classification")
    mc: Mapping[str, Any] = mc_raw if isinstance(mc_raw, dict) else {}
    what = " ".join(str(mc[f]).replace("_", " ") for f in ("domain", "purpose") if isinstance(mc.get(f), str))
    size_b, params = _num(rec.get("size_on_disk_bytes")), _num(rec.get("parameters"))
    facts = [("Category", title_of(category)), ("What it is", f"{what} model" if what else ""),
             ("Baseline", _str(rec, "baseline")), ("Group", _str(rec, "text_model_group")),
             ("Parameters", human_params(params)), ("Size", human_gb(size_b) if size_b is not None else ""),
             ("Style", _str(rec, "style")), ("Version", _str(rec, "version")),
             ("NSFW", "yes" if rec.get("nsfw") is True else "no" if rec.get("nsfw") is False else ""),
             ("Inpainting", "yes" if rec.get("inpainting") is True else "")]
    record_path = model_key(category, ekey)
    base = config.site_url.rstrip("/") + "/" if config.site_url else ""
    record_url = (base + record_path) if base else f"{SITE_PLACEHOLDER}/{record_path}"
    usage = {
        "curl": f"curl -s '{record_url}'",
        "python": "from builder.replica import ReplicaClient\n\n"
                  f"model = ReplicaClient().get_model({category!r}, {key!r})",
        "href": f"{root}{record_path}", "absolute": bool(base),
    }
    repo = config.repository_url
    when = []
    for label, field in (("Added", "added"), ("Updated", "updated")):
        d = (dates or {}).get(field)
        if d:
            commit = d["commit"]
            when.append({"label": label, "at": d["at"], "generation": d["generation"], "commit": commit[:12],
                         "commit_href": f"{repo}/commit/{commit}" if repo and commit else None})
    edit = None
    if config.repository_url:
        edit = f"{config.repository_url}/edit/{quote(config.branch, safe='')}/{href(source)}"
    return {
        "root": root, "category": category, "key": key,
        "title": title,
        "description": rec.get("description") if isinstance(rec.get("description"), str) else "",
        "badges": badges, "links": links, "downloads": downloads, "showcases": showcases,
        "fields": fields_html(rec), "json": json_links, "edit": edit, "source": source,
        "facts": [{"label": k, "value": v} for k, v in facts if v], "usage": usage, "dates": when,
        "related": list(related), "placeholder": SITE_PLACEHOLDER,
        "meta_description": _summary(rec, title, category),
    }


def _summary(rec: Mapping[str, Any], title: str, category: str) -> str:
    """The page's meta description: the record's description, else what it is, at most ~160 characters."""
    text = rec.get("description") if isinstance(rec.get("description"), str) and rec.get("description") else ""
    if not text:
        text = f"{title}: a {title_of(category).lower()} model of the AI-Horde model reference."
    text = " ".join(str(text).split())
    return text if len(text) <= 160 else text[:157].rstrip() + "…"


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


def sitemap_xml(site: str, pages: Sequence[str]) -> bytes:
    """sitemap.xml of the pages (site paths) under the site's URL `site` (ending in "/"); no dates, so a
    build of unchanged data writes the same bytes."""
    from builder.site.changes import xml_escape

    urls = "".join(f"<url><loc>{xml_escape(site + href(p).removesuffix('index.html'))}</loc></url>\n" for p in pages)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
            f"{urls}</urlset>\n").encode()


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
    conf = orjson.dumps([config.repository_url, config.branch, config.data_path, config.site_url])
    summary: list[dict[str, Any]] = []
    navs: dict[str, Markup] = {}

    def nav(root: str) -> Markup:
        n = navs.get(root)
        if n is None:
            n = navs[root] = nav_html(root)
        return n

    dates = model_dates(history)
    site = config.site_url.rstrip("/") + "/" if config.site_url else ""
    for c in CATEGORIES:
        recs = v2.get(c.name, {})
        records = cats[c.name].records if c.name in cats else {}
        has_v1 = c.has_legacy or c.managed_elsewhere  # lora and ti answer `{}` under v1
        page = category_page(c.name)
        nsfw = sum(1 for rec in recs.values() if rec.get("nsfw") is True)

        def table(c: Any = c, recs: Mapping[str, Any] = recs, page: str = page) -> dict[str, Any]:
            root = root_of(page)
            return {**table_context(c.name, recs), "root": root, "nav": nav(root),
                    "v1": c.has_legacy or c.managed_elsewhere, "site_url": site, "page_path": href(page),
                    "meta_description": f"{title_of(c.name)}: {description_of(c.name)}"}

        out[page] = r.render("category.html", b"\0".join([c.name.encode(), conf, orjson.dumps(recs)]), table)
        by: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for key, rec in sorted(recs.items(), key=lambda kv: (str(kv[1].get("display_name") or kv[1].get("name")
                                                                  or kv[0]).casefold(), kv[0])):
            for field in ("text_model_group", "baseline"):
                v = rec.get(field)
                if isinstance(v, str) and v:
                    by.setdefault((field, v), []).append((str(rec.get("display_name") or rec.get("name") or key), key))
        for key, rec in recs.items():
            record = records.get(key)
            if record is not None:
                # records are found under data_dir, so their paths start with it (os.path.relpath costs 40 us)
                path = str(record.path)
                source = path[len(data_root):] if path.startswith(data_root) else os.path.basename(path)
                source = f"{config.data_path}/{source}" if config.data_path else source
            else:
                source = f"{config.data_path}/{c.name}/{key}.yaml"

            when = dates.get((c.name, key))
            related = related_models(c.name, key, rec, by)

            def model(c: Any = c, key: str = key, rec: Mapping[str, Any] = rec, source: str = source,
                      when: Any = when, related: Any = related) -> dict[str, Any]:
                ctx = model_context(c.name, key, rec, source, config, c.has_legacy, when, related)
                ctx["nav"] = nav(ctx["root"])
                ctx["related"] = [{**r, "href": ctx["root"] + r["href"]} for r in ctx["related"]]
                shows = ctx["showcases"]
                ctx.update(site_url=site, page_path=href(model_page(c.name, key)),
                           og_image=shows[0]["url"] if shows else "")
                return ctx

            inputs = b"\0".join([c.name.encode(), key.encode(), source.encode(), conf, orjson.dumps(rec),
                                  orjson.dumps([when, related])])
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
    out[HOME] = r.render("home.html", conf + orjson.dumps(home),
                         lambda: {**home, "nav": nav(""), "site_url": site, "page_path": ""})
    if site:
        out[SITEMAP_FILE] = sitemap_xml(site, [HOME, *(p for p in out if p.endswith(".html") and p != HOME)])
    r.save()
    return out
