"""The text repo: models.csv rows <-> v2 records, and db.json exactly as the upstream convert.py makes it.

v2 text records keep the CSV-level values (no defaults, no automatic tags). The `legacy:` block keeps
a raw cell only where it differs from what the v2 value prints as (`parameters_bn: " 12"`, a settings
cell's own spacing, a tags cell with spaces); like the image blocks, a raw cell that no longer parses
to the current v2 value is ignored.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import Any

from builder.dataparse import MAX_INT, check_value
from builder.errors import ParseError, TextFormatError
from builder.records import json_pointer

CSV_HEADER = ("name", "parameters_bn", "display_name", "url", "baseline", "description", "style", "tags",
              "instruct_format", "settings")
_RAW_CELLS = ("parameters_bn", "tags", "settings")
_PLAIN = ("display_name", "url", "baseline", "description", "style", "instruct_format")
BACKEND_PREFIXES = ("aphrodite/", "koboldcpp/")


_COUNT = re.compile(r"[1-9][0-9]*")


def parse_csv(text: str, source: str = "models.csv") -> list[dict[str, str]]:
    """The model rows of a models.csv in file order (see `read_csv`; its layout and quirks dropped)."""
    return [row for row, _quirks in read_csv(text, source)[0]]


def read_csv(text: str, source: str = "models.csv") -> tuple[list[tuple[dict[str, str], dict]], dict]:
    """(model rows, each with its row quirks for the legacy block; the `legacy_layout` settings) of a
    models.csv (`hmr validate` reports each quirk kept, with its pointer). Nothing upstream published is refused:

    - a file without a header row (the early `name,count` and `name,billions` files) or with other
      columns keeps them in the layout (`header`, `columns`);
    - a row with more cells than columns keeps the rest (`extra_cells`), one with fewer its count
      (`cells`);
    - a repeated name is the model of its last row (the values upstream's convert.py publishes);
      every earlier row of it, and every row that cannot be read as a model, is kept as it was at
      its position (`extra_rows`).

    Raises:
        TextFormatError: the header names a column models.csv does not have, or one twice.
    """
    table = list(csv.reader(io.StringIO(text, newline="")))
    layout: dict[str, Any] = {}
    if table and table[0][:1] == ["name"]:
        columns = table.pop(0)
        unknown = [c for c in columns if c not in CSV_HEADER]
        if unknown:
            raise TextFormatError(f"{source}: unknown column(s) {', '.join(unknown)}")
        if len(set(columns)) != len(columns):
            raise TextFormatError(f"{source}: a column is named twice")
        if tuple(columns) != CSV_HEADER:
            layout["columns"] = columns
    else:  # the early files: no header, a name and a parameter count (or billions)
        second = [r[1] for r in table if len(r) > 1 and r[1]]
        count = bool(second) and all(_COUNT.fullmatch(c) and int(c) >= 1_000_000 for c in second)
        columns = ["name", "parameters" if count else "parameters_bn"]
        layout["header"] = False
        layout["columns"] = columns
    models: dict[str, tuple[int, dict[str, str], dict]] = {}
    extra: dict[int, list[str]] = {}
    for i, cells in enumerate(table):
        row = cells_to_row(cells, columns)
        # a backend-prefixed copy (the early files list them) is generated, never a model of its own
        why = "not a model" if row is None or not row["name"] or row["name"].startswith(BACKEND_PREFIXES) else None
        if row is not None and why is None:
            try:
                row_to_v2(row)
            except TextFormatError as e:
                why = str(e)
        if row is None or why is not None:
            extra[i] = cells
            continue
        quirks: dict[str, Any] = {}
        if len(cells) > len(columns):
            quirks["extra_cells"] = cells[len(columns):]
        elif len(cells) < len(columns):
            quirks["cells"] = len(cells)
        name = row["name"]
        if name in models:
            extra[models[name][0]] = table[models[name][0]]
            del models[name]
        models[name] = (i, row, quirks)
    if extra:
        layout["extra_rows"] = [{"at": at, "cells": cells} for at, cells in sorted(extra.items())]
    ordered = sorted(models.values(), key=lambda m: m[0])
    return [(row, quirks) for _i, row, quirks in ordered], layout


def cells_to_row(cells: list[str], columns: list[str] | tuple[str, ...]) -> dict[str, str] | None:
    """The full row (every models.csv column, missing ones empty) of a file row, or None when a
    `parameters` count cell is not a count."""
    row = dict.fromkeys(CSV_HEADER, "")
    for col, cell in zip(columns, cells, strict=False):
        if col == "parameters":
            if not _COUNT.fullmatch(cell):
                return None
            row["parameters_bn"] = format_bn(int(cell))
        else:
            row[col] = cell
    return row


def row_cells(row: dict[str, str], quirks: dict | None, columns: list[str] | tuple[str, ...]) -> list[str]:
    """The file row of a model row: its cells in the file's columns, with the row quirks applied."""
    cells = [str(parameters_of(row["parameters_bn"])) if c == "parameters" else row[c] for c in columns]
    quirks = quirks or {}
    extra = quirks.get("extra_cells")
    if isinstance(extra, list):
        cells += [str(c) for c in extra]
    n = quirks.get("cells")
    if isinstance(n, int) and 0 < n < len(cells):
        cells = cells[:n]
    return cells


def file_rows(rows: list[tuple[dict[str, str], dict | None]], layout: dict | None) -> list[list[str]]:
    """Every data row of models.csv, in file order: the model rows (in order) fill the positions the
    layout's `extra_rows` do not take."""
    layout = layout or {}
    columns = layout.get("columns") or CSV_HEADER
    extra = {r["at"]: [str(c) for c in r["cells"]] for r in layout.get("extra_rows") or ()
             if isinstance(r, dict) and isinstance(r.get("at"), int) and isinstance(r.get("cells"), list)}
    models = iter(rows)
    out: list[list[str]] = []
    at = 0
    while True:
        if at in extra:
            out.append(extra.pop(at))
        else:
            nxt = next(models, None)
            if nxt is None:
                break
            out.append(row_cells(nxt[0], nxt[1], columns))
        at += 1
    out += [extra[k] for k in sorted(extra)]  # rows kept beyond the models left (some were removed)
    return out


def db_rows(table: list[list[str]], layout: dict | None) -> list[dict[str, str]]:
    """The rows upstream's convert.py turns into db.json: every file row that reads as a model, in
    file order (a repeated name is overwritten in place by its later rows, as there)."""
    columns = (layout or {}).get("columns") or CSV_HEADER
    out = []
    for cells in table:
        row = cells_to_row(cells, columns)
        if row is None or not row["name"]:
            continue
        try:
            row_to_v2(row)
        except TextFormatError:
            continue
        out.append(row)
    return out


def write_csv(rows: list[dict[str, str]] | list[list[str]], layout: dict | None = None) -> str:
    """models.csv as the text repo commits it: QUOTE_MINIMAL, CRLF on every line; with a layout, the
    imported file's header (or none), columns, line ending and final newline. `rows` are model rows
    (dicts) or the file rows of `file_rows`."""
    layout = layout or {}
    columns = layout.get("columns") or list(CSV_HEADER)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n" if layout.get("line_ending") == "lf" else "\r\n")
    if layout.get("header", True):
        writer.writerow(columns)
    for r in rows:
        writer.writerow(row_cells(r, None, columns) if isinstance(r, dict) else r)
    out = buf.getvalue()
    if layout.get("final_newline") is False:
        out = out.removesuffix("\r\n" if layout.get("line_ending") != "lf" else "\n")
    return out


def format_bn(parameters: int) -> str:
    """Billions, minimally: 3000000000 -> "3", 560000000 -> "0.56".

    The text repo reads the cell back as `int(float(cell) * 1e9)` (truncating), so for counts where the
    nearest float lands just below, the next float up is written: the cell always reads back exactly.
    """
    x = parameters / 1e9
    for _ in range(8):
        if int(x * 1_000_000_000) >= parameters:
            break
        x = math.nextafter(x, math.inf)
    s = repr(x)
    return s[:-2] if s.endswith(".0") else s


def parameters_of(bn: str) -> int:
    """The parameter count of a `parameters_bn` cell, read as the text repo reads it (truncating)."""
    return int(float(bn) * 1_000_000_000)


def split_tags(cell: str) -> list[str]:
    """The tags of a comma-separated `tags` cell, stripped, empty ones dropped."""
    return [t.strip() for t in cell.split(",") if t.strip()]


def row_to_v2(row: dict[str, str]) -> tuple[dict, dict]:
    """(v2 fields, legacy block) of one CSV row."""
    name = row["name"]
    try:
        parameters = parameters_of(row["parameters_bn"])
    except (ValueError, OverflowError):  # "abc", "nan"; "inf"
        raise TextFormatError(f"{name}: /parameters_bn: not a finite number: {row['parameters_bn']!r}",
                              pointer=json_pointer([name, "parameters_bn"])) from None
    if abs(parameters) > MAX_INT:
        raise TextFormatError(f"{name}: /parameters_bn: {row['parameters_bn']!r} billion is beyond 2^53 parameters "
                              "(JSON consumers lose it)", pointer=json_pointer([name, "parameters_bn"]))
    v2: dict[str, Any] = {"name": name}
    if row["description"]:
        v2["description"] = row["description"]
    if row["baseline"]:
        v2["baseline"] = row["baseline"]
    v2["parameters"] = parameters
    for f in ("style", "display_name", "url"):
        if row[f]:
            v2[f] = row[f]
    tags = split_tags(row["tags"])
    if tags:
        v2["tags"] = tags
    if row["instruct_format"]:
        v2["instruct_format"] = row["instruct_format"]
    if row["settings"].strip():
        try:
            settings = json.loads(row["settings"])
        except ValueError as e:
            raise TextFormatError(f"{name}: /settings: invalid JSON ({e})", pointer=json_pointer([name, "settings"])) from None
        if not isinstance(settings, dict):
            raise TextFormatError(f"{name}: /settings: not a JSON object", pointer=json_pointer([name, "settings"]))
        try:  # NaN, Infinity, huge integers: JSON text Python reads but the build cannot publish
            check_value(settings, [name, "settings"])
        except ParseError as e:
            raise TextFormatError(f"{name}: {e.pointer[len(json_pointer([name])):]}: {e.message}",
                                  pointer=e.pointer) from None
        v2["settings"] = settings
    block: dict[str, str] = {}
    derived = v2_to_row(v2, None)
    for cell in _RAW_CELLS:
        if derived[cell] != row[cell]:
            block[cell] = row[cell]
    if v2_to_row(v2, block) != row:
        raise TextFormatError(f"{name}: row cannot be represented losslessly", pointer=json_pointer([name]))
    return v2, block


def _raw_holds(cell: str, raw: Any, v2: dict) -> bool:
    if not isinstance(raw, str):
        return False
    try:
        if cell == "parameters_bn":
            return parameters_of(raw) == v2.get("parameters")
        if cell == "tags":
            return split_tags(raw) == list(v2.get("tags") or [])
        if cell == "settings":
            return (json.loads(raw) if raw.strip() else None) == v2.get("settings")
    except (ValueError, OverflowError):
        return False
    return False


def v2_to_row(v2: dict, block: dict | None) -> dict[str, str]:
    """The models.csv row of a v2 text record."""
    block = block or {}
    settings = v2.get("settings")
    row = {
        "name": v2["name"],
        "parameters_bn": format_bn(int(v2.get("parameters", v2.get("parameters_count", 0)))),
        "display_name": v2.get("display_name") or "",
        "url": v2.get("url") or "",
        "baseline": v2.get("baseline") or "",
        "description": v2.get("description") or "",
        "style": v2.get("style") or "",
        "tags": ",".join(v2.get("tags") or []),
        "instruct_format": v2.get("instruct_format") or "",
        "settings": json.dumps(settings, ensure_ascii=False) if settings is not None else "",
    }
    for cell in _RAW_CELLS:
        if cell in block and _raw_holds(cell, block[cell], v2):
            row[cell] = block[cell]
    return row


_SPACES = re.compile(r" +")


def auto_display_name(model_name: str) -> str:
    """The display name db.json gives a model without one: `-` and `_` become single spaces."""
    return _SPACES.sub(" ", model_name.replace("-", " ").replace("_", " ")).strip()


def db_json(rows: list[dict[str, str]], defaults: dict, allowed_settings: set[str] | None) -> dict[str, dict]:
    """db.json of the text repo, computed the way its convert.py does (key order included)."""
    data: dict[str, dict] = {}
    for raw in rows:
        row: dict[str, Any] = dict(raw)
        name = row.pop("name")
        model_name = name.split("/")[1] if "/" in name else name
        params_f = float(row.pop("parameters_bn"))
        row["parameters"] = int(params_f * 1_000_000_000)
        tags = {t.strip() for t in row["tags"].split(",")} if row["tags"] else set()
        if row.get("style"):
            tags.add(row["style"])
        tags.add(format(round(params_f, 0), ".0f") + "B")  # round() is half-to-even, as upstream
        row["tags"] = sorted(tags)
        # a cell of only whitespace holds no settings (as row_to_v2 reads it)
        row["settings"] = json.loads(row["settings"]) if row["settings"].strip() else {}
        if allowed_settings is not None:
            bad = [k for k in row["settings"] if k not in allowed_settings]
            if bad:
                raise TextFormatError(f"{name}: /settings/{bad[0]}: not a generation parameter",
                                      pointer=json_pointer([name, "settings", bad[0]]))
        if not row.get("display_name"):
            row["display_name"] = auto_display_name(model_name)
        row = {k: v for k, v in row.items() if v}
        for key in (name, "aphrodite/" + name, "koboldcpp/" + model_name):
            data[key] = {"name": key, "model_name": model_name, **defaults, **row}
    return data
