"""The web page in a real browser: Debian's headless Chromium, driven by Selenium through chromedriver, against the
`gateway` fixture (a real gateway process in front of a real modelserver). Screenshots are kept as artefacts."""

from __future__ import annotations

import base64
import pathlib
from collections.abc import Callable, Iterator

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.paths import IMAGES

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMEDRIVER = pathlib.Path("/usr/bin/chromedriver")
DESKTOP = (1280, 900)
PHONE = (390, 844)  # CSS pixels of a common phone


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
    facts = {e.get_attribute("data-fact"): e.text for e in browser.find_elements(By.CSS_SELECTOR, "#summary dd")}
    assert facts["model"] == "deeplab" and facts["version"] == "1" and facts["variant"].startswith("none")
    stages = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#timings tbody th")]
    assert stages[0].startswith("Probe") and stages[-1] == "Total"
    assert float(browser.find_element(By.CSS_SELECTOR, "#timings tr.total td").text) > 0
    assert browser.find_element(By.ID, "error").is_displayed() is False
    # No script error, refused request or Content-Security-Policy violation on the way.
    problems = [entry["message"] for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not problems, problems
    _screenshot(browser, "page-desktop.png", tmp_path, keep_artefact)


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
    figures = browser.find_elements(By.CSS_SELECTOR, ".pictures figure")
    assert len({f.location["x"] for f in figures}) == 1, "the pictures should stack in one column on a phone"
    _screenshot(browser, "page-phone.png", tmp_path, keep_artefact)


def test_errors_are_shown_plainly(browser: WebDriver, http_url: str, tmp_path: pathlib.Path) -> None:
    _open(browser, http_url + "/", DESKTOP)
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_text("these are notes, not a photo")
    browser.find_element(By.ID, "photo").send_keys(str(not_a_photo))
    browser.find_element(By.ID, "segment").click()
    _wait(browser, lambda d: d.find_element(By.ID, "error").is_displayed(), "no error was shown")
    error = browser.find_element(By.ID, "error")
    assert error.get_attribute("role") == "alert"
    assert "HTTP 400, invalid_argument" in error.text and "not an image" in error.text, error.text
    assert browser.find_element(By.ID, "status").text == "notes.png was not segmented."
