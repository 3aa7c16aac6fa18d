// The one behaviour HTMX does not cover: "Select all" boxes (data-select-all="FORM-ID").
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.dataset.selectAll) return;
  var selector = 'input[type="checkbox"][name="ids"][form="' + box.dataset.selectAll + '"]';
  document.querySelectorAll(selector).forEach(function (item) {
    item.checked = box.checked;
  });
});

// Copy buttons (data-copy="TEXT"): the clipboard where the browser allows it, else the
// text is selected for Ctrl+C.
document.addEventListener("click", function (event) {
  var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  var text = button.getAttribute("data-copy");
  function done(label) {
    button.textContent = label;
    button.classList.add("copied");
    setTimeout(function () {
      button.textContent = "Copy";
      button.classList.remove("copied");
    }, 1500);
  }
  function select() {
    var target = button.previousElementSibling;
    if (target) window.getSelection().selectAllChildren(target);
    done("Selected");
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done("Copied"); }, select);
  } else {
    select();
  }
});

// Live pages (an element with data-live-events="URL"): the server sends an event each time
// a task shown here moves, and the page's fragments refresh on "trellis:changed" instead of
// polling. EventSource reconnects by itself when the stream drops. A hidden tab closes its
// stream (browsers allow few connections per server) and catches up when shown again.
document.addEventListener("DOMContentLoaded", function () {
  var holder = document.querySelector("[data-live-events]");
  if (!holder || !window.EventSource) return;
  var url = holder.getAttribute("data-live-events");
  var source = null;
  // A move told while a request was out may be newer than its answer (an action's
  // fragment rendered before the task moved on): once that answer has settled, refresh
  // again. (The request's own element may be gone by then, so its timing rides the xhr.)
  var lastTold = 0;
  function changed() {
    document.body.dispatchEvent(new CustomEvent("trellis:changed"));
  }
  function told() {
    lastTold = Date.now();
    changed();
  }
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.xhr) event.detail.xhr.trellisSent = Date.now();
  });
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var sent = event.detail.xhr && event.detail.xhr.trellisSent;
    if (sent && lastTold >= sent) changed();
  });
  function open() {
    if (source) return;
    source = new EventSource(url);
    source.addEventListener("changed", told);
  }
  function close() {
    if (source) source.close();
    source = null;
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      close();
    } else {
      open();
      changed();
    }
  });
  window.addEventListener("pagehide", close);
  if (!document.hidden) open();
});
