// aiops test console: a form drawn from the fields the server read from the input schema
// (aiops.web.input_form), a raw-JSON toggle, and Run, which posts the input to
// /ui/functions/{name}/run and shows the output, latency, tokens, cost, attempts and the log.
(function () {
  "use strict";

  var el = window.aiopsDom.el;

  var counter = 0;
  function uid(path) { counter += 1; return "in-" + path.replace(/[^A-Za-z0-9_-]/g, "_") + "-" + counter; }

  // A widget: {node, get()} where get() is the value, undefined to leave it out, or throws.
  function widget(f, value, path, label) {
    var id = uid(path);
    var has = value !== undefined;
    var start = has ? value : f["default"];
    var input;
    var wrap = el("div", { "class": "in-field", "data-field": path });
    var lab = el("label", { "for": id, text: label + (f.required ? " (required)" : "") });
    function described(node) {
      if (f.description) {
        var hint = el("span", { "class": "muted in-hint", id: id + "-hint", text: f.description });
        node.setAttribute("aria-describedby", id + "-hint");
        return hint;
      }
      return null;
    }
    if (f.kind === "object") {
      var set = el("fieldset", { "class": "in-object", "data-field": path }, [el("legend", { text: label })]);
      var parts = (f.fields || []).map(function (sub) {
        var w = widget(sub, start && typeof start === "object" ? start[sub.name] : undefined,
          path + "." + sub.name, sub.name);
        set.appendChild(w.node);
        return { name: sub.name, w: w };
      });
      return { node: set, get: function () {
        var out = {};
        parts.forEach(function (p) { var v = p.w.get(); if (v !== undefined) { out[p.name] = v; } });
        return Object.keys(out).length || f.required ? out : undefined;
      } };
    }
    if (f.kind === "array") {
      var list = el("fieldset", { "class": "in-array", "data-field": path }, [el("legend", { text: label })]);
      var items = [];
      var holder = el("div", {});
      var add = el("button", { type: "button", "class": "secondary", text: "Add to " + label });
      function addItem(v) {
        var row = el("div", { "class": "in-item" });
        var entry = { w: widget(f.item, v, path + "[" + items.length + "]", label + " " + (items.length + 1)) };
        var remove = el("button", { type: "button", "class": "secondary", text: "Remove" });
        remove.addEventListener("click", function () {
          items.splice(items.indexOf(entry), 1);
          holder.removeChild(row);
        });
        row.appendChild(entry.w.node);
        row.appendChild(remove);
        holder.appendChild(row);
        items.push(entry);
      }
      (Array.isArray(start) ? start : []).forEach(addItem);
      add.addEventListener("click", function () { addItem(undefined); });
      list.appendChild(holder);
      list.appendChild(add);
      return { node: list, get: function () {
        var out = items.map(function (e) { return e.w.get(); }).filter(function (v) { return v !== undefined; });
        return out.length || f.required ? out : undefined;
      } };
    }
    if (f.kind === "boolean") {
      input = el("input", { type: "checkbox", id: id });
      input.checked = start === true;
      wrap.className += " check";
      wrap.appendChild(input);
      wrap.appendChild(lab);
      var hintB = described(input);
      if (hintB) { wrap.appendChild(hintB); }
      return { node: wrap, get: function () { return input.checked; } };
    }
    if (f.kind === "enum") {
      input = el("select", { id: id });
      if (!f.required || start === undefined) { input.appendChild(el("option", { value: "", text: "—" })); }
      f.options.forEach(function (o, i) {
        input.appendChild(el("option", { value: String(i), text: typeof o === "string" ? o : JSON.stringify(o) }));
      });
      var at = f.options.findIndex(function (o) { return JSON.stringify(o) === JSON.stringify(start); });
      input.value = at >= 0 ? String(at) : "";
    } else if (f.kind === "json" || f.multiline) {
      input = el("textarea", { id: id, rows: f.kind === "json" ? "4" : "3" });
      input.value = start === undefined ? "" : f.kind === "json" ? JSON.stringify(start, null, 2) : String(start);
    } else {
      input = el("input", { id: id, type: f.kind === "string" ? "text" : "number" });
      if (f.kind === "integer") { input.step = "1"; }
      if (f.kind === "number") { input.step = "any"; }
      input.value = start === undefined || start === null ? "" : String(start);
    }
    wrap.appendChild(lab);
    var hint = described(input);
    wrap.appendChild(input);
    if (hint) { wrap.appendChild(hint); }
    return { node: wrap, get: function () {
      var v = input.value;
      if (f.kind === "enum") { return v === "" ? undefined : f.options[Number(v)]; }
      if (v === "") { return f.required && f.kind === "string" ? "" : undefined; }
      if (f.kind === "json") {
        try { return JSON.parse(v); } catch (e) { throw new Error(label + ": not JSON (" + e.message + ")"); }
      }
      if (f.kind === "integer" || f.kind === "number") {
        var n = Number(v);
        if (!isFinite(n)) { throw new Error(label + ": not a number"); }
        return n;
      }
      return v;
    } };
  }

  function fmt(n, digits) { return typeof n === "number" ? n.toFixed(digits) : "—"; }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("console");
    if (!root) { return; }
    var fields = JSON.parse(root.getAttribute("data-fields") || "[]");
    var formBox = document.getElementById("input-form");
    var legend = formBox.querySelector("legend");
    var raw = document.getElementById("raw");
    var rawText = document.getElementById("raw-json");
    var toggle = document.getElementById("raw-toggle");
    var problem = document.getElementById("input-error");
    var result = document.getElementById("result");
    var run = document.getElementById("run");
    var widgets = [];

    function draw(value) {
      formBox.textContent = "";
      formBox.appendChild(legend);
      widgets = fields.map(function (f) {
        var w = widget(f, value ? value[f.name] : undefined, f.name, f.name);
        formBox.appendChild(w.node);
        return { name: f.name, w: w };
      });
      if (!fields.length) {
        formBox.appendChild(el("p", { "class": "muted", text: "The input schema has no properties a form can show: use Raw JSON." }));
      }
    }

    function collect() {
      if (toggle.checked) {
        var v = JSON.parse(rawText.value || "{}");
        if (!v || typeof v !== "object" || Array.isArray(v)) { throw new Error("the input is a JSON object"); }
        return v;
      }
      var out = {};
      widgets.forEach(function (p) { var v = p.w.get(); if (v !== undefined) { out[p.name] = v; } });
      return out;
    }

    toggle.addEventListener("change", function () {
      problem.textContent = "";
      try {
        if (toggle.checked) {
          toggle.checked = false;
          var value = collect();
          toggle.checked = true;
          rawText.value = JSON.stringify(value, null, 2);
        } else {
          draw(JSON.parse(rawText.value || "{}"));
        }
      } catch (e) {
        problem.textContent = e.message;
        toggle.checked = !toggle.checked;
      }
      raw.hidden = !toggle.checked;
      formBox.hidden = toggle.checked;
    });

    function show(body) {
      result.textContent = "";
      if (body.error) {
        result.appendChild(el("p", { id: "run-error", "class": "error", text: body.error.type + ": " + body.error.message }));
      } else {
        result.appendChild(el("p", { "class": "muted", text: "Output" }));
        result.appendChild(el("pre", { id: "output", text: JSON.stringify(body.output, null, 2) }));
      }
      var facts = [["Version", body.version], ["Provider · model", (body.provider || "—") + " · " + (body.model || "—")],
        ["Latency", fmt(body.latency_ms, 1) + " ms"], ["Tokens", body.input_tokens + " in, " + body.output_tokens + " out"],
        ["Cost", "$" + fmt(body.cost_usd, 6)]];
      var dl = el("dl", { "class": "meta", id: "run-facts" });
      facts.forEach(function (f) {
        dl.appendChild(el("dt", { text: f[0] }));
        dl.appendChild(el("dd", { id: "run-" + f[0].split(" ")[0].toLowerCase(), text: f[1] }));
      });
      dl.appendChild(el("dt", { text: "Log" }));
      dl.appendChild(el("dd", {}, [el("a", { id: "log-link", href: body.log_url, text: body.log_id })]));
      result.appendChild(dl);
      var table = el("table", { id: "attempts" }, [el("caption", { text: "Attempts" }),
        el("thead", {}, [el("tr", {}, ["#", "Provider", "Model", "Status", "Latency", "Error"].map(function (h) {
          return el("th", { scope: "col", text: h });
        }))])]);
      var tbody = el("tbody", {});
      body.attempts.forEach(function (a, i) {
        tbody.appendChild(el("tr", {}, [String(i + 1), a.provider, a.model, a.status,
          fmt(a.latency_ms, 1) + " ms", a.kind ? a.kind + (a.message ? ": " + a.message : "") : ""].map(function (c) {
          return el("td", { text: c });
        })));
      });
      table.appendChild(tbody);
      result.appendChild(el("div", { "class": "table-wrap" }, [table]));
      body.warnings.forEach(function (w) { result.appendChild(el("p", { "class": "warn", text: w })); });
    }

    run.addEventListener("click", function () {
      problem.textContent = "";
      var input;
      try { input = collect(); } catch (e) { problem.textContent = e.message; return; }
      run.disabled = true;
      result.textContent = "Running…";
      var provider = document.getElementById("provider").value;
      window.aiops.send("POST", root.getAttribute("data-run"),
        { input: input, version: root.getAttribute("data-version"), provider: provider || null })
        .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
        .then(function (a) {
          if (!a.ok) {
            result.textContent = "";
            result.appendChild(el("p", { id: "run-error", "class": "error", text: a.body.detail || "Refused." }));
            return;
          }
          show(a.body);
        })
        .catch(function () { result.textContent = "The server did not answer."; })
        .then(function () { run.disabled = false; });
    });
    draw(undefined);
  });
})();
