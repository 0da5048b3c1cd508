"""Validation of loaded records: JSON Schema (every error) plus semantic checks.

Each problem is reported as `FILE:JSON_POINTER: message`. Schema checking has a fast path: a compiled
validator (fastjsonschema) answers "valid?" for the common case; only an invalid record goes through
jsonschema, which lists every error. Both run the same committed schemas (`builder.schemas`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

from builder.categories import KNOWN_BASELINES, LIST_AT_MOST, Category, close_to, did_you_mean
from builder.errors import Problem
from builder.legacy.text import BACKEND_PREFIXES
from builder.records import CategoryData, Record, json_pointer
from builder.schemas import category_settings_schema, record_schema

_SHA256 = re.compile(r"^([0-9a-fA-F]{64}|FIXME)$")


def _without_formats(node: Any) -> Any:
    """The schema minus `format` keywords: annotations in 2020-12, and not something generated code can hold."""
    if isinstance(node, dict):
        return {k: _without_formats(v) for k, v in node.items() if k != "format"}
    if isinstance(node, list):
        return [_without_formats(v) for v in node]
    return node


@cache
def _fast_validator(category: str | None) -> Callable[[Any], Any]:
    """A compiled validator. Generating and compiling its code costs ~40 ms per category, so the compiled
    code object is kept in the disk memo (marshal; the memo's key covers the schemas' code and Python)."""
    import marshal

    from builder.memo import memoized

    def make() -> bytes:
        import fastjsonschema

        from builder.categories import BY_NAME

        full = category_settings_schema() if category is None else record_schema(BY_NAME[category])
        schema = _without_formats({k: v for k, v in full.items() if k not in ("$schema", "$id")})
        # fastjsonschema checks draft-07; these schemas use no keyword whose meaning differs from 2020-12.
        return marshal.dumps(compile(fastjsonschema.compile_to_code(schema), f"<schema {category}>", "exec"))

    try:
        code_obj = marshal.loads(memoized(f"validator-{category or '_category'}", [], make))
    except (ValueError, EOFError, TypeError):
        code_obj = marshal.loads(make())  # a damaged memo only costs time
    namespace: dict[str, Any] = {}
    exec(code_obj, namespace)  # noqa: S102 - code generated from our own schemas
    return namespace["validate"]


@cache
def _full_validator(category: str | None) -> Any:
    from jsonschema import Draft202012Validator

    from builder.categories import BY_NAME

    schema = category_settings_schema() if category is None else record_schema(BY_NAME[category])
    return Draft202012Validator(schema)


def _message(error: Any, category: str | None = None) -> str:
    field = error.absolute_path[-1] if error.absolute_path else None
    v = error.validator
    if v == "pattern":
        if field == "sha256sum":
            return f"sha256sum must be 64 hex digits or FIXME, not {error.instance!r}"
        return f"URL must use https://, not {error.instance!r}"
    if v == "enum" or v == "const":
        what = field if isinstance(field, str) else "value"
        return f"unknown {what} {error.instance!r}" + _vocabulary_hint(error, category)
    if v == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        hints = [(k, did_you_mean(k, known)) for k in extra]
        hints = [(k, h) for k, h in hints if h]
        said = f"unknown field {', '.join(map(repr, extra))}"
        if len(extra) == 1 and hints:
            return f"{said} ({hints[0][1]})"
        return said + "".join(f"; {k!r}: {h}" for k, h in hints)
    if v == "required":
        return error.message.replace("is a required property", "is required")
    return error.message


def _vocabulary_hint(error: Any, category: str | None) -> str:
    """` (did you mean ...? valid: ...)` for a value outside an enum: the close values, and the whole
    vocabulary when it is short (the baselines: the canonical names, not their spelling variants)."""
    allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
    allowed = [a for a in allowed if isinstance(a, str)]
    if not allowed:
        return ""
    instance = error.instance
    close = close_to(instance, allowed) if isinstance(instance, str) else []
    canonical = [a for a in allowed if a in KNOWN_BASELINES] if set(KNOWN_BASELINES) <= set(allowed) else allowed
    parts = [f"did you mean {' or '.join(map(repr, close))}?"] if close else []
    if len(canonical) <= LIST_AT_MOST:
        parts.append(f"valid: {', '.join(canonical)}")
    else:
        parts.append(f"valid: see schemas/{category or '_category'}.schema.json")
    return f" ({' '.join(parts)})"


def schema_problems(path: str, category: str, data: Any) -> list[Problem]:
    """Every schema error of one record (`category` None: a settings file), sorted by pointer."""
    try:
        _fast_validator(category)(data)
        return []
    except Exception:  # noqa: BLE001 - any failure here means: list the errors properly
        pass
    out = []
    for error in sorted(_full_validator(category).iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        if error.validator == "anyOf" and error.schema_path and error.schema_path[0] == "anyOf":
            out.append(Problem(path, "", "parameters is required"))
            continue
        out.append(Problem(path, json_pointer(error.absolute_path), _clip(_message(error, category))))
    return out


#: a message quotes the offending value: a long one is cut, so a problem stays one readable line
MESSAGE_LIMIT = 300


def _clip(message: str) -> str:
    return message if len(message) <= MESSAGE_LIMIT else message[:MESSAGE_LIMIT - 3] + "..."


def record_problems(cd: CategoryData, rec: Record) -> list[Problem]:
    """The schema and semantic problems of one record; marks it schema-valid when it is."""
    cat = cd.category
    path = str(rec.path)
    problems = [] if rec.schema_ok else schema_problems(path, cat.name, rec.data)
    if not problems:
        rec.schema_ok = True
    data = rec.data
    if problems and legacy_severity(data) == "warning":
        problems = [Problem(p.file, p.pointer, p.message, "warning") if p.message.startswith(_LENIENT) else p
                    for p in problems]
    name = data.get("name")
    if isinstance(name, str) and name != rec.key:
        if cat.name == "text_generation":
            problems.append(Problem(path, "/name", f"name {name!r} must equal the key {rec.key!r}"))
        else:
            problems.append(Problem(path, "/name", f"name {name!r} differs from the key {rec.key!r}", "warning"))
    if cat.name == "text_generation" and rec.key.startswith(BACKEND_PREFIXES):
        problems.append(Problem(path, "/name", "backend-prefixed names are generated, not stored"))
    problems += _download_problems(path, data, legacy_severity(data))
    if cat.name == "text_generation":
        problems += _text_problems(cd, path, data) + _row_quirks(path, data)
    return problems


#: schema findings that upstream's own tools accepted and published (its controlnet style is a
#: warning-level policy): warnings in imported legacy records
_LENIENT = ("unknown controlnet_style", "URL must use https://")
#: set (to anything but empty) to hold imported legacy records to the rules of new records
STRICT_ENV = "HMR_STRICT_LEGACY"


#: True while an edit is judged (`hmr model ...`): what an edit adds is held to the rules of new records
_STRICT: ContextVar[bool] = ContextVar("strict_legacy", default=False)


@contextmanager
def strict_legacy() -> Iterator[None]:
    """Within the block, imported legacy records get no leniency (the rules of the pull-request gate)."""
    token = _STRICT.set(True)
    try:
        yield
    finally:
        _STRICT.reset(token)


def legacy_severity(data: dict) -> str:
    """How a quirk upstream published is reported: a warning in a record imported from a legacy
    file (it carries a `legacy` block), so every published version builds; an error for new records,
    for edits (`strict_legacy`) and under the strict mode (`HMR_STRICT_LEGACY`), the pull-request gate."""
    if isinstance(data.get("legacy"), dict) and not _STRICT.get() and not os.environ.get(STRICT_ENV):
        return "warning"
    return "error"


def _download_problems(path: str, data: dict, severity: str = "error") -> list[Problem]:
    config = data.get("config")
    downloads = config.get("download") if isinstance(config, dict) else None
    if not isinstance(downloads, list):
        return []
    out = []
    seen: set[str] = set()
    for i, d in enumerate(downloads):
        if not isinstance(d, dict) or not isinstance(d.get("file_name"), str):
            continue
        fname = d["file_name"]
        if "/" in fname or "\\" in fname or fname in (".", "..") or fname.startswith("."):
            out.append(Problem(path, f"/config/download/{i}/file_name", f"file_name {fname!r} must be a plain "
                                                                          "file name", severity))
        if fname in seen:
            out.append(Problem(path, f"/config/download/{i}/file_name", f"duplicate download file name {fname!r}",
                               severity))
        seen.add(fname)
    return out


def _text_problems(cd: CategoryData, path: str, data: dict) -> list[Problem]:
    out = []
    settings = data.get("settings")
    if isinstance(settings, dict):
        allowed = cd.settings_whitelist
        for k in settings:
            if k not in allowed:
                out.append(Problem(path, json_pointer(["settings", k]), f"settings key {k!r} is not a generation "
                                                                     "parameter"))
    params = data.get("parameters", data.get("parameters_count"))
    if isinstance(params, int) and params <= 0:
        out.append(Problem(path, "/parameters", "parameters must be positive"))
    return out


def settings_problems(cd: CategoryData) -> list[Problem]:
    """The problems of a category's settings file: schema, pinned keys without a file, renames."""
    if cd.settings_path is None:
        return []
    path = str(cd.settings_path)
    try:
        _fast_validator(None)(cd.settings)
        out = []
    except Exception:  # noqa: BLE001 - list the errors properly
        out = [Problem(path, json_pointer(e.absolute_path), _clip(_message(e)))
               for e in _full_validator(None).iter_errors(cd.settings)]
    out += _layout_problems(cd, path)
    for i, key in enumerate(cd.settings.get("order") or []):
        if isinstance(key, str) and key not in cd.records:
            out.append(Problem(path, f"/order/{i}", f"pinned key {key!r} has no record file", "warning"))
    renames = cd.settings.get("renames")
    # a published rename must lead somewhere, and a former key cannot also be a live one
    for old, new in (renames.items() if isinstance(renames, dict) else ()):
        if old in cd.records:
            out.append(Problem(path, json_pointer(["renames", old]), f"renamed key {old!r} still has a record file"))
        if isinstance(new, str) and new not in cd.records:
            out.append(Problem(path, json_pointer(["renames", old]), f"rename target {new!r} has no record file"))
    return out


