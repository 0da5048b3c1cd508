"""The docs' recipe for parameterised search (docs/search.md), run as written: nginx with the generated
config and the recipe's block, the existing library's service (8.6.2) as a replica of `hmr serve` behind it.
Filtered searches answer what the service answers, with CORS once; the default pages stay static."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from builder.routes import SEARCH_FILE, search_file
from tests.site_support import CLIENT_PYTHON, CLIENT_VERSION, ROOT, Nginx, client_venv_dir, free_port, wait_for_port

DOC = ROOT / "docs" / "search.md"
#: the port the recipe's service listens on, as the doc writes it
DOC_PORT = "19800"


def _recipe() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "docs/search.md holds one nginx block"
    assert f"127.0.0.1:{DOC_PORT}" in blocks[0]
    return blocks[0]


@pytest.fixture(scope="session")
def service_python() -> Path:
    """A venv with `horde-model-reference[service]==8.6.2` (the old service), made once and cached."""
    venv = client_venv_dir().with_name(f"hmr-{CLIENT_VERSION}-service")
    py = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(venv) + ".lock", timeout=900):
        if (venv / ".ok").exists() and py.exists():
            return py
        shutil.rmtree(venv, ignore_errors=True)
        r = subprocess.run(["python3.12", "-m", "venv", str(venv)], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, PYENV_VERSION=CLIENT_PYTHON))
        assert r.returncode == 0, r.stderr[-300:]
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            f"horde-model-reference[service]=={CLIENT_VERSION}"], capture_output=True, text=True,
                           timeout=900)
        if r.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            pytest.fail(f"pip install horde-model-reference[service] failed: {r.stderr.strip()[-300:]}")
        (venv / ".ok").write_text("ok\n")
    return py


@pytest.fixture(scope="module")
def service(service_python: Path, served: tuple[object, int], tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The old service, a REPLICA of the served site, on a free port (as the doc runs it)."""
    work = tmp_path_factory.mktemp("search-service")
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "AIWORKER_CACHE_HOME": str(work / "cache"),
           "HORDE_MODEL_REFERENCE_REPLICATE_MODE": "REPLICA",
           "HORDE_MODEL_REFERENCE_PRIMARY_API_URL": f"http://127.0.0.1:{served[1]}/api",
           "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "false"}
    proc = subprocess.Popen([str(service_python), "-m", "uvicorn", "horde_model_reference.service.app:app",
                             "--host", "127.0.0.1", "--port", str(port)], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, timeout=120)
        yield port
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.fixture(scope="module")
def recipe_nginx(site_dir: Path, service: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    prefix = tmp_path_factory.mktemp("nginx-search")
    server = Nginx(site_dir, prefix)
    recipe = prefix / "conf" / "search.conf"
    recipe.write_text(_recipe().replace(f"127.0.0.1:{DOC_PORT}", f"127.0.0.1:{service}"))
    conf = prefix / "conf" / "nginx.conf"
    text = conf.read_text()
    include = f'        include "{site_dir}/_config/nginx.conf";\n'
    assert include in text
    conf.write_text(text.replace(include, f'        include "{recipe}";\n' + include))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _get(port: int, target: str) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", target, headers={"Origin": "https://example.org"})
        r = conn.getresponse()
        return r.status, [(k.lower(), v) for k, v in r.getheaders()], r.read()
    finally:
        conn.close()


QUERIES = [
    "/api/model_references/v2/image_generation/search?baseline=stable_diffusion_xl&limit=3",
    "/api/model_references/v2/image_generation/search?nsfw=false&sort_by=name&sort_desc=true&offset=5&limit=4",
    "/api/model_references/v2/text_generation/search?name_contains=llama&limit=2",
    "/api/model_references/v2/search?name_contains=blip",
    "/api/model_references/v2/search?tags_any=anime&limit=500",
]


@pytest.mark.parametrize("target", QUERIES)
def test_parameterised_search_goes_to_the_service(recipe_nginx: Nginx, service: int, target: str) -> None:
    status, headers, body = _get(recipe_nginx.port, target)
    s_status, _, s_body = _get(service, target)
    assert status == s_status == 200, (target, status, body[:200])
    assert body == s_body
    doc = json.loads(body)
    assert set(doc) == {"results", "total", "offset", "limit", "has_more"}
    assert [v for k, v in headers if k == "access-control-allow-origin"] == ["*"]
    assert [v for k, v in headers if k == "access-control-expose-headers"] == ["ETag"]


def test_filters_apply(recipe_nginx: Nginx) -> None:
    _, _, body = _get(recipe_nginx.port, QUERIES[0])
    doc = json.loads(body)
    assert doc["limit"] == 3 and len(doc["results"]) == 3 and doc["total"] > 3
    assert all(r["baseline"] == "stable_diffusion_xl" for r in doc["results"])


@pytest.mark.parametrize("file", [SEARCH_FILE, search_file("image_generation"), search_file("clip")])
def test_default_pages_stay_static(recipe_nginx: Nginx, service: int, site_dir: Path, file: str) -> None:
    status, headers, body = _get(recipe_nginx.port, "/" + file[: -len(".json")])
    assert status == 200 and body == (site_dir / file).read_bytes()
    assert any(k == "etag" for k, _ in headers)  # the static file (the service sends no ETag)
    # the static default page is the service's own answer without parameters, byte for byte
    assert _get(service, "/" + file[: -len(".json")])[2] == body
    assert [v for k, v in headers if k == "access-control-allow-origin"] == ["*"]
    # and the rest of the site is untouched by the recipe
    status, _, body = _get(recipe_nginx.port, "/api/model_references/v2/clip")
    assert status == 200 and body == (site_dir / "api/model_references/v2/clip.json").read_bytes()
