"""What a legacy file's change means in models: added, removed, changed (the upstream sync's comparator:
a key-set difference plus deep equality per record), so a pull request says more than "file changed".

JSON files are keyed by their top-level keys; `models.csv` by its `name` column (a repeated name:
the later row wins, as in the upstream converter). The converter settings (`defaults.json`,
`generation_params.json`) are compared the same way, their entries being settings, not models.
A file whose bytes changed while its data did not is a layout-only change.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from builder.categories import TEXT_SETTINGS_FILES

__all__ = ["FileChange", "compare"]

SHOWN = 5  # names listed per kind of change, as the upstream summary does


@dataclass
class FileChange:
    """The change of one legacy file, in model (or settings) names: added, removed, changed."""

    file: str
    category: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    new_file: bool = False
    unreadable_before: bool = False

    @property
    def unit(self) -> str:
        """What the file's entries are: "settings" (the converter's files) or "models"."""
        return "settings" if self.file in TEXT_SETTINGS_FILES else "models"

    @property
    def layout_only(self) -> bool:
        """Whether only the bytes changed, not one entry."""
        return not (self.added or self.removed or self.changed or self.new_file or self.unreadable_before)

    def line(self) -> str:
        """The change in one line, a few names of each kind (the pull request body lists these)."""
        if self.new_file:
            head = f"{self.file}: new file, {len(self.added)} {self.unit}"
        elif self.unreadable_before:
            head = f"{self.file}: replaces an unreadable file ({len(self.added)} {self.unit})"
        elif self.layout_only:
            return f"{self.file}: layout only, no {self.unit} changed"
        else:
            head = (f"{self.file}: {len(self.added)} added, {len(self.removed)} removed, "
                    f"{len(self.changed)} changed {self.unit}")
        details = []
        for label, names in (("added", self.added), ("removed", self.removed), ("changed", self.changed)):
            if names and not (label == "added" and (self.new_file or self.unreadable_before)):
                more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
                details.append(f"{label}: {', '.join(names[:SHOWN])}{more}")
        return head + (f" ({'; '.join(details)})" if details else "")


def _entries(file: str, data: bytes) -> dict[str, Any]:
    if file.endswith(".csv"):
        rows: dict[str, Any] = {}
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        for row in reader:
            rows[row.get("name") or ""] = row
        return rows
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    return doc


def compare(file: str, category: str, old: bytes | None, new: bytes) -> FileChange:
    """The model-level change of `file` from `old` (None: not in the repository) to `new`."""
    change = FileChange(file, category)
    after = _entries(file, new)
    if old is None:
        change.new_file = True
        change.added = list(after)
        return change
    try:
        before = _entries(file, old)
    except (ValueError, UnicodeDecodeError, csv.Error):
        change.unreadable_before = True
        change.added = list(after)
        return change
    change.added = [k for k in after if k not in before]
    change.removed = [k for k in before if k not in after]
    change.changed = [k for k in after if k in before and after[k] != before[k]]
    return change
