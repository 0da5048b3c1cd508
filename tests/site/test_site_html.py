"""The HTML browse pages, in a real headless Chromium (Debian `chromium`, driven by Playwright through
`executable_path`; `playwright install` is never run): the table filters as you type and by baseline,
style and tag, the NSFW toggle works (also without JavaScript), a model page shows its files with
sha256 and URL, data cannot inject markup or script, the pages fit a phone. Screenshots of each page
type go to test-artifacts/ (gitignored), and are checked to show the page: their size is the page's,
they are not blank, the page's background fills them and its heading's pixels are the heading."""

from __future__ import annotations

import base64
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from builder.site.html import human_bytes, value_html
from builder.site.serve import make_server
from tests.site_support import PNG_STATS_JS, ROOT, load_manifest, png_size, run_hmr

CHROMIUM = "/usr/lib/chromium/chromium"  # the Debian package's binary (/usr/bin/chromium is a shell wrapper)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"
EVIL_KEY = "Evil <script> #1? 100%"
EVIL_DESCRIPTION = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> & more'
REPO = "https://github.com/example-org/model-data"


# ---------------------------------------------------------------------------------------------------
# fixtures: a small site with hostile data (and a change to show), servers, the browser


@pytest.fixture(scope="module")
def evil_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled data set built once, then again with a hostile record added (so the home page has
    a last change): its name, description and tags are markup, its key needs percent-encoding."""
    base = tmp_path_factory.mktemp("html")
    data, site = base / "data", base / "site"
    shutil.copytree(ROOT / "data", data)
    env = {"HMR_REPOSITORY_URL": REPO}
    r = run_hmr("build", "--data", str(data), "--out", str(site), env=env)
    assert r.returncode == 0, r.stderr
    src = (data / "image_generation" / "Deliberate.yaml").read_text()
    text = src.replace("name: Deliberate\n", f"name: '{EVIL_KEY}'\n")
    text = re.sub(r"description: .*\n", "description: '" + EVIL_DESCRIPTION.replace("'", "''") + "'\n", text)
    text = text.replace("  - detailed\n", "  - '<b>bold</b>'\n  - detailed\n")
    (data / "image_generation" / f"{EVIL_KEY}.yaml").write_text(text)
    r = run_hmr("build", "--data", str(data), "--out", str(site), env=env)
    assert r.returncode == 0, r.stderr
    return site


def serve(site: Path) -> Iterator[str]:
    server = make_server(site, "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def evil_url(evil_site: Path) -> Iterator[str]:
    yield from serve(evil_site)


@pytest.fixture(scope="module")
def corpus_url(served: tuple[object, int]) -> str:
    return f"http://127.0.0.1:{served[1]}"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (Debian package `chromium`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()


def shot(page: object, name: str, full_page: bool = True) -> bytes:
    """Screenshot `page` into test-artifacts/NAME.png; the PNG is as large as the page (or viewport)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    png = page.screenshot(path=str(path), full_page=full_page)
    assert path.read_bytes() == png
    scale = page.evaluate("window.devicePixelRatio")
    width = page.evaluate("document.documentElement.scrollWidth" if full_page else "window.innerWidth")
    height = page.evaluate("document.documentElement.scrollHeight" if full_page else "window.innerHeight")
    assert png_size(png) == (round(width * scale), round(height * scale)), name
    return png


def png_stats(analyser: object, png: bytes, box: list[int] | None = None) -> dict:
    """PNG_STATS_JS of `png` (or of its `box`), run in the page `analyser`."""
    return analyser.evaluate(PNG_STATS_JS, [base64.b64encode(png).decode(), box])


def heading_box(page: object) -> list[int]:
    """The h1's box in screenshot pixels (at the top of the page: page and viewport coordinates agree)."""
    scale = page.evaluate("window.devicePixelRatio")
    b = page.locator("h1").bounding_box()
    return [round(b[k] * scale) for k in ("x", "y", "width", "height")]


def visible_rows(page: object) -> list[str]:
    return page.locator("#models tbody tr:visible td.name a").all_text_contents()


# ---------------------------------------------------------------------------------------------------
# the HTML itself


