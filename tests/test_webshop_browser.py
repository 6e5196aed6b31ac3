"""The browser view, driven by a real headless Chromium through Selenium.

Needs ``apt-get install -y chromium chromium-driver`` and ``pip install selenium``; skipped with the
reason otherwise.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from turngym.envs.webshop.server import make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed: pip install selenium"
)
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "chromium/chromedriver not found: apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
)


@pytest.fixture(scope="module")
def shop_url() -> Iterator[str]:
    with make_server("127.0.0.1", 0, num_products=1_000) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="turngym-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _page(driver, name: str):
    return WebDriverWait(driver, 10).until(
        expected_conditions.presence_of_element_located((By.ID, f"page-{name}"))
    )


def _reloaded(driver, old, name: str):
    """The page ``name`` that replaced ``old``: a click that loads a page of the same kind would
    otherwise let a check read the page it left (a race CI once lost)."""
    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(old))
    return _page(driver, name)


def test_shopping_in_a_real_browser(shop_url: str, browser) -> None:
    from PIL import Image

    browser.get(f"{shop_url}/?task=000003")
    _page(browser, "search")
    instruction = browser.find_element(By.ID, "instruction").text
    assert instruction.startswith("Instruction:") and "dollars" in instruction
    browser.find_element(By.ID, "search_input").send_keys(
        instruction.removeprefix("Instruction:").strip()
    )
    browser.find_element(By.ID, "search_button").click()
    results = _page(browser, "results")
    assert "Total results:" in results.text
    links = browser.find_elements(By.CSS_SELECTOR, "button.product-link")
    assert len(links) == 10
    asin = links[0].text
    links[0].click()
    item = _page(browser, "item")
    assert "Buy Now" in item.text and "Price: $" in item.text
    options = browser.find_elements(By.CSS_SELECTOR, "button.option")
    assert options, "the item page shows option values"
    options[0].click()
    _reloaded(browser, item, "item")  # the click loads a new item page
    assert browser.find_elements(By.CSS_SELECTOR, "button.option.selected")
    png = browser.get_screenshot_as_png()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size[0] >= 800
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "the screenshot is not blank"
    # The header bar is drawn in #232f3e and the instruction banner in #febd69.
    assert image.getpixel((10, 10)) == (0x23, 0x2F, 0x3E)
    banner = [image.getpixel((x, 60)) for x in range(5, 400, 20)]
    assert (0xFE, 0xBD, 0x69) in banner
    browser.find_element(By.XPATH, "//button[text()='Buy Now']").click()
    done = _page(browser, "done")
    score = float(browser.find_element(By.ID, "score").text)
    assert 0.0 <= score <= 1.0 and "Thank you for shopping" in done.text
    assert asin  # the clicked result was a product id


def test_invalid_form_input_shows_feedback(shop_url: str, browser) -> None:
    browser.get(f"{shop_url}/?seed=1")
    before = _page(browser, "search")
    browser.find_element(By.ID, "search_button").click()  # empty search
    page = _reloaded(browser, before, "search")
    assert "Invalid action" in page.text
