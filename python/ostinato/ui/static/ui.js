// ostinato web UI: the little that needs a script. Pages render on the server and work
// without it; this adds confirmations, copy buttons and the live refresh of open runs.
"use strict";

// Actions ask first: each action form carries its question in data-confirm.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset && form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Copy buttons copy the <pre> next to them (the full pretty-printed payload).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const pre = button.parentElement.querySelector("pre");
  if (!pre) return;
  try {
    await navigator.clipboard.writeText(pre.textContent);
    button.textContent = "copied";
  } catch (error) {
    // No clipboard (plain http on another host): select the text for a manual copy.
    const range = document.createRange();
    range.selectNodeContents(pre);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "selected: press Ctrl+C";
  }
  setTimeout(() => { button.textContent = "copy"; }, 2000);
});

// Live refresh of an open run: poll one cheap endpoint with its ETag (the server answers
// 304 while nothing changed), back off while the run is quiet, pause while the tab is
// hidden, and reload the page when it changed. Closed runs have no #live element.
(function live() {
  const marker = document.getElementById("live");
  if (!marker) return;
  const url = marker.dataset.poll;
  const MIN_DELAY = 1000, MAX_DELAY = 30000;
  // The page was rendered at this state: any other one means it is out of date.
  let delay = MIN_DELAY, etag = marker.dataset.etag, timer = null;

  async function poll() {
    timer = null;
    if (document.hidden) return; // resumed by visibilitychange
    try {
      const headers = etag ? { "If-None-Match": etag } : {};
      const response = await fetch(url, { headers, cache: "no-store" });
      if (response.status === 200) {
        const state = await response.json();
        const seen = response.headers.get("ETag");
        if (seen !== etag || (state.status !== "running" && state.status !== "paused")) {
          window.location.reload();
          return;
        }
        delay = MIN_DELAY;
      } else {
        delay = Math.min(delay * 2, MAX_DELAY); // 304: quiet, or an error: slow down
      }
    } catch (error) {
      delay = MAX_DELAY;
    }
    marker.dataset.delay = String(delay);
    timer = setTimeout(poll, delay);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null) {
      delay = MIN_DELAY;
      poll();
    }
  });
  timer = setTimeout(poll, MIN_DELAY);
})();
