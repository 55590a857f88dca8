/* Meta's codes as people read them, for page scripts: the same tables the server renders with
   (api/console/labels.py, embedded by base.html as JSON in #meta-labels).
   AerosticLabels.label("quality", "GREEN") → "High"; AerosticLabels.span("tier", "TIER_1K") → a <span>
   with the label as text and Meta's value as its title. */
(function () {
  "use strict";
  var source = document.getElementById("meta-labels");
  var tables = source ? JSON.parse(source.textContent) : {kinds: {}, throughput_levels: {}, missing: "\u2014"};

  function words(code) {
    var text = String(code).replace(/_/g, " ").trim().toLowerCase();
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function metaValue(kind, value) {
    if (value === null || value === undefined || value === "") return null;
    if (kind === "throughput" && typeof value === "number") {
      return tables.throughput_levels[String(value)] || String(value);
    }
    return String(value);
  }

  function label(kind, value) {
    if (kind === "throughput" && typeof value === "number" && !tables.throughput_levels[String(value)]) {
      return value.toLocaleString("en-US") + " messages/s";
    }
    var code = metaValue(kind, value);
    if (code === null) return tables.missing;
    var table = tables.kinds[kind] || {};
    return table[code] || table[code.toUpperCase()] || words(code);
  }

  function span(kind, value) {
    var element = document.createElement("span");
    var code = metaValue(kind, value);
    if (code === null) {
      element.className = "meta-missing";
      element.textContent = tables.missing;
      return element;
    }
    element.className = "meta-value";
    element.title = code;
    element.setAttribute("data-meta", code);
    element.textContent = label(kind, value);
    return element;
  }

  window.AerosticLabels = {label: label, span: span};
})();
