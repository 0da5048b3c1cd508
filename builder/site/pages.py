"""Links between the HTML pages, shared by the renderer and the change feed; where the pages live is
the route table's (`builder.routes`), re-exported here. Also the small pure helpers the pages are made
with: value formatting (sizes, parameter counts), which URLs may be links or images, dates and related
models.

`index.html` (home), `models/<category>/index.html` (the table), `models/<category>/<key>.html` (a model;
a key with `/` is nested). A model whose key is `index` would collide with the table, so its page is
`index.model.html`. In links, keys are percent-encoded (`?`, `#`, `%` and spaces included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from builder.categories import description_of, title_of
from builder.routes import ASSETS, category_page, model_page
from builder.routes import HOME_PAGE as HOME

__all__ = ["ASSETS", "HOME", "category_page", "href", "human_bytes", "human_gb", "human_params", "image_url",
           "linkable", "model_dates", "model_page", "related_models", "root_of", "row_context", "showcases_of",
           "table_context"]

_LINKABLE = ("https://", "http://")


def href(path: str) -> str:
    """A site path as a relative URL component (each segment percent-encoded)."""
    return quote(path, safe="/")


def root_of(path: str) -> str:
    """The relative URL from the page at `path` back to the site root ("" at the root)."""
    return "../" * path.count("/")


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


def human_gb(n: Any) -> str:
    """A file size in GB, the one unit of the tables ("2.13 GB", "0.335 GB"); "" for a non-size."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return ""
    gb = n / 1e9
    return f"{gb:.3g} GB" if gb >= 0.01 else "<0.01 GB"


def model_dates(history: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(category, key) -> {"added": entry, "updated": entry} from the change history (newest entry
    first); an entry is {"at", "generation", "commit"}. Models unchanged since the history began have none."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for e in history:
        when = {"at": str(e.get("built_at") or "")[:10], "generation": e.get("generation"),
                "commit": e.get("source_commit") or ""}
        for what in ("added", "changed"):
            for i in e.get(what, []):
                d = out.setdefault((i["category"], i["key"]), {})
                d.setdefault("updated", when)
                if what == "added":
                    d.setdefault("added", when)
    return out


def related_models(category: str, key: str, rec: Mapping[str, Any],
                   by: Mapping[tuple[str, str], Sequence[tuple[str, str]]], limit: int = 12) -> list[dict[str, Any]]:
    """Up to `limit` models of the same text group, then of the same baseline (`by`: (field, value) ->
    [(name, key)] sorted by name), each as {"name", "href", "why"}."""
    out: list[dict[str, Any]] = []
    seen = {key}
    for field, why in (("text_model_group", "same group"), ("baseline", "same baseline")):
        value = rec.get(field)
        if not isinstance(value, str) or not value:
            continue
        for name, k in by.get((field, value), ()):
            if k in seen or len(out) >= limit:
                continue
            seen.add(k)
            out.append({"name": name, "key": k, "href": href(model_page(category, k)), "why": why})
    return out


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
