"""The web page in a real browser: Debian's headless Chromium, driven by Selenium through chromedriver, against a real
gateway process in front of the real `modelserver` fixture. Screenshots are kept as artefacts."""

from __future__ import annotations

import base64
import pathlib
import subprocess
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from grpc_health.v1 import health_pb2
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests import images
from tests.helpers import ServerProcess, http_base, start_gateway, wait_for_health
from tests.paths import IMAGES, LABELS, ROOT

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
DESKTOP = (1280, 900)
PHONE = (375, 812)  # CSS pixels of a common small phone
SPLIT_MODEL = "deeplab-split"


@pytest.fixture(scope="module")
def http_url(modelserver: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page's gateway, in place of the shared `gateway` fixture's (one gateway either way): the default model
    "deeplab" as that one serves it, and the same servable as "deeplab-split" with a traffic split for the variant
    picker. The modelserver serves version 1 only, so both variants call it; canary weighs 0, so the split never
    chooses it and an answer from canary is one the page asked for."""
    config = tmp_path_factory.mktemp("browser-gateway") / "gateway.toml"
    config.write_text(
        f'[[backends]]\nname = "local"\ntargets = ["{modelserver.target}"]\n\n'
        f'[[models]]\nname = "deeplab"\ndefault = true\nlabels = "{LABELS}"\n\n'
        f'[[models]]\nname = "{SPLIT_MODEL}"\nserved_name = "deeplab"\nlabels = "{LABELS}"\n\n'
        '[[models.variants]]\nname = "stable"\nversion = 1\nweight = 100\n\n'
        '[[models.variants]]\nname = "canary"\nversion = 1\nweight = 0\n'
    )
    gateway = start_gateway(None, f"--config={config}", "--http-listen=127.0.0.1:0", "--health-poll=0.2")
    try:
        wait_for_health(gateway.target, health_pb2.HealthCheckResponse.SERVING)
        yield http_base(gateway)
    finally:
        assert gateway.stop() == 0, gateway.output()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Chromium and chromedriver are missing: `make setup` installs them (tests/install-browser.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # As root, in a container, with no network but loopback: no sandbox, no GPU, nothing that calls home.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: WebDriver, what: Callable[[WebDriver], object], message: str, timeout: float = 60) -> None:
    try:
        # The page rewrites parts of itself as results come (the model list, the status line): an element
        # replaced between finding it and reading it is only a reason to look again.
        WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(
            what
        )
    except TimeoutException:
        status = driver.find_element(By.ID, "status").text
        error = driver.find_element(By.ID, "error").text
        raise AssertionError(f"{message}; status: {status!r}; error: {error!r}") from None


def _screenshot(driver: WebDriver, name: str, tmp_path: pathlib.Path, keep: Callable[..., object]) -> None:
    """A screenshot of the whole page, not only of the window (Chromium's DevTools protocol, through chromedriver)."""
    # Capturing beyond the viewport drops the vertical scrollbar and lays the page out 15 px wider than measured:
    # without a scrollbar from the start, the page is captured at the width it was measured at.
    driver.execute_script("document.documentElement.style.scrollbarWidth = 'none'")
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "clip": clip})
    path = tmp_path / name
    path.write_bytes(base64.b64decode(shot["data"]))
    keep(path)


def _open(driver: WebDriver, url: str, size: tuple[int, int]) -> None:
    driver.set_window_size(*size)
    driver.get(url)
    _wait(
        driver,
        lambda d: any("(default)" in o.text for o in d.find_elements(By.CSS_SELECTOR, "#model option")),
        "the model list did not load",
    )


def _segment(driver: WebDriver, photo: pathlib.Path, submit: Callable[[], None]) -> None:
    driver.find_element(By.ID, "photo").send_keys(str(photo))
    submit()
    _wait(driver, lambda d: d.find_element(By.ID, "status").text.startswith("Done"), f"{photo.name} was not segmented")


def _natural_width(driver: WebDriver, element_id: str) -> int:
    return driver.execute_script(f"return document.getElementById('{element_id}').naturalWidth")


def _facts(driver: WebDriver) -> dict[str | None, str]:
    return {e.get_attribute("data-fact"): e.text for e in driver.find_elements(By.CSS_SELECTOR, "#summary dd")}


