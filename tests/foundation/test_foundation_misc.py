"""The repository's own data and schemas: bundled data builds a complete site, schemas are current."""

from __future__ import annotations

import json
from pathlib import Path

from builder.categories import CATEGORIES, LEGACY
from builder.records import SCHEMA_HINT, load, schema_hint
from builder.schemas import all_schemas, render
from builder.site.build import build
from tests.helpers import ROOT, run_hmr


def test_committed_schemas_are_generated_ones() -> None:
    for name, schema in all_schemas().items():
        path = ROOT / "schemas" / name
        assert path.read_text() == render(schema), f"schemas/{name} is stale: run python -m builder.schemas"


def test_schemas_are_valid_draft_2020_12() -> None:
    from jsonschema import Draft202012Validator

    for schema in all_schemas().values():
        Draft202012Validator.check_schema(schema)


def test_bundled_data_validates_without_warnings() -> None:
    r = run_hmr("validate", "--data", str(ROOT / "data"))
    assert r.returncode == 0, r.stderr
    assert "(0 warning(s))" in r.stdout


def test_bundled_data_covers_every_required_category() -> None:
    cats, problems = load(ROOT / "data")
    assert not problems
    assert len(cats["image_generation"].records) >= 3 and len(cats["text_generation"].records) >= 3
    for cat in LEGACY:
        assert cats[cat.name].records, f"no bundled {cat.name} model"


def test_bundled_files_start_with_the_schema_hint() -> None:
    cats, _ = load(ROOT / "data")
    for cd in cats.values():
        for rec in cd.records.values():
            first = rec.path.read_text().splitlines()[0]
            assert first.startswith(SCHEMA_HINT)
            assert first + "\n" == schema_hint(cd.category.name, rec.key), rec.path
            target = (rec.path.parent / first.removeprefix(SCHEMA_HINT)).resolve()
            assert target.is_file(), f"{rec.path}: hint points at {target}"


def test_bundled_data_builds_a_complete_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(ROOT / "data", site)
    v2 = site / "api" / "model_references" / "v2"
    for cat in CATEGORIES:
        assert isinstance(json.loads((v2 / f"{cat.name}.json").read_bytes()), dict)
    for cat in LEGACY:
        for name in ({cat.legacy_file, cat.legacy_json_file} - {None}):
            assert (site / "legacy" / name).stat().st_size > 2, name
    db = json.loads((site / "legacy" / "db.json").read_bytes())
    assert len(db) == 3 * len(json.loads((v2 / "text_generation.json").read_bytes()))


def test_cli_help_lists_the_contract_commands() -> None:
    r = run_hmr("--help")
    for name in ("validate", "import-legacy", "build", "serve"):
        assert name in r.stdout


def test_legacy_conversion_errors_carry_file_and_pointer() -> None:
    import pytest

    from builder.categories import BY_NAME
    from builder.errors import LegacyFormatError, ParseError
    from builder.legacy.convert import records_from_legacy

    esrgan = BY_NAME["esrgan"]
    cases = [
        (b'{"x": {"name": "x", "config": {"files": [], "download": [{"file_name": 1}]}}}', LegacyFormatError,
         "/x/config/download/0/file_name",
         "esrgan.json: x: /config/download/0/file_name: expected a string, got a number"),
        (b"{", ParseError, "", "esrgan.json: not valid JSON ("),
    ]
    for raw, cls, pointer, text in cases:
        with pytest.raises(cls) as e:
            records_from_legacy(esrgan, {"esrgan.json": raw})
        assert (e.value.file, e.value.pointer) == ("esrgan.json", pointer)
        assert str(e.value).startswith(text), str(e.value)
    # a key unsafe as a path is data (stored through builder.records' file-name encoding), not refused
    assert list(records_from_legacy(esrgan, {"esrgan.json": b'{"a/../b": {"name": "x"}}'})[0]) == ["a/../b"]
    assert records_from_legacy(esrgan, {"esrgan.json": b""}) == ({}, {})  # present but empty
    assert records_from_legacy(esrgan, {}) == ({}, None)  # absent
