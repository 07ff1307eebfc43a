/* The layout designer (Administration → 页面布局): fields are dragged, or moved with the
   buttons beside them, between the available fields and the sections of the forms and the
   record page; columns between those not listed and the list. Save posts the layout as JSON
   and shows what the CRM answers. Its words come from the page (the user's language). */
(function () {
  "use strict";
  var root = document.getElementById("crm-layout-designer");
  var source = document.getElementById("crm-layout-data");
  if (!root || !source) {
    return;
  }
  var data = JSON.parse(source.textContent);
  var T = data.texts;
  var fieldLabels = {};
  var required = {};
  var columnLabels = {};
  data.fields.forEach(function (f) {
    fieldLabels[f.name] = f.label;
    if (f.required) {
      required[f.name] = true;
    }
  });
  data.columns.forEach(function (c) {
    columnLabels[c.name] = c.label;
  });
  var state = {
    sections: data.sections.map(function (s) {
      return { title_zh: s.title_zh || "", title_en: s.title_en || "", fields: s.fields.slice() };
    }),
    columns: data.list_columns.slice(),
    target: 0,
  };
  var dragged = null;
  var focusAfter = null;

  function csrfToken() {
    var meta = document.querySelector('meta[name="crm-csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function iconButton(icon, label, focusKey, onClick) {
    var button = make("button", "btn btn-default btn-xs");
    button.type = "button";
    button.title = label;
    button.setAttribute("aria-label", label);
    button.setAttribute("data-focus", focusKey);
    button.appendChild(make("i", "fa " + icon));
    button.addEventListener("click", function () {
      focusAfter = focusKey;
      onClick();
      render();
    });
    return button;
  }

  // ------------------------------------------------------------------ moving

  function placedFields() {
    var placed = {};
    state.sections.forEach(function (s) {
      s.fields.forEach(function (name) {
        placed[name] = true;
      });
    });
    return placed;
  }

  function takeField(name) {
    state.sections.forEach(function (s) {
      var at = s.fields.indexOf(name);
      if (at >= 0) {
        s.fields.splice(at, 1);
      }
    });
  }

  function insert(list, name, before) {
    var at = before ? list.indexOf(before) : -1;
    if (at < 0) {
      list.push(name);
    } else {
      list.splice(at, 0, name);
    }
  }

  /* Move ``name`` (a field or a column) into ``zone`` before the item ``before`` (or last). */
  function move(kind, name, zone, before) {
    if (before === name) {
      return;
    }
    if (kind === "field") {
      takeField(name);
      if (zone.indexOf("section-") === 0) {
        insert(state.sections[Number(zone.slice(8))].fields, name, before);
      }
    } else {
      var at = state.columns.indexOf(name);
      if (at >= 0) {
        state.columns.splice(at, 1);
      }
      if (zone === "columns") {
        insert(state.columns, name, before);
      }
    }
  }

  function shift(list, name, step) {
    var at = list.indexOf(name);
    var to = at + step;
    if (at < 0 || to < 0 || to >= list.length) {
      return false;
    }
    list.splice(at, 1);
    list.splice(to, 0, name);
    return true;
  }

  /* Up or down within a section; past its edge, into the section before or after. */
  function shiftField(index, name, step) {
    var fields = state.sections[index].fields;
    if (shift(fields, name, step)) {
      return;
    }
    var next = index + step;
    if (next < 0 || next >= state.sections.length) {
      return;
    }
    fields.splice(fields.indexOf(name), 1);
    if (step < 0) {
      state.sections[next].fields.push(name);
    } else {
      state.sections[next].fields.unshift(name);
    }
  }

  // ------------------------------------------------------------------ drag and drop

  function draggable(item, kind, name) {
    item.draggable = true;
    item.setAttribute("data-name", name);
    item.addEventListener("dragstart", function (event) {
      dragged = { kind: kind, name: name };
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", name);
      item.classList.add("crm-layout-dragging");
    });
    item.addEventListener("dragend", function () {
      dragged = null;
      item.classList.remove("crm-layout-dragging");
    });
  }

  function dropZone(list, kind, zone) {
    list.setAttribute("data-zone", zone);
    list.addEventListener("dragover", function (event) {
      if (dragged && dragged.kind === kind) {
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
        list.classList.add("crm-layout-over");
      }
    });
    list.addEventListener("dragleave", function (event) {
      if (!list.contains(event.relatedTarget)) {
        list.classList.remove("crm-layout-over");
      }
    });
    list.addEventListener("drop", function (event) {
      list.classList.remove("crm-layout-over");
      if (!dragged || dragged.kind !== kind) {
        return;
      }
      event.preventDefault();
      var onto = event.target.closest ? event.target.closest("li[data-name]") : null;
      var before = onto && list.contains(onto) ? onto.getAttribute("data-name") : null;
      move(kind, dragged.name, zone, before);
      dragged = null;
      render();
    });
  }

  function dropEnd(list) {
    list.appendChild(make("li", "crm-layout-drop-end", T.drop_here));
  }

  // ------------------------------------------------------------------ rendering

  function fieldItem(name, buttons) {
    var item = make("li", "crm-layout-item");
    draggable(item, "field", name);
    var label = make("span", "crm-layout-label", fieldLabels[name] || name);
    if (required[name]) {
      var star = make("strong", "crm-layout-required", " *");
      star.title = T.required;
      label.appendChild(star);
    }
    item.appendChild(label);
    var group = make("span", "btn-group crm-layout-buttons");
    buttons.forEach(function (b) {
      group.appendChild(b);
    });
    item.appendChild(group);
    return item;
  }

  function renderTarget() {
    var select = document.getElementById("crm-layout-target");
    select.textContent = "";
    if (state.target >= state.sections.length) {
      state.target = Math.max(0, state.sections.length - 1);
    }
    state.sections.forEach(function (s, index) {
      var option = make("option", "", s.title_zh || T.section + " " + (index + 1));
      option.value = String(index);
      option.selected = index === state.target;
      select.appendChild(option);
    });
    select.disabled = state.sections.length === 0;
  }

  function renderAvailable() {
    var list = document.getElementById("crm-layout-available");
    list.textContent = "";
    var placed = placedFields();
    data.fields.forEach(function (f) {
      if (placed[f.name]) {
        return;
      }
      var add = iconButton("fa-arrow-right", T.add_to, "field-add-" + f.name, function () {
        if (state.sections.length) {
          state.sections[state.target].fields.push(f.name);
          focusAfter = "field-up-" + f.name;
        }
      });
      add.disabled = state.sections.length === 0;
      list.appendChild(fieldItem(f.name, [add]));
    });
    dropEnd(list);
  }

  function sectionPanel(section, index) {
    var panel = make("div", "panel panel-default crm-layout-section");
    panel.setAttribute("data-index", String(index));
    var heading = make("div", "panel-heading form-inline");
    [
      ["title_zh", T.title_zh],
      ["title_en", T.title_en],
    ].forEach(function (pair) {
      var input = make("input", "form-control input-sm crm-layout-" + pair[0].replace("_", "-"));
      input.type = "text";
      input.maxLength = 100;
      input.placeholder = pair[1];
      input.setAttribute("aria-label", pair[1]);
      input.value = section[pair[0]];
      input.addEventListener("input", function () {
        section[pair[0]] = input.value;
        if (pair[0] === "title_zh") {
          renderTarget();
        }
      });
      heading.appendChild(input);
      heading.appendChild(document.createTextNode(" "));
    });
    var group = make("span", "btn-group pull-right");
    group.appendChild(
      iconButton("fa-arrow-up", T.move_up, "section-up-" + index, function () {
        if (index > 0) {
          state.sections.splice(index - 1, 0, state.sections.splice(index, 1)[0]);
          focusAfter = "section-up-" + (index - 1);
        }
      })
    );
    group.appendChild(
      iconButton("fa-arrow-down", T.move_down, "section-down-" + index, function () {
        if (index < state.sections.length - 1) {
          state.sections.splice(index + 1, 0, state.sections.splice(index, 1)[0]);
          focusAfter = "section-down-" + (index + 1);
        }
      })
    );
    group.appendChild(
      iconButton("fa-trash", T.remove_section, "section-remove-" + index, function () {
        state.sections.splice(index, 1);
        focusAfter = null;
      })
    );
    heading.appendChild(group);
    panel.appendChild(heading);
    var body = make("div", "panel-body");
    var list = make("ul", "crm-layout-zone");
    dropZone(list, "field", "section-" + index);
    section.fields.forEach(function (name) {
      list.appendChild(
        fieldItem(name, [
          iconButton("fa-arrow-up", T.move_up, "field-up-" + name, function () {
            shiftField(index, name, -1);
          }),
          iconButton("fa-arrow-down", T.move_down, "field-down-" + name, function () {
            shiftField(index, name, 1);
          }),
          iconButton("fa-times", T.remove, "field-remove-" + name, function () {
            takeField(name);
            focusAfter = "field-add-" + name;
          }),
        ])
      );
    });
    dropEnd(list);
    body.appendChild(list);
    panel.appendChild(body);
    return panel;
  }

  function renderSections() {
    var holder = document.getElementById("crm-layout-sections");
    holder.textContent = "";
    if (!state.sections.length) {
      holder.appendChild(make("p", "help-block crm-layout-no-sections", T.no_sections));
    }
    state.sections.forEach(function (section, index) {
      holder.appendChild(sectionPanel(section, index));
    });
  }

  function columnItem(name, buttons) {
    var item = make("li", "crm-layout-item");
    draggable(item, "column", name);
    item.appendChild(make("span", "crm-layout-label", columnLabels[name] || name));
    var group = make("span", "btn-group crm-layout-buttons");
    buttons.forEach(function (b) {
      group.appendChild(b);
    });
    item.appendChild(group);
    return item;
  }

  function renderColumns() {
    var chosen = document.getElementById("crm-layout-columns");
    var rest = document.getElementById("crm-layout-columns-available");
    chosen.textContent = "";
    rest.textContent = "";
    state.columns.forEach(function (name) {
      chosen.appendChild(
        columnItem(name, [
          iconButton("fa-arrow-up", T.move_up, "column-up-" + name, function () {
            shift(state.columns, name, -1);
          }),
          iconButton("fa-arrow-down", T.move_down, "column-down-" + name, function () {
            shift(state.columns, name, 1);
          }),
          iconButton("fa-times", T.remove, "column-remove-" + name, function () {
            state.columns.splice(state.columns.indexOf(name), 1);
            focusAfter = "column-add-" + name;
          }),
        ])
      );
    });
    data.columns.forEach(function (c) {
      if (state.columns.indexOf(c.name) >= 0) {
        return;
      }
      rest.appendChild(
        columnItem(c.name, [
          iconButton("fa-arrow-right", T.add_column, "column-add-" + c.name, function () {
            state.columns.push(c.name);
            focusAfter = "column-up-" + c.name;
          }),
        ])
      );
    });
    dropEnd(chosen);
    dropEnd(rest);
  }

  function render() {
    renderSections();
    renderTarget();
    renderAvailable();
    renderColumns();
    if (focusAfter) {
      var again = root.querySelector('[data-focus="' + focusAfter + '"]');
      if (again) {
        again.focus();
      }
      focusAfter = null;
    }
  }

  // ------------------------------------------------------------------ saving

  function say(kind, lines) {
    var box = document.getElementById("crm-layout-messages");
    box.textContent = "";
    var alert = make("div", "alert alert-" + kind);
    if (lines.length === 1) {
      alert.textContent = lines[0];
    } else {
      var list = make("ul");
      lines.forEach(function (line) {
        list.appendChild(make("li", "", line));
      });
      alert.appendChild(list);
    }
    box.appendChild(alert);
  }

  function save() {
    var button = document.getElementById("crm-layout-save");
    button.disabled = true;
    say("info", [T.saving]);
    var body = {
      sections: state.sections,
      list_columns: state.columns,
      order_column: document.getElementById("crm-layout-order-column").value,
      order_direction: document.getElementById("crm-layout-order-direction").value,
    };
    fetch(data.save_url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRFToken": csrfToken(),
        Accept: "application/json",
      },
      body: JSON.stringify(body),
    })
      .then(function (response) {
        return response.json().then(function (answer) {
          return { ok: response.ok, answer: answer };
        });
      })
      .then(function (result) {
        if (result.ok) {
          say("success", [result.answer.message]);
        } else {
          say("danger", result.answer.errors || [T.failed]);
        }
      })
      .catch(function () {
        say("danger", [T.failed]);
      })
      .then(function () {
        button.disabled = false;
      });
  }

  dropZone(document.getElementById("crm-layout-available"), "field", "available");
  dropZone(document.getElementById("crm-layout-columns"), "column", "columns");
  dropZone(document.getElementById("crm-layout-columns-available"), "column", "columns-available");
  document.getElementById("crm-layout-target").addEventListener("change", function (event) {
    state.target = Number(event.target.value);
  });
  document.getElementById("crm-layout-add-section").addEventListener("click", function () {
    state.sections.push({ title_zh: "", title_en: "", fields: [] });
    state.target = state.sections.length - 1;
    render();
    var inputs = root.querySelectorAll(".crm-layout-section .crm-layout-title-zh");
    inputs[inputs.length - 1].focus();
  });
  document.getElementById("crm-layout-save").addEventListener("click", save);
  render();
})();
