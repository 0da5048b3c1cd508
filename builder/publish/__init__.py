"""Publishing: `hmr deploy` (a built site -> S3-compatible object storage or a local directory) and
`hmr sync-legacy` (the built `legacy/` files -> the legacy GitHub repositories, by branch and pull request).

The API: `builder.publish.deploy` (`deploy`, `deploy_site`, `pull_manifest`) and
`builder.publish.legacy_sync` (`sync_legacy`). Modules: `site` (what a built site publishes, checked
against its manifest), `store` (what a deploy needs from a store), `targets` (the store a URL names) /
`s3` / `localdir` (the stores), `plan` (what is unchanged, what is uploaded, in which order), `deploy`
(ordered upload, prune), `verify` (read back through a CDN), `pool` (the request threads),
`legacy_sync` / `legacy_diff` / `git` / `github` (the legacy repositories), `cli` (click wrappers).
Imports go one way: `targets` imports the stores, the stores import `store`, never the reverse.
"""
