// The one behaviour HTMX does not cover: "Select all" boxes (data-select-all="FORM-ID").
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.dataset.selectAll) return;
  var selector = 'input[type="checkbox"][name="ids"][form="' + box.dataset.selectAll + '"]';
  document.querySelectorAll(selector).forEach(function (item) {
    item.checked = box.checked;
  });
});
