"""Error types shared by every stage. A Problem is one reportable line: FILE:POINTER: message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    pointer: str
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.pointer}: {tag}{self.message}"


class HmrError(Exception):
    """A user-facing failure: the CLI prints it as one line and exits 1."""


class ValidationFailed(HmrError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(f"{len(errors)} validation error(s)")
