// aiops web UI: the project's own script (no inline scripts: the CSP forbids them).
// The theme: the system's (prefers-color-scheme) unless the toggle chose one, kept in
// localStorage. Set on <html> before the body renders (this file loads in <head>).
(function () {
  "use strict";
  var KEY = "aiops-theme";
  function stored() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }
  var chosen = stored();
  if (chosen === "light" || chosen === "dark") {
    document.documentElement.setAttribute("data-theme", chosen);
  }
  function current() {
    var set = document.documentElement.getAttribute("data-theme");
    if (set) { return set; }
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches
      ? "dark" : "light";
  }
  document.addEventListener("DOMContentLoaded", function () {
    var toggle = document.getElementById("theme-toggle");
    if (toggle) {
      toggle.setAttribute("aria-pressed", current() === "dark" ? "true" : "false");
      toggle.addEventListener("click", function () {
        var next = current() === "dark" ? "light" : "dark";
        document.documentElement.setAttribute("data-theme", next);
        toggle.setAttribute("aria-pressed", next === "dark" ? "true" : "false");
        try { window.localStorage.setItem(KEY, next); } catch (e) { /* private mode */ }
      });
    }
    // Forms that ask before they act (revoke): data-confirm holds the question.
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
    // Selects that submit their form on change (filters), for those with a pointer.
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  });
  // For scripts of other pages: fetch with the session's CSRF token on writes.
  window.aiops = {
    csrf: function () {
      var meta = document.querySelector('meta[name="csrf-token"]');
      return meta ? meta.getAttribute("content") : "";
    },
    send: function (method, url, body, headers) {
      var h = Object.assign({ "X-CSRF-Token": window.aiops.csrf() }, headers || {});
      if (body !== undefined && !(body instanceof FormData) && typeof body !== "string") {
        h["Content-Type"] = "application/json";
        body = JSON.stringify(body);
      }
      return fetch(url, { method: method, headers: h, body: body, credentials: "same-origin" });
    }
  };
})();
