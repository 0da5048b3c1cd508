"""Fixtures of the API tests: running the existing library (8.6.2) over the same inputs as ours."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Run862 = Callable[[str, Any], Any]


@pytest.fixture(scope="session")
def run_862(client_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Run862:
    """`run_862(script, value)`: runs `script` in the 8.6.2 venv with `value` as the JSON global `DATA`;
    the script assigns the answer to `OUT`, which comes back parsed."""
    work = tmp_path_factory.mktemp("run-862")
    count = [0]

    def run(script: str, value: Any) -> Any:
        count[0] += 1
        src, dst = work / f"in{count[0]}.json", work / f"out{count[0]}.json"
        src.write_text(json.dumps(value))
        prog = ("import json, sys\nfrom loguru import logger\nlogger.remove()\n"
                f"DATA = json.load(open({str(src)!r}))\n{script}\n"
                f"json.dump(OUT, open({str(dst)!r}, 'w'))\n")
        r = subprocess.run([str(client_python), "-c", prog], capture_output=True, text=True, timeout=600,
                           cwd=work, env={"PATH": "/usr/bin:/bin", "HOME": str(work),
                                          "AIWORKER_CACHE_HOME": str(work / "cache")})
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(dst.read_text())

    return run
