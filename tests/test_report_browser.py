"""The review page in a real headless Chromium (Debian's chromium + chromium-driver; nothing is downloaded).

Skipped when /usr/bin/chromium or /usr/bin/chromedriver is absent; CI installs them with
`apt-get install -y chromium chromium-driver`.
"""

from __future__ import annotations

import pytest
from report_run import CHROMEDRIVER, CHROMIUM, EVIL, headless_chrome, make_run

from entitylabel.report import build_report

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMEDRIVER.is_file() and CHROMIUM), reason="chromium / chromium-driver not installed"),
]


@pytest.fixture
def driver(tmp_path):
    d = headless_chrome(tmp_path / "chrome-profile")
    yield d
    d.quit()


def _cards(d):
    from selenium.webdriver.common.by import By

    return d.find_elements(By.CSS_SELECTOR, "#pairs article.pair")


def test_review_page_in_chromium(driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    run = make_run(tmp_path, n=12)
    page = build_report(run, page_size=5)
    driver.get(page.resolve().as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")

    # Nothing in a caption ran: no flag set, no injected <img>, no extra <script> element in the DOM.
    assert driver.execute_script("return window.__pwned === undefined")
    assert not driver.find_elements(By.CSS_SELECTOR, "#pairs img[src='x']")
    assert len(driver.find_elements(By.TAG_NAME, "script")) == 3

    # Pagination: 12 pairs, 5 per page.
    assert len(_cards(driver)) == 5
    assert "Page 1 of 3" in driver.find_element(By.CSS_SELECTOR, "#pager-top .page-info").text
    thumbs = driver.find_elements(By.CSS_SELECTOR, "#pairs article.pair figure img")
    assert len(thumbs) == 10
    assert driver.execute_script("return arguments[0].naturalWidth", thumbs[0]) > 0  # the JPEG decodes

    # The caption with markup is shown as text, exactly.
    evil_card = driver.find_element(By.CSS_SELECTOR, "article.pair[data-pair-id='toy-0001']")
    texts = [e.text for e in evil_card.find_elements(By.CSS_SELECTOR, ".cap-text")]
    assert any("<script>window.__pwned = 1</script>" in t for t in texts)
    assert any('onerror="window.__pwned = 2"' in t for t in texts)

    # Chips with confidences; highlighted mentions of each kind.
    chips = evil_card.find_elements(By.CSS_SELECTOR, ".chip.final")
    assert [c.get_attribute("data-entity") for c in chips] == ["car", "tree"]
    assert "0.90" in chips[0].text
    first = _cards(driver)[0]
    assert first.find_elements(By.CSS_SELECTOR, ".m-ok")
    assert first.find_elements(By.CSS_SELECTOR, ".m-neg")
    assert "no dog" in first.text

    # Entity filter: only pairs labelled "tree" (i % 4 != 0 -> 9 of 12).
    Select(driver.find_element(By.ID, "f-entity")).select_by_value("tree")
    info = driver.find_element(By.CSS_SELECTOR, "#pager-top .page-info").text
    assert "of 9" in info, info
    for card in _cards(driver):
        assert "tree" in [c.get_attribute("data-entity") for c in card.find_elements(By.CSS_SELECTOR, ".chip.final")]

    # Split filter on top: test split holds i % 3 == 0 -> 0, 3, 6, 9; with tree: 3, 6, 9.
    Select(driver.find_element(By.ID, "f-split")).select_by_value("test")
    ids = [c.get_attribute("data-pair-id") for c in _cards(driver)]
    assert ids == ["toy-0003", "toy-0006", "toy-0009"]

    # Clicking a chart bar filters by that entity; next page works.
    driver.find_element(By.ID, "f-clear").click()
    driver.find_element(By.CSS_SELECTOR, "#chart .bar-row[data-entity='person']").click()
    assert all(c.get_attribute("data-pair-id")[-1] in "02468" for c in _cards(driver))
    driver.find_element(By.ID, "f-clear").click()
    driver.find_element(By.CSS_SELECTOR, "#pager-top .next").click()
    assert [c.get_attribute("data-pair-id") for c in _cards(driver)][0] == "toy-0005"

    # Rejected phrases table, with its markup-looking phrase as text.
    rows = driver.find_elements(By.CSS_SELECTOR, "#rejected tbody tr")
    assert len(rows) == 3
    assert rows[0].find_element(By.CSS_SELECTOR, ".m-neg").text == "dog"
    assert "<b>bold</b>" in rows[2].text
    assert not driver.find_elements(By.CSS_SELECTOR, "#rejected b")
    rows[2].find_element(By.CSS_SELECTOR, "button.linkish").click()
    assert [c.get_attribute("data-pair-id") for c in _cards(driver)] == ["toy-0001"]
    assert EVIL.split("<img")[0] in _cards(driver)[0].text

    driver.find_element(By.ID, "f-clear").click()
    shot = tmp_path / "report.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    errors = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors  # e.g. a CSP violation or a JS exception
