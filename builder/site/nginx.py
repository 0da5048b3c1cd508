"""An nginx config snippet generated from the route table, written by `hmr build` to `_config/nginx.conf`.

It makes nginx answer exactly like `hmr serve` and the object store: every object key of the route
table and nothing else, with the table's content type and Cache-Control, a JSON 404, and the
build-private `_config/` hidden. Most keys are covered by one prefix rule per top-level folder
(`try_files $uri $uri.json` where the folder has extensionless keys); every key that rule would get
wrong (the v1 aliases, a content type or cache policy the folder's rule does not give) gets its own
`location =` block, and a file the prefix rule would expose without a key gets an exact 404. The
generator checks each route against what its rule yields, so the config cannot drift from the table.

The snippet goes inside a `server {}` whose `root` is the site directory (the directory is swapped
atomically by `hmr build`, so point `root` at its path, not at a resolved inode).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from builder.errors import HmrError
from builder.memo import memoized
from builder.routes import (
    COMPRESSIBLE,
    CORS_HEADERS,
    PREFLIGHT_HEADERS,
    PRIVATE_PREFIX,
    QUERY_LOOKUPS,
    QUERY_VARIANTS,
    TRUE_VALUES,
    Route,
    routes,
)

__all__ = ["NGINX_CONF", "NOT_FOUND_BODY", "NginxConfigError", "nginx_config", "nginx_files"]

NGINX_CONF = PRIVATE_PREFIX + "nginx.conf"
NOT_FOUND_BODY = '{"detail":"Not Found"}'
INDEX = "index.html"


class NginxConfigError(HmrError, ValueError):
    """The route table holds something an nginx config cannot express."""


@dataclass(frozen=True)
class _Type:
    mime: str
    charset: str | None

    @staticmethod
    @lru_cache(maxsize=256)  # a handful of distinct content types, parsed for thousands of routes
    def parse(content_type: str) -> _Type:
        mime, _, params = content_type.partition(";")
        charset = None
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip().lower()
        return _Type(mime.strip(), charset)


def _q(s: str) -> str:
    """An nginx double-quoted string (nginx unescapes \\" and \\\\ inside quotes)."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in s):
        raise NginxConfigError(f"control character in nginx string {s!r}")
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _qfile(path: str) -> str:
    # try_files arguments are variable templates and nginx has no escape for "$": refuse rather than
    # emit a config that serves the wrong file. Only exact-location files reach here (aliases etc.).
    if "$" in path:
        raise NginxConfigError(f"cannot express {path!r} in an nginx try_files argument")
    return _q(path)


def _ext(file: str) -> str:
    name = file.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot + 1:] if dot > 0 else ""


def _cors(indent: str) -> list[str]:
    # nginx drops inherited add_header lines in a location that has its own, so every location that
    # sets Cache-Control repeats these; `always` puts them on the 404s and 405s too
    return [f"{indent}add_header {k} {_q(v)} always;" for k, v in CORS_HEADERS.items()]


def _segment(key: str) -> str:
    return key.split("/", 1)[0] if "/" in key else ""


