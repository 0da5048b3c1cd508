"""Helpers of the site tests (tests/site/): the CLI, a raw HTTP client, nginx on a free port, the probe
that runs the existing client (horde-model-reference 8.6.2) in its own Python 3.12 venv, and a PNG
header reader for the screenshots. The session fixtures built on them are in tests/conftest.py.

Every real component is required: a missing nginx or Python 3.12 fails the tests (DESIGN §7), it
never skips them.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import CORPUS, HMR, LEGACY_CURRENT, REFERENCE_V2, ROOT, run_hmr  # noqa: F401 - re-exported

MANIFEST = "api/model_references/v2/manifest.json"
CLIENT_VERSION = "8.6.2"
CLIENT_PYTHON = "3.12.1"
#: the categories the existing client requests, in its enum order
CLIENT_CATEGORIES = (
    "blip", "clip", "codeformer", "controlnet", "controlnet_annotator", "esrgan", "gfpgan", "safety_checker",
    "image_generation", "text_generation", "video_generation", "audio_generation", "miscellaneous", "lora", "ti",
)

NOT_FOUND = {"detail": "Not Found"}
#: request targets that try to leave the site directory (or reach its build-private files)
TRAVERSALS = [
    "/../../../../etc/passwd",
    "/api/../../etc/passwd",
    "/api/model_references/v2/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/api/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/api/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/..%5c..%5cetc%5cpasswd",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/etc/passwd",
    "http://127.0.0.1/../../etc/passwd",
    "/api/model_references/v2/clip%00.json",
    "/api/model_references/v2/clip.json/..",
    "/api/model_references/v2/./clip",
    "/api/%c0%ae%c0%ae/etc/passwd",
    "/_config/nginx.conf",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


class Http:
    """A keep-alive HTTP/1.1 client that sends the request target exactly as given (no normalisation),
    so traversal attempts reach the server as written."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def request(self, target: str, method: str = "GET", headers: dict[str, str] | None = None) -> Response:
        for attempt in (1, 2):
            try:
                self.conn.request(method, target, headers=headers or {})
                r = self.conn.getresponse()
                body = r.read()
                return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, body)
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest):
                # the server may close an idle keep-alive connection: reconnect once
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get_key(self, key: str, method: str = "GET", headers: dict[str, str] | None = None) -> Response:
        return self.request("/" + quote(key, safe="/"), method, headers)

    def close(self) -> None:
        self.conn.close()


def load_manifest(site: Path) -> dict:
    return json.loads((site / MANIFEST).read_bytes())


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header, which must be a well-formed IHDR chunk first."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", png[8:16])
    assert kind == b"IHDR" and length == 13, "a PNG starts with its IHDR chunk"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


#: Pixel statistics of a PNG (or of the box [x, y, w, h] of it), decoded by the browser itself (the
#: standard library has no PNG decoder): size, number of distinct colours, the most common colour and
#: its share of the pixels. Run it in a page of its own, so the page under test is not touched.
PNG_STATS_JS = """async ([b64, box]) => {
  const img = new Image();
  img.src = 'data:image/png;base64,' + b64;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const [x, y, w, h] = box || [0, 0, canvas.width, canvas.height];
  const d = ctx.getImageData(x, y, w, h).data;
  const counts = new Map();
  for (let i = 0; i < d.length; i += 4) {
    const k = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  let top = 0, key = 0;
  for (const [k, n] of counts) if (n > top) { top = n; key = k; }
  return {width: img.naturalWidth, height: img.naturalHeight, colours: counts.size,
          dominant: `rgb(${key >> 16}, ${(key >> 8) & 255}, ${key & 255})`, share: top / (d.length / 4)};
}"""


# ---------------------------------------------------------------------------------------------------
# nginx


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not found:
        pytest.fail("nginx is not installed (Debian package `nginx`): the CDN stand-in of the tests")
    return found


class Nginx:
    """nginx in the foreground on a free loopback port, serving `site` with the build's generated config."""

    def __init__(self, site: Path, prefix: Path):
        self.site, self.prefix = site, prefix
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        for d in ("conf", "logs", "tmp"):
            (prefix / d).mkdir(parents=True, exist_ok=True)
        # As root, nginx's workers run as `nobody`, which may not read a tmp tree: keep them root.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (prefix / "conf" / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid logs/nginx.pid;\nerror_log logs/error.log warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "    access_log logs/access.log;\n"
            "    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;\n"
            "    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;\n"
            "    server {\n"
            f"        listen 127.0.0.1:{self.port};\n"
            f'        root "{site}";\n'
            f'        include "{site}/_config/nginx.conf";\n'
            "    }\n"
            "}\n"
        )

    def _args(self) -> list[str]:
        return [nginx_binary(), "-p", str(self.prefix), "-e", "logs/error.log", "-c", "conf/nginx.conf"]

    def check_config(self) -> subprocess.CompletedProcess:
        return subprocess.run([*self._args(), "-t"], capture_output=True, text=True, timeout=30)

    def start(self) -> Nginx:
        t = self.check_config()
        if t.returncode != 0:
            pytest.fail(f"nginx -t rejects the generated config: {t.stderr.strip()}")
        self.proc = subprocess.Popen([*self._args(), "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        try:
            wait_for_port(self.port, self.proc)
        except RuntimeError as e:
            self.stop()
            pytest.fail(f"nginx did not start: {e}; {self.error_log()}")
        return self

    def error_log(self) -> str:
        p = self.prefix / "logs" / "error.log"
        return p.read_text() if p.exists() else ""

    def access_log(self) -> list[str]:
        p = self.prefix / "logs" / "access.log"
        return p.read_text().splitlines() if p.exists() else []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()  # else a ResourceWarning (an error in the suite) when it is collected


# ---------------------------------------------------------------------------------------------------
# the existing client, horde-model-reference 8.6.2 (Python >= 3.12)


def client_venv_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "hmr-test-venvs" / f"hmr-{CLIENT_VERSION}"


#: Loads every category through the client's public API and prints one JSON line: per category the
#: model names (None when the client has no data), and the backend's own counters.
CLIENT_PROBE = r"""
import json
from horde_model_reference import MODEL_REFERENCE_CATEGORY as C, ModelReferenceManager

manager = ModelReferenceManager()
refs = manager.get_all_model_references_or_none()
names = {c.value: (None if refs.get(c) is None else sorted(refs[c])) for c in C}
one = manager.get_model_reference(C.image_generation)
stats = manager.backend.get_statistics()
print("PROBE " + json.dumps({"names": names, "stats": stats, "backend": type(manager.backend).__name__,
                             "typed_image_records": len(one)}))
"""


def run_client(py: Path, api_base: str, cache_home: Path) -> dict:
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("HORDE_MODEL_REFERENCE_"):
            del env[k]  # only what this test sets
    env.update({
        "HORDE_MODEL_REFERENCE_PRIMARY_API_URL": api_base,
        "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "false",
        "HORDE_MODEL_REFERENCE_REPLICATE_MODE": "REPLICA",
        "AI_HORDE_TESTING": "1",  # the client forbids unknown fields
        "AIWORKER_CACHE_HOME": str(cache_home),
    })
    env.pop("PYTHONPATH", None)
    cache_home.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([str(py), "-c", CLIENT_PROBE], capture_output=True, text=True, env=env, timeout=300,
                       cwd=cache_home)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("PROBE ")]
    assert r.returncode == 0 and lines, f"client failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}"
    return json.loads(lines[-1][len("PROBE "):])
