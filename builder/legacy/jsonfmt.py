"""Byte layouts of the legacy JSON files (see formats.md §3)."""

from __future__ import annotations

import json
from typing import Any


def dumps_legacy(value: Any, layout: str | None) -> bytes:
    """`json.dumps(indent=4)` + LF (stable_diffusion.json, db.json) or tab-indented + LF (the utility files).

    ensure_ascii stays on: the upstream files escape non-ASCII as `\\u2014`.
    """
    indent: int | str = "\t" if layout == "tab" else 4
    return (json.dumps(value, indent=indent) + "\n").encode("ascii")


def dumps_settings(value: Any) -> bytes:
    """The text repo's defaults.json / generation_params.json layout."""
    return (json.dumps(value, indent=2) + "\n").encode("ascii")
