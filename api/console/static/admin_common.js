/* Shared by the admin pages: calls to the JSON API with the session cookie, the API's error texts shown
   next to the form, and a small DOM builder (text only: nothing from the API is parsed as HTML). */
(function () {
  "use strict";

  class ApiError extends Error {
    constructor(status, message, problems) {
      super(message);
      this.status = status;
      this.problems = problems; // [{loc: [...], msg: "..."}] for a 422 naming fields
    }
  }

  function cleanMessage(msg) {
    return String(msg || "").replace(/^Value error, /, "").replace(/^Assertion failed, /, "");
  }

  function where(loc) {
    const parts = [];
    for (let i = 0; i < loc.length; i += 1) {
      const part = loc[i];
      if ((part === "conditions" || part === "actions" || part === "questions" || part === "keywords")
          && typeof loc[i + 1] === "number") {
        const names = {conditions: "Condition", actions: "Action", questions: "Question", keywords: "Keyword"};
        parts.push(`${names[part]} ${loc[i + 1] + 1}`);
        i += 1;
      } else if (typeof part === "number") {
        parts.push(`item ${part + 1}`);
      } else {
        parts.push(String(part).replace(/_/g, " "));
      }
    }
    return parts.join(" › ");
  }

  function errorOf(status, data) {
    const detail = data && data.detail;
    if (Array.isArray(detail)) {
      const problems = detail.map((d) => ({
        loc: (d.loc || []).filter((p, i) => !(i === 0 && (p === "body" || p === "query" || p === "path"))),
        msg: cleanMessage(d.msg),
      }));
      const text = problems.map((p) => (p.loc.length ? `${where(p.loc)}: ${p.msg}` : p.msg)).join("\n");
      return new ApiError(status, text, problems);
    }
    if (typeof detail === "string") return new ApiError(status, detail, []);
    if (status === 401) return new ApiError(status, "Your session ended: sign in again.", []);
    if (status === 403) return new ApiError(status, "Your role cannot do this.", []);
    if (status === 429) return new ApiError(status, "Too many requests: wait a moment and try again.", []);
    return new ApiError(status, `The server answered ${status}. Try again.`, []);
  }

  async function api(method, path, body) {
    const init = {method, credentials: "same-origin", headers: {Accept: "application/json"}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "The server could not be reached. Check the connection and try again.", []);
    }
    const text = response.status === 204 ? "" : await response.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!response.ok) throw errorOf(response.status, data);
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "on") for (const [type, fn] of Object.entries(value)) node.addEventListener(type, fn);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (value === true) node.setAttribute(name, "");
      else node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

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

  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} `
      + `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
  }

  function splitList(text) {
    return String(text || "").split(/[,\n]/).map((s) => s.trim()).filter((s) => s.length > 0);
  }

  function quoteList(items, joiner) {
    const quoted = items.map((k) => `“${k}”`);
    if (quoted.length <= 1) return quoted.join("");
    return `${quoted.slice(0, -1).join(", ")} ${joiner || "or"} ${quoted[quoted.length - 1]}`;
  }

  window.AerosticAdmin = {api, ApiError, el, showErrors, clearErrors, when, splitList, quoteList, where};
})();
