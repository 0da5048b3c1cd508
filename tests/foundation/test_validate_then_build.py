"""The invariant of the loaders and the validator: whatever `hmr validate` accepts, `hmr build` builds.

A property over random records (random values, JSON numbers at the edges, odd strings) written as
YAML or JSON into a copy of tests/fixtures/valid/: validation either refuses them or the build of
the same data succeeds. In-process (the CLI wraps the same two calls) to keep examples cheap.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import FIXTURES

#: one valid record of each category (its fixture), the start of every example
BASES = {c: yaml.safe_load(next((FIXTURES / "valid" / c).rglob("*.yaml")).read_text())
         for c in ("image_generation", "esrgan", "text_generation")}
FIELDS = [*BASES["image_generation"], "requirements", "tags", "trigger", "showcases", "min_bridge_version", "finetune_series",
          "metadata", "parameters", "settings", "legacy", "size_on_disk_bytes"]

_scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.sampled_from([0, 1, -1, (1 << 53), (1 << 53) + 1, -(1 << 63), (1 << 64) + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "\n", "yes", "2024-01-01", "~", "https://x.org/a", "a/b", "\ud800", "\x00", "é"]),
)
values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


_odd_text = st.text(max_size=10) | st.sampled_from(["", "\n", " x ", "\u212b", "A\u030a", "<script>", "\ud83d\ude00",
                                                  "\ud800", "\x00", "https://a.b/c?d=e&f", "../x", "%2e"])
_number = st.integers(min_value=-(1 << 60), max_value=1 << 60) | st.floats() | st.sampled_from([1 << 53, -(1 << 53)])
_flat = st.one_of(st.booleans(), _number, _odd_text)
#: values of the right type for each field (with edge content): most reach the build
PLAUSIBLE = {
    "description": _odd_text, "version": _odd_text, "style": st.sampled_from(["generalist", "anime", None]),
    "tags": st.lists(_odd_text, max_size=3), "trigger": st.lists(_odd_text, max_size=3),
    "requirements": st.dictionaries(_odd_text, _flat | st.lists(_flat, max_size=3), max_size=3),
    "size_on_disk_bytes": _number, "min_bridge_version": _number, "parameters": _number,
    "homepage": st.sampled_from(["https://x.org/", "https://x.org/\u00e9", "https://x"]),
    "settings": st.dictionaries(st.sampled_from(["n", "temperature", "stop_sequence", "x"]), _flat, max_size=3),
    "legacy": st.fixed_dictionaries({}, optional={"type": _odd_text, "download_all": st.booleans(),
                                                  "features_not_supported": st.lists(_odd_text, max_size=2)}),
    "config": st.fixed_dictionaries({"download": st.lists(st.fixed_dictionaries(
        {"file_name": _odd_text, "file_url": st.sampled_from(["", "https://x.org/a"])},
        optional={"size_bytes": _number, "sha256sum": st.sampled_from(["FIXME", "0" * 64])}), max_size=2)}),
}
plausible = st.dictionaries(st.sampled_from(sorted(PLAUSIBLE)), st.none(), max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: PLAUSIBLE[k] for k in keys}))


def _text(data: dict[str, Any], as_json: bool) -> str | None:
    try:
        if as_json:
            return json.dumps(data, ensure_ascii=False)
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    except (ValueError, TypeError, yaml.YAMLError, UnicodeEncodeError):
        return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(category=st.sampled_from(["image_generation", "esrgan", "text_generation"]),
       changes=plausible | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), values, max_size=3),
       as_json=st.booleans())
def test_what_validate_accepts_build_builds(tmp_path_factory: Any, category: str, changes: dict[str, Any],
                                            as_json: bool) -> None:
    from builder.load import validate
    from builder.site.build import build

    work = tmp_path_factory.mktemp("prop")
    data = work / "data"
    shutil.copytree(FIXTURES / "valid", data)
    record = {**BASES[category], "name": "Prop Model", **changes}
    text = _text(record, as_json)
    if text is None:
        return
    path = data / category / ("Prop Model.json" if as_json else "Prop Model.yaml")
    try:
        path.write_text(text, encoding="utf-8")
    except UnicodeEncodeError:
        return
    report = validate(data)
    if report.ok:
        build(data, work / "site")  # must not raise
    shutil.rmtree(work)


def test_the_property_reaches_both_outcomes(tmp_path: Path) -> None:
    """The base record builds and one with a too-large integer is refused: the property is not vacuous."""
    from builder.load import validate

    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "valid", data)
    (data / "esrgan" / "Prop.json").write_text(json.dumps({"name": "Prop", "size_on_disk_bytes": 1 << 60}))
    assert not validate(data).ok
    (data / "esrgan" / "Prop.json").write_text(json.dumps({"name": "Prop", "size_on_disk_bytes": 1 << 40}))
    assert validate(data).ok
