(function () {
  "use strict";
  document.documentElement.setAttribute("data-js", "ready");
  // Pages of each class grid: one page of students at a time (without this script, every page shows).
  var grids = Array.prototype.slice.call(document.querySelectorAll("div.class-grid"));
  var pagers = grids.map(function (section) {
    var pages = Array.prototype.slice.call(section.querySelectorAll("tbody.page"));
    var where = section.querySelector(".pager .where");
    var prev = section.querySelector(".pager .prev");
    var next = section.querySelector(".pager .next");
    var state = { current: 0, show: null };
    state.show = function (n) {
      state.current = Math.max(0, Math.min(n, pages.length - 1));
      for (var i = 0; i < pages.length; i++) { pages[i].hidden = i !== state.current; }
      where.textContent = "page " + (state.current + 1) + " of " + pages.length;
      prev.disabled = state.current === 0;
      next.disabled = state.current >= pages.length - 1;
    };
    state.all = function () {
      for (var i = 0; i < pages.length; i++) { pages[i].hidden = false; }
    };
    prev.addEventListener("click", function () { state.show(state.current - 1); });
    next.addEventListener("click", function () { state.show(state.current + 1); });
    state.show(0);
    return state;
  });
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
    for (var j = 0; j < pagers.length; j++) {
      if (q === "") { pagers[j].show(pagers[j].current); } else { pagers[j].all(); }
    }
    count.textContent = q === "" ? "" : shown + " matching rows";
  }
  box.addEventListener("input", apply);
}());
