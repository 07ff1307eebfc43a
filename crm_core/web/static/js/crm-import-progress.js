/* The progress of an import or of its check, refreshed every second while it runs. */
(function () {
  "use strict";
  var page = document.getElementById("crm-import-job");
  if (!page) { return; }
  var bar = document.getElementById("crm-import-bar");
  var running = ["checking", "queued", "running"];

  function show(state) {
    var total = state.total || 0;
    var share = total ? Math.round(100 * state.done / total) : 0;
    bar.style.width = share + "%";
    bar.setAttribute("aria-valuenow", state.done);
    bar.textContent = share + "%";
    Object.keys(state.figures || {}).forEach(function (name) {
      var item = page.querySelector('[data-figure="' + name + '"]');
      if (item) { item.textContent = item.textContent.replace(/\d+$/, state.figures[name]); }
    });
  }

  function poll() {
    var request = new XMLHttpRequest();
    request.open("GET", page.getAttribute("data-progress-url"));
    request.onload = function () {
      if (request.status !== 200) { return; }
      var state = JSON.parse(request.responseText);
      show(state);
      if (running.indexOf(state.status) >= 0) {
        window.setTimeout(poll, 1000);
      } else if (running.indexOf(page.getAttribute("data-status")) >= 0) {
        window.location.reload(); // finished: show the figures and problems in full
      }
    };
    request.send();
  }

  poll();
}());
