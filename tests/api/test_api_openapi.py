"""`api/` (the old landing message), `api/openapi.json` (OpenAPI 3.1, accepted by openapi-spec-validator,
describing every read key of the site) and the HTML page `api/docs`, served with CORS."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from builder.routes import API_DOCS_FILE, OPENAPI_FILE, QUERY_VARIANTS, WELCOME_FILE, routes
from builder.site.serve import site_files
from tests.site_support import Http


def _doc(site_dir: Path) -> dict:
    return json.loads((site_dir / OPENAPI_FILE).read_bytes())


def test_openapi_is_valid(site_dir: Path) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.readers import read_from_filename

    spec, base = read_from_filename(str(site_dir / OPENAPI_FILE))
    validate(spec, base_uri=base)  # resolves the relative $refs to the published schemas
    doc = _doc(site_dir)
    assert doc["openapi"].startswith("3.1")
    refs = {m for m in re.findall(r'"\$ref": "([^"]+)"', (site_dir / OPENAPI_FILE).read_text())}
    assert refs and all((site_dir / OPENAPI_FILE).parent.joinpath(r).resolve().is_file() for r in refs)


def _matchers(doc: dict) -> list[tuple[str, re.Pattern]]:
    out = []
    for template, item in doc["paths"].items():
        enums = {p["name"]: p["schema"].get("enum") for p in item["get"].get("parameters", []) if p["in"] == "path"}
        rx = re.escape(template)
        for name, enum in enums.items():
            part = "|".join(map(re.escape, enum)) if enum else ".+"
            rx = rx.replace(re.escape("{" + name + "}"), f"(?:{part})")
        out.append((template, re.compile("api" + rx)))
    return out


def test_openapi_describes_every_read_key(site_dir: Path) -> None:
    keys = {r.key for r in routes(site_files(site_dir)) if r.key.startswith("api/")}
    targets = {t[: -len(".json")] for _, t in QUERY_VARIANTS.values()}
    matchers = _matchers(_doc(site_dir))
    undocumented = []
    for key in sorted(keys):
        stem = key[: -len(".json")] if key.endswith(".json") else None
        if (stem in keys and not any(m.fullmatch(key) for _, m in matchers)) or key in targets or stem in targets:
            continue  # the .json twin of a documented key; a query variant's own object
        if key in ("api/index", "api/openapi") or key.startswith("api/docs/"):
            continue  # the welcome, openapi.json and the page, served as `api/`, `api/openapi.json`, `api/docs`
        if not any(m.fullmatch(key) or (key == "api/" and t == "/") for t, m in matchers):
            undocumented.append(key)
    assert not undocumented, undocumented[:20]
    # and every template is a key of the site (query paths: their plain key or a lookup)
    assert len(_doc(site_dir)["paths"]) > 60


def _examples(site_dir: Path) -> list[str]:
    out = []
    for template, item in _doc(site_dir)["paths"].items():
        values = {"category": "clip", "name": "x"}
        params = {p["name"]: p for p in item["get"].get("parameters", [])}
        if template.endswith("aliases/{name}"):
            continue  # the corpus has no aliases
        if "model/{name}" in template:
            cat = template.split("/")[3]
            recs = json.loads((site_dir / f"api/model_references/v2/{cat}.json").read_bytes())
            if not recs:
                continue
            values["name"] = next(iter(recs))
        elif template.endswith(("group/by-name/{name}", "parse_name/{name}")) or "name" in params:
            values["name"] = "acrastt/Marx-3B-V3" if "parse_name" in template else "Marx"
        path = template
        for n, v in values.items():
            path = path.replace("{" + n + "}", v)
        if "name" in params and params["name"]["in"] == "query":
            path += f"?name={values['name']}"
        out.append("/api" + path)
    return out


@pytest.mark.parametrize("server", ["served", "nginx"])
def test_every_documented_path_answers(site_dir: Path, server: str, request: pytest.FixtureRequest) -> None:
    fixture = request.getfixturevalue(server)
    http = Http(fixture[1] if server == "served" else fixture.port)
    try:
        for target in _examples(site_dir):
            r = http.request(target, headers={"Origin": "https://example.org"})
            assert r.status == 200, target
            assert r.headers["access-control-allow-origin"] == "*", target
            if not target.endswith(("/docs", ".atom")):
                assert r.headers["content-type"].startswith("application/json"), target
                json.loads(r.body)
        r = http.request("/api/")
        assert r.status == 200 and r.body == (site_dir / WELCOME_FILE).read_bytes()
        assert r.json() == {"message": "Welcome to the Horde Model Reference API. See `/api/docs` for "
                                       "interactive documentation."}
        assert r.headers["content-type"].startswith("application/json")
        for target in ("/api/docs", "/api/docs/"):
            r = http.request(target)
            assert r.status == 200 and r.headers["content-type"].startswith("text/html"), target
            assert r.body == (site_dir / API_DOCS_FILE).read_bytes()
            assert b"openapi.json" in r.body and b"/api/model_references/v2/search" in r.body
        r = http.request("/api/openapi.json")
        assert r.status == 200 and r.headers["access-control-allow-origin"] == "*"
    finally:
        http.close()
