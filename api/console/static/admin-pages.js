// Shared helpers of the admin work pages (templates, contacts, campaigns): JSON API calls with the session
// cookie, API errors in words (and by field), the page's server-given data, small DOM helpers.
(function () {
  "use strict";

  class ApiError extends Error {
    constructor(status, detail) {
      super(ApiError.words(status, detail));
      this.status = status;
      this.detail = detail;
    }

    // Field errors of a 422: [{path: "components.1.text", msg}] (the leading "body"/"query" dropped).
    get fields() {
      if (!Array.isArray(this.detail)) return [];
      return this.detail.filter((d) => d && Array.isArray(d.loc)).map((d) => ({
        path: d.loc.filter((p, i) => !(i === 0 && (p === "body" || p === "query"))).join("."),
        msg: String(d.msg || "is not valid").replace(/^Value error, /, ""),
      }));
    }

    static words(status, detail) {
      if (typeof detail === "string" && detail) return sentence(detail);
      if (Array.isArray(detail) && detail.length) {
        return detail.map((d) => {
          const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body" && p !== "query").join(" › ") : "";
          const msg = String(d.msg || "is not valid").replace(/^Value error, /, "");
          return where ? `${where}: ${msg}` : msg;
        }).join("; ");
      }
      if (detail && typeof detail === "object") {
        if (detail.message) return sentence(detail.message);
        if (detail.reason) return sentence(detail.reason);
      }
      const known = {400: "The request was not understood.", 401: "Your session has ended: sign in again.",
        403: "Your role cannot do this.", 404: "Not found (it may have been removed).",
        409: "This conflicts with the current state; reload and try again.", 413: "The file is too large.",
        429: "Too many requests: wait a moment and try again.", 503: "The service is busy: try again in a moment."};
      return known[status] || `The server answered ${status}.`;
    }
  }

  function sentence(text) {
    const s = String(text);
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  // Call the JSON API; resolves to the parsed body (null for 204), rejects with ApiError (or a network Error).
  async function api(path, options) {
    const opts = Object.assign({credentials: "same-origin", headers: {}}, options || {});
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers = Object.assign({"Content-Type": "application/json"}, opts.headers);
      delete opts.json;
    }
    opts.headers = Object.assign({Accept: "application/json"}, opts.headers);
    let response;
    try {
      response = await fetch(path, opts);
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new Error("The server could not be reached. Check your connection and try again.");
    }
    if (response.status === 204) return null;
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    if (!response.ok) throw new ApiError(response.status, body && body.detail !== undefined ? body.detail : body);
    return body;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function debounce(fn, ms) {
    let timer = null;
    return function (...args) {
      clearTimeout(timer);
      timer = setTimeout(() => fn.apply(this, args), ms);
    };
  }

  function pageData() {
    const node = document.getElementById("page-data");
    return node ? JSON.parse(node.textContent) : {};
  }

  // Show ``message`` (or clear it) in an alert element.
  function say(node, message, kind) {
    node.textContent = message || "";
    node.hidden = !message;
    if (kind) node.className = `alert ${kind}`;
  }

  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function number(n) {
    return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
  }

  // A label from a {value: words} table, with Meta's own value on hover.
  function labelled(table, value, tone) {
    if (value === null || value === undefined || value === "") return el("span", {class: "muted", text: "—"});
    const words = (table && table[value]) || String(value).replace(/_/g, " ").toLowerCase().replace(/^./, (c) => c.toUpperCase());
    return el("span", {class: "pill", title: String(value), "data-value": value,
      "data-tone": tone ? tone[value] || "" : ""}, words);
  }

  // Meta's ``value`` of ``kind`` in the console's words (labels.js, from api/console/labels.py), its value on hover.
  function meta(kind, value, tone) {
    if (value === null || value === undefined || value === "") return el("span", {class: "muted", text: "—"});
    const words = window.AerosticLabels ? window.AerosticLabels.label(kind, value) : String(value);
    return el("span", {class: "pill meta-value", title: String(value), "data-value": value,
      "data-tone": tone ? tone[value] || "" : ""}, words);
  }

  // Client-side download of text as a file.
  function download(filename, text, type) {
    const url = URL.createObjectURL(new Blob([text], {type: type || "text/csv"}));
    const a = el("a", {href: url, download: filename});
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  function csvCell(value) {
    const s = value === null || value === undefined ? "" : String(value);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }

  window.AdminPages = {api, ApiError, el, debounce, pageData, say, when, number, labelled, meta, download, csvCell};
})();
