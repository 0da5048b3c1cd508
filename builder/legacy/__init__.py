"""Lossless conversion between the legacy (v1) files and our v2 records.

`convert` is the one entry point each way (`records_from_legacy`, `legacy_files`) and the only place
that picks a converter: `jsonrec` for the image-repo JSON files, `text` for the text repo's models.csv
and its generated db.json. `source` reads a legacy source (directory or raw GitHub base URL) and loads
it as records for `canonical_format = legacy`; `importer` writes it into `data/` (`hmr import-legacy`).
"""