def test_every_page_is_published(site_dir: Path) -> None:
    files = load_manifest(site_dir)["files"]
    for key in ("index.html", "assets/site.css", "assets/table.js", "models/image_generation/index.html",
                "models/text_generation/index.html", "models/lora/index.html",
                "models/image_generation/Deliberate.html", "models/text_generation/acrastt/Marx-3B-V3.html",
                "models/image_generation/AlbedoBase XL (SDXL).html"):
        assert key in files, key
    assert files["index.html"]["content_type"] == "text/html; charset=utf-8"
    pages = [k for k in files if k.startswith("models/") and k.endswith(".html")]
    assert len(pages) == 913 + 15


def test_data_is_escaped_and_links_encoded(evil_site: Path) -> None:
    page = (evil_site / "models" / "image_generation" / f"{EVIL_KEY}.html").read_text()
    assert "<script>" not in page and "onerror=" not in page.replace("onerror=&#34;", "")
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert "<title>Evil &lt;script&gt; #1? 100% ·" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    table = (evil_site / "models" / "image_generation" / "index.html").read_text()
    assert 'href="Evil%20%3Cscript%3E%20%231%3F%20100%25.html"' in table
    assert "<b>bold</b>" not in table and "<script>window" not in table
    assert f'href="{REPO}/edit/main/data/image_generation/Evil%20%3Cscript%3E%20%231%3F%20100%25.yaml"' in page
    # the v2 record link resolves through the route table (percent-decoded: the literal key)
    assert "../../api/model_references/v2/image_generation/model/Evil%20%3Cscript%3E%20%231%3F%20100%25" in page
    # only http(s) URLs become links
    assert str(value_html("javascript:alert(1)")) == "javascript:alert(1)"
    assert str(value_html("https://x.invalid/a?b=1&c=2")) == \
        '<a href="https://x.invalid/a?b=1&amp;c=2" rel="nofollow noopener">https://x.invalid/a?b=1&amp;c=2</a>'
    assert str(value_html('https://x.invalid/"><script>')) == "https://x.invalid/&quot;&gt;&lt;script&gt;"
    assert str(value_html({"<k>": [1, None, True]})) == '<dl><dt>&lt;k&gt;</dt><dd>1, <span class="muted">null</span>, true</dd></dl>'
    assert human_bytes(2132780730) == "2.1 GB" and human_bytes(None) == ""


def test_home_page_counts_and_last_change(evil_site: Path, site_dir: Path) -> None:
    home = (evil_site / "index.html").read_text()
    assert "Generation 2: 1 added, 0 removed, 0 changed" in home
    assert 'href="models/image_generation/Evil%20%3Cscript%3E%20%231%3F%20100%25.html"' in home
    corpus = (site_dir / "index.html").read_text()
    assert re.search(r'models/image_generation/index.html"><strong>Image generation</strong></a> '
                     r'<span class="count">161 models, 82 NSFW</span>', corpus)
    assert re.search(r'models/text_generation/index.html"><strong>Text generation</strong></a> '
                     r'<span class="count">719 models</span>', corpus)
    assert "913 models" in corpus


# ---------------------------------------------------------------------------------------------------
# in the browser


def test_filter_narrows_the_table_as_you_type(page: object, corpus_url: str, site_dir: Path) -> None:
    page.goto(f"{corpus_url}/models/image_generation/index.html")
    total = page.locator("#models tbody tr").count()
    nsfw = page.locator("#models tbody tr.nsfw").count()
    assert total == 161 and 0 < nsfw < total
    assert len(visible_rows(page)) == total - nsfw  # NSFW hidden by default
    assert page.locator("#shown").inner_text() == str(total - nsfw)
    page.locator("#q").press_sequentially("xl", delay=20)  # real key events
    names = visible_rows(page)
    assert 0 < len(names) < total - nsfw
    for row in page.locator("#models tbody tr:visible").all():
        assert "xl" in row.get_attribute("data-q")
    assert page.locator("#shown").inner_text() == str(len(names))
    page.locator("#q").press_sequentially(" pony", delay=20)  # every word must match
    assert len(visible_rows(page)) < len(names)
    page.locator("#q").fill("")
    assert len(visible_rows(page)) == total - nsfw
    # the selects: baseline, style, tag
    page.select_option("#f-baseline", "stable_diffusion_xl")
    rows = page.locator("#models tbody tr:visible").all()
    assert rows and all(r.get_attribute("data-b") == "stable_diffusion_xl" for r in rows)
    page.select_option("#f-style", "anime")
    rows = page.locator("#models tbody tr:visible").all()
    assert all(r.get_attribute("data-s") == "anime" and r.get_attribute("data-b") == "stable_diffusion_xl"
               for r in rows)
    page.select_option("#f-baseline", "")
    page.select_option("#f-style", "")
    tag = page.locator("#f-tag option").nth(1).get_attribute("value")
    page.select_option("#f-tag", tag)
    rows = page.locator("#models tbody tr:visible").all()
    assert rows and all(tag in r.get_attribute("data-t").split("|") for r in rows)
    page.select_option("#f-tag", "")
    page.locator("#q").fill("Deliberate")
    shot(page, "category-image_generation-filtered")


