"""Property tests of the import quirks: each class survives import -> build -> import unchanged.

URL-like and path-unsafe names, downloads matching no config file, extra (and missing) CSV cells,
repeated names, a missing final newline, CRLF line endings: the built legacy file equals what was
imported (bytes for machine-formatted JSON, rows for models.csv), and importing it again writes no file.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.legacy.convert import legacy_files
from builder.legacy.importer import import_legacy
from builder.load import load_valid

#: names a path cannot hold as they are: URLs, empty and dot segments, backslashes, the marker
UNSAFE = st.one_of(
    st.from_regex(r"https://huggingface\.co/[A-Za-z0-9_-]{1,8}/[A-Za-z0-9_.-]{1,8}", fullmatch=True),
    st.from_regex(r"[a-z]{1,4}(//|/\.\./|\\|/\./)[a-z]{1,4}", fullmatch=True),
    st.from_regex(r"_~[a-z%0-9]{1,6}", fullmatch=True),
)
PLAIN = st.from_regex(r"[a-z]{1,6}/[A-Za-z0-9-]{1,10}", fullmatch=True)
CELL = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _import_build(files: dict[str, bytes]) -> tuple[dict[str, bytes], int]:
    """(the built legacy files, files the second import of the same source wrote)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, data = Path(tmp, "src"), Path(tmp, "data")
        src.mkdir()
        for name, raw in files.items():
            (src / name).write_bytes(raw)
        summary = import_legacy(str(src), data)
        cats, _warnings = load_valid(data)
        built: dict[str, bytes] = {}
        for name in summary.categories:
            built.update(legacy_files(cats[name]))
        for name, raw in built.items():  # what the build writes, imported again: nothing changes
            (src / name).write_bytes(raw)
        again = import_legacy(str(src), data)
        return built, again.written + again.removed


def _rows(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))


@st.composite
def models_csv(draw: st.DrawFn) -> bytes:
    """A models.csv with unsafe names, repeated names, extra and missing cells, either line ending and
    with or without a final newline."""
    names = draw(st.lists(st.one_of(PLAIN, UNSAFE), min_size=1, max_size=6, unique=True))
    names += draw(st.lists(st.sampled_from(names), max_size=2))  # repeated names
    rows = [["name", "parameters_bn", "display_name", "url", "baseline", "description", "style", "tags",
             "instruct_format", "settings"]]
    for name in names:
        row = [name, str(draw(st.integers(1, 400))), "", "", "", draw(CELL), "", "", "", ""]
        shape = draw(st.sampled_from(["full", "extra", "short"]))
        if shape == "extra":
            row += draw(st.lists(CELL, min_size=1, max_size=3))
        elif shape == "short":
            row = row[:draw(st.integers(2, 9))]
        rows.append(row)
    buf = io.StringIO()
    ending = draw(st.sampled_from(["\r\n", "\n"]))
    csv.writer(buf, lineterminator=ending).writerows(rows)
    text = buf.getvalue()
    if draw(st.booleans()):
        text = text.removesuffix(ending)
    return text.encode("utf-8")


@PROPS
@given(models_csv())
def test_models_csv_quirks_round_trip(raw: bytes) -> None:
    built, rewritten = _import_build({"models.csv": raw})
    assert _rows(built["models.csv"]) == _rows(raw)
    assert rewritten == 0


@st.composite
def image_file(draw: st.DrawFn) -> bytes:
    """A utility-model file (esrgan.json, tab layout) with unsafe keys, downloads no config file lists,
    any of the machine layouts."""
    keys = draw(st.lists(st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,10}", fullmatch=True), UNSAFE),
                         min_size=1, max_size=4, unique_by=str.casefold))
    doc = {}
    for i, key in enumerate(keys):
        files = [{"path": f"m{i}.pth", "sha256sum": "a" * 64}]
        downloads = [{"file_name": f"m{i}.pth", "file_path": "", "file_url": "https://example.org/m.pth"}]
        if draw(st.booleans()):  # a download matching no config file
            downloads.append({"file_name": f"extra{i}", "file_path": "", "file_url": "https://example.org/x"})
        doc[key] = {"name": key, "type": "realesrgan", "description": draw(CELL),
                    "config": {"files": files, "download": downloads}}
    indent = draw(st.sampled_from(["\t", 4]))
    text = json.dumps(doc, indent=indent, ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        text += "\n"
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8")


@PROPS
@given(image_file())
def test_image_file_quirks_round_trip(raw: bytes) -> None:
    built, rewritten = _import_build({"esrgan.json": raw})
    assert built["esrgan.json"] == raw
    assert rewritten == 0
