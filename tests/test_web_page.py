"""The chat page at `/` in a real browser (headless Chromium): it loads, shows what is served, sends a message and
shows the streamed reply, with an API key on.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them); skipped where they are absent.
"""

import shutil

import pytest
from running_server import RunningServer

DRIVER = shutil.which("chromedriver")
BROWSER = shutil.which("chromium")

pytestmark = pytest.mark.skipif(not (DRIVER and BROWSER), reason="chromium and chromium-driver are not installed")


@pytest.fixture(scope="module")
def url():
    server = RunningServer(["--device", "cpu", "--api-key", "sesame"])
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_page_shows_the_model_and_streams_a_reply(url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda b: "onebit-demo" in b.find_element(By.ID, "model").text)
    assert "context 512" in browser.find_element(By.ID, "model").text
    browser.find_element(By.ID, "key").send_keys("sesame")
    browser.find_element(By.ID, "input").send_keys("To be, or not to be")
    browser.find_element(By.ID, "send").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".msg.assistant")) == 1
               and len(b.find_element(By.CSS_SELECTOR, ".msg.assistant").text) > 20)
    assert not browser.find_elements(By.CSS_SELECTOR, ".msg.error")
    assert browser.find_element(By.CSS_SELECTOR, ".msg.user").text == "To be, or not to be"


def test_a_wrong_key_shows_the_error(url, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    key = browser.find_element(By.ID, "key")
    key.clear()
    key.send_keys("wrong")
    browser.find_element(By.ID, "input").send_keys("Hello")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".msg.error"))
    assert "key" in browser.find_element(By.CSS_SELECTOR, ".msg.error").text.lower()
