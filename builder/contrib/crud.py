"""`hmr model add|update|remove|rename`: the CRUD of the old PRIMARY, as edits of `data/` files.

Every edit is planned as file operations (writes and deletes, relative to the data directory),
tried on a scratch copy of the categories it touches (`builder.contrib.trial`), loaded and
validated there exactly as `hmr build` would, and only then applied to `data/`. An edit that
adds any validation error is refused and changes nothing; problems the data set already had
elsewhere do not block an unrelated edit (they are not the edit's fault and `hmr validate` reports
them). Only the files an edit is about are rewritten, and those keep their comments and key order
where their content did not change (`builder.contrib.yamledit`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.categories import Category, resolve, unknown_category_message
from builder.contrib.editlock import locked
from builder.contrib.trial import Plan, Trial, apply_plan, trial
from builder.contrib.yamledit import patch_yaml, render_json, same
from builder.errors import EditRefused, ParseError, Problem
from builder.legacy.jsonrec import order_v2
from builder.records import (
    RECORD_SUFFIXES,
    SCHEMA_HINT,
    SETTINGS_FILE,
    dump_yaml,
    json_pointer,
    key_problem,
    parse_file,
    read_data,
    record_path,
    render_record,
    schema_hint,
)

__all__ = ["Download", "EditResult", "add_model", "read_record_source", "remove_model", "rename_model", "set_path",
           "unset_path", "update_model"]


@dataclass(frozen=True)
class Download:
    """One downloadable file of a new model (`hmr model add --url ... --sha256 ...`)."""

    url: str
    #: default: the URL's last path segment
    file_name: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None

    def entry(self) -> dict[str, Any]:
        """The `config.download` entry of this file."""
        from urllib.parse import unquote, urlsplit

        name = self.file_name or unquote(urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1]) or "model"
        entry: dict[str, Any] = {"file_name": name, "file_url": self.url}
        if self.sha256 is not None:
            entry["sha256sum"] = self.sha256
        if self.size_bytes is not None:
            entry["size_bytes"] = self.size_bytes
        return entry


@dataclass
class EditResult:
    """What an edit did: a one-line message, the files it changed, the warnings it adds."""

    message: str
    #: files written or deleted, relative to the data directory
    changed: list[str]
    warnings: list[Problem] = field(default_factory=list)


# --- small helpers ------------------------------------------------------------------------------

def _category(name: str) -> Category:
    cat = resolve(name)
    if cat is None:
        raise EditRefused(unknown_category_message(name))
    return cat


def _require_v2(data_dir: Path) -> None:
    from builder.config import canonical_format

    if canonical_format(data_dir) != "v2":
        raise EditRefused(f"{data_dir} holds legacy files (canonical_format = legacy); `hmr model` edits v2 records")


def _rel(data_dir: Path, path: Path) -> str:
    return path.relative_to(data_dir).as_posix()


def _checked_path(data_dir: Path, cat: Category, key: str, suffix: str = ".yaml") -> Path:
    try:
        return record_path(data_dir, cat.name, key, suffix)
    except ValueError as e:
        raise EditRefused(f"invalid key: {e}") from None


def _existing(data_dir: Path, cat: Category, key: str) -> Path | None:
    """The record file of `key` (any accepted extension), or None."""
    for suffix in RECORD_SUFFIXES:
        p = _checked_path(data_dir, cat, key, suffix)
        if p.is_file() or p.is_symlink():
            return p
    return None


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


def _stamp(data: dict, now: int, by: str | None, created: bool) -> None:
    """Set metadata.created_at (new records) and updated_at, and who did it when known."""
    meta = data.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        return  # validation reports it
    meta = dict(meta)
    if created:
        meta["created_at"] = now
        if by:
            meta["created_by"] = by
    meta["updated_at"] = now
    if by:
        meta["updated_by"] = by
    data["metadata"] = meta


def _render(cat: Category, key: str, path: Path, old_text: str | None, data: dict) -> str:
    """The text of a record file holding `data`; an existing file keeps what did not change."""
    if path.suffix == ".json":
        return render_json(data, old_text or "")
    if old_text is None:
        return render_record(cat.name, key, order_v2(cat, data))
    return patch_yaml(old_text, data, list(order_v2(cat, data)))


def _read_record(path: Path) -> tuple[str, dict]:
    try:
        text = read_data(path).decode("utf-8")  # a regular file within the limits, never a link or FIFO
        data = parse_file(path, text)
    except ParseError as e:  # a limit or a syntax error: it says which, and where
        raise EditRefused(" ".join(str(e).split()), file=str(path), pointer=e.pointer) from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise EditRefused(f"unreadable ({' '.join(str(e).split())})", file=str(path)) from None
    if not isinstance(data, dict):
        raise EditRefused("not a mapping", file=str(path))
    return text, data


def _read_settings(data_dir: Path, cat: Category) -> tuple[str | None, dict]:
    path = data_dir / cat.name / SETTINGS_FILE
    if not path.exists():
        return None, {}
    try:
        text = read_data(path).decode("utf-8")  # a regular file within the limits, never a link or FIFO
        data = parse_file(path, text)
    except ParseError as e:  # a limit or a syntax error: it says which, and where
        raise EditRefused(" ".join(str(e).split()), file=str(path), pointer=e.pointer) from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise EditRefused(f"unreadable ({' '.join(str(e).split())})", file=str(path)) from None
    if data is None:  # an empty settings file
        data = {}
    if not isinstance(data, dict):
        raise EditRefused("not a mapping", file=str(path))
    return text, data


def _settings_write(plan: Plan, data_dir: Path, cat: Category, old_text: str | None, old: dict, new: dict) -> None:
    if same(old, new):
        return
    rel = f"{cat.name}/{SETTINGS_FILE}"
    plan.writes[rel] = patch_yaml(old_text, new) if old_text is not None else dump_yaml(new)


# --- dotted paths ---------------------------------------------------------------------------------

def _pointer(path: str) -> str:
    """The JSON pointer of a dotted field path (for EditRefused.pointer)."""
    return json_pointer(path.split("."))


def _segments(path: str) -> list[str]:
    parts = path.split(".")
    if not path or any(p == "" for p in parts):
        raise EditRefused(f"bad field path {path!r} (use dotted names, e.g. config.download.0.sha256sum)")
    return parts


def _index(container: list, seg: str, path: str, allow_append: bool) -> int:
    if not seg.isdigit():
        raise EditRefused(f"{path}: {seg!r} is not a list index", pointer=_pointer(path))
    i = int(seg)
    if i > len(container) or (i == len(container) and not allow_append):
        raise EditRefused(f"{path}: index {i} is out of range (the list has {len(container)} item(s))",
                          pointer=_pointer(path))
    return i


def set_path(data: dict, path: str, value: Any) -> None:
    """data[a][b][0][c] = value for path "a.b.0.c"; missing mappings are created, index len appends.

    Raises:
        EditRefused: the path is malformed or runs through a value that is not a mapping or list.
    """
    parts = _segments(path)
    node: Any = data
    for n, seg in enumerate(parts):
        last = n == len(parts) - 1
        if isinstance(node, list):
            i = _index(node, seg, path, allow_append=True)
            if last:
                if i == len(node):
                    node.append(value)
                else:
                    node[i] = value
                return
            if i == len(node):
                node.append({})
            node = node[i]
        elif isinstance(node, dict):
            if last:
                node[seg] = value
                return
            if node.get(seg) is None:
                node[seg] = {}
            node = node[seg]
        else:
            raise EditRefused(f"{path}: {'.'.join(parts[:n])} is a {type(node).__name__}, not a mapping or list",
                              pointer=_pointer(path))


def unset_path(data: dict, path: str) -> None:
    """Remove the field at dotted `path` ("a.b.0.c"); list items shift up.

    Raises:
        EditRefused: there is no such field.
    """
    parts = _segments(path)
    node: Any = data
    for n, seg in enumerate(parts):
        last = n == len(parts) - 1
        if isinstance(node, list):
            i = _index(node, seg, path, allow_append=False)
            if last:
                del node[i]
                return
            node = node[i]
        elif isinstance(node, dict):
            if seg not in node:
                raise EditRefused(f"{path}: no such field", pointer=_pointer(path))
            if last:
                del node[seg]
                return
            node = node[seg]
        else:
            raise EditRefused(f"{path}: no such field", pointer=_pointer(path))


def _commit(data_dir: Path, plan: Plan, message: str, tried: Trial | None = None) -> EditResult:
    tried = tried or trial(data_dir, plan)
    errors = [p for p in tried.new_problems if p.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise EditRefused(f"refused, nothing written: {errors[0]}{more}", errors)
    apply_plan(data_dir, plan)
    changed = sorted(set(plan.writes) | set(plan.deletes))
    return EditResult(message, changed, [p for p in tried.new_problems if p.severity != "error"])


# --- the four edits -------------------------------------------------------------------------------

@locked
def add_model(data_dir: Path, category: str, key: str, record: dict, *, download: Download | None = None,
              sets: Sequence[tuple[str, Any]] = (), now: int | None = None, by: str | None = None) -> EditResult:
    """Create `data/<category>/<key>.yaml` from `record` (v2 fields; `name` defaults to the key),
    with `download` appended to its downloads and then `sets` (dotted path, value) applied.

    Raises:
        EditRefused: the edit would leave data/ invalid, or cannot be made; nothing was written.
    """
    cat = _category(category)
    _require_v2(data_dir)
    if not isinstance(record, dict):
        raise EditRefused("the record must be a mapping of fields")
    path = _checked_path(data_dir, cat, key)
    if _existing(data_dir, cat, key) is not None:
        raise EditRefused(f"{cat.name}/{key} already exists (use `hmr model update`)")
    data = copy.deepcopy(record)
    if download is not None:
        config = data.setdefault("config", {})
        downloads = config.setdefault("download", []) if isinstance(config, dict) else None
        if not isinstance(downloads, list):
            raise EditRefused("config.download must be a list to add a download to it")
        downloads.append(download.entry())
    for field_path, value in sets:
        set_path(data, field_path, value)
    data.setdefault("name", key)
    _stamp(data, _now(now), by, created=True)
    plan = Plan(writes={_rel(data_dir, path): _render(cat, key, path, None, data)})
    return _commit(data_dir, plan, f"added {cat.name}/{key} ({path})")


@locked
def update_model(data_dir: Path, category: str, key: str, sets: Sequence[tuple[str, Any]] = (),
                 unsets: Sequence[str] = (), *, now: int | None = None, by: str | None = None) -> EditResult:
    """Set (`sets`: dotted path, value) and remove (`unsets`) fields of one record.

    Raises:
        EditRefused: the edit would leave data/ invalid, or cannot be made; nothing was written.
    """
    cat = _category(category)
    _require_v2(data_dir)
    path = _existing(data_dir, cat, key)
    if path is None:
        raise EditRefused(f"{cat.name}/{key} does not exist (use `hmr model add`)")
    if not sets and not unsets:
        raise EditRefused("nothing to change: give --set FIELD=VALUE or --unset FIELD")
    text, data = _read_record(path)
    new = copy.deepcopy(data)
    for field_path, value in sets:
        set_path(new, field_path, value)
    for field_path in unsets:
        unset_path(new, field_path)
    if same(new, data):
        return EditResult(f"{cat.name}/{key}: no change", [])
    _stamp(new, _now(now), by, created=False)
    plan = Plan(writes={_rel(data_dir, path): _render(cat, key, path, text, new)})
    fields = ", ".join([p for p, _ in sets] + [f"-{p}" for p in unsets])
    return _commit(data_dir, plan, f"updated {cat.name}/{key}: {fields}")


@locked
def remove_model(data_dir: Path, category: str, key: str) -> EditResult:
    """Delete the record, its pinned position and any rename that led to it.

    Raises:
        EditRefused: the edit would leave data/ invalid, or cannot be made; nothing was written.
    """
    cat = _category(category)
    _require_v2(data_dir)
    path = _existing(data_dir, cat, key)
    if path is None:
        raise EditRefused(f"{cat.name}/{key} does not exist")
    plan = Plan(deletes=[_rel(data_dir, path)])
    text, settings = _read_settings(data_dir, cat)
    new = copy.deepcopy(settings)
    if isinstance(new.get("order"), list) and key in new["order"]:
        new["order"] = [k for k in new["order"] if k != key]
    if isinstance(new.get("renames"), dict):
        new["renames"] = {o: n for o, n in new["renames"].items() if n != key}
        if not new["renames"]:
            del new["renames"]
    _settings_write(plan, data_dir, cat, text, settings, new)
    return _commit(data_dir, plan, f"removed {cat.name}/{key}")


@locked
def rename_model(data_dir: Path, category: str, old: str, new: str, *, now: int | None = None,
                 by: str | None = None) -> EditResult:
    """Move OLD's file to NEW, keep its place in the legacy order, publish old -> new in `renames`.

    Raises:
        EditRefused: the edit would leave data/ invalid, or cannot be made; nothing was written.
    """
    cat = _category(category)
    _require_v2(data_dir)
    old_path = _existing(data_dir, cat, old)
    if old_path is None:
        raise EditRefused(f"{cat.name}/{old} does not exist")
    bad = key_problem(new)
    if bad:
        raise EditRefused(f"invalid key: {cat.name}/{new!r}: {bad}")
    if new == old:
        raise EditRefused("old and new key are the same")
    if _existing(data_dir, cat, new) is not None:
        raise EditRefused(f"{cat.name}/{new} already exists")
    new_path = _checked_path(data_dir, cat, new, old_path.suffix)

    text, data = _read_record(old_path)
    moved = copy.deepcopy(data)
    if moved.get("name") == old:
        moved["name"] = new
    _stamp(moved, _now(now), by, created=False)
    if old_path.suffix != ".json" and text.startswith(SCHEMA_HINT):
        # the hint's relative path depends on how deep the key is nested
        first, _, rest = text.partition("\n")
        if first + "\n" == schema_hint(cat.name, old):
            text = schema_hint(cat.name, new) + rest
    record_text = _render(cat, new, new_path, text, moved)

    settings_text, settings = _read_settings(data_dir, cat)

    def plan_for(pinned: list[str] | None) -> Plan:
        s = copy.deepcopy(settings)
        if pinned is not None:
            s["order"] = pinned
        elif isinstance(s.get("order"), list):
            s["order"] = [new if k == old else k for k in s["order"]]
        known = s.get("renames")
        renames: dict = known if isinstance(known, dict) else {}
        # flatten chains (a -> old becomes a -> new); a key that is live again is no longer renamed
        renames = {o: (new if n == old else n) for o, n in renames.items() if o != new}
        renames[old] = new
        s["renames"] = renames
        plan = Plan(writes={_rel(data_dir, new_path): record_text}, deletes=[_rel(data_dir, old_path)])
        _settings_write(plan, data_dir, cat, settings_text, settings, s)
        return plan

    plan = plan_for(None)
    tried = trial(data_dir, plan)
    expected = [new if k == old else k for k in tried.before[cat.name].records]
    if list(tried.after[cat.name].records) != expected:
        # the new key sorts elsewhere among unpinned records: pin the whole order to keep the legacy file stable
        plan = plan_for(expected)
        tried = trial(data_dir, plan)
    return _commit(data_dir, plan, f"renamed {cat.name}/{old} -> {new} ({new_path})", tried)


def read_record_source(source: str) -> dict:
    """A record from a YAML/JSON file, or from standard input for `-`.

    Raises:
        EditRefused: the file cannot be read or does not hold a mapping.
    """
    import sys

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as e:
        raise EditRefused(e.strerror or str(e), file=source) from None
    # the limits of data files hold for what becomes one (JSON is YAML too: `-` is read as YAML)
    try:
        data = parse_file(Path("-.yaml" if source == "-" else source), text)
    except ParseError as e:
        message = " ".join(str(e).split())
        if message.startswith("unreadable: "):
            message = f"not valid YAML/JSON ({message.removeprefix('unreadable: ')})"
        raise EditRefused(message, file=source, pointer=e.pointer) from None
    if not isinstance(data, dict):
        raise EditRefused("the record must be a mapping of fields", file=source)
    return data

