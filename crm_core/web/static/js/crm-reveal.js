/* Reveal one masked value (138****1234) on request: each reveal is written to the audit log. */
(function () {
  "use strict";
  function csrfToken() {
    var meta = document.querySelector('meta[name="crm-csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a.crm-reveal");
    if (!link) {
      return;
    }
    event.preventDefault();
    fetch(link.getAttribute("data-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (answer) {
        var target = link.parentNode.querySelector(".crm-masked");
        if (answer.ok && target) {
          target.textContent = answer.body.display;
          link.remove();
        } else {
          link.textContent = String(answer.body.message || link.textContent);
        }
      });
  });
})();
