"""Publishing: `hmr deploy` (a built site -> S3-compatible object storage or a local directory) and
`hmr sync-legacy` (the built `legacy/` files -> the legacy GitHub repositories, by branch and pull request).

Modules: `site` (what a built site publishes, checked against its manifest), `targets` / `s3` /
`localdir` (where it goes), `deploy` (plan, ordered upload, prune, verify through a CDN),
`legacy_sync` / `legacy_diff` / `git` / `github` (the legacy repositories), `cli` (click wrappers).
"""
