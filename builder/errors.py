"""Every failure the package reports on purpose, in one tree rooted at `HmrError`.

The CLI prints any `HmrError` as one line and exits 1 (`--debug` shows the traceback); library
callers catch the branch they care about::

    HmrError                      a user-facing failure
    ├── DataError                 a data or input file is wrong: .file, .pointer (JSON pointer)
    │   ├── ValidationFailed      validation found errors: .problems (every Problem, sorted)
    │   ├── ParseError            a file is not well-formed YAML/JSON/CSV
    │   ├── LegacyFormatError     a legacy record cannot be converted
    │   │   └── TextFormatError   a models.csv/db.json value cannot be converted
    │   └── EditRefused           a model edit would leave data/ invalid
    ├── ConfigError               a setting (option, pyproject, environment variable) is unusable
    ├── FetchError                a document could not be fetched: .url, .status (HTTP status or None)
    ├── PublishError              publishing failed: .key (object key or None)
    ├── TrustError                a document is not what it claims (digest, size, rollback)
    │   └── SignatureError        a signature or key is missing, malformed or untrusted
    ├── LockTimeout               a lock held elsewhere was not released in time
    └── ReplicaError              the replica client's failures (also RuntimeError, as 8.6.2 raises)
        ├── SourceUnavailable     no source, the cache included, has the document: .reasons
        ├── ModelNotFound         no such model (also KeyError): .category, .key
        └── ReplicaConfigError    a client setting is unusable (also ConfigError, ValueError)

`Problem` is not an exception: it is one reportable line of validation, `FILE:POINTER: message`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One validation finding, printed as `FILE:POINTER: message` (warnings say so)."""

    file: str
    pointer: str
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.file}:{self.pointer}: {tag}{self.message}"


class HmrError(Exception):
    """A user-facing failure: the CLI prints it as one line and exits 1."""


class DataError(HmrError):
    """A data or input file is wrong. `file` and `pointer` (a JSON pointer, "" for the whole file)
    locate it; either may be empty when the caller does not know them (the message then says)."""

    def __init__(self, message: str, file: str = "", pointer: str = ""):
        # messages quote what the input holds (a CSV cell may hold a line break): one line always
        message = one_line(message)
        self.file, self.pointer, self.message = str(file), pointer, message
        super().__init__(f"{file}:{pointer}: {message}" if file else message)


def one_line(text: str) -> str:
    """`text` with its line breaks and other control characters written as escapes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


class ValidationFailed(DataError):
    """Validation found at least one error; `problems` holds every finding, warnings included."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        first = errors[0] if errors else None
        HmrError.__init__(self, f"{len(errors)} validation error(s)")
        self.file = first.file if first else ""
        self.pointer = first.pointer if first else ""
        self.message = str(self)


class ParseError(DataError, ValueError):
    """A file is not well-formed (YAML, JSON, CSV) or holds a value of no JSON type."""


class LegacyFormatError(DataError, ValueError):
    """A legacy record cannot be converted to v2 and back."""


class TextFormatError(LegacyFormatError):
    """A text-repo value (models.csv cell, db.json entry) cannot be converted."""


class EditRefused(DataError):
    """A `hmr model` edit was refused: applying it would leave data/ invalid; nothing was written.
    `problems` holds the validation findings that refused it, if any."""

    def __init__(self, message: str, problems: list[Problem] | None = None, file: str = "", pointer: str = ""):
        self.problems = problems or []
        super().__init__(message, file, pointer)


class ConfigError(HmrError, ValueError):
    """A setting (command option, `[tool.hmr]`, environment variable) holds an unusable value."""


class FetchError(HmrError):
    """A document could not be fetched. `status` is the HTTP status, or None for a transport failure
    (connection refused, timeout, a body over the size limit)."""

    def __init__(self, message: str, url: str = "", status: int | None = None):
        self.url, self.status = url, status
        super().__init__(message)


class PublishError(HmrError):
    """Publishing to a target failed; `key` is the object key concerned, or None for the whole target."""

    def __init__(self, message: str, key: str | None = None):
        self.key = key
        super().__init__(message)


class TrustError(HmrError):
    """A document is not what the trusted metadata says (digest, size, generation, expiry)."""


class SignatureError(TrustError):
    """A signature or key is missing, malformed, or made by no trusted key."""


class LockTimeout(HmrError):
    """A lock held by another process was not released within the wait limit."""


class ReplicaError(HmrError, RuntimeError):
    """Base of the replica client's errors. A RuntimeError too, as the existing library raises for a
    missing category or model."""


class ReplicaConfigError(ReplicaError, ConfigError):
    """A client constructor argument or environment variable holds a value the client cannot use."""


class SourceUnavailable(ReplicaError):
    """No source could provide the document and no good copy is on disk; `reasons` says why per source."""

    def __init__(self, what: str, reasons: list[str]):
        self.what = what
        self.reasons = list(reasons)
        detail = "; ".join(reasons) if reasons else "no source configured"
        super().__init__(f"{what}: no source available ({detail})")


class ModelNotFound(ReplicaError, KeyError):
    """The category holds no model of that key (a KeyError too, for dict-like callers)."""

    def __init__(self, category: str, key: str):
        self.category, self.key = category, key
        super().__init__(f"{category}: no model {key!r}")

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])
