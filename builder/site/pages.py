"""Where the HTML pages live in the site, shared by the renderer and the change feed.

`index.html` (home), `models/<category>/index.html` (the table), `models/<category>/<key>.html` (a model;
a key with `/` is nested). A model whose key is `index` would collide with the table, so its page is
`index.model.html`. In links, keys are percent-encoded (`?`, `#`, `%` and spaces included).
"""

from __future__ import annotations

from urllib.parse import quote

HOME = "index.html"
ASSETS = "assets"


def category_page(category: str) -> str:
    """The page of a category's table."""
    return f"models/{category}/index.html"


def model_page(category: str, key: str) -> str:
    """The page of one model (a key holding "/" is nested; `index` is renamed, see above)."""
    return f"models/{category}/{'index.model' if key == 'index' else key}.html"


def href(path: str) -> str:
    """A site path as a relative URL component (each segment percent-encoded)."""
    return quote(path, safe="/")


def root_of(path: str) -> str:
    """The relative URL from the page at `path` back to the site root ("" at the root)."""
    return "../" * path.count("/")