def test_nsfw_toggle(page: object, corpus_url: str) -> None:
    page.goto(f"{corpus_url}/models/image_generation/index.html")
    assert "Deliberate" not in visible_rows(page)  # an NSFW model
    page.click("label[for=show-nsfw]")
    assert page.locator("#show-nsfw").is_checked()
    names = visible_rows(page)
    assert "Deliberate" in names and len(names) == 161
    assert page.locator("#shown").inner_text() == "161"
    page.click("label[for=show-nsfw]")
    assert "Deliberate" not in visible_rows(page)
    # the state can be linked to
    page.goto(f"{corpus_url}/models/image_generation/index.html?nsfw=1&q=deliberate")
    names = visible_rows(page)
    assert "Deliberate" in names and all("deliberate" in n.lower() for n in names)
    shot(page, "category-image_generation")


def test_table_and_toggle_work_without_javascript(browser: object, corpus_url: str) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        pg = context.new_page()
        pg.goto(f"{corpus_url}/models/image_generation/index.html")
        assert pg.locator("#filters").is_hidden()  # nothing that needs JavaScript is offered
        assert len(visible_rows(pg)) == 161 - pg.locator("#models tbody tr.nsfw").count()
        pg.click("label[for=show-nsfw]")  # a CSS checkbox
        assert len(visible_rows(pg)) == 161
    finally:
        context.close()


def test_model_page_shows_files_with_sha256_and_url(page: object, corpus_url: str, site_dir: Path) -> None:
    page.goto(f"{corpus_url}/models/image_generation/index.html?nsfw=1&q=deliberate")
    page.locator("#models").get_by_role("link", name="Deliberate", exact=True).click()
    page.wait_for_url("**/models/image_generation/Deliberate.html")
    files = page.locator("ul.files")
    assert "b4391b7978d973427a4a2a3ed0e67b18ebe34e213904575043d6c9faec75c22d" in files.inner_text()
    url = "https://huggingface.co/mirroring/horde_models/resolve/main/Deliberate.ckpt?download=true"
    assert files.locator("a").first.get_attribute("href") == url
    assert "2.1 GB" in files.inner_text()
    assert page.locator("h1").inner_text() == "Deliberate"
    # every field is on the page, and the JSON endpoints resolve
    page.locator("details.all-fields summary").click()  # the full list is collapsed at the end
    fields = page.locator("table.fields").inner_text()
    for f in ("record_type", "baseline", "inpainting", "homepage", "nsfw", "style"):
        assert f in fields
    link = page.locator("a", has_text="v2 record").get_attribute("href")
    r = page.request.get(f"{corpus_url}/models/image_generation/{link}")
    assert r.ok and r.json()["name"] == "Deliberate"
    shot(page, "model-Deliberate")
    # a nested key (text model with an author)
    page.goto(f"{corpus_url}/models/text_generation/acrastt/Marx-3B-V3.html")
    assert page.locator("h1").inner_text() == "Marx 3B V3"
    link = page.locator("a", has_text="v2 record").get_attribute("href")
    assert page.request.get(f"{corpus_url}/models/text_generation/acrastt/{link}").json()["text_model_group"] == "Marx"
    page.locator("p.crumbs a", has_text="Text generation").click()  # the crumb back to the table
    page.wait_for_url("**/models/text_generation/index.html")
    assert page.locator("#models tbody tr").count() == 719


