"""The Python API: one function per `hmr` command, each what its command runs (the CLI only turns
flags into arguments and results into lines)::

    from pathlib import Path
    from builder import api

    report = api.validate(Path("data"))            # hmr validate
    report.raise_for_errors()
    api.build(Path("data"), Path("site"))          # hmr build
    api.update_model(Path("data"), "image_generation", "Deliberate", [("nsfw", True)])  # hmr model update

Every failure is an `builder.errors.HmrError` subclass. Names are imported on first use, so
`import builder.api` costs nothing until a function is called (`hmr validate` never loads the site
builder).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from builder.contrib.crud import Download, EditResult, add_model, remove_model, rename_model, update_model
    from builder.contrib.diff import Diff, diff
    from builder.contrib.urls import check_urls
    from builder.legacy.importer import ImportSummary, import_legacy
    from builder.load import ValidationReport, load_valid, validate
    from builder.publish.deploy import DeployResult, deploy
    from builder.site.build import BuildResult, build
    from builder.v2import import V2ImportSummary, import_v2

#: public name -> the module that defines it
_HOME = {
    "validate": "builder.load", "ValidationReport": "builder.load", "load_valid": "builder.load",
    "build": "builder.site.build", "BuildResult": "builder.site.build",
    "import_legacy": "builder.legacy.importer", "ImportSummary": "builder.legacy.importer",
    "import_v2": "builder.v2import", "V2ImportSummary": "builder.v2import",
    "add_model": "builder.contrib.crud", "update_model": "builder.contrib.crud",
    "remove_model": "builder.contrib.crud", "rename_model": "builder.contrib.crud",
    "Download": "builder.contrib.crud", "EditResult": "builder.contrib.crud",
    "diff": "builder.contrib.diff", "Diff": "builder.contrib.diff",
    "check_urls": "builder.contrib.urls",
    "deploy": "builder.publish.deploy", "DeployResult": "builder.publish.deploy",
}

__all__ = [
    "BuildResult", "DeployResult", "Diff", "Download", "EditResult", "ImportSummary", "V2ImportSummary",
    "ValidationReport", "add_model", "build", "check_urls", "deploy", "diff", "import_legacy", "import_v2",
    "load_valid", "remove_model",
    "rename_model", "update_model", "validate",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
