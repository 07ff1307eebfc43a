// The automation rule form shows only the trigger settings of the chosen trigger.
(function () {
  "use strict";
  var trigger = document.getElementById("trigger");
  if (!trigger) { return; }
  function show() {
    var rows = document.querySelectorAll(".crm-trigger-setting");
    for (var i = 0; i < rows.length; i++) {
      var wanted = (rows[i].getAttribute("data-triggers") || "").split(" ");
      rows[i].style.display = wanted.indexOf(trigger.value) >= 0 ? "" : "none";
    }
  }
  trigger.addEventListener("change", show);
  show();
}());
