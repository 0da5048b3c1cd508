"""The client-only install: the wheel without extras reads the model reference, and importing or using
the client never imports the builder, the publishing code or their dependencies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson

from builder.routes import v2_file
from tests.packaging.conftest import Served, Venv, run

#: what the client must never import (builder.legacy is only for the GitHub fallback, disabled here)
FORBIDDEN = ("builder.site", "builder.contrib", "builder.publish", "builder.legacy", "builder.api",
             "builder.validate", "boto3", "botocore", "github", "jinja2", "yaml", "jsonschema", "fastjsonschema")
#: the extras' distributions, absent from a client-only install
EXTRAS_ONLY = ("yaml", "jsonschema", "fastjsonschema", "jinja2", "boto3", "github")

PROBE = r"""
import importlib.util, json, sys, time
t = time.perf_counter()
import builder.replica
import_s = time.perf_counter() - t
after_import = sorted(sys.modules)
from builder.replica import ReplicaClient
with ReplicaClient() as client:
    records = client.get_model_reference("image_generation")
print(json.dumps({
    "file": builder.replica.__file__, "import_s": import_s, "after_import": after_import,
    "after_read": sorted(sys.modules), "keys": sorted(records),
    "installed": {m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]},
}))
"""


def client_env(served: Served, home: Path) -> dict[str, str]:
    """The client pointed at the served site only (no GitHub fallback), with its own cache."""
    return {"HORDE_MODEL_REFERENCE_PRIMARY_API_URL": f"{served.url}/api",
            "HORDE_MODEL_REFERENCE_ENABLE_GITHUB_FALLBACK": "false", "AIWORKER_CACHE_HOME": str(home)}


def imported(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def served_keys(served: Served) -> list[str]:
    return sorted(orjson.loads((served.site / v2_file("image_generation")).read_bytes()))


def test_the_client_only_install_reads_a_category_without_the_builder(client_venv: Venv, served: Served,
                                                                       tmp_path: Path) -> None:
    r = run([client_venv.python, "-c", PROBE, *EXTRAS_ONLY], cwd=tmp_path, **client_env(served, tmp_path / "cache"))
    out = json.loads(r.stdout)
    assert Path(out["file"]).is_relative_to(client_venv.root)
    assert out["installed"] == dict.fromkeys(EXTRAS_ONLY, False), "an extra's dependency is in the base install"
    assert out["keys"] == served_keys(served) and "Deliberate" in out["keys"]
    for when in ("after_import", "after_read"):
        assert [m for m in FORBIDDEN if imported(out[when], m)] == [], when


def test_the_client_imports_none_of_the_builder_where_everything_is_installed(served: Served, tmp_path: Path) -> None:
    # this environment has every extra: here an import of jinja2, yaml or boto3 would show
    env = {**client_env(served, tmp_path / "cache"), "PYTHONNOUSERSITE": "1"}
    r = subprocess.run([sys.executable, "-c", PROBE, *EXTRAS_ONLY], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert all(out["installed"].values())
    assert out["keys"] == served_keys(served)
    for when in ("after_import", "after_read"):
        assert [m for m in FORBIDDEN if imported(out[when], m)] == [], when


def test_hmr_get_works_from_the_client_only_install(client_venv: Venv, served: Served, tmp_path: Path) -> None:
    env = client_env(served, tmp_path / "cache")
    r = run([client_venv.hmr, "get", "image_generation", "--model", "Deliberate"], cwd=tmp_path, **env)
    assert json.loads(r.stdout) == orjson.loads((served.site / v2_file("image_generation")).read_bytes())["Deliberate"]
    assert run([client_venv.hmr, "-V"], cwd=tmp_path).stdout.startswith("hmr ")


PUBLIC_NAME_PROBE = r"""
import json, sys
import horde_model_replica
after_import = sorted(sys.modules)
import builder.replica
from horde_model_replica import *
print(json.dumps({"file": horde_model_replica.__file__, "after_import": after_import,
                  "same": horde_model_replica.ReplicaClient is builder.replica.ReplicaClient,
                  "names": sorted(horde_model_replica.__all__), "client_names": sorted(builder.replica.__all__),
                  "star": sorted(n for n in builder.replica.__all__ if n in globals())}))
"""


def test_the_public_import_name_is_the_client_and_nothing_else(client_venv: Venv, tmp_path: Path) -> None:
    # ADR 0006: integrators import `horde_model_replica`; it is the client itself, every public name of it
    r = run([client_venv.python, "-c", PUBLIC_NAME_PROBE], cwd=tmp_path)
    out = json.loads(r.stdout)
    assert Path(out["file"]).is_relative_to(client_venv.root)
    assert out["same"] and out["names"] == out["client_names"] == out["star"]
    assert "ReplicaClient" in out["names"]
    assert [m for m in FORBIDDEN if imported(out["after_import"], m)] == []