def test_the_page_segments_a_photo_and_shows_the_result(
    browser: WebDriver, http_url: str, tmp_path: pathlib.Path, keep_artefact: Callable[..., object]
) -> None:
    _open(browser, http_url + "/", DESKTOP)
    assert browser.title.startswith("Segment a photo")
    _segment(browser, IMAGES / "astronaut.png", lambda: browser.find_element(By.ID, "segment").click())

    labels = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#classes tbody th")]
    assert "person" in labels, labels
    for image in ("overlay", "mask", "photo-view"):
        assert _natural_width(browser, image) == 512, image  # astronaut.png is 512 x 512
        alt = browser.find_element(By.ID, image).get_attribute("alt") or ""
        assert "person" in alt, (image, alt)
    assert browser.find_elements(By.CSS_SELECTOR, "#boxes g[data-class-id='15'] rect"), "no box around the person"
    facts = _facts(browser)
    assert facts["model"] == "deeplab" and facts["version"] == "1" and facts["variant"].startswith("none")
    stages = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#timings tbody th")]
    assert stages[0].startswith("Probe") and stages[-1] == "Total"
    assert float(browser.find_element(By.CSS_SELECTOR, "#timings tr.total td").text) > 0
    assert browser.find_element(By.ID, "error").is_displayed() is False
    # No script error, refused request or Content-Security-Policy violation on the way.
    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not problems, problems
    _screenshot(browser, "page-desktop.png", tmp_path, keep_artefact)


def _cutout_alpha(driver: WebDriver) -> np.ndarray:
    """The alpha of the cut-out as the browser decoded it (drawn on a canvas), which the download link saves: the
    link's object URL is the picture's."""
    link, picture = (driver.find_element(By.ID, name).get_attribute(attr) for name, attr in
                     (("cutout-download", "href"), ("cutout-view", "src")))  # fmt: skip
    assert link == picture and link.startswith("blob:"), (link, picture)
    width, height, alpha = driver.execute_script(
        """
        const image = document.getElementById("cutout-view");
        const canvas = document.createElement("canvas");
        canvas.width = image.naturalWidth;
        canvas.height = image.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(image, 0, 0);
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let levels = "";
        for (let i = 3; i < pixels.length; i += 4) levels += String.fromCharCode(pixels[i]);
        return [canvas.width, canvas.height, btoa(levels)];
        """
    )
    return np.frombuffer(base64.b64decode(alpha), np.uint8).reshape(height, width)


def test_the_page_cuts_out_the_subject_soft_or_hard_and_saves_it(
    browser: WebDriver, http_url: str, tmp_path: pathlib.Path, keep_artefact: Callable[..., object]
) -> None:
    _open(browser, http_url + "/", DESKTOP)
    assert not browser.find_element(By.ID, "cutout-figure").is_displayed()
    assert browser.find_element(By.ID, "edges").get_attribute("disabled") is not None  # until a cut-out is asked
    browser.find_element(By.ID, "cutout").click()
    assert browser.find_element(By.ID, "edges").get_attribute("disabled") is None
    _segment(browser, IMAGES / "chelsea.png", lambda: browser.find_element(By.ID, "segment").click())
    assert browser.find_element(By.ID, "cutout-figure").is_displayed()
    link = browser.find_element(By.ID, "cutout-download")
    assert link.get_attribute("download") == "chelsea-cutout.png" and link.get_attribute("href").startswith("blob:")
    soft = _cutout_alpha(browser)
    assert soft.shape[1] <= 451 and soft.shape[0] <= 300  # cropped to the cat (chelsea.png is 451 x 300)
    assert len(np.unique(soft)) > 50, "soft edges: many levels of alpha"
    background = browser.execute_script(
        "return getComputedStyle(document.querySelector('#cutout-figure .checkerboard')).backgroundImage"
    )
    assert "conic-gradient" in background, background
    assert (browser.find_element(By.ID, "cutout-view").get_attribute("alt") or "").startswith(
        "The subject of chelsea.png cut out"
    )
    _screenshot(browser, "page-cutout.png", tmp_path, keep_artefact)

    browser.find_element(By.CSS_SELECTOR, "input[name=edge][value=CUTOUT_EDGE_HARD]").click()
    before = link.get_attribute("href")
    _segment(browser, IMAGES / "chelsea.png", lambda: browser.find_element(By.ID, "segment").click())
    _wait(browser, lambda d: d.find_element(By.ID, "cutout-download").get_attribute("href") != before, "no new cut-out")
    hard = _cutout_alpha(browser)
    assert set(np.unique(hard)) == {0, 255}, "hard edges: opaque or transparent"
    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not problems, problems


