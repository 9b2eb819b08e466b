// aiops schema builder: a form over a function's input and output schemas, writing into the
// YAML both ways. The server reads the YAML into the builder's forms (POST
// /ui/editor/schema-form) and writes a form back into the YAML (POST /ui/editor/schema),
// keeping every other line and every keyword the form cannot show; this script draws a form
// and edits it (aiops.web.schema_form describes a node).
(function () {
  "use strict";
  var TYPES = ["string", "number", "integer", "boolean", "object", "array"];
  var BOUNDS = { string: ["minLength", "maxLength"], number: ["minimum", "maximum"],
    integer: ["minimum", "maximum"], array: ["minItems", "maxItems"] };
  var REFRESH_MS = 600;

  var el = window.aiopsDom.el;

  function slug(path) { return "sb-" + (path || "root").replace(/[^A-Za-z0-9_.-]/g, "_"); }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("builder");
    if (!box || !window.aiopsEditor) { return; }
    var editor = window.aiopsEditor;
    var formBox = document.getElementById("builder-form");
    var status = document.getElementById("builder-state");
    var tabs = box.querySelectorAll("button[data-key]");
    var forms = { input_schema: null, output_schema: null };
    var key = "input_schema";
    var timer = null;

    function post(url, body) {
      return window.aiops.send("POST", url, body).then(function (r) {
        return r.json().then(function (b) { return { ok: r.ok, body: b }; });
      });
    }

    var writing = Promise.resolve();
    function write() {  // one at a time, each with the form and the text as they are then
      writing = writing.then(writeNow, writeNow);
    }

    function writeNow() {
      status.textContent = "Writing the schema into the YAML…";
      return post(box.getAttribute("data-write"), { text: editor.text(), key: key, form: forms[key] })
        .then(function (a) {
          if (!a.ok || a.body.problem) {
            status.textContent = a.body.problem || a.body.detail;
            status.className = "error";
            return;
          }
          status.textContent = "The YAML holds this schema.";
          status.className = "ok";
          editor.setText(a.body.text);
        }).catch(function () { status.textContent = "The server did not answer."; });
    }

    function refresh() {
      post(box.getAttribute("data-form"), { text: editor.text() }).then(function (a) {
        if (!a.ok || a.body.problem) {
          status.textContent = "The builder waits for YAML that parses: " + (a.body.problem || a.body.detail);
          status.className = "muted";
          return;
        }
        forms = a.body.forms;
        status.textContent = "";
        if (!box.contains(document.activeElement)) { draw(); }
      }).catch(function () { status.textContent = "The server did not answer."; });
    }

    function draw() {
      formBox.textContent = "";
      tabs.forEach(function (t) { t.setAttribute("aria-pressed", t.getAttribute("data-key") === key ? "true" : "false"); });
      if (!forms[key]) {
        forms[key] = { type: "object", properties: [], keys: [], extra: {} };
      }
      formBox.appendChild(nodeForm(forms[key], "", key === "input_schema" ? "Input" : "Output"));
    }

    function field(label, id, input) {
      input.id = id;
      return el("div", { "class": "sb-field" }, [el("label", { "for": id, text: label }), input]);
    }

    function textInput(node, prop, id, label, multiline) {
      var input = el(multiline ? "textarea" : "input", multiline ? { rows: "3" } : { type: "text" });
      input.value = node[prop] || "";
      input.addEventListener("change", function () { node[prop] = input.value; write(); });
      return field(label, id, input);
    }

    function nodeForm(node, path, title) {
      var id = slug(path);
      var wrap = el("div", { "class": "sb-node", "data-path": path });
      if ("literal" in node) {
        wrap.appendChild(el("p", { "class": "muted", text: "Kept as written: " + JSON.stringify(node.literal) + " (edit it in the YAML)." }));
        return wrap;
      }
      var row = el("div", { "class": "sb-row" });
      var type = el("select", {});
      if (!node.type) { type.appendChild(el("option", { value: "", text: "(other: kept in the YAML)" })); }
      TYPES.forEach(function (t) { type.appendChild(el("option", { value: t, text: t })); });
      type.value = node.type || "";
      type.addEventListener("change", function () {
        node.type = type.value;
        if (node.type === "object" && !node.properties) { node.properties = []; }
        if (node.type === "array" && !node.items) { node.items = { type: "string", keys: [], extra: {} }; }
        draw();
        write();
      });
      row.appendChild(field(title ? title + " type" : "Type", id + "-type", type));
      row.appendChild(textInput(node, "description", id + "-description", "Description"));
      wrap.appendChild(row);
      var values = el("div", { "class": "sb-row" });
      if (node.type !== "object" && node.type !== "array") {
        values.appendChild(textInput(node, "enum", id + "-enum", "Enum (one value per line)", true));
      }
      values.appendChild(textInput(node, "default", id + "-default", "Default"));
      (BOUNDS[node.type] || []).forEach(function (b) {
        var input = el("input", { type: "number", step: "any" });
        input.value = node[b] || "";
        input.addEventListener("change", function () { node[b] = input.value; write(); });
        values.appendChild(field(b, id + "-" + b, input));
      });
      wrap.appendChild(values);
      var kept = Object.keys(node.extra || {});
      if (kept.length) {
        wrap.appendChild(el("p", { "class": "muted sb-kept", text: "Kept as written (edit in the YAML): " + kept.join(", ") }));
      }
      if (node.properties || node.type === "object") {
        node.properties = node.properties || [];
        var set = el("fieldset", { "class": "sb-props" }, [el("legend", { text: "Properties" + (path ? " of " + path : "") })]);
        node.properties.forEach(function (p, i) { set.appendChild(propForm(node, p, i, path)); });
        var add = el("button", { type: "button", "class": "secondary", id: id + "-add", text: "Add property" + (path ? " to " + path : "") });
        add.addEventListener("click", function () {
          var n = node.properties.length + 1;
          var taken = node.properties.map(function (p) { return p.name; });
          while (taken.indexOf("field" + n) >= 0) { n++; }
          node.properties.push({ name: "field" + n, required: false, schema: { type: "string", keys: [], extra: {} } });
          draw();
          write();
          var added = document.getElementById(slug(path ? path + ".field" + n : "field" + n) + "-name");
          if (added) { added.focus(); added.select(); }
        });
        set.appendChild(add);
        wrap.appendChild(set);
      }
      if (node.type === "array" && node.items) {
        var items = el("fieldset", { "class": "sb-items" }, [el("legend", { text: "Items of " + (path || "the array") })]);
        items.appendChild(nodeForm(node.items, path + "[]", ""));
        wrap.appendChild(items);
      }
      return wrap;
    }

    function propForm(parent, prop, index, path) {
      var here = path ? path + "." + prop.name : prop.name;
      var id = slug(here);
      var card = el("div", { "class": "sb-prop", "data-property": here });
      var row = el("div", { "class": "sb-row" });
      var name = el("input", { type: "text", autocomplete: "off" });
      name.value = prop.name;
      name.addEventListener("change", function () { prop.name = name.value.trim(); draw(); write(); });
      row.appendChild(field("Property name", id + "-name", name));
      var req = el("input", { type: "checkbox", id: id + "-required" });
      req.checked = !!prop.required;
      req.addEventListener("change", function () { prop.required = req.checked; write(); });
      row.appendChild(el("div", { "class": "sb-field check" }, [req, el("label", { "for": id + "-required", text: "Required" })]));
      var remove = el("button", { type: "button", "class": "secondary", id: id + "-remove", text: "Remove " + prop.name });
      remove.addEventListener("click", function () { parent.properties.splice(index, 1); draw(); write(); });
      row.appendChild(remove);
      card.appendChild(row);
      card.appendChild(nodeForm(prop.schema, here, ""));
      return card;
    }

    tabs.forEach(function (t) {
      t.addEventListener("click", function () { key = t.getAttribute("data-key"); draw(); });
    });
    editor.onInput(function () { clearTimeout(timer); timer = setTimeout(refresh, REFRESH_MS); });
    refresh();
  });
})();
