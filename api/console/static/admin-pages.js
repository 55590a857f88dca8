// Shared by the admin pages (automations, AI, agents; templates, contacts, campaigns): JSON API calls with the
// session cookie, the API's errors in words (and by field), the page's server-given data, small DOM helpers
// (text only: nothing from the API is parsed as HTML).
(function () {
  "use strict";

  const LISTS = {conditions: "Condition", actions: "Action", questions: "Question", keywords: "Keyword"};
  const KNOWN = {0: "The server could not be reached. Check the connection and try again.",
    400: "The request was not understood.", 401: "Your session has ended: sign in again.",
    403: "Your role cannot do this.", 404: "Not found (it may have been removed).",
    409: "This conflicts with the current state; reload and try again.", 413: "The file is too large.",
    429: "Too many requests: wait a moment and try again.", 503: "The service is busy: try again in a moment."};

  function sentence(text) {
    const s = String(text);
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  function cleanMessage(msg) {
    return String(msg || "is not valid").replace(/^Value error, /, "").replace(/^Assertion failed, /, "");
  }

  // A field's place in words: ["actions", 0, "tag"] is "Action 1 › tag".
  function where(loc) {
    const parts = [];
    for (let i = 0; i < loc.length; i += 1) {
      const part = loc[i];
      if (LISTS[part] && typeof loc[i + 1] === "number") {
        parts.push(`${LISTS[part]} ${loc[i + 1] + 1}`);
        i += 1;
      } else if (typeof part === "number") {
        parts.push(`item ${part + 1}`);
      } else {
        parts.push(String(part).replace(/_/g, " "));
      }
    }
    return parts.join(" › ");
  }

  // A 422's problems: [{loc: ["actions", 0, "tag"], msg}] (the leading "body"/"query"/"path" dropped).
  function problemsOf(detail) {
    if (!Array.isArray(detail)) return [];
    return detail.filter((d) => d && typeof d === "object").map((d) => ({
      loc: (Array.isArray(d.loc) ? d.loc : []).filter((p, i) => !(i === 0 && ["body", "query", "path"].includes(p))),
      msg: cleanMessage(d.msg),
    }));
  }

  // An answer the API refused (status 0: the server was not reached); ``detail`` is the answer's detail.
  class ApiError extends Error {
    constructor(status, detail) {
      super(ApiError.words(status, detail));
      this.status = status;
      this.detail = detail;
    }

    get problems() {
      return problemsOf(this.detail);
    }

    // The same as dotted paths: [{path: "components.1.text", msg}].
    get fields() {
      return this.problems.map((p) => ({path: p.loc.join("."), msg: p.msg}));
    }

    static words(status, detail) {
      if (typeof detail === "string" && detail) return sentence(detail);
      if (Array.isArray(detail) && detail.length) {
        return problemsOf(detail).map((p) => (p.loc.length ? `${where(p.loc)}: ${p.msg}` : p.msg)).join("; ");
      }
      if (detail && typeof detail === "object") {
        if (detail.message) return sentence(detail.message);
        if (detail.reason) return sentence(detail.reason);
      }
      return KNOWN[status] || `The server answered ${status}. Try again.`;
    }
  }

  // Call the JSON API: ``options`` are fetch's, plus ``json`` (a body sent as JSON). Resolves to the parsed
  // body (null for 204); rejects with ApiError (status 0 when the server was not reached) or an AbortError.
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
      throw new ApiError(0, null);
    }
    if (response.status === 204) return null;
    let body = null;
    try { body = await response.json(); } catch (err) { body = null; }
    if (!response.ok) throw new ApiError(response.status, body && body.detail !== undefined ? body.detail : body);
    return body;
  }

  // Save ``body`` in the collection at ``path``: as item ``id`` (PUT), or as a new item (POST) when ``id`` is null.
  function store(path, id, body) {
    return id ? api(`${path}/${id}`, {method: "PUT", json: body}) : api(path, {method: "POST", json: body});
  }

  // Every item of a paged list (``{items, next_cursor}``), at most ``maxPages`` pages of ``limit``.
  async function everyPage(path, limit, maxPages) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < maxPages; page += 1) {
      const params = new URLSearchParams({limit: String(limit)});
      if (cursor) params.set("cursor", cursor);
      const answer = await api(`${path}?${params}`);
      items.push(...answer.items);
      cursor = answer.next_cursor;
      if (!cursor) break;
    }
    return items;
  }

  // An element: ``attrs`` are attributes, plus ``text``, ``dataset`` and ``on<event>`` listeners.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // An error in an errors box: one line a field problem, else the error's words.
  function showErrors(box, error) {
    box.replaceChildren();
    const problems = error && error.problems && error.problems.length ? error.problems : null;
    if (problems) {
      box.append(el("ul", {}, problems.map((p) => el("li", {
        text: p.loc.length ? `${where(p.loc)}: ${p.msg}` : p.msg}))));
    } else {
      box.append(el("p", {text: error ? error.message : ""}));
    }
    box.hidden = false;
  }

  function clearErrors(box) {
    box.replaceChildren();
    box.hidden = true;
  }

  // Show ``message`` (or clear it) in an alert element.
  function say(node, message, kind) {
    node.textContent = message || "";
    node.hidden = !message;
    if (kind) node.className = `alert ${kind}`;
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

  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function number(n) {
    return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
  }

  // "a, b" or "a\nb" as ["a", "b"].
  function splitList(text) {
    return String(text || "").split(/[,\n]/).map((s) => s.trim()).filter((s) => s.length > 0);
  }

  // ["a", "b", "c"] as “a”, “b” or “c”.
  function quoteList(items, joiner) {
    const quoted = items.map((k) => `“${k}”`);
    if (quoted.length <= 1) return quoted.join("");
    return `${quoted.slice(0, -1).join(", ")} ${joiner || "or"} ${quoted[quoted.length - 1]}`;
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

  window.AdminPages = {api, store, everyPage, ApiError, el, showErrors, clearErrors, say, debounce, pageData, when, number,
    splitList, quoteList, where, labelled, meta, download, csvCell};
})();