def quirk_severity() -> str:
    """How an import quirk (a layout or row oddity upstream published, kept so the build writes it back)
    is reported: a warning, so every published version builds; an error under the strict mode
    (`hmr validate --strict`, `HMR_STRICT_LEGACY`), the gate for new data."""
    return "error" if _STRICT.get() or os.environ.get(STRICT_ENV) else "warning"


def _layout_problems(cd: CategoryData, path: str) -> list[Problem]:
    """One quirk finding per entry of `legacy_layout` (and per kept extra row)."""
    layout = cd.settings.get("legacy_layout")
    if not isinstance(layout, dict):
        return []
    file = cd.category.legacy_file or "the legacy file"
    sev = quirk_severity()
    said = {"indent": lambda v: f"is indented with {'a tab' if v == chr(9) else f'{v} spaces'}, not the usual way",
            "ascii": lambda v: "keeps non-ASCII characters unescaped",
            "line_ending": lambda v: f"has {str(v).upper()} line endings",
            "final_newline": lambda v: "has no final newline",
            "header": lambda v: "has no header row",
            "columns": lambda v: f"has the columns {', '.join(map(str, v)) if isinstance(v, list) else v}"}
    out = []
    for key, value in layout.items():
        if key == "extra_rows" and isinstance(value, list):
            for i, row in enumerate(value):
                at = row.get("at") if isinstance(row, dict) else None
                out.append(Problem(path, f"/legacy_layout/extra_rows/{i}",
                                   f"import quirk: {file} row {at} is kept as it was, not as a model's row", sev))
        elif key in said:
            out.append(Problem(path, f"/legacy_layout/{key}", f"import quirk: {file} {said[key](value)}", sev))
    return out


