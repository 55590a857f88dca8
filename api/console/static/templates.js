// The Templates page: the registry (paged), sync, delete, and the create form with its live WhatsApp preview.
(function () {
  "use strict";
  const {api, ApiError, el, pageData, say, labelled, meta} = window.AdminPages;
  const data = pageData();
  const L = data.labels;
  const LIMITS = data.limits;
  const $ = (id) => document.getElementById(id);
  const VAR = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;
  const PAGE = 50;

  // --- the registry ---------------------------------------------------------------------------------------
  let cursor = null;
  let shown = 0;

  let seq = 0;  // only the latest request's answer is shown (a slower earlier one is dropped)

  async function loadTemplates(reset) {
    const mine = ++seq;
    const params = new URLSearchParams({limit: String(PAGE)});
    if (cursor && !reset) params.set("cursor", cursor);
    try {
      const page = await api(`/v1/templates?${params}`);
      if (mine !== seq) return;
      const body = $("templates-body");
      if (reset) { body.replaceChildren(); shown = 0; } else body.querySelectorAll("tr:not([data-template])").forEach((row) => row.remove());
      for (const t of page.items) body.append(templateRow(t));
      shown += page.items.length;
      if (!shown) body.replaceChildren(el("tr", {}, el("td", {colspan: 7, class: "muted", text: "No templates yet. Create one below, or sync the ones you made in WhatsApp Manager."})));
      cursor = page.next_cursor;
      $("templates-more").hidden = !cursor;
      $("registry-count").textContent = `${shown} shown`;
      say($("registry-error"), "");
    } catch (err) {
      say($("registry-error"), `The templates could not be loaded: ${err.message}`);
    }
  }

  function templateRow(t) {
    const why = t.status_reason ? labelled(L.reason, t.status_reason) : (t.error && t.error.message
      ? el("span", {}, t.error.message) : el("span", {class: "muted", text: "—"}));
    const preview = el("details", {}, el("summary", {text: "Preview"}), el("p", {class: "muted", text: t.preview}));
    const canDelete = t.status !== "DELETED";
    return el("tr", {dataset: {template: `${t.name}:${t.language}`, status: t.status}},
      el("td", {}, el("strong", {text: t.name}), preview),
      el("td", {text: t.language}),
      el("td", {"data-col": "category"}, meta("template_category", t.category)),
      el("td", {"data-col": "status"}, meta("template_status", t.status, L.status_tone)),
      el("td", {"data-col": "quality"}, meta("template_quality", t.quality, L.quality_tone)),
      el("td", {"data-col": "reason"}, why),
      el("td", {}, canDelete ? el("button", {type: "button", class: "danger", "aria-label": `Delete ${t.name}`,
        onclick: () => remove(t.name)}, "Delete") : null));
  }

  // The registry changes when Meta answers (webhooks, the projector): look again a few times.
  let refreshes = 0;
  let refreshing = false;
  function refreshSoon() {
    refreshes = 8;  // one chain of reads at a time; a new request only extends it
    if (refreshing) return;
    refreshing = true;
    const tick = async () => {
      if (refreshes-- <= 0) { refreshing = false; return; }
      await loadTemplates(true);
      setTimeout(tick, 2000);
    };
    setTimeout(tick, 1000);
  }

  async function remove(name) {
    if (!window.confirm(`Delete the template ${name} in every language? Meta deletes it by name.`)) return;
    try {
      await api(`/v1/templates/${encodeURIComponent(name)}`, {method: "DELETE"});
      say($("registry-message"), `Deleting ${name}: the list updates when Meta confirms.`, "alert info");
      refreshSoon();
    } catch (err) {
      say($("registry-error"), `${name} could not be deleted: ${err.message}`);
    }
  }

  async function sync() {
    const button = $("sync");
    button.disabled = true;
    say($("registry-error"), "");
    try {
      // A WABA keeps its last sync only: ours, or one that ended after it (another sync may supersede ours).
      const before = new Map((await api("/v1/templates/syncs")).map((s) => [s.waba_id, s.request_id]));
      const requested = await api("/v1/templates/sync", {method: "POST"});
      const ids = new Set(requested.map((r) => r.request_id));
      say($("registry-message"), "Reading your templates from Meta…", "alert info");
      for (let i = 0; i < 60; i++) {  // a minute at most, then the list is re-read a few times
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const syncs = await api("/v1/templates/syncs");
        const done = requested.map((r) => syncs.find((s) => s.waba_id === r.waba_id
          && (ids.has(s.request_id) || s.request_id !== before.get(r.waba_id)))).filter(Boolean);
        if (done.length === requested.length) {
          await loadTemplates(true);  // the list first, then the message: it is up to date when the message shows
          const failed = done.find((s) => s.status === "failed");
          if (failed) say($("registry-error"), `The sync failed: ${(failed.error && failed.error.message) || "no details"}`);
          else say($("registry-message"), `Synced from Meta: ${done.reduce((n, s) => n + (s.templates || 0), 0)} templates.`, "alert info");
          return;
        }
      }
      say($("registry-message"), "The sync is still running; the list updates when it ends.", "alert info");
      refreshSoon();
    } catch (err) {
      say($("registry-error"), `The sync could not start: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  // --- the create form and its preview ----------------------------------------------------------------------
  const form = $("create-form");
  const examples = {header: new Map(), body: new Map()};  // variable name -> example typed

  function variablesOf(text) {
    const names = [];
    for (const m of String(text || "").matchAll(VAR)) if (!names.includes(m[1])) names.push(m[1]);
    return names;
  }

  function isPositional(names) { return names.every((n) => /^[0-9]+$/.test(n)); }

  // One example input per variable of ``part`` (header or body), keeping what was typed.
  function syncExampleInputs(part) {
    const names = variablesOf($(`tpl-${part}`).value);
    const box = $(`tpl-${part}-examples`);
    const have = [...box.querySelectorAll("input")].map((i) => i.dataset.variable);
    if (have.join("|") === names.join("|")) return;
    box.replaceChildren(...names.map((name) => {
      const id = `tpl-${part}-example-${name}`;
      const input = el("input", {type: "text", id, "data-variable": name, required: true, maxlength: 2000,
        value: examples[part].get(name) || ""});
      input.addEventListener("input", () => { examples[part].set(name, input.value); preview(); });
      return el("div", {}, el("label", {for: id}, "Example for ", el("code", {text: `{{${name}}}`})), input);
    }));
  }

  function fill(target, text, part) {
    target.replaceChildren();
    let last = 0;
    for (const m of String(text).matchAll(VAR)) {
      target.append(text.slice(last, m.index));
      const example = examples[part] ? examples[part].get(m[1]) : "";
      target.append(el("span", {class: "var", title: `{{${m[1]}}}`, "data-variable": m[1]}, example || `{{${m[1]}}}`));
      last = m.index + m[0].length;
    }
    target.append(text.slice(last));
  }

  function counter(id, value, max) {
    $(id).textContent = `${value.length} / ${max} characters`;
  }

  function preview() {
    const header = $("tpl-header").value;
    const body = $("tpl-body").value;
    const footer = $("tpl-footer").value;
    syncExampleInputs("header");
    syncExampleInputs("body");
    counter("tpl-header-count", header, LIMITS.header);
    counter("tpl-body-count", body, LIMITS.body);
    counter("tpl-footer-count", footer, LIMITS.footer);
    $("tpl-preview-header").hidden = !header;
    fill($("tpl-preview-header"), header, "header");
    fill($("tpl-preview-body"), body || "Your message", "body");
    $("tpl-preview-footer").hidden = !footer;
    $("tpl-preview-footer").textContent = footer;
    const buttons = readButtons();
    $("tpl-preview-buttons").hidden = !buttons.length;
    $("tpl-preview-buttons").replaceChildren(...buttons.map((b) => el("span", {class: "b-button", text: b.text || "Button"})));
  }

  // Buttons: quick reply, link (URL, optionally ending in {{1}}) or phone call.
  let buttonSeq = 0;
  function addButton() {
    const rows = $("tpl-buttons");
    if (rows.children.length >= LIMITS.buttons) return;
    const n = buttonSeq++;
    const type = el("select", {id: `tpl-button-${n}-type`, "data-part": "type"},
      el("option", {value: "QUICK_REPLY"}, "Quick reply"), el("option", {value: "URL"}, "Visit website"),
      el("option", {value: "PHONE_NUMBER"}, "Call phone number"));
    const text = el("input", {type: "text", id: `tpl-button-${n}-text`, "data-part": "text", maxlength: LIMITS.button_text});
    const value = el("input", {type: "text", id: `tpl-button-${n}-value`, "data-part": "value", maxlength: 2000});
    const valueLabel = el("label", {for: `tpl-button-${n}-value`}, "Link or number");
    const valueBox = el("div", {hidden: true}, valueLabel, value);
    const error = el("p", {class: "field-error", "data-part": "error"});
    const row = el("div", {class: "button-row", dataset: {button: String(n)}},
      el("div", {class: "row"},
        el("div", {}, el("label", {for: `tpl-button-${n}-type`}, "Button type"), type),
        el("div", {}, el("label", {for: `tpl-button-${n}-text`}, "Button text"), text),
        valueBox,
        el("div", {}, el("button", {type: "button", class: "danger", onclick: () => { row.remove(); preview(); }}, "Remove"))),
      error);
    type.addEventListener("change", () => {
      valueBox.hidden = type.value === "QUICK_REPLY";
      valueLabel.textContent = type.value === "URL" ? "Link (https://…, may end in {{1}})" : "Phone number (+country code)";
      preview();
    });
    for (const input of [text, value]) input.addEventListener("input", preview);
    rows.append(row);
    text.focus();
    preview();
  }

  function readButtons() {
    return [...$("tpl-buttons").children].map((row) => {
      const get = (part) => row.querySelector(`[data-part=${part}]`).value.trim();
      return {type: get("type"), text: get("text"), value: get("value"), row};
    });
  }

  // The request body and, for each component, where its errors go.
  function request() {
    const fields = [];
    const components = [];
    const header = $("tpl-header").value;
    const body = $("tpl-body").value;
    const footer = $("tpl-footer").value;
    const names = [...variablesOf(header), ...variablesOf(body)];
    const positional = isPositional(names);
    const format = positional ? "positional" : "named";
    const exampleOf = (part, text) => {
      const vars = variablesOf(text);
      if (!vars.length) return undefined;
      if (part === "header") {
        return positional ? {header_text: vars.map((v) => examples.header.get(v) || "")}
          : {header_text_named_params: vars.map((v) => ({param_name: v, example: examples.header.get(v) || ""}))};
      }
      const ordered = positional ? [...vars].sort((a, b) => Number(a) - Number(b)) : vars;
      return positional ? {body_text: [ordered.map((v) => examples.body.get(v) || "")]}
        : {body_text_named_params: ordered.map((v) => ({param_name: v, example: examples.body.get(v) || ""}))};
    };
    if (header.trim()) {
      fields.push({part: "header"});
      components.push({type: "HEADER", format: "TEXT", text: header, example: exampleOf("header", header)});
    }
    fields.push({part: "body"});
    components.push({type: "BODY", text: body, example: exampleOf("body", body)});
    if (footer.trim()) {
      fields.push({part: "footer"});
      components.push({type: "FOOTER", text: footer});
    }
    const buttons = readButtons();
    if (buttons.length) {
      fields.push({part: "buttons", rows: buttons.map((b) => b.row)});
      components.push({type: "BUTTONS", buttons: buttons.map((b) => {
        if (b.type === "URL") {
          const out = {type: "URL", text: b.text, url: b.value};
          if (/\{\{\s*1\s*\}\}\s*$/.test(b.value)) out.example = [b.value.replace(/\{\{\s*1\s*\}\}\s*$/, "example")];
          return out;
        }
        if (b.type === "PHONE_NUMBER") return {type: "PHONE_NUMBER", text: b.text, phone_number: b.value};
        return {type: "QUICK_REPLY", text: b.text};
      })});
    }
    return {body: {name: $("tpl-name").value.trim(), language: $("tpl-language").value.trim(),
      category: $("tpl-category").value, parameter_format: format,
      components: JSON.parse(JSON.stringify(components))}, fields};
  }

  function clearErrors() {
    for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
    say($("create-error"), "");
    say($("create-message"), "");
  }

  // Put each of the API's field errors at its field; the rest in the form's alert.
  function showErrors(err, fields) {
    const loose = [];
    let first = null;
    const mark = (node, input, msg) => {
      node.textContent = node.textContent ? `${node.textContent} ${msg}` : msg;
      if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
    };
    for (const {path, msg} of err.fields) {
      const parts = path.split(".");
      if (["name", "language", "category"].includes(parts[0])) {
        mark($(`tpl-${parts[0]}-error`), $(`tpl-${parts[0]}`), msg);
      } else if (parts[0] === "components" && parts.length > 1 && fields[Number(parts[1])]) {
        const field = fields[Number(parts[1])];
        if (field.part === "buttons") {
          const row = parts[2] === "buttons" && parts[3] !== undefined ? field.rows[Number(parts[3])] : null;
          if (row) mark(row.querySelector("[data-part=error]"), row.querySelector("[data-part=text]"), msg);
          else mark($("tpl-buttons-error"), null, msg);
        } else {
          const input = parts[2] === "example" ? $(`tpl-${field.part}-examples`).querySelector("input") || $(`tpl-${field.part}`)
            : $(`tpl-${field.part}`);
          mark($(`tpl-${field.part}-error`), input, msg);
        }
      } else if (parts[0] === "components") {
        mark($("tpl-body-error"), $("tpl-body"), msg);
      } else {
        loose.push(path ? `${path}: ${msg}` : msg);
      }
    }
    if (!err.fields.length) loose.push(err.message);
    say($("create-error"), loose.length ? loose.join("; ") : "Some fields need changes: see below each field.");
    if (first) first.focus();
  }

  async function submit(event) {
    event.preventDefault();
    clearErrors();
    const {body, fields} = request();
    const button = $("tpl-submit");
    button.disabled = true;
    try {
      const made = await api("/v1/templates", {method: "POST", json: body});
      say($("create-message"), `${made.name} (${made.language}) was sent to Meta for review; its status shows in the list.`, "alert info");
      refreshSoon();
    } catch (err) {
      if (err instanceof ApiError) showErrors(err, fields);
      else say($("create-error"), err.message);
    } finally {
      button.disabled = false;
    }
  }

  for (const id of ["tpl-header", "tpl-body", "tpl-footer"]) $(id).addEventListener("input", preview);
  $("tpl-add-button").addEventListener("click", addButton);
  $("templates-more").addEventListener("click", () => loadTemplates(false));
  $("sync").addEventListener("click", sync);
  form.addEventListener("submit", submit);
  preview();
  loadTemplates(true);
})();