@pytest.mark.parametrize(("kind", "shown_by_the_browser"), [("heic", False), ("avif", True)])
def test_a_turned_heic_or_avif_photo_is_shown_upright_even_where_the_browser_cannot_draw_it(
    browser: WebDriver, http_url: str, tmp_path: pathlib.Path, kind: str, shown_by_the_browser: bool
) -> None:
    """chelsea.png (451 x 300) stored turned, with the container's rotation for orientation 6: shown 300 x 451.
    Chromium draws AVIF itself; HEIC it cannot, so the page shows the gateway's overlay in the photo's place."""
    name = f"cat.{kind}"
    photo = tmp_path / name
    photo.write_bytes({"heic": images.heic, "avif": images.avif}[kind]("chelsea.png", orientation=6))
    _open(browser, http_url + "/", DESKTOP)
    _segment(browser, photo, lambda: browser.find_element(By.ID, "segment").click())
    labels = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#classes tbody th")]
    assert "cat" in labels, labels
    assert _facts(browser)["photo"] == f"{name}, 300 \N{MULTIPLICATION SIGN} 451 pixels"
    _wait(browser, lambda d: _natural_width(d, "photo-view") == 300, "the photo is not shown upright")
    for image in ("overlay", "mask"):
        assert _natural_width(browser, image) == 300, image
    source = browser.find_element(By.ID, "photo-view").get_attribute("src")
    assert (source == browser.find_element(By.ID, "overlay").get_attribute("src")) is not shown_by_the_browser
    alt = browser.find_element(By.ID, "photo-view").get_attribute("alt") or ""
    assert ("cannot show the file itself" in alt) is not shown_by_the_browser, alt


def test_the_page_works_from_the_keyboard_on_a_phone_sized_screen(
    browser: WebDriver, http_url: str, tmp_path: pathlib.Path, keep_artefact: Callable[..., object]
) -> None:
    _open(browser, http_url + "/", PHONE)
    # Submitted with the keyboard: Enter on the focused button.
    button = browser.find_element(By.ID, "segment")
    _segment(browser, IMAGES / "astronaut.png", lambda: button.send_keys(Keys.ENTER))
    labels = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#classes tbody th")]
    assert "person" in labels
    assert _natural_width(browser, "overlay") > 0
    # Nothing is wider than the screen: the page never scrolls sideways (wide tables scroll in their own box).
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow} px wider than a {PHONE[0]} px screen"
    figures = [f for f in browser.find_elements(By.CSS_SELECTOR, ".pictures figure") if f.is_displayed()]
    assert len({f.location["x"] for f in figures}) == 1, "the pictures should stack in one column on a phone"
    # Nor does any table need its own scrolling: the last cell of every row, the header's too, ends on the screen
    # (left of the scrollbar, which headless Chromium draws 15 px wide).
    rows, cut = browser.execute_script(
        """
        const rows = [...document.querySelectorAll("#classes tr, #timings tr")];
        const cut = rows
          .map((row) => [row.closest("table").id, row.lastElementChild])
          .filter(([, cell]) => cell.getBoundingClientRect().right > document.documentElement.clientWidth)
          .map(([table, cell]) => `#${table}: "${cell.textContent}" ends at ${cell.getBoundingClientRect().right}`);
        return [rows.length, cut];
        """
    )
    assert browser.execute_script("return window.innerWidth") == PHONE[0]
    assert rows >= 2 + 1 + 9, rows  # the two header rows, a class or more, eight stages and the total
    assert not cut, f"cut off on a {PHONE[0]} px screen: {cut}"
    _screenshot(browser, "page-phone.png", tmp_path, keep_artefact)


