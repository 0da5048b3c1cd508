"""Lossless conversion between the legacy (v1) files and our v2 records.

`jsonrec` handles the image-repo JSON files, `text` the text repo's models.csv and its generated db.json,
`importer` reads a legacy source (directory or raw GitHub base URL) into `data/`.
"""