def _row_quirks(path: str, data: dict) -> list[Problem]:
    """Quirks a text record's legacy block keeps: extra cells, missing cells."""
    block = data.get("legacy")
    if not isinstance(block, dict):
        return []
    out = []
    if "extra_cells" in block:
        out.append(Problem(path, "/legacy/extra_cells", "import quirk: the models.csv row has more cells than "
                                                        "columns", quirk_severity()))
    if "cells" in block:
        out.append(Problem(path, "/legacy/cells", "import quirk: the models.csv row has fewer cells than columns",
                           quirk_severity()))
    return out


def validate(cats: dict[str, CategoryData]) -> list[Problem]:
    """Every problem in every record of every category (errors and warnings)."""
    problems: list[Problem] = []
    for cd in cats.values():
        problems += settings_problems(cd)
        for rec in cd.records.values():
            problems += record_problems(cd, rec)
        problems += _duplicate_names(cd.category, cd)
    return problems


def _duplicate_names(cat: Category, cd: CategoryData) -> list[Problem]:
    seen: dict[str, str] = {}
    out = []
    for rec in cd.records.values():
        name = rec.data.get("name")
        if not isinstance(name, str):
            continue
        other = seen.get(name.casefold())
        if other is not None:
            out.append(Problem(str(rec.path), "/name", f"name {name!r} is also used by key {other!r}",
                               legacy_severity(rec.data)))
        else:
            seen[name.casefold()] = rec.key
    return out
