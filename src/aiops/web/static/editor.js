// aiops editor: live validation of a function's YAML, the plan of what saving would change,
// save (PUT with If-Match, or POST for a new function) and archive (DELETE). The server does
// every check (POST /ui/editor/check: the checks a write makes); this script only sends the
// text, debounced, and shows what comes back.
(function () {
  "use strict";
  var DEBOUNCE_MS = 400;

  var el = window.aiopsDom.el;

  function offsetOf(text, line, column) {
    var lines = text.split("\n");
    var at = 0;
    for (var i = 0; i < Math.min(line - 1, lines.length); i++) { at += lines[i].length + 1; }
    return at + Math.max(0, (column || 1) - 1);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("editor");
    if (!root) { return; }
    var area = document.getElementById("yaml");
    var state = document.getElementById("check-state");
    var problems = document.getElementById("problems");
    var plan = document.getElementById("plan");
    var save = document.getElementById("save");
    var archive = document.getElementById("archive");
    var saved = document.getElementById("saved");
    var cursor = document.getElementById("cursor");
    var name = root.getAttribute("data-name") || null;
    var timer = null;
    var sent = 0;

    function where() {
      var before = area.value.slice(0, area.selectionStart).split("\n");
      cursor.textContent = "Line " + before.length + ", column " + (before[before.length - 1].length + 1);
    }

    function goTo(line, column) {
      var at = offsetOf(area.value, line, column);
      area.focus();
      area.setSelectionRange(at, at);
      var height = area.scrollHeight / Math.max(1, area.value.split("\n").length);
      area.scrollTop = Math.max(0, (line - 5) * height);
      where();
    }

    function showProblems(items, elsewhere) {
      problems.textContent = "";
      items.forEach(function (d) {
        var place = d.line ? "Line " + d.line + (d.column ? ", column " + d.column : "") : "The file";
        var text = place + ": " + d.severity + ": " + (d.path ? d.path + ": " : "") + d.message +
          (d.fix ? " (fix: " + d.fix + ")" : "");
        var li = el("li", { "class": d.severity === "error" ? "error" : "warn",
          "data-line": d.line || "", "data-column": d.column || "", "data-code": d.code || "" });
        if (d.line) {
          var go = el("button", { type: "button", "class": "link", text: place });
          go.addEventListener("click", function () { goTo(d.line, d.column); });
          li.appendChild(go);
          li.appendChild(document.createTextNode(text.slice(place.length)));
        } else {
          li.textContent = text;
        }
        problems.appendChild(li);
      });
      (elsewhere || []).forEach(function (line) {
        problems.appendChild(el("li", { "class": "error", text: "Another file: " + line }));
      });
    }

    function showPlan(p) {
      plan.textContent = "";
      if (!p.ok) {
        plan.appendChild(el("p", { "class": "muted", text: "Fix the errors to see the plan." }));
        return;
      }
      var facts = el("ul", { id: "plan-facts" });
      if (p.base_version) {
        if (!p.behaviour_changed) {
          facts.appendChild(el("li", { text: "Behaviour unchanged: no new version is needed" +
            (p.version_bumped ? "" : " (version stays " + p.version + ")") + "." }));
        } else {
          facts.appendChild(el("li", { id: "plan-bump", text: "Behaviour changed: the version must be bumped (" +
            p.base_version + " → " + p.version + (p.version_bumped ? ", bumped" : ", not bumped") + ")." }));
        }
        if (p.breaking.length) {
          facts.appendChild(el("li", { id: "plan-breaking", "class": "warn",
            text: "Breaking for callers (needs a major version" + (p.major_bumped ? ", bumped" : "") + "): " +
              p.breaking.join("; ") }));
        } else if (p.behaviour_changed) {
          facts.appendChild(el("li", { id: "plan-breaking", text: "Not breaking for callers." }));
        }
      } else {
        facts.appendChild(el("li", { text: "A new function, version " + p.version + "." }));
      }
      plan.appendChild(facts);
      var c = p.change;
      if (c) {
        var versions = c.from_version && c.to_version && c.from_version !== c.to_version
          ? c.from_version + " → " + c.to_version : (c.to_version || c.from_version || "");
        plan.appendChild(el("p", { id: "plan-action" }, [el("strong", { text: c.label }), " " + versions]));
        plan.appendChild(el("p", { "class": "muted", text: c.reason }));
        c.diffs.forEach(function (d) {
          plan.appendChild(el("p", { "class": "mono", text: d.field }));
          var pre = el("pre", { "class": "diff" });
          d.lines.forEach(function (line) {
            var kind = line.charAt(0) === "+" ? "add" : line.charAt(0) === "-" ? "del" :
              line.indexOf("@@") === 0 ? "hunk" : "";
            pre.appendChild(el("span", { "class": kind, text: line + "\n" }));
          });
          plan.appendChild(pre);
        });
      } else {
        plan.appendChild(el("p", { "class": "muted", text: "The database cannot say what applying it would do." }));
      }
      p.plan_errors.forEach(function (e) { plan.appendChild(el("p", { "class": "error", text: e })); });
    }

    function check() {
      var mine = ++sent;
      state.textContent = "Checking…";
      window.aiops.send("POST", root.getAttribute("data-check"), { name: name, text: area.value })
        .then(function (r) { return r.json().then(function (body) { return { status: r.status, body: body }; }); })
        .then(function (answer) {
          if (mine !== sent) { return; }  // an older answer: a newer check is on its way
          var p = answer.body;
          if (answer.status !== 200) {
            state.textContent = p.detail || "The check failed.";
            state.className = "error";
            showProblems(p.errors || []);
            plan.textContent = "";
            save.disabled = true;
            return;
          }
          var errors = p.diagnostics.filter(function (d) { return d.severity === "error"; }).length +
            p.elsewhere.length;
          state.textContent = errors ? errors + " error(s)" : "No errors" +
            (p.diagnostics.length ? " (" + p.diagnostics.length + " warning(s))" : "") + ".";
          state.className = errors ? "error" : "ok";
          root.setAttribute("data-checked", errors ? "error" : "ok");
          showProblems(p.diagnostics, p.elsewhere);
          showPlan(p);
          save.disabled = !p.ok;
        })
        .catch(function () { state.textContent = "The server did not answer the check."; });
    }

    function changed() {
      sent++;  // an answer on its way is about older text: it is dropped
      root.setAttribute("data-checked", "");
      save.disabled = true;
      clearTimeout(timer);
      timer = setTimeout(check, DEBOUNCE_MS);
    }

    function report(r, body) {
      saved.textContent = "";
      if (r.ok) {
        var lines = [];
        if (body.mode === "branch") {
          lines.push(el("p", { id: "saved-branch" }, ["Committed on branch ",
            el("code", { text: body.branch }), " (commit " + body.commit.slice(0, 12) + "); not applied."]));
        } else {
          lines.push(el("p", { id: "saved-commit" }, [
            (body.action === "delete" ? "Archived" : "Saved " + body.name + " " + (body.version || "")) +
            " in commit ", el("code", { text: body.commit.slice(0, 12) }),
            body.applied ? "; applied." : "; not applied: " + (body.apply_error || "")]));
          if (body.etag) { root.setAttribute("data-etag", body.etag); }
        }
        if (body.plan) { lines.push(el("pre", { text: body.plan })); }
        body.notes.forEach(function (n) { lines.push(el("p", { "class": "muted", text: n })); });
        if (body.action === "create" && body.mode !== "branch") {
          lines.push(el("p", {}, [el("a", { href: root.getAttribute("data-save") + "/" + body.name + "/edit",
            text: "Edit " + body.name }), " · ", el("a", { href: root.getAttribute("data-save") + "/" + body.name,
            text: "Open " + body.name })]));
        }
        lines.forEach(function (n) { saved.appendChild(n); });
        saved.className = "ok";
        return;
      }
      saved.className = "error";
      saved.appendChild(el("p", { id: "saved-refused", text: (body && body.detail) || ("Refused (" + r.status + ")") }));
      if (body && body.errors && body.errors.length) { showProblems(body.errors); }
    }

    function send(method, url, text) {
      var headers = { "Content-Type": "application/yaml" };
      var etag = root.getAttribute("data-etag");
      if (etag) { headers["If-Match"] = etag; }
      saved.textContent = "Saving…";
      return window.aiops.send(method, url, text, headers).then(function (r) {
        return r.json().catch(function () { return null; }).then(function (body) { report(r, body); });
      }).catch(function () { saved.textContent = "The server did not answer."; });
    }

    save.addEventListener("click", function () {
      send(name ? "PUT" : "POST", root.getAttribute("data-save"), area.value);
    });
    if (archive) {
      archive.addEventListener("click", function () {
        if (window.confirm(archive.getAttribute("data-confirm"))) {
          send("DELETE", root.getAttribute("data-save"), undefined);
        }
      });
    }
    area.addEventListener("input", changed);
    ["keyup", "click", "focus"].forEach(function (e) { area.addEventListener(e, where); });
    area.addEventListener("keydown", function (e) {  // Tab indents (two spaces); Escape leaves
      if (e.key === "Tab" && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !area.dataset.tabOut) {
        e.preventDefault();
        area.setRangeText("  ", area.selectionStart, area.selectionEnd, "end");
        changed();
      } else if (e.key === "Escape") {
        area.dataset.tabOut = "1";
      }
    });
    area.addEventListener("blur", function () { delete area.dataset.tabOut; });
    window.aiopsEditor = {
      text: function () { return area.value; },
      setText: function (text) { area.value = text; changed(); },
      onInput: function (f) { area.addEventListener("input", f); }
    };
    check();
  });
})();
