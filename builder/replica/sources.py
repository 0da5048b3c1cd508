"""Where each source keeps a document: the sites (the CDN and the mirrors) and the legacy GitHub files.

Keys come from `builder.routes`, the one owner of the published layout. A document is named
`"v2/<category>"` (its records) or `"v1/<category>"` (its legacy-format file).
"""

from __future__ import annotations

from dataclasses import dataclass

from builder.categories import BY_NAME
from builder.replica.config import ReplicaConfig
from builder.routes import MANIFEST_FILE, SIGNATURE_FILE, v1_key, v2_key

__all__ = ["SiteSource", "document_key", "github_url"]


def document_key(name: str) -> str:
    """The object key a site serves document `name` at: the extensionless key the old API's clients
    request, so CDN caches are shared with them."""
    kind, category = name.split("/", 1)
    return v2_key(category) if kind == "v2" else v1_key(category)


@dataclass(frozen=True)
class SiteSource:
    """A built site (CDN or mirror). `base` is the API base as the existing client takes it (`.../api`);
    the site root is the base without its `/api`, and a base without `/api` is taken as the root."""

    kind: str  # "cdn" or "mirror"
    base: str

    @property
    def root(self) -> str:
        """The site root URL (no trailing slash)."""
        return self.base[: -len("/api")] if self.base.endswith("/api") else self.base

    def url(self, key: str) -> str:
        """The URL of object `key` on this site."""
        return f"{self.root}/{key}"

    @property
    def manifest_url(self) -> str:
        """The URL of the site's manifest."""
        return self.url(MANIFEST_FILE)

    @property
    def signature_url(self) -> str:
        """The URL of the manifest's detached signature."""
        return self.url(SIGNATURE_FILE)

    @property
    def label(self) -> str:
        """How `fallback_reason` names the source."""
        return f"{self.kind} {self.base}"


def github_url(config: ReplicaConfig, name: str, commit: str | None = None) -> str | None:
    """The raw GitHub URL of the legacy file document `name` is made from, at the branch head or at
    `commit`; None when GitHub has none."""
    from builder.replica.convert import legacy_source_file  # the GitHub fallback only: not on every start

    kind, category = name.split("/", 1)
    cat = BY_NAME[category]
    file = legacy_source_file(cat, kind)
    if file is None:
        return None
    repo = config.text_github_repo if cat.legacy_kind == "text" else config.image_github_repo
    return repo.raw_url(config.github_raw_url, file, commit)
