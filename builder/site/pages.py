"""Links between the HTML pages, shared by the renderer and the change feed; where the pages live is
the route table's (`builder.routes`), re-exported here.

`index.html` (home), `models/<category>/index.html` (the table), `models/<category>/<key>.html` (a model;
a key with `/` is nested). A model whose key is `index` would collide with the table, so its page is
`index.model.html`. In links, keys are percent-encoded (`?`, `#`, `%` and spaces included).
"""

from __future__ import annotations

from urllib.parse import quote

from builder.routes import ASSETS, category_page, model_page
from builder.routes import HOME_PAGE as HOME

__all__ = ["ASSETS", "HOME", "category_page", "href", "model_page", "root_of"]


def href(path: str) -> str:
    """A site path as a relative URL component (each segment percent-encoded)."""
    return quote(path, safe="/")


def root_of(path: str) -> str:
    """The relative URL from the page at `path` back to the site root ("" at the root)."""
    return "../" * path.count("/")
