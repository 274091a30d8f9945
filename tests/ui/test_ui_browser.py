"""The web UI in a real headless Chromium against a real server and backend: list, filter,
run page, timeline, history, stats, live refresh, actions on and off, escaping, CSRF."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from ._live import LiveUI
from .ui_workflows import approval, counter, doomed, family, order, patient

XSS = "<script>alert(1)</script>"


def wait(browser: Any, timeout: float = 15) -> WebDriverWait:
    # Elements found before a page (re)load go stale: look again.
    return WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,))


def seed(ui: LiveUI) -> None:
    ui.start_workflow(order, "ann", id="order-ann")
    ui.start_workflow(doomed, "o-9", id="doomed-1", queue="default")
    ui.start_workflow(family, "fam", id="fam-1")
    ui.start_workflow(approval, "expenses #12", id="approval-1")
    for run in ("order-ann", "doomed-1", "fam-1"):
        ui.wait_closed(run)
    ui.wait_until("approval-1", lambda d: d.history_length > 0)


@contextlib.contextmanager
def attacker_page(target: str) -> Iterator[str]:
    """A page on another origin (another port) whose form posts to ``target`` on load."""
    page = (
        "<!doctype html><title>win a prize</title>"
        f'<form id="f" method="post" action="{target}">'
        '<input name="csrf" value="guessed"><input name="reason" value="pwned"></form>'
        "<script>document.getElementById('f').submit()</script>"
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def rows(browser: Any) -> list[str]:
    return [
        row.get_attribute("data-id")
        for row in browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    ]


def test_list_filters_and_counts(live_ui: LiveUI, browser: Any, screenshot: Any) -> None:
    seed(live_ui)
    browser.get(live_ui.base)
    assert browser.title == "Runs · ostinato"
    assert set(rows(browser)) == {
        "order-ann",
        "doomed-1",
        "fam-1",
        "approval-1",
        "fam-child-a",
        "fam-child-b",
    }
    counts = browser.find_element(By.ID, "counts").text
    assert "all 6" in counts and "completed 4" in counts and "failed 1" in counts
    assert "running 1" in counts
    assert browser.find_element(By.CSS_SELECTOR, "header .mode").text == "read-only"
    screenshot("list")

    # Filter by status with the form (server-side rendering: a plain GET).
    status = browser.find_element(By.CSS_SELECTOR, "#filters select[name=status]")
    status.find_element(By.CSS_SELECTOR, "option[value=failed]").click()
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait(browser).until(lambda b: rows(b) == ["doomed-1"])
    assert "status=failed" in browser.current_url
    note = browser.find_element(By.CSS_SELECTOR, "#runs tbody td.note").text
    assert "card declined for o-9" in note

    # Workflow name and id prefix.
    browser.get(live_ui.base + "?workflow=order")
    assert set(rows(browser)) == {"order-ann", "fam-child-a", "fam-child-b"}
    browser.get(live_ui.base + "?q=fam-child")
    assert set(rows(browser)) == {"fam-child-a", "fam-child-b"}
    browser.get(live_ui.base + "?queue=nowhere")
    assert rows(browser) == []
    assert browser.find_element(By.CSS_SELECTOR, "p.empty").text == "No runs match."
    # A bad filter is a clear error, not a traceback.
    browser.get(live_ui.base + "?started_after=yesterday")
    assert (
        "started_after must be an ISO 8601 date" in browser.find_element(By.TAG_NAME, "main").text
    )


def test_blocked_runs_stand_out_with_their_reason(
    live_ui: LiveUI, browser: Any, screenshot: Any
) -> None:
    seed(live_ui)
    reason = "NonDeterminismError: event #5: expected activity 'greet', got timer"
    live_ui.block(order, "bob", id="order-stuck", reason=reason)
    browser.get(live_ui.base)
    stuck = browser.find_element(By.CSS_SELECTOR, "#runs tr.blocked")
    assert stuck.get_attribute("data-id") == "order-stuck"
    assert reason in stuck.find_element(By.CSS_SELECTOR, ".blocked-reason").text
    assert "blocked 1" in browser.find_element(By.ID, "counts").text
    assert browser.find_elements(By.CSS_SELECTOR, "#runs tr.blocked") == [stuck]
    screenshot("list")
    browser.find_element(By.ID, "counts").find_element(By.PARTIAL_LINK_TEXT, "blocked").click()
    wait(browser).until(lambda b: rows(b) == ["order-stuck"])
    stuck = browser.find_element(By.CSS_SELECTOR, "#runs tr.blocked")
    stuck.find_element(By.TAG_NAME, "a").click()
    wait(browser).until(ec.title_contains("order-stuck"))
    assert reason in browser.find_element(By.ID, "blocked").text


def test_paging_on_a_cursor(live_ui: LiveUI, browser: Any) -> None:
    for i in range(7):
        live_ui.start_workflow(approval, f"r{i}", id=f"page-{i}", start_delay=3600)
    browser.get(live_ui.base + "?limit=3")
    seen = []
    for _ in range(3):
        seen += rows(browser)
        more = browser.find_elements(By.CSS_SELECTOR, "p.more a")
        if not more:
            break
        more[0].click()
    assert seen == [f"page-{i}" for i in reversed(range(7))]


def test_run_page_timeline_and_history(live_ui: LiveUI, browser: Any, screenshot: Any) -> None:
    seed(live_ui)
    browser.get(live_ui.base)
    browser.find_element(By.LINK_TEXT, "order-ann").click()
    wait(browser).until(ec.title_contains("order-ann"))
    title = browser.find_element(By.ID, "title").text
    assert "order" in title and "completed" in title
    main = browser.find_element(By.TAG_NAME, "main").text
    assert '"hello ann, charged"' in main  # the result
    assert '["ann"]' in main  # the input
    assert "stage" in main  # a variable
    # Timeline: both activities, the flaky one with its three attempts, and the timer.
    timeline = browser.find_element(By.ID, "timeline-table")
    items = timeline.find_elements(By.CSS_SELECTOR, "tbody tr")
    kinds = [item.find_element(By.CSS_SELECTOR, "td.kind").text for item in items]
    assert kinds == ["activity", "activity", "timer"]
    assert "attempt 3: completed" in items[1].text
    assert "attempt 1: failed" in items[1].text
    assert len(timeline.find_elements(By.CSS_SELECTOR, "rect.bar")) == 3
    # The diagram image loaded (an SVG served by /api/diagram).
    diagram = browser.find_element(By.CSS_SELECTOR, "img.diagram")
    assert browser.execute_script("return arguments[0].naturalWidth", diagram) > 0
    screenshot("run")

    browser.find_element(By.LINK_TEXT, "Full history →").click()
    wait(browser).until(ec.title_contains("History of order-ann"))
    table = browser.find_element(By.ID, "history")
    kinds = [c.text for c in table.find_elements(By.CSS_SELECTOR, "tbody tr td:nth-child(3)")]
    assert kinds[:2] == ["task_started", "workflow_started"]
    assert kinds[-1] == "workflow_completed"
    # Payloads are collapsed; opening one shows the pretty-printed JSON.
    started = table.find_element(By.CSS_SELECTOR, "tr.kind-workflow_started")
    pre = started.find_element(By.CSS_SELECTOR, "details.payload pre")
    assert not pre.is_displayed()
    started.find_element(By.CSS_SELECTOR, "details.payload summary").click()
    assert pre.is_displayed() and '"ann"' in pre.text
    started.find_element(By.CSS_SELECTOR, "button.copy").click()
    wait(browser).until(
        lambda b: started.find_element(By.CSS_SELECTOR, "button.copy").text != "copy"
    )
    screenshot("history")


def test_failure_chain_and_family_tree(live_ui: LiveUI, browser: Any) -> None:
    seed(live_ui)
    browser.get(live_ui.base + "run?id=doomed-1")
    chain = browser.find_element(By.CSS_SELECTOR, "ol.failure-chain").text
    assert "ActivityError" in chain and "card declined for o-9" in chain
    browser.get(live_ui.base + "run?id=fam-1")
    tree = browser.find_element(By.ID, "tree")
    assert "fam-child-a" in tree.text and "fam-child-b" in tree.text
    tree.find_element(By.LINK_TEXT, "fam-child-b").click()
    wait(browser).until(ec.title_contains("fam-child-b"))
    # The child's page links back up to its parent.
    browser.find_element(By.ID, "tree").find_element(By.LINK_TEXT, "fam-1")


def test_pending_work_and_the_continue_as_new_chain(
    live_ui: LiveUI, browser: Any, screenshot: Any
) -> None:
    live_ui.start_workflow(patient, "db-7", id="patient-1")
    live_ui.wait_until(
        "patient-1",
        lambda d: d.pending_timers and any(a.state == "retrying" for a in d.pending_activities),
    )
    browser.get(live_ui.base + "run?id=patient-1")
    pending = browser.find_element(By.CSS_SELECTOR, "table.pending").text
    assert "unreachable" in pending and "retrying" in pending and "attempt 1" in pending
    assert "ConnectionError: db-7 did not answer" in pending
    assert "timer" in pending and "fires" in pending
    screenshot("pending")

    live_ui.start_workflow(counter, 0, id="counter-1")
    live_ui.wait_closed("counter-1")
    browser.get(live_ui.base + "run?id=counter-1")
    assert "completed" in browser.find_element(By.ID, "title").text
    # The chain of two runs, this one (the last) marked: the first links to its page.
    chain = browser.find_elements(By.CSS_SELECTOR, "#chain li[data-run]")
    assert len(chain) == 2 and "this run" in chain[1].text and "completed" in chain[1].text
    chain[0].find_element(By.TAG_NAME, "a").click()
    wait(browser).until(lambda b: "continued as new" in b.find_element(By.ID, "title").text)
    assert "[0]" in browser.find_element(By.TAG_NAME, "main").text  # the first run's input
    browser.find_element(By.CSS_SELECTOR, "#chain li[data-position='1'] a").click()
    wait(browser).until(lambda b: "completed" in b.find_element(By.ID, "title").text)


def test_stats_page(live_ui: LiveUI, browser: Any, screenshot: Any) -> None:
    seed(live_ui)
    live_ui.start_workflow(approval, "later", id="queued-1", queue="nobody-serves-this")
    browser.get(live_ui.base + "stats")
    by_workflow = browser.find_element(By.ID, "by-workflow").text
    assert "order" in by_workflow and "approval" in by_workflow
    backlog = browser.find_element(By.ID, "backlog")
    assert "nobody-serves-this" in backlog.text
    screenshot("stats")


def test_actions_are_absent_without_allow_actions(live_ui: LiveUI, browser: Any) -> None:
    seed(live_ui)
    browser.get(live_ui.base + "run?id=approval-1")
    assert browser.find_elements(By.ID, "actions") == []
    assert browser.find_elements(By.CSS_SELECTOR, "form[method=post]") == []
    # And the endpoint refuses, even with a made-up token.
    status, _, body = live_ui.request(
        "api/cancel?id=approval-1",
        method="POST",
        body=b"csrf=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 403 and b"actions are off" in body
    assert live_ui.call(live_ui.client.get_handle("approval-1").describe()).status == "running"


def test_cancel_with_actions_on(live_ui_actions: LiveUI, browser: Any, screenshot: Any) -> None:
    ui = live_ui_actions
    ui.start_workflow(approval, "expenses", id="approval-x")
    ui.wait_until("approval-x", lambda d: d.history_length > 0)
    browser.get(ui.base + "run?id=approval-x")
    assert browser.find_element(By.CSS_SELECTOR, "header .mode").text == "actions on"
    actions = browser.find_element(By.ID, "actions")
    screenshot("actions")
    # Dismissing the confirmation does nothing.
    actions.find_element(By.CSS_SELECTOR, "#cancel-form button").click()
    alert = wait(browser).until(ec.alert_is_present())
    assert "Cancel workflow approval-x?" in alert.text
    alert.dismiss()
    time.sleep(0.3)
    assert ui.call(ui.client.get_handle("approval-x").describe()).status == "running"
    # Accepting it cancels the run; the page comes back to the run, which shows it.
    browser.find_element(By.CSS_SELECTOR, "#cancel-form input[name=reason]").send_keys("wrong")
    browser.find_element(By.CSS_SELECTOR, "#cancel-form button").click()
    wait(browser).until(ec.alert_is_present()).accept()
    ui.wait_closed("approval-x")
    description = ui.call(ui.client.get_handle("approval-x").describe())
    assert description.status == "canceled"
    # The live page notices the run closed and reloads itself.
    wait(browser, 20).until(lambda b: "canceled" in b.find_element(By.ID, "title").text)
    assert browser.find_elements(By.ID, "actions") == []
    assert "wrong" in browser.find_element(By.CSS_SELECTOR, "p.reason").text


def test_signal_with_actions_on(live_ui_actions: LiveUI, browser: Any) -> None:
    ui = live_ui_actions
    ui.start_workflow(approval, "trip", id="approval-s")
    ui.wait_until("approval-s", lambda d: d.history_length > 0)
    browser.get(ui.base + "run?id=approval-s")
    form = browser.find_element(By.ID, "signal-form")
    form.find_element(By.CSS_SELECTOR, "input[name=name]").send_keys("approve")
    form.find_element(By.CSS_SELECTOR, "input[name=value]").send_keys('"yes"')
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait(browser).until(ec.alert_is_present()).accept()
    ui.wait_closed("approval-s")
    wait(browser, 20).until(lambda b: "completed" in b.find_element(By.ID, "title").text)
    assert '"trip: yes"' in browser.find_element(By.TAG_NAME, "main").text


def test_live_page_follows_an_open_run(live_ui: LiveUI, browser: Any) -> None:
    live_ui.start_workflow(approval, "live", id="approval-live")
    live_ui.wait_until("approval-live", lambda d: d.history_length > 0)
    browser.get(live_ui.base + "run?id=approval-live")
    assert "running" in browser.find_element(By.ID, "title").text
    # While nothing happens the page polls less and less often (1 s, 2 s, 4 s ...).
    wait(browser, 20).until(
        lambda b: int(b.find_element(By.ID, "live").get_attribute("data-delay") or 0) >= 4000
    )
    live_ui.call(live_ui.client.get_handle("approval-live").signal("approve", "ok"))
    wait(browser, 20).until(lambda b: "completed" in b.find_element(By.ID, "title").text)
    # A closed run's page does not poll.
    assert browser.find_elements(By.ID, "live") == []


def test_payloads_render_as_text(live_ui: LiveUI, browser: Any, screenshot: Any) -> None:
    live_ui.start_workflow(approval, XSS, id=XSS)
    live_ui.wait_until(XSS, lambda d: d.history_length > 0)
    for path in (
        "",
        "run?id=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "history?id=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    ):
        browser.get(live_ui.base + path)
        # No alert opened, and the text is there, as text.
        assert browser.execute_script("return document.querySelectorAll('main script').length") == 0
        assert ec.alert_is_present()(browser) is False
        assert XSS in browser.find_element(By.TAG_NAME, "main").text
    screenshot("escaped")


def test_cross_site_requests_are_refused(live_ui_actions: LiveUI, browser: Any) -> None:
    ui = live_ui_actions
    ui.start_workflow(approval, "x", id="approval-csrf")
    ui.wait_until("approval-csrf", lambda d: d.history_length > 0)
    browser.get(ui.base + "run?id=approval-csrf")
    token = browser.find_element(By.CSS_SELECTOR, "meta[name=csrf-token]").get_attribute("content")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    # No token, a wrong token, a right token from another origin: all refused.
    for body, headers in (
        (b"reason=x", form),
        (b"csrf=forged", form),
        (f"csrf={token}".encode(), {**form, "Origin": "http://evil.example"}),
    ):
        status, _, answer = ui.request(
            "api/terminate?id=approval-csrf", method="POST", body=body, headers=headers
        )
        assert status == 403, answer
    # GET never acts.
    status, _, _ = ui.request("api/terminate?id=approval-csrf")
    assert status == 405
    # A page of another origin posting a form (what a CSRF attack does) is refused too.
    target = ui.base + "api/terminate?id=approval-csrf"
    with attacker_page(target) as page:
        browser.get(page)
        wait(browser).until(ec.title_contains("Error 403"))
        assert "cross-site request refused" in browser.find_element(By.TAG_NAME, "main").text
    assert ui.call(ui.client.get_handle("approval-csrf").describe()).status == "running"
    # The same request from the page itself, with its token, goes through.
    status, _, answer = ui.request(
        "api/terminate?id=approval-csrf",
        method="POST",
        body=f"csrf={token}&reason=test".encode(),
        headers={**form, "Origin": ui.base.rstrip("/"), "Accept": "application/json"},
    )
    assert status == 200, answer
    assert ui.call(ui.client.get_handle("approval-csrf").describe()).status == "terminated"