def test_the_variant_picker_calls_the_variant_picked(browser: WebDriver, http_url: str) -> None:
    _open(browser, http_url + "/", DESKTOP)
    variant = browser.find_element(By.ID, "variant")
    # The default model has no split: the picker is there, disabled, and says why.
    assert not variant.is_enabled()
    assert "no traffic split" in browser.find_element(By.ID, "variant-hint").text

    Select(browser.find_element(By.ID, "model")).select_by_value(SPLIT_MODEL)
    _wait(browser, lambda d: d.find_element(By.ID, "variant").is_enabled(), "the variant picker stayed disabled")
    options = {o.get_attribute("value"): o.text for o in Select(variant).options}
    assert list(options) == ["", "stable", "canary"], options
    assert options[""] == "Chosen by the split"
    assert "weight 100" in options["stable"] and "weight 0" in options["canary"], options
    assert Select(variant).first_selected_option.get_attribute("value") == "", "the split should decide by default"

    Select(variant).select_by_value("canary")
    _segment(browser, IMAGES / "astronaut.png", lambda: browser.find_element(By.ID, "segment").click())
    facts = _facts(browser)
    assert (facts["model"], facts["version"]) == (SPLIT_MODEL, "1"), facts
    assert facts["variant"] == "canary (picked above)", facts

    # Back to the model without a split: nothing left to pick.
    Select(browser.find_element(By.ID, "model")).select_by_value("deeplab")
    assert not variant.is_enabled()
    assert [o.get_attribute("value") for o in Select(variant).options] == [""]


def test_errors_are_shown_plainly(browser: WebDriver, http_url: str, tmp_path: pathlib.Path) -> None:
    _open(browser, http_url + "/", DESKTOP)
    # No photo chosen: nothing is sent, so it is not told as the gateway's refusal.
    browser.find_element(By.ID, "segment").click()
    _wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed(), "no error was shown without a photo")
    said = browser.find_element(By.ID, "error").text
    assert said.startswith("No photo chosen.") and "gateway" not in said, said
    # A result first: a failed call must not leave it on the page as if it were the failed call's.
    _segment(browser, IMAGES / "chelsea.png", lambda: browser.find_element(By.ID, "segment").click())
    assert browser.find_element(By.ID, "result").is_displayed()
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_text("these are notes, not a photo")
    browser.find_element(By.ID, "photo").send_keys(str(not_a_photo))
    assert browser.find_element(By.ID, "photo-name").text == "Chosen: notes.png (28 bytes)"
    browser.find_element(By.ID, "segment").click()
    _wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed(), "no error was shown")
    error = browser.find_element(By.ID, "error")
    assert error.get_attribute("role") == "alert"
    assert "HTTP 400, invalid_argument" in error.text and "not an image" in error.text, error.text
    assert browser.find_element(By.ID, "status").text == "notes.png was not segmented."
    assert not browser.find_element(By.ID, "result").is_displayed(), "the previous result is still shown"


def test_the_docs_site_reads_at_1280_px(
    browser: WebDriver, tmp_path: pathlib.Path, keep_artefact: Callable[[pathlib.Path], pathlib.Path]
) -> None:
    site = tmp_path / "site"
    built = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mkdocs"), "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    browser.set_window_size(1280, 900)
    pages = sorted(page for page in site.glob("*.html") if page.name != "404.html")  # the server's, rooted at /
    assert len(pages) >= 16
    for page in pages:
        browser.get(page.as_uri())
        # The navigation fits in one row: the pages are grouped into sections.
        assert browser.find_element(By.CSS_SELECTOR, ".navbar").size["height"] < 80, page.name
        # No code hidden past the edge of its block.
        cut = browser.execute_script(
            "return [...document.querySelectorAll('pre')].filter(p => p.scrollWidth > p.clientWidth)"
            ".map(p => p.textContent.slice(0, 60))"
        )
        assert not cut, (page.name, cut)
    # The pictures in text are drawn as written: none of their lines wraps.
    for name in ("index.html", "architecture.html"):
        browser.get((site / name).as_uri())
        wrapped = browser.execute_script(
            """return [...document.querySelectorAll('pre code')].filter(c => /[─│▶◀]/.test(c.textContent)).map(c => {
                 const lines = c.textContent.replace(/\\n$/, '').split('\\n').length;
                 const height = parseFloat(getComputedStyle(c).lineHeight);
                 return [lines, Math.round(c.getBoundingClientRect().height / height)];
               }).filter(([lines, drawn]) => drawn !== lines)"""
        )
        assert not wrapped, (name, wrapped)
    # Code is highlighted when the site is built, with no script from elsewhere.
    browser.get((site / "api.html").as_uri())
    assert browser.find_elements(By.CSS_SELECTOR, ".codehilite pre span.nv, .codehilite pre span.c1")
    assert ".codehilite .c1 {" in (site / "css" / "pygments.css").read_text()
    assert not browser.find_elements(By.CSS_SELECTOR, "script[src^='http']")
    _screenshot(browser, "docs-index-1280.png", tmp_path, keep_artefact)
