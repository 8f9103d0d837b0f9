(function () {
  "use strict";
  document.documentElement.setAttribute("data-js", "ready");
  var box = document.getElementById("filter");
  var count = document.getElementById("filter-count");
  var rows = Array.prototype.slice.call(document.querySelectorAll("tbody.rows > tr"));
  var texts = null;
  function apply() {
    if (texts === null) {
      texts = rows.map(function (tr) { return tr.textContent.toLowerCase(); });
    }
    var q = box.value.trim().toLowerCase();
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var hit = q === "" || texts[i].indexOf(q) !== -1;
      rows[i].hidden = !hit;
      if (hit) { shown++; }
    }
    count.textContent = q === "" ? "" : shown + " matching rows";
  }
  box.addEventListener("input", apply);
}());