def test_script_in_data_renders_as_text(page: object, evil_url: str) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{evil_url}/models/image_generation/index.html")
    link = page.locator("#models a", has_text="Evil")
    assert link.inner_text() == EVIL_KEY
    link.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == EVIL_KEY
    assert page.locator("p.description").inner_text() == EVIL_DESCRIPTION
    assert page.evaluate("typeof window.__pwned") == "undefined" and not dialogs
    assert page.locator("main script, main img").count() == 0
    edit = page.locator("a", has_text="Edit the source file on GitHub").get_attribute("href")
    assert edit == f"{REPO}/edit/main/data/image_generation/{quote(EVIL_KEY)}.yaml"
    # the record endpoint linked from the page is the literal key
    link = page.locator("a", has_text="v2 record").get_attribute("href")
    assert page.request.get(f"{evil_url}/models/image_generation/{link}").json()["name"] == EVIL_KEY
    page.goto(f"{evil_url}/models/image_generation/index.html")
    page.locator("#q").press_sequentially("<script>")
    assert visible_rows(page) == [EVIL_KEY]


def test_home_page_and_phone_layout(browser: object, evil_url: str, corpus_url: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    try:
        pg = context.new_page()
        for url, name in ((f"{corpus_url}/", "home"), (f"{corpus_url}/models/text_generation/index.html",
                                                        "category-text_generation-phone"),
                          (f"{corpus_url}/models/image_generation/Deliberate.html", "model-phone")):
            pg.goto(url)
            # nothing sticks out sideways: wide tables scroll inside their own box
            assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), url
            assert pg.locator("meta[name=viewport]").count() == 1
            if name == "home":
                shot(pg, "home-phone")
        pg.goto(f"{evil_url}/")
        assert pg.locator("h2", has_text="Last change").is_visible()
        assert "Generation 2: 1 added" in pg.locator("main").inner_text()
        pg.click(f"text={EVIL_KEY}")
        assert pg.locator("h1").inner_text() == EVIL_KEY
    finally:
        context.close()


def test_screenshots_of_each_page_type(page: object, corpus_url: str) -> None:
    analyser = page.context.new_page()
    # the checks have teeth: a blank page's screenshot is one colour
    analyser.set_content("<body style='background:#fff'></body>")
    blank = png_stats(analyser, analyser.screenshot())
    assert blank["colours"] == 1 and blank["share"] == 1
    for path, name, title in (("/", "home", "AI-Horde model reference"),
                              ("/models/text_generation/index.html", "category-text_generation", "Text generation"),
                              ("/models/text_generation/anthracite-org/magnum-12b-v2.html", "model-magnum",
                               "Magnum 12B V2")):
        page.goto(corpus_url + path)
        full = name != "category-text_generation"  # 719 rows: the first screen will do
        png = shot(page, name, full_page=full)
        stats = png_stats(analyser, png)
        assert (stats["width"], stats["height"]) == png_size(png)
        # a page, not a blank or a single-colour error screen, on the page's own background
        assert stats["colours"] >= 32 and stats["share"] < 0.98, (name, stats)
        assert stats["dominant"] == page.evaluate("getComputedStyle(document.body).backgroundColor"), (name, stats)
        # the heading is in the picture where the page has it: its box holds ink, and only because of
        # the heading (hidden, the same box is plain background)
        assert page.locator("h1").inner_text() == title
        box = heading_box(page)
        ink = png_stats(analyser, png, box)
        assert ink["colours"] >= 8 and ink["share"] < 0.99, (name, ink)
        page.locator("h1").evaluate("h => { h.style.visibility = 'hidden'; }")
        bare = png_stats(analyser, page.screenshot(full_page=full), box)
        assert bare["colours"] == 1 and bare["dominant"] == stats["dominant"], (name, bare)
    assert {p.name for p in ARTIFACTS.glob("*.png")} >= {"home.png", "category-text_generation.png",
                                                        "model-magnum.png"}
