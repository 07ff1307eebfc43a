// Pickers of linked records (a contact's customer): Select2 asking the server as the user
// types, on forms and in list filters (which Flask-AppBuilder adds to the page later).
(function ($) {
  "use strict";
  if (!$ || !$.fn || !$.fn.select2) { return; }

  function start(el) {
    var $el = $(el);
    if ($el.data("crmPicker")) { return; }
    $el.data("crmPicker", true);
    $el.select2({
      theme: "bootstrap",
      allowClear: true,
      width: "100%",
      placeholder: $el.attr("data-placeholder") || "",
      ajax: {
        url: $el.attr("data-url"),
        dataType: "json",
        delay: 250,
        data: function (params) { return { q: params.term || "", page: params.page || 1 }; },
        processResults: function (data) { return data; }
      }
    });
    // A list filter's current value comes from the address: show its record's name.
    var wanted = new URLSearchParams(window.location.search).get(el.name);
    if (wanted && !$el.val()) {
      $.getJSON($el.attr("data-url"), { id: wanted }, function (data) {
        (data.results || []).forEach(function (item) {
          $el.append(new Option(item.text, item.id, true, true)).trigger("change");
        });
      });
    }
  }

  function startAll(root) {
    $(root).find("select.crm-record-picker").addBack("select.crm-record-picker").each(function () {
      start(this);
    });
  }

  $(function () {
    startAll(document);
    new MutationObserver(function (changes) {
      changes.forEach(function (change) {
        change.addedNodes.forEach(function (node) {
          if (node.nodeType === 1) { startAll(node); }
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
  });
}(window.jQuery));
