"""The web UI in headless Chromium: paused runs stand out as paused with their reason (list,
counts, run page, stats), and the list filters by tag."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from ._live import LiveUI
from .test_ui_browser import rows, wait
from .ui_workflows import approval, looper


def _seed(ui: LiveUI) -> None:
    for name, team in (("billing-1", "billing"), ("billing-2", "billing"), ("ops-1", "ops")):
        ui.start_workflow(approval, name, id=name, tags={"team": team})
        ui.wait_until(name, lambda d: d.history_length > 0)
    ui.call(ui.client.get_handle("billing-2").pause("waiting on finance"))


def test_a_paused_run_is_shown_as_paused(live_ui: LiveUI, browser: Any, screenshot: Any) -> None:
    _seed(live_ui)
    browser.get(live_ui.base)
    paused = browser.find_elements(By.CSS_SELECTOR, "#runs tr.paused")
    assert [row.get_attribute("data-id") for row in paused] == ["billing-2"]
    assert "paused" in paused[0].find_element(By.CSS_SELECTOR, ".badge").text
    assert "waiting on finance" in paused[0].find_element(By.CSS_SELECTOR, ".pause-reason").text
    # It stands out like a blocked run (the same highlight), the others do not.
    color = browser.execute_script(
        "return getComputedStyle(arguments[0]).backgroundColor", paused[0]
    )
    other = browser.find_element(By.CSS_SELECTOR, "#runs tr[data-id='billing-1']")
    assert color != browser.execute_script(
        "return getComputedStyle(arguments[0]).backgroundColor", other
    )
    counts = browser.find_element(By.ID, "counts").text
    assert "paused 1" in counts and "running 2" in counts
    screenshot("list")

    browser.find_element(By.ID, "counts").find_element(By.PARTIAL_LINK_TEXT, "paused").click()
    wait(browser).until(lambda b: rows(b) == ["billing-2"])
    assert "status=paused" in browser.current_url
    browser.find_element(By.LINK_TEXT, "billing-2").click()
    wait(browser).until(ec.title_contains("billing-2"))
    banner = browser.find_element(By.ID, "paused").text
    assert "Paused" in banner and "waiting on finance" in banner
    assert "paused" in browser.find_element(By.ID, "title").text
    screenshot("run")

    browser.get(live_ui.base + "stats")
    header = browser.find_element(By.CSS_SELECTOR, "#by-workflow thead").text
    assert "paused" in header
    approval_row = browser.find_element(By.CSS_SELECTOR, "#by-workflow tbody tr").text
    assert approval_row.split() == ["approval", "2", "1", "0", "3"]  # running, paused


def test_the_list_filters_by_tag(live_ui: LiveUI, browser: Any) -> None:
    _seed(live_ui)
    browser.get(live_ui.base)
    field = browser.find_element(By.CSS_SELECTOR, "#filters input[name=tag]")
    field.send_keys("team=billing")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait(browser).until(lambda b: set(rows(b)) == {"billing-1", "billing-2"})
    assert "tag=team%3Dbilling" in browser.current_url
    # The filter stays in the form, and combines with the status.
    field = browser.find_element(By.CSS_SELECTOR, "#filters input[name=tag]")
    assert field.get_attribute("value") == "team=billing"
    status = browser.find_element(By.CSS_SELECTOR, "#filters select[name=status]")
    status.find_element(By.CSS_SELECTOR, "option[value=running]").click()
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait(browser).until(lambda b: rows(b) == ["billing-1"])
    browser.get(live_ui.base + "?tag=team%3Dops")
    assert rows(browser) == ["ops-1"]
    browser.get(live_ui.base + "?tag=team")
    assert "tag must be key=value" in browser.find_element(By.TAG_NAME, "main").text


def test_a_long_continue_as_new_chain_is_shown_bounded_with_links_on(
    live_ui: LiveUI, browser: Any, screenshot: Any
) -> None:
    """60 runs: the last run's page shows it and the 25 before it, linking to earlier runs;
    a run in the middle shows 25 each side; every run shown links to its page."""
    live_ui.start_workflow(looper, 0, 60, id="loop-1")
    live_ui.wait_closed("loop-1", timeout=60)
    browser.get(live_ui.base + "run?id=loop-1")
    shown = browser.find_elements(By.CSS_SELECTOR, "#chain li[data-run]")
    assert len(shown) == 26
    assert "this run" in shown[-1].text and "completed" in shown[-1].text
    assert all("continued as new" in item.text for item in shown[:-1])
    assert browser.find_elements(By.PARTIAL_LINK_TEXT, "later runs") == []
    screenshot("chain")
    # Earlier runs: the page of the oldest run shown, with its own neighbourhood.
    oldest = shown[0].get_attribute("data-run")
    browser.find_element(By.PARTIAL_LINK_TEXT, "earlier runs").click()
    wait(browser).until(lambda b: oldest in b.current_url)
    shown = browser.find_elements(By.CSS_SELECTOR, "#chain li[data-run]")
    assert len(shown) == 51  # 25 before, itself, 25 after
    assert "this run" in shown[25].text
    assert shown[25].get_attribute("data-run") == oldest
    # Run 35 of 0..60: exactly 25 after it, so no link to later runs; earlier ones remain.
    assert browser.find_elements(By.PARTIAL_LINK_TEXT, "later runs") == []
    browser.find_element(By.PARTIAL_LINK_TEXT, "earlier runs").click()
    wait(browser).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#chain li[data-run]")) < 51)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chain li[data-run]")) == 36
    # Run 10: the ten before it (the chain's start), itself, 25 after and a link on.
    assert browser.find_elements(By.PARTIAL_LINK_TEXT, "earlier runs") == []
    assert browser.find_elements(By.PARTIAL_LINK_TEXT, "later runs")
    first = browser.find_elements(By.CSS_SELECTOR, "#chain li[data-run]")[0]
    first.find_element(By.TAG_NAME, "a").click()
    wait(browser).until(lambda b: "[0,60]" in b.find_element(By.TAG_NAME, "main").text)
