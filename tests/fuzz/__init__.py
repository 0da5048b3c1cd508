"""Fuzz targets (hypothesis) for the parsers that read untrusted bytes: the data file loaders with the
validator, the legacy importer (JSON and CSV), the replica client's manifest and state parsers, and
`hmr serve`'s request-target handling.

Each target takes generated input and fails only on an outcome its contract forbids (an exception
other than the one-line errors it promises, or a value the build could not publish). A short run of
every target is part of the suite (tests/fuzz/test_fuzz.py); a campaign is one command:

    python3 -m tests.fuzz --inputs 1000000 [--target NAME]
"""
