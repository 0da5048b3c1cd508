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

from builder.errors import TextFormatError
from builder.records import json_pointer

CSV_HEADER = ("name", "parameters_bn", "display_name", "url", "baseline", "description", "style", "tags",
              "instruct_format", "settings")
_RAW_CELLS = ("parameters_bn", "tags", "settings")
_PLAIN = ("display_name", "url", "baseline", "description", "style", "instruct_format")
BACKEND_PREFIXES = ("aphrodite/", "koboldcpp/")


def parse_csv(text: str, source: str = "models.csv") -> list[dict[str, str]]:
    """Rows in file order; a repeated name keeps its first position and takes the later row's values."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = tuple(reader.fieldnames or ())
    missing = [c for c in CSV_HEADER if c not in header]
    if missing:
        raise TextFormatError(f"{source}: header lacks column(s) {', '.join(missing)}")
    extra = [c for c in header if c not in CSV_HEADER]
    if extra:
        raise TextFormatError(f"{source}: unknown column(s) {', '.join(extra)}")
    rows: dict[str, dict[str, str]] = {}
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise TextFormatError(f"{source}:{line}: wrong number of cells")
        if not row["name"]:
            raise TextFormatError(f"{source}:{line}: empty name")
        rows[row["name"]] = {c: row[c] for c in CSV_HEADER}
    return list(rows.values())


def write_csv(rows: list[dict[str, str]]) -> str:
    """models.csv as the text repo commits it: QUOTE_MINIMAL, CRLF on every line."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_HEADER, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


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
    except ValueError:
        raise TextFormatError(f"{name}: /parameters_bn: not a number: {row['parameters_bn']!r}",
                              pointer=json_pointer([name, "parameters_bn"])) from None
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
    except ValueError:
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
        row["settings"] = json.loads(row["settings"]) if row["settings"] else {}
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
