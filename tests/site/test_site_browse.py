"""The browse site as a visitor uses it, in headless Chromium (Debian `chromium` through Playwright's
`executable_path`, as test_site_html does): showcase images, the search across categories, sortable
tables, the model page's facts, dates and copy buttons, the phone layout, dark mode, the 404 page and
the sitemap.

Showcase images in the corpus are remote URLs, and the pages take https URLs only; so the small data
set's Deliberate gets showcases served by a local https server (a self-signed certificate made here,
which the browser context is told to accept), and the test checks the browser really decoded them.
Screenshots at desktop and phone width go to the test's tmp dir."""

from __future__ import annotations

import datetime
import ipaddress
import re
import shutil
import ssl
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from builder.site.html import SiteConfig, image_url, model_context, row_context, showcases_of
from tests.site.test_site_html import CHROMIUM, FLAGS, serve
from tests.site_support import ROOT, png_size, run_hmr

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


# ---------------------------------------------------------------------------------------------------
# a local https image server


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain-colour PNG (stdlib only)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


IMAGES = {"/show/a.png": png(96, 64, (200, 60, 40)), "/show/b.png": png(64, 64, (40, 120, 200))}


def self_signed(dir: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with `cryptography` (a dependency already)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = dir / "cert.pem", dir / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Images(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        type(self).requests.append(self.path)
        body = IMAGES.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------------
# the small data set with showcases, built twice (so pages have a history to show)


@pytest.fixture(scope="module")
def browse_site(tmp_path_factory: pytest.TempPathFactory, image_server: str) -> Path:
    base = tmp_path_factory.mktemp("browse")
    data, site = base / "data", base / "site"
    shutil.copytree(ROOT / "data", data)
    env = {"HMR_REPOSITORY_URL": "https://github.com/example-org/model-data", "HMR_SITE_URL": "https://models.example"}
    r = run_hmr("build", "--data", str(data), "--out", str(site), env=env)
    assert r.returncode == 0, r.stderr
    src = data / "image_generation" / "Deliberate.yaml"
    text = src.read_text().replace("inpainting: false\n", "inpainting: false\nshowcases:\n"
                                   f"  - {image_server}/show/a.png\n  - {image_server}/show/b.png\n")
    src.write_text(text)
    r = run_hmr("build", "--data", str(data), "--out", str(site), env=env)
    assert r.returncode == 0, r.stderr
    return site


@pytest.fixture(scope="module")
def browse_url(browse_site: Path) -> Iterator[str]:
    yield from serve(browse_site)


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


def new_page(browser: object, viewport: dict[str, int] = DESKTOP, **kw: object) -> object:
    phone = viewport["width"] < 600
    context = browser.new_context(viewport=viewport, ignore_https_errors=True, device_scale_factor=2 if phone else 1,
                                  is_mobile=phone, has_touch=phone, **kw)
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    return pg


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    pg = new_page(browser)
    yield pg
    pg.context.close()


@pytest.fixture
def phone(browser: object) -> Iterator[object]:
    pg = new_page(browser, PHONE)
    yield pg
    pg.context.close()


def shot(pg: object, dir: Path, name: str, full_page: bool = True) -> Path:
    """A screenshot of `pg` into the test's tmp dir; checked to be a picture of the page's width."""
    path = dir / f"{name}.png"
    data = pg.screenshot(path=str(path), full_page=full_page)
    scale = pg.evaluate("window.devicePixelRatio")
    assert png_size(data)[0] == round(pg.evaluate("window.innerWidth") * scale), name
    return path


def no_sideways_scroll(pg: object) -> bool:
    return pg.evaluate("document.documentElement.scrollWidth <= 390")


# ---------------------------------------------------------------------------------------------------
# 1. showcases


def test_only_https_showcases_become_images() -> None:
    assert image_url("https://x.example/a.webp")
    for bad in ("http://x.example/a.png", "javascript:alert(1)", "data:image/png;base64,AAAA", "https://",
                'https://x.example/a.png" onerror="x', "https://x.example/a b.png", None, 3):
        assert not image_url(bad), bad
    rec = {"name": "M", "showcases": ["http://x.example/a.png", "javascript:alert(1)", "https://x.example/b.png"]}
    assert showcases_of(rec) == ["https://x.example/b.png"]
    assert row_context("image_generation", "M", rec)["thumb"] == "https://x.example/b.png"
    ctx = model_context("image_generation", "M", rec, "data/image_generation/M.yaml", SiteConfig(), True)
    assert [s["url"] for s in ctx["showcases"]] == ["https://x.example/b.png"]
    assert ctx["showcases"][0]["alt"]


def test_model_page_shows_its_showcases(page: object, browse_url: str, image_server: str, tmp_path: Path) -> None:
    _Images.requests.clear()
    page.goto(f"{browse_url}/models/image_generation/Deliberate.html")
    imgs = page.locator(".gallery img")
    assert imgs.count() == 2
    for i, path in enumerate(("/show/a.png", "/show/b.png")):
        img = imgs.nth(i)
        assert img.get_attribute("src") == f"{image_server}{path}"
        assert img.get_attribute("loading") == "lazy" and img.get_attribute("width") and img.get_attribute("height")
        assert "Deliberate" in img.get_attribute("alt")
        img.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert page.evaluate("[...document.querySelectorAll('.gallery img')].map(i => i.naturalWidth)") == [96, 64]
    assert set(_Images.requests) >= {"/show/a.png", "/show/b.png"}
    shot(page, tmp_path, "model-showcase")


def test_image_table_shows_a_thumbnail(page: object, browse_url: str, image_server: str) -> None:
    page.goto(f"{browse_url}/models/image_generation/index.html?nsfw=1")
    row = page.locator("#models tbody tr", has=page.get_by_role("link", name="Deliberate", exact=True))
    img = row.locator("td.thumb img")
    assert img.get_attribute("src") == f"{image_server}/show/a.png"
    assert img.get_attribute("width") == "48" and img.get_attribute("height") == "48"
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    # the other rows have no showcase: an empty cell, no broken image
    assert page.locator("#models tbody td.thumb img").count() == 1


# ---------------------------------------------------------------------------------------------------
# 2. the home page: one search across every category, the categories with their names and counts


def results(pg: object) -> list[str]:
    return pg.locator("#results li a").all_inner_texts()


def test_home_search_finds_models_in_every_category(page: object, corpus_url: str) -> None:
    page.goto(f"{corpus_url}/")
    assert page.locator("#search").is_visible()
    page.locator("#search").press_sequentially("marx 3b", delay=15)  # punctuation does not count
    page.wait_for_function("document.querySelectorAll('#results li').length > 0")
    assert results(page)[0] == "acrastt/Marx-3B-V3"
    assert "Text generation" in page.locator("#results li").first.inner_text()
    assert page.evaluate("new URLSearchParams(location.search).get('q')") == "marx 3b"  # linkable
    # by category name, by tag, by baseline: results from other categories than the two big ones
    page.locator("#search").fill("canny")
    page.wait_for_function("[...document.querySelectorAll('#results li')].some(li => /ControlNet/.test(li.textContent))")
    page.locator("#search").fill("upscalers")
    page.wait_for_function("document.querySelectorAll('#results li').length === 6")
    assert "RealESRGAN_x4plus" in results(page)
    page.locator("#search").fill("stable_diffusion_xl")
    page.wait_for_function("document.querySelectorAll('#results li').length > 5")
    assert all("stable_diffusion_xl" in t for t in page.locator("#results li").all_inner_texts())
    # a result leads to its page
    page.locator("#search").fill("deliberate")
    page.wait_for_function("document.querySelectorAll('#results li').length > 0")
    page.get_by_role("link", name="Deliberate", exact=True).click()
    page.wait_for_url("**/models/image_generation/Deliberate.html")
    # the query in the URL is run on arrival
    page.goto(f"{corpus_url}/?q=zzzz-nothing")
    page.wait_for_function("/No model matches/.test(document.getElementById('search-status').textContent)")
    assert results(page) == []


def test_home_names_and_counts_categories(page: object, corpus_url: str) -> None:
    page.goto(f"{corpus_url}/")
    cats = page.locator("ul.cats > li")
    assert cats.count() == 15
    first = page.locator("ul.cats > li[data-cat=image_generation]")
    assert "161 models, 82 NSFW" in first.inner_text() and "Stable Diffusion" in first.inner_text()
    assert page.locator("li[data-cat=text_generation] a").first.get_attribute("href") == \
        "models/text_generation/index.html"
    for li in cats.all():  # every category says what it is
        assert len(li.locator("p").first.inner_text()) > 20


def test_home_without_javascript_lists_the_categories(browser: object, corpus_url: str) -> None:
    pg = new_page(browser, java_script_enabled=False)
    try:
        pg.goto(f"{corpus_url}/")
        assert pg.locator("#search").is_hidden()  # the search needs JavaScript, so it is not offered
        links = pg.locator("ul.cats > li > a")
        assert links.count() == 15
        links.filter(has_text="Text generation").click()
        pg.wait_for_url("**/models/text_generation/index.html")
        assert pg.locator("#models tbody tr").count() == 719
    finally:
        pg.context.close()


# ---------------------------------------------------------------------------------------------------
# 3. the tables: readable order, units, sorting by mouse and keyboard, the state in the URL, speed


def column(pg: object, cls: str) -> list[str]:
    return pg.locator(f"#models tbody tr:visible td.{cls}").all_text_contents()


def names(pg: object) -> list[str]:
    return pg.locator("#models tbody tr:visible td.name a").all_text_contents()


def test_text_table_reads_well(page: object, corpus_url: str, site_dir: Path) -> None:
    page.goto(f"{corpus_url}/models/text_generation/index.html")
    heads = page.locator("#models thead th").all_inner_texts()
    assert [h.rstrip("↕▲▼ ") for h in heads] == ["Name", "Baseline", "Style", "Parameters", "Tags"]  # no NSFW column
    assert page.locator("#show-nsfw").count() == 0 and page.locator(".nsfw-toggle").count() == 0  # none to show
    shown = names(page)
    assert len(shown) == 719 and shown == sorted(shown, key=str.casefold)  # by readable name
    row = page.locator("#models tbody tr", has=page.get_by_role("link", name="Magnum 12B V2", exact=True))
    assert row.locator("code.key").text_content() == "anthracite-org/magnum-12b-v2"  # the key is shown
    assert row.locator("td.c-params").text_content() == "12B"
    assert page.locator("h1").inner_text() == "Text generation"
    html = (site_dir / "models" / "text_generation" / "index.html").read_text()
    assert not re.search(r">\d{7,}<", html)  # no raw counts as text


def test_image_table_units_and_nsfw_once(page: object, corpus_url: str) -> None:
    page.goto(f"{corpus_url}/models/image_generation/index.html?nsfw=1&q=deliberate")
    row = page.locator("#models tbody tr", has=page.get_by_role("link", name="Deliberate", exact=True))
    assert row.locator("td.c-size").text_content() == "2.13 GB"
    assert row.locator(".badge.warn").text_content() == "nsfw"
    assert row.text_content().lower().count("nsfw") == 1  # once, not a column and a suffix
    assert [h.rstrip("↕▲▼ ") for h in page.locator("#models thead th").all_inner_texts()] == \
        ["Preview", "Name", "Baseline", "Style", "File size", "Tags"]


def test_sorting_by_click_and_keyboard_kept_in_the_url(page: object, corpus_url: str, tmp_path: Path) -> None:
    page.goto(f"{corpus_url}/models/text_generation/index.html")
    th = page.locator("#models th[data-col=params]")
    assert th.get_attribute("aria-sort") is None
    assert page.locator("#models th[data-col=name]").get_attribute("aria-sort") == "ascending"
    th.locator("button").click()
    assert th.get_attribute("aria-sort") == "descending"
    assert page.locator("#models th[data-col=name]").get_attribute("aria-sort") is None
    values = page.evaluate("[...document.querySelectorAll('#models tbody td.c-params')].map(t => +t.dataset.v)")
    assert values == sorted(values, reverse=True) and names(page)[0] == "moonshotai/Kimi-K2-Instruct"
    assert "sort=params" in page.url and "dir=desc" in page.url
    # the keyboard: the heading's button takes focus and Enter turns the order round
    th.locator("button").focus()
    page.keyboard.press("Enter")
    assert th.get_attribute("aria-sort") == "ascending"
    values = page.evaluate("[...document.querySelectorAll('#models tbody td.c-params')].map(t => +t.dataset.v)")
    assert values == sorted(values)
    # text columns; empty cells last whichever way
    page.locator("#models th[data-col=baseline] button").press("Space")
    bases = page.evaluate("[...document.querySelectorAll('#models tbody td.c-baseline')].map(t => t.textContent)")
    filled = [b for b in bases if b]
    assert filled == sorted(filled, key=str.lower) and bases[len(filled):] == [""] * (len(bases) - len(filled))
    # a link to the sorted, filtered table opens as it was
    page.goto(f"{corpus_url}/models/text_generation/index.html?sort=params&dir=desc&q=llama")
    assert page.locator("#models th[data-col=params]").get_attribute("aria-sort") == "descending"
    got = page.evaluate("[...document.querySelectorAll('#models tbody tr:not([hidden]) td.c-params')].map(t => +t.dataset.v)")
    assert got and got == sorted(got, reverse=True)
    assert all("llama" in r.get_attribute("data-q") for r in page.locator("#models tbody tr:visible").all())
    shot(page, tmp_path, "category-text_generation-sorted", full_page=False)


# the time from a key press to the table laid out again: measured in the page, keydown's timestamp to
# the end of a forced layout after the table answered (style and layout of all 719 rows included)
MEASURE_JS = """() => {
  window.__times = [];
  let down = 0;
  document.addEventListener('keydown', e => { down = e.timeStamp; }, true);
  const done = kind => { document.body.offsetHeight; window.__times.push([kind, performance.now() - down]); down = 0; };
  document.addEventListener('hmr:filtered', () => { if (down) done('filter'); });
  document.addEventListener('hmr:sorted', () => { if (down) done('sort'); });
}"""


def test_text_table_answers_a_keystroke_within_50_ms(page: object, corpus_url: str) -> None:
    page.goto(f"{corpus_url}/models/text_generation/index.html")
    assert page.locator("#models tbody tr").count() == 719
    page.evaluate(MEASURE_JS)
    page.locator("#q").press_sequentially("mistral", delay=60)  # filter: one measure per key
    page.keyboard.press("Backspace")
    for _ in range(4):
        page.locator("#q").press("Backspace")
    page.locator("#q").fill("")
    page.locator("#models th[data-col=params] button").focus()
    for _ in range(4):  # sort by keyboard: Enter on the heading's button
        page.keyboard.press("Enter")
        page.wait_for_timeout(60)
    kinds = page.evaluate("window.__times")
    assert len(kinds) >= 12 and [k for k, _ in kinds].count("sort") == 4, kinds
    times = sorted(ms for _, ms in kinds)
    median = times[len(times) // 2]
    print(f"keystroke to table laid out, ms: median {median:.1f}, max {times[-1]:.1f}, all {kinds}")
    # the machine is shared (2 cores, other work running): a single slow frame is noise, most must be fast
    assert median < 50 and sum(t < 50 for t in times) >= 0.75 * len(times), times


# ---------------------------------------------------------------------------------------------------
# 4. model pages: facts first, files with copy buttons, dates, usage, related models, fields last


def test_model_page_leads_with_facts_and_copies(browser: object, browse_url: str, tmp_path: Path) -> None:
    pg = new_page(browser, permissions=["clipboard-read", "clipboard-write"])
    try:
        pg.goto(f"{browse_url}/models/image_generation/Deliberate.html")
        facts = dict(zip(pg.locator(".facts dt").all_inner_texts(), pg.locator(".facts dd").all_inner_texts(),
                         strict=True))
        assert facts["Category"] == "Image generation" and facts["What it is"] == "image generation model"
        assert facts["Baseline"] == "stable_diffusion_1" and facts["NSFW"] == "no"
        # the second build changed Deliberate (its showcases): the date, generation and commit are shown
        assert facts["Updated"].startswith("20") and "generation 2" in facts["Updated"]
        # the facts come before the internals, which are collapsed at the end
        order = pg.evaluate("[...document.querySelectorAll('main h2, main dl.facts, main details')]"
                            ".map(e => e.tagName + (e.tagName === 'H2' ? ':' + e.textContent : ''))")
        assert order[0] == "DL" and order[-1] == "DETAILS"
        assert pg.locator("details.all-fields").get_attribute("open") is None
        assert not pg.locator("table.fields").is_visible()
        # copy buttons: URL and sha256
        sha = "9aba26abdfcd46073e0a1d42027a3a3bcc969f562d58a03637bf0a0ded6586c9"
        pg.get_by_role("button", name="Copy sha256").click()
        assert pg.evaluate("navigator.clipboard.readText()") == sha
        pg.get_by_role("button", name="Copy URL").click()
        assert pg.evaluate("navigator.clipboard.readText()").endswith("/Deliberate_v2.safetensors")
        # usage: curl of the v2 record at the configured site URL, the Python client call
        curl = pg.locator("#use-curl").inner_text()
        assert curl == "curl -s 'https://models.example/api/model_references/v2/image_generation/model/Deliberate'"
        py = pg.locator("#use-python").inner_text()
        assert "ReplicaClient().get_model('image_generation', 'Deliberate')" in py
        pg.locator(".snippet", has=pg.locator("#use-python")).get_by_role("button", name="Copy").click()
        assert pg.evaluate("navigator.clipboard.readText()") == py
        record = pg.locator("a", has_text="open it").get_attribute("href")
        assert pg.request.get(f"{browse_url}/models/image_generation/{record}").json()["name"] == "Deliberate"
        shot(pg, tmp_path, "model-Deliberate-desktop")
    finally:
        pg.context.close()


def test_text_model_page_related_and_no_empty_downloads(page: object, corpus_url: str) -> None:
    page.goto(f"{corpus_url}/models/text_generation/anthracite-org/magnum-12b-v2.html")
    assert page.locator("h2", has_text="Download").count() == 0
    assert "No download files" not in page.locator("main").inner_text()
    facts = dict(zip(page.locator(".facts dt").all_inner_texts(), page.locator(".facts dd").all_inner_texts(),
                     strict=True))
    assert facts["Parameters"] == "12B" and facts["Group"] == "magnum"
    related = page.locator("ul.related li")
    assert related.count() > 0
    texts = related.all_inner_texts()
    assert any("same group" in t for t in texts) and "Magnum 12B V2" not in [t.split(" same ")[0] for t in texts]
    # the corpus site has no site URL configured: the page puts its own address in the snippet
    curl = page.locator("#use-curl").inner_text()
    assert curl == f"curl -s '{corpus_url}/api/model_references/v2/text_generation/model/anthracite-org/magnum-12b-v2'"
    related.first.locator("a").click()  # a nested key's link resolves
    page.wait_for_load_state()
    assert page.locator("h1").count() == 1 and "/models/text_generation/" in page.url
    assert page.locator(".facts dt", has_text="Group").count() == 1


# ---------------------------------------------------------------------------------------------------
# 5. the phone layout (390 px), and screenshots of every page type at both widths


PAGES = (("", "home"), ("models/image_generation/index.html", "table-image"),
         ("models/text_generation/index.html", "table-text"),
         ("models/text_generation/anthracite-org/magnum-12b-v2.html", "model-text"),
         ("models/image_generation/Deliberate.html", "model-image"))


def test_phone_layout_nothing_scrolls_sideways(phone: object, corpus_url: str, tmp_path: Path) -> None:
    for path, name in PAGES:
        phone.goto(f"{corpus_url}/{path}")
        assert phone.evaluate("window.innerWidth") == 390
        assert no_sideways_scroll(phone), (name, phone.evaluate("document.documentElement.scrollWidth"))
        # a compact header: one line, the categories behind a menu
        assert phone.locator("header.top").bounding_box()["height"] < 60, name
        assert phone.locator("header.top nav").is_hidden()
        shot(phone, tmp_path, f"{name}-phone", full_page=name.startswith(("home", "model")))
    phone.goto(f"{corpus_url}/models/image_generation/index.html")
    # the table is a list of cards: each row's name, baseline and size are in view, nothing hidden sideways
    card = phone.locator("#models tbody tr:visible").first
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert card.locator("td.c-baseline").is_visible() and card.locator("td.c-size").is_visible()
    phone.locator("label[for=menu]").click()
    nav = phone.locator("header.top nav")
    assert nav.is_visible() and no_sideways_scroll(phone)
    nav.get_by_role("link", name="Text generation").click()
    phone.wait_for_url("**/models/text_generation/index.html")
    assert no_sideways_scroll(phone)


def test_desktop_screenshots(page: object, corpus_url: str, tmp_path: Path) -> None:
    for path, name in PAGES:
        page.goto(f"{corpus_url}/{path}")
        assert page.locator("header.top nav").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        shot(page, tmp_path, f"{name}-desktop", full_page=not name.startswith("table"))
    assert len(list(tmp_path.glob("*-desktop.png"))) == len(PAGES)


# ---------------------------------------------------------------------------------------------------
# 6. favicon, descriptions and Open Graph, dark mode, the 404 page, the sitemap


def test_head_favicon_and_open_graph(page: object, browse_url: str, browse_site: Path, image_server: str) -> None:
    for path, title in (("", "Models"), ("models/image_generation/index.html", "Image generation"),
                        ("models/image_generation/Deliberate.html", "Deliberate")):
        page.goto(f"{browse_url}/{path}")
        desc = page.locator("meta[name=description]").get_attribute("content")
        assert 20 < len(desc) <= 200, path
        assert page.locator("meta[property='og:title']").get_attribute("content") == title
        assert page.locator("meta[property='og:description']").get_attribute("content") == desc
        assert page.locator("meta[property='og:url']").get_attribute("content") == f"https://models.example/{quote(path)}"
        icon = page.locator("link[rel=icon]").get_attribute("href")
        r = page.request.get(f"{browse_url}/{path.rpartition('/')[0]}/{icon}".replace("//assets", "/assets"))
        assert r.ok and r.headers["content-type"].startswith("image/svg+xml") and b"<svg" in r.body()
    assert page.locator("meta[property='og:image']").get_attribute("content") == f"{image_server}/show/a.png"
    assert page.locator("meta[name=description]").get_attribute("content").startswith("A community fine-tune")


def test_dark_mode_follows_the_system(browser: object, corpus_url: str, tmp_path: Path) -> None:
    for scheme, dark in (("light", False), ("dark", True)):
        pg = new_page(browser, color_scheme=scheme)
        try:
            pg.goto(f"{corpus_url}/models/image_generation/index.html")
            bg = pg.evaluate("getComputedStyle(document.body).backgroundColor")
            rgb = [int(x) for x in re.findall(r"\d+", bg)[:3]]
            assert (sum(rgb) < 150) is dark, (scheme, bg)
            shot(pg, tmp_path, f"table-image-{scheme}", full_page=False)
        finally:
            pg.context.close()


def test_html_404_page(page: object, corpus_url: str) -> None:
    r = page.goto(f"{corpus_url}/models/image_generation/no-such-model.html")
    assert r.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    assert page.locator("link[rel=icon]").count() == 1 and page.locator("header.top nav a").count() == 15
    page.get_by_role("link", name="home page").click()
    page.wait_for_url("**/index.html")


def test_sitemap_lists_every_page(browse_site: Path, site_dir: Path) -> None:
    import xml.etree.ElementTree as ET

    from builder.routes import content_type

    doc = ET.fromstring((browse_site / "sitemap.xml").read_bytes())
    locs = [e.text for e in doc.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    # the browse pages; api/docs documents the API, it is not one of them
    pages = [p for p in browse_site.rglob("*.html") if p.relative_to(browse_site).parts[0] != "api"]
    assert len(locs) == len(pages) and locs[0] == "https://models.example/"
    assert "https://models.example/models/image_generation/" in locs
    assert "https://models.example/models/image_generation/SDXL%201.0.html" in locs
    assert content_type("sitemap.xml") == "application/xml"
    assert not (site_dir / "sitemap.xml").exists()  # no site URL configured: no sitemap of relative URLs