def nginx_config(route_list: Iterable[Route]) -> str:
    """The server-level nginx snippet that serves `route_list` (see the module docstring)."""
    rts = list(route_list)
    by_key = {r.key: r for r in rts}
    files = {r.file for r in rts}
    # per route, computed once: (route, folder, extension of its file, parsed content type)
    info = [(r, _segment(r.key), _ext(r.file), _Type.parse(r.content_type)) for r in rts]

    # MIME type per file extension, as the route table assigns it (the most common one wins; a route
    # that disagrees gets an exact location that forces its type).
    ext_votes: defaultdict[str, Counter[_Type]] = defaultdict(Counter)
    for _r, _seg, ext, typ in info:
        ext_votes[ext][typ] += 1
    ext_type = {ext: votes.most_common(1)[0][0] for ext, votes in ext_votes.items()}
    default = ext_type.pop("", _Type("application/json", None))
    charset_mimes = sorted({t.mime for t in [*ext_type.values(), default] if t.charset})
    gzip_mimes = sorted({t.mime for t in [*ext_type.values(), default] if t.mime.startswith(COMPRESSIBLE)})
    charsets = sorted({t.charset for t in [*ext_type.values(), default] if t.charset})
    if len(charsets) > 1:
        # nginx's `charset` is one value per location; a second one would need exact locations
        raise NginxConfigError(f"more than one charset in the route table: {charsets}")
    charset = charsets[0] if charsets else None

    # One prefix rule per top-level folder.
    seg_json: dict[str, bool] = {}
    seg_votes: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for r, seg, _, _ in info:
        seg_json[seg] = seg_json.get(seg, False) or r.key + ".json" == r.file
        seg_votes[seg][r.cache_control] += 1
    segments = set(seg_json)
    seg_cache = {seg: votes.most_common(1)[0][0] for seg, votes in seg_votes.items()}

    def generic_type(file: str) -> _Type:
        ext = _ext(file)
        return ext_type.get(ext, default) if ext else default

    # What the prefix rule would answer for each key; where that is not the route, an exact block.
    exact: dict[str, Route] = {}
    for r, seg, _, typ in info:
        if r.key in files:
            served = r.key
        elif seg_json[seg] and r.key + ".json" in files:
            served = r.key + ".json"
        else:
            served = None
        if served != r.file or generic_type(served) != typ or seg_cache[seg] != r.cache_control:
            exact[r.key] = r

    # Keys the prefix rule would answer although the table has no such key: `$uri.json` exposes
    # `x` for every file `x.json`. Answer 404, as the object store would.
    hidden = sorted(f[: -len(".json")] for f in files
                    if f.endswith(".json") and seg_json.get(_segment(f)) and f[: -len(".json")] not in by_key)
    # Directory index, as `hmr serve` and S3 website hosting do: `dir/` serves `dir/index.html`.
    index_dirs = sorted(k[: -len(INDEX)] for k in by_key if k == INDEX or k.endswith("/" + INDEX))

    out: list[str] = [
        "# Generated by `hmr build` from the route table (builder/site/routes.py): do not edit.",
        "# Serves the site's object keys exactly as `hmr serve` and the object store do. Include it in a",
        "# server block whose root is the site directory, for example:",
        "#     server { listen 8080; root /srv/hmr/site; include /srv/hmr/site/_config/nginx.conf; }",
        "",
        "# extensionless keys (the old API's paths) are JSON",
        f"default_type {default.mime};",
        "types {",
        *(f"    {t.mime} {ext};" for ext, t in sorted(ext_type.items())),
        "}",
    ]
    if charset:
        out += [f"charset {charset};", f"charset_types {' '.join(charset_mimes)};"]
    else:
        out.append("charset off;")
    out += [
        "etag on;",
        "if_modified_since exact;",
        "",
        "# gzip for clients that accept it, as `hmr serve` does (nginx weakens a compressed answer's ETag)",
        "gzip on;",
        "gzip_vary on;",
        "gzip_proxied any;",
        "gzip_comp_level 6;",
        "gzip_min_length 256;",
        # text/html is always compressed once gzip is on; naming it again is a warning
        f"gzip_types {' '.join(m for m in gzip_mimes if m != 'text/html')};",
        "",
        "# CORS as GitHub raw answers it; a preflight (OPTIONS) is answered for every key",
        *_cors(""),
        *(f"add_header {k} {_q(v)} always;" for k, v in PREFLIGHT_HEADERS.items() if k not in CORS_HEADERS),
        "if ($request_method = OPTIONS) { return 204; }",
        "",
        "# 404 as the old API answers it",
        "error_page 404 @hmr_not_found;",
        "location @hmr_not_found {",
        "    types { }",
        "    default_type application/json;",
        "    charset off;",
        *_cors("    "),
        f"    return 404 '{NOT_FOUND_BODY}';",
        "}",
        "",
        "# build-private files (this config) are never published",
        f"location ^~ /{PRIVATE_PREFIX} {{ return 404; }}",
        "",
    ]
    if "" not in segments:
        out.append("location / { return 404; }")
    for seg in sorted(segments):
        tries = "$uri $uri.json" if seg_json[seg] else "$uri"
        head = "location / {" if seg == "" else f"location ^~ {_q('/' + seg + '/')} {{"
        out += [
            head,
            f"    add_header Cache-Control {_q(seg_cache[seg])};",
            *_cors("    "),
            f"    try_files {tries} =404;",
            "}",
        ]
    # the old API's query variants: the plain key, unless the query selects the variant's object
    variants = {key: (param, target) for key, (param, target) in QUERY_VARIANTS.items()
                if key in by_key and target in by_key}
    for key, (param, target) in sorted(variants.items()):
        r = by_key[key]
        exact.pop(key, None)
        truth = "|".join(TRUE_VALUES)
        out += [
            "",
            f"# {key}?{param}=true is its own object ({target}), as the old API computed it",
            f"location = {_q('/' + key)} {{",
            f"    add_header Cache-Control {_q(r.cache_control)};",
            *_cors("    "),
            f'    if ($arg_{param} ~* "^({truth})$") {{ rewrite ^ {_qfile("/" + by_key[target].file)} last; }}',
            f"    try_files {_qfile('/' + r.file)} =404;",
            "}",
        ]
    # the old API's query lookups (parse_name?name=N): the object of that name, else the JSON 404.
    # nginx's $arg_ is the raw query value, so a value percent-encoded by the client (%2F for "/")
    # names no file here; `hmr serve` decodes it (a CDN rule should too)
    for key, (param, folder) in sorted(QUERY_LOOKUPS.items()):
        if not any(k.startswith(folder) for k in by_key) or not all(c.isalnum() or c in "/_-." for c in folder):
            continue
        out += [
            "",
            f"# {key}?{param}=V is the object {folder}V",
            f"location = {_q('/' + key)} {{",
            *_cors("    "),
            # the value becomes a path: no ".." may climb out of the folder (or the site)
            f'    if ($arg_{param} ~ "\\.\\.") {{ return 404; }}',
            f'    if ($arg_{param} != "") {{ rewrite ^ /{folder}$arg_{param}.json last; }}',
            "    return 404;",
            "}",
        ]
    if exact or index_dirs or hidden:
        out += ["", "# keys the prefix rules above do not serve as the route table says (aliases, ...)"]
    for key in sorted(exact):
        r = exact[key]
        t = _Type.parse(r.content_type)
        lines = [f"location = {_q('/' + key)} {{", f"    add_header Cache-Control {_q(r.cache_control)};",
                 *_cors("    ")]
        if generic_type(r.file) != t:
            lines += ["    types { }", f"    default_type {t.mime};"]
            lines.append(f"    charset {t.charset}; charset_types {t.mime};" if t.charset else "    charset off;")
        lines += [f"    try_files {_qfile('/' + r.file)} =404;", "}"]
        out += lines
    for d in index_dirs:
        r = by_key[d + INDEX]
        out += [
            f"location = {_q('/' + d)} {{",
            f"    add_header Cache-Control {_q(r.cache_control)};",
            *_cors("    "),
            f"    try_files {_qfile('/' + r.file)} =404;",
            "}",
        ]
    for key in hidden:
        out.append(f"location = {_q('/' + key)} {{ return 404; }}")
    return "\n".join(out) + "\n"


def nginx_files(files: Iterable[str]) -> dict[str, bytes]:
    """`_config/nginx.conf` for a site holding `files`: a function of the file names only, remembered
    in the disk memo.

    Raises:
        NginxConfigError: the route table holds something nginx cannot express.
    """
    names = sorted(files)
    return {NGINX_CONF: memoized("nginx", ["\n".join(names).encode()], lambda: nginx_config(routes(names, web=True)).encode())}
