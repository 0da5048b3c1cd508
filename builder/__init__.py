"""AI-Horde model reference: data records, validation, static-site build, publishing and replica client.

The Python API, one function per `hmr` command, is `builder.api` (`validate`, `build`, `import_legacy`,
`add_model`, ... listed in its `__all__`); failures are the `builder.errors.HmrError` tree. This module
imports nothing: the replica client's cold start imports `builder.*` modules.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
