"""The fuzz targets and their input strategies (see the package docstring)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from hypothesis import strategies as st

from builder.categories import BY_NAME
from builder.errors import HmrError, ParseError

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20)
_yaml_bits = st.sampled_from(["a: 1\n", "- x\n", "&a [1]\n", "*a\n", "!!int ''\n", "? [1]\n: 2\n", "{", "}", "[", "]",
                              "<<: {}\n", ".inf", ".nan", "2024-01-01", "'\\ud800'", '"\\ud800"', "\t", ": ", "---\n",
                              "name: x\n", "config: null\n", "  ", "\n", "%YAML 1.1\n", "!!python/none ''\n"])
#: text that is mostly almost-valid: JSON of random values, YAML fragments glued together, raw bytes
texts = (_json_values.map(lambda v: json.dumps(v, allow_nan=True))
         | st.lists(_yaml_bits | st.text(max_size=8), max_size=12).map("".join)
         | st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")))


def loader_target(text: str, suffix: str) -> None:
    """A data file parses into a publishable value or raises ParseError; the validator never raises."""
    from builder.records import CategoryData, Record
    from builder.validate import record_problems

    try:
        value = __import__("builder.dataparse", fromlist=["parse_file"]).parse_file(Path("f" + suffix), text)
    except ParseError as e:
        assert "\n" not in str(e).strip()
        return
    orjson.dumps(value)  # every accepted value is JSON the build can write
    if isinstance(value, dict):
        for cat in ("image_generation", "text_generation", "esrgan"):
            record_problems(CategoryData(BY_NAME[cat]), Record(cat, "k", Path("k.yaml"), value))


#: a plausible legacy image record, which the strategy below spoils one field at a time
_LEGACY_BASE = {"name": "M", "baseline": "stable_diffusion_1", "type": "ckpt", "nsfw": False, "inpainting": False,
                "config": {"files": [{"path": "m.ckpt"}],
                           "download": [{"file_name": "m.ckpt", "file_path": "", "file_url": "https://x.org/m.ckpt"}]}}
_odd = _json_values | st.sampled_from([None, [], {}, ["a"], "\ud800", float("inf"), 1 << 64, "", "\n"])


def _spoil(change: tuple[str, Any]) -> dict:
    import copy

    doc = copy.deepcopy(_LEGACY_BASE)
    where, value = change
    if where == "config.files.0.path":
        doc["config"]["files"][0]["path"] = value
    elif where == "config.download.0.file_name":
        doc["config"]["download"][0]["file_name"] = value
    elif where == "config.download":
        doc["config"]["download"] = value
    else:
        doc[where] = value
    return {"M": doc}


legacy_records = st.tuples(st.sampled_from(["config", "name", "baseline", "type", "nsfw", "config.download",
                                            "config.files.0.path", "config.download.0.file_name"]), _odd).map(_spoil)


def legacy_json_target(value: Any) -> None:
    """A legacy JSON file converts or is refused with an HmrError (one line)."""
    from builder.legacy.convert import records_from_legacy

    cat = BY_NAME["image_generation"]
    try:
        records_from_legacy(cat, {cat.legacy_file: json.dumps(value, allow_nan=True).encode()})
    except HmrError:
        return


_cells = st.text(max_size=12) | st.sampled_from(["", "\n", "inf", "nan", "1e400", "-1", "7B", '{"n": 1}', "{", "\ud800"])


def legacy_csv_target(rows: list[list[str]]) -> None:
    """A models.csv converts or is refused with an HmrError."""
    import csv
    import io

    from builder.legacy.convert import records_from_legacy

    buf = io.StringIO()
    header = ["name", "parameters_bn", "display_name", "url", "baseline", "description", "style", "tags",
              "instruct_format", "settings"]
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    try:
        raw = buf.getvalue().encode("utf-8")
    except UnicodeEncodeError:
        return
    try:
        records_from_legacy(BY_NAME["text_generation"], {"models.csv": raw})
    except HmrError:
        return


def manifest_target(raw: bytes) -> None:
    """The client's manifest parser accepts or raises its TrustError, nothing else."""
    from builder.errors import TrustError
    from builder.replica.trust import parse_manifest

    try:
        parse_manifest(raw)
    except TrustError:
        return


def state_target(raw: bytes) -> None:
    """The client's persisted state reads as a state, whatever the bytes (damaged means absent)."""
    from builder.replica.state import State

    State.from_json(raw).info(0.0)


def request_target(target: str) -> None:
    """Any request target maps to an object key or to None; never an exception, never a key with `..`
    that could name a file outside the table."""
    from builder.routes import query_variant
    from builder.site.serve import request_key

    key = request_key(target)
    if key is not None and "?" in target:
        query_variant(key, target.split("?", 1)[1])


_manifests = (_json_values.map(lambda v: json.dumps(v, allow_nan=True).encode())
              | st.fixed_dictionaries({"schema_version": _json_values, "generation": _json_values,
                                       "built_at": _json_values, "source_commit": _json_values,
                                       "files": st.dictionaries(st.text(max_size=10), _json_values, max_size=3)})
              .map(lambda d: json.dumps(d, allow_nan=True).encode())
              | st.binary(max_size=100))
_states = (st.fixed_dictionaries({"version": st.integers(0, 3) | _json_values},
                                 optional={"sources": _json_values, "copies": _json_values, "served": _json_values})
           .map(lambda d: json.dumps(d, allow_nan=True).encode()) | st.binary(max_size=100))
_targets_text = st.text(max_size=40) | st.sampled_from(["/%2e%2e/", "/%00", "/%ff", "http://x/a?b", "//a", "/a?include_group=true"])

#: name -> (function, strategy of its keyword arguments)
TARGETS: dict[str, tuple[Callable[..., None], Any]] = {
    "loaders": (loader_target, st.fixed_dictionaries({"text": texts, "suffix": st.sampled_from([".yaml", ".json"])})),
    "legacy_json": (legacy_json_target, st.fixed_dictionaries({"value": legacy_records | _json_values})),
    "legacy_csv": (legacy_csv_target, st.fixed_dictionaries({"rows": st.lists(st.lists(_cells, min_size=10,
                                                                                       max_size=10), max_size=3)})),
    "manifest": (manifest_target, st.fixed_dictionaries({"raw": _manifests})),
    "state": (state_target, st.fixed_dictionaries({"raw": _states})),
    "serve": (request_target, st.fixed_dictionaries({"target": _targets_text})),
}
