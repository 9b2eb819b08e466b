// aiops: the small DOM helper the editor, schema builder and test console draw with.
(function () {
  "use strict";
  // el("p", {id: "x", text: "hello"}, [child, "text"]): an element; `text` sets its text,
  // every other key an attribute (never HTML: nothing a user wrote is parsed as markup).
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  window.aiopsDom = { el: el };
})();
