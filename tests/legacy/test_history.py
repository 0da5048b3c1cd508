"""The whole upstream history of the legacy files: every version imports, builds and comes back.

Runs every version of both corpus bundles in this one process (`tests.legacy.sweep`; by hand:
`python3 -m tests.legacy.sweep IMAGE_CLONE TEXT_CLONE [LIMIT]` from the repository root). The summary
(versions OK, failures by reason) is printed; every version must pass (KNOWN is empty).
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import CORPUS
from tests.legacy.sweep import sweep

BUNDLES = CORPUS / "legacy" / "history"

#: reason -> how many versions still fail with it: none. Every layout quirk (final newline, CRLF, indent,
#: the CSV's header and columns, repeated names, odd rows, extra or missing cells) is kept in the data
#: (`legacy_layout` in `_category.yaml`, the record's legacy block) and written back by the build.
KNOWN: dict[str, int] = {}


@pytest.fixture(scope="module")
def clones(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both bundles cloned once."""
    root = tmp_path_factory.mktemp("history")
    out = {}
    for name in ("image", "text"):
        bundle = BUNDLES / f"{name}.bundle"
        if not bundle.is_file():
            pytest.skip(f"{bundle} is not in the corpus")
        subprocess.run(["git", "clone", "-q", str(bundle), str(root / name)], check=True)
        out[name] = root / name
    return out


def test_every_version_round_trips(clones: dict[str, Path]) -> None:
    """Each version: import, validate, compile the legacy outputs, compare to the upstream file."""
    result = sweep(clones)
    print(result.summary())
    assert len(result.outcomes) == 374 + 341
    assert dict(Counter(o.reason for o in result.failures)) == KNOWN == {}, result.summary()
