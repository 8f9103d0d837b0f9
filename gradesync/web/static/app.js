(function () {
  "use strict";
  document.documentElement.setAttribute("data-js", "ready");
  // Upload: drag and drop onto the drop zone fills the file input.
  var drop = document.getElementById("drop");
  var input = document.getElementById("files");
  var chosen = document.getElementById("chosen");
  function showChosen() {
    if (!input || !chosen) { return; }
    var names = [];
    for (var i = 0; i < input.files.length; i++) { names.push(input.files[i].name); }
    chosen.textContent = names.join(", ");
  }
  if (drop && input) {
    input.addEventListener("change", showChosen);
    drop.addEventListener("dragover", function (e) { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
    drop.addEventListener("drop", function (e) {
      e.preventDefault();
      drop.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; showChosen(); }
    });
  }
  // Apply: live progress from the server (server-sent events; survives a reload).
  var box = document.getElementById("progress");
  if (box && box.getAttribute("data-state") === "running" && window.EventSource) {
    var stage = document.getElementById("stage");
    var bar = document.getElementById("bar");
    var count = document.getElementById("count");
    var source = new EventSource(box.getAttribute("data-events"));
    source.onmessage = function (msg) {
      var ev = JSON.parse(msg.data);
      if (ev.kind === "end") {
        source.close();
        box.setAttribute("data-state", ev.stage);
        window.location.reload();
        return;
      }
      stage.textContent = ev.stage + (ev.message ? ": " + ev.message : "");
      if (ev.total > 0) {
        bar.max = ev.total;
        bar.value = ev.done;
        count.textContent = ev.done + " of " + ev.total;
      }
    };
  }
}());
