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
// polling. EventSource reconnects by itself when the stream drops.
document.addEventListener("DOMContentLoaded", function () {
  var holder = document.querySelector("[data-live-events]");
  if (!holder || !window.EventSource) return;
  var source = new EventSource(holder.getAttribute("data-live-events"));
  source.addEventListener("changed", function () {
    document.body.dispatchEvent(new CustomEvent("trellis:changed"));
  });
  window.addEventListener("pagehide", function () { source.close(); });
});
