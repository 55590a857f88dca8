// The Contacts page: search and page through contacts, a contact's details and opt-out history, CSV import with
// its progress and report, segments with a live count of the rule being edited.
(function () {
  "use strict";
  const {api, ApiError, el, debounce, pageData, say, when, number, download, csvCell} = window.AdminPages;
  const data = pageData();
  const $ = (id) => document.getElementById(id);
  const PAGE = 25;
  const POLL_MS = 700;

  // --- contacts -------------------------------------------------------------------------------------------
  const pages = [null];  // the cursor of each page seen, so Previous goes back
  let pageIndex = 0;
  let nextCursor = null;

  let contactsSeq = 0;  // only the latest request's answer is shown (a slower earlier one is dropped)

  async function loadContacts() {
    const seq = ++contactsSeq;
    const params = new URLSearchParams({limit: String(PAGE)});
    const q = $("contact-search").value.trim();
    if (q) params.set("q", q);
    if ($("contact-filter").value) params.set("opted_out", $("contact-filter").value);
    if (pages[pageIndex]) params.set("cursor", pages[pageIndex]);
    try {
      const page = await api(`/v1/contacts?${params}`);
      if (seq !== contactsSeq) return;
      const body = $("contacts-body");
      body.replaceChildren(...page.items.map(contactRow));
      if (!page.items.length) body.append(el("tr", {}, el("td", {colspan: 5, class: "muted", text: q ? "Nobody matches." : "No contacts yet."})));
      nextCursor = page.next_cursor;
      $("contacts-next").disabled = !nextCursor;
      $("contacts-prev").disabled = pageIndex === 0;
      $("contacts-page").textContent = `Page ${pageIndex + 1}`;
      say($("contacts-error"), "");
    } catch (err) {
      say($("contacts-error"), `The contacts could not be loaded: ${err.message}`);
    }
  }

  function contactRow(c) {
    return el("tr", {dataset: {contact: c.id, waId: c.wa_id}},
      el("td", {}, el("button", {type: "button", class: "link", onclick: () => openContact(c.id)}, c.name || c.username || c.phone || c.wa_id)),
      el("td", {text: c.phone || (c.username ? `@${c.username}` : c.wa_id)}),
      el("td", {}, c.tags.length ? c.tags.map((t) => el("span", {class: "pill", text: t})) : el("span", {class: "muted", text: "—"})),
      el("td", {}, c.opted_out ? el("span", {class: "pill", "data-tone": "bad", text: "Opted out"}) : el("span", {class: "pill", "data-tone": "good", text: "Subscribed"})),
      el("td", {text: when(c.created_at)}));
  }

  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    pages.length = 1; pageIndex = 0;
    loadContacts();
  });
  $("contacts-next").addEventListener("click", () => {
    if (!nextCursor) return;
    pageIndex += 1; pages[pageIndex] = nextCursor;
    loadContacts();
  });
  $("contacts-prev").addEventListener("click", () => {
    if (pageIndex === 0) return;
    pageIndex -= 1;
    loadContacts();
  });

  // --- one contact ----------------------------------------------------------------------------------------
  let current = null;

  async function openContact(id) {
    const panel = $("contact-detail");
    panel.hidden = false;
    panel.dataset.contact = id;
    say($("detail-error"), "");
    try {
      const [contact, history] = await Promise.all([api(`/v1/contacts/${id}`), api(`/v1/contacts/${id}/opt-history`)]);
      current = contact;
      showContact(contact, history);
      panel.focus();
    } catch (err) {
      say($("detail-error"), `The contact could not be loaded: ${err.message}`);
    }
  }

  function showContact(c, history) {
    $("contact-detail-title").textContent = c.name || c.phone || c.wa_id;
    const fields = [["Name", c.name], ["Number", c.phone], ["WhatsApp id", c.wa_id], ["Username", c.username ? `@${c.username}` : null],
      ["Tags", c.tags.join(", ")], ["Added", when(c.created_at)], ["Changed", when(c.updated_at)]];
    $("detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {text: k}), el("dd", {text: v || "—"})]));
    const attrs = Object.entries(c.attributes || {});
    $("detail-attributes").replaceChildren(...(attrs.length ? attrs.map(([k, v]) => el("tr", {}, el("td", {text: k}), el("td", {text: String(v)})))
      : [el("tr", {}, el("td", {colspan: 2, class: "muted", text: "No attributes."}))]));
    const state = $("detail-opt-state");
    state.dataset.optedOut = String(c.opted_out);
    state.textContent = c.opted_out
      ? `Opted out of campaigns since ${when(c.opted_out_at)} (${data.opt_sources[c.opt_source] || c.opt_source || "unknown"}).`
      : "Subscribed: campaigns may reach this contact.";
    $("opt-toggle").textContent = c.opted_out ? "Opt back in" : "Opt out";
    $("opt-history-body").replaceChildren(...(history.length ? history.map((h) => el("tr", {},
      el("td", {text: when(h.at)}), el("td", {text: h.opted_out ? "Opted out" : "Opted in"}),
      el("td", {text: data.opt_sources[h.source] || h.source}), el("td", {text: h.actor || "—"}), el("td", {text: h.detail || "—"})))
      : [el("tr", {}, el("td", {colspan: 5, class: "muted", text: "Never opted out."}))]));
  }

  $("opt-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!current) return;
    const verb = current.opted_out ? "opt-in" : "opt-out";
    const reason = $("opt-reason").value.trim();
    try {
      await api(`/v1/contacts/${current.id}/${verb}`, {method: "POST", json: reason ? {reason} : {}});
      $("opt-reason").value = "";
      await openContact(current.id);
      loadContacts();
    } catch (err) {
      say($("detail-error"), `The change was not saved: ${err.message}`);
    }
  });
  $("detail-close").addEventListener("click", () => { $("contact-detail").hidden = true; current = null; });

  // --- CSV import -----------------------------------------------------------------------------------------
  let lastImport = null;

  function showImport(imp) {
    lastImport = imp;
    $("import-status").hidden = false;
    $("import-status").dataset.importId = imp.id;
    const state = $("import-state");
    state.dataset.state = imp.status;
    state.textContent = {running: "Importing…", completed: "Import finished", failed: "Import failed"}[imp.status] || imp.status;
    if (imp.status === "failed" && imp.error) state.textContent = `Import failed: ${imp.error}`;
    $("import-file-name").textContent = imp.filename || "";
    const percent = Math.round((imp.progress || 0) * 100);
    const bar = $("import-progress");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.firstElementChild.style.width = `${percent}%`;
    for (const key of ["rows", "created", "updated", "duplicates", "invalid"]) $(`import-${key}`).textContent = number(imp[key]);
    const rows = imp.errors || [];
    $("import-errors-box").hidden = !rows.length;
    $("import-errors").tBodies[0].replaceChildren(...rows.map((e) => el("tr", {},
      el("td", {class: "num", text: String(e.line)}), el("td", {text: e.value || "—"}), el("td", {text: e.reason}))));
    $("import-download").hidden = imp.status === "running";
  }

  async function follow(id) {
    for (;;) {
      let imp;
      try {
        imp = await api(`/v1/contacts/imports/${id}`);
      } catch (err) {
        say($("import-error"), `The import's progress could not be read: ${err.message}`);
        return;
      }
      showImport(imp);
      if (imp.status !== "running") {
        $("import-start").disabled = false;
        pages.length = 1; pageIndex = 0;
        loadContacts();
        refreshCount();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  $("import-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const node of $("import-form").querySelectorAll(".field-error")) node.textContent = "";
    say($("import-error"), "");
    const file = $("import-file").files[0];
    if (!file) { $("import-file-error").textContent = "Choose a CSV file."; $("import-file").focus(); return; }
    if (file.size > data.max_file_bytes) { $("import-file-error").textContent = "The file is too large."; return; }
    const params = new URLSearchParams({filename: file.name.slice(0, 200)});
    const optional = {phone_column: "import-phone", name_column: "import-name", tag: "import-tag", region: "import-region"};
    for (const [param, id] of Object.entries(optional)) if ($(id).value.trim()) params.set(param, $(id).value.trim());
    $("import-start").disabled = true;
    try {
      const imp = await api(`/v1/contacts/imports?${params}`, {method: "POST", body: file, headers: {"Content-Type": "text/csv"}});
      showImport(imp);
      follow(imp.id);
    } catch (err) {
      $("import-start").disabled = false;
      const loose = [];
      if (err instanceof ApiError) {
        for (const {path, msg} of err.fields) {
          const node = $(`import-${path}-error`);
          if (node) node.textContent = msg; else loose.push(msg);
        }
        if (!err.fields.length) loose.push(err.message);
      } else loose.push(err.message);
      say($("import-error"), `The file was not imported: ${loose.join("; ") || "see the fields above"}`);
    }
  });

  $("import-download").addEventListener("click", () => {
    const imp = lastImport;
    if (!imp) return;
    const lines = [["file", imp.filename || ""], ["status", imp.status], ["rows", imp.rows], ["created", imp.created],
      ["updated", imp.updated], ["duplicates", imp.duplicates], ["rejected", imp.invalid], [],
      ["line", "value", "reason"], ...(imp.errors || []).map((e) => [e.line, e.value || "", e.reason])];
    download(`import-${imp.id}-report.csv`, lines.map((l) => l.map(csvCell).join(",")).join("\r\n") + "\r\n");
  });

  // --- segments -------------------------------------------------------------------------------------------
  let segmentsCursor = null;

  function summary(f) {
    const parts = [];
    if (f.tags_all.length) parts.push(`tags all of ${f.tags_all.join(", ")}`);
    if (f.tags_any.length) parts.push(`tags any of ${f.tags_any.join(", ")}`);
    if (f.tags_none.length) parts.push(`tags none of ${f.tags_none.join(", ")}`);
    for (const c of f.attributes) {
      const value = c.value === null || c.value === undefined ? "" : ` ${Array.isArray(c.value) ? c.value.join(", ") : c.value}`;
      parts.push(`${c.key} ${data.operators[c.op] || c.op}${value}`);
    }
    if (f.include_opted_out) parts.push("including opted-out contacts");
    return parts.length ? parts.join("; ") : "every subscribed contact";
  }

  let segmentsSeq = 0;

  async function loadSegments(reset) {
    const seq = ++segmentsSeq;
    const params = new URLSearchParams({limit: "50"});
    if (segmentsCursor && !reset) params.set("cursor", segmentsCursor);
    try {
      const page = await api(`/v1/segments?${params}`);
      if (seq !== segmentsSeq) return;
      if (reset) $("segments-body").replaceChildren();
      else $("segments-body").querySelectorAll("tr:not([data-segment])").forEach((row) => row.remove());
      for (const s of page.items) {
        const count = el("td", {class: "num", "data-col": "count", text: "…"});
        $("segments-body").append(el("tr", {dataset: {segment: s.id, name: s.name}},
          el("td", {text: s.name}), el("td", {text: summary(s.filter)}), count,
          el("td", {}, el("button", {type: "button", class: "danger", "aria-label": `Delete segment ${s.name}`, onclick: () => removeSegment(s)}, "Delete"))));
        api(`/v1/segments/${s.id}/count`).then((c) => { count.textContent = number(c.count); }, () => { count.textContent = "?"; });
      }
      if (!$("segments-body").children.length) $("segments-body").append(el("tr", {}, el("td", {colspan: 4, class: "muted", text: "No segments yet."})));
      segmentsCursor = page.next_cursor;
      $("segments-more").hidden = !segmentsCursor;
    } catch (err) {
      say($("segments-error"), `The segments could not be loaded: ${err.message}`);
    }
  }

  async function removeSegment(s) {
    if (!window.confirm(`Delete the segment ${s.name}? Contacts are not deleted.`)) return;
    try {
      await api(`/v1/segments/${s.id}`, {method: "DELETE"});
      loadSegments(true);
    } catch (err) {
      say($("segments-error"), `${s.name} could not be deleted: ${err.message}`);
    }
  }

  let conditionSeq = 0;
  function addCondition() {
    if ($("seg-conditions").children.length >= data.max_conditions) return;
    const n = conditionSeq++;
    const key = el("input", {type: "text", id: `seg-cond-${n}-key`, "data-part": "key", maxlength: 100});
    const op = el("select", {id: `seg-cond-${n}-op`, "data-part": "op"},
      ...Object.entries(data.operators).map(([value, words]) => el("option", {value}, words)));
    const value = el("input", {type: "text", id: `seg-cond-${n}-value`, "data-part": "value", maxlength: 1000});
    const valueBox = el("div", {}, el("label", {for: `seg-cond-${n}-value`}, "Value"), value);
    const row = el("div", {class: "condition", dataset: {condition: String(n)}},
      el("div", {class: "row"},
        el("div", {}, el("label", {for: `seg-cond-${n}-key`}, "Attribute"), key),
        el("div", {}, el("label", {for: `seg-cond-${n}-op`}, "Condition"), op),
        valueBox,
        el("div", {}, el("button", {type: "button", class: "danger", onclick: () => { row.remove(); refreshCount(); }}, "Remove"))),
      el("p", {class: "field-error", "data-part": "error"}));
    op.addEventListener("change", () => { valueBox.hidden = op.value === "exists" || op.value === "not_exists"; refreshCount(); });
    for (const input of [key, value]) input.addEventListener("input", refreshCount);
    $("seg-conditions").append(row);
    key.focus();
  }

  const tagsOf = (id) => $(id).value.split(",").map((t) => t.trim()).filter(Boolean);

  // The segment's filter; ``written`` leaves out a condition still being typed (no key, or no value its operator
  // needs), so the live count never asks about half a condition.
  function rule(written) {
    const attributes = [...$("seg-conditions").children].map((row) => {
      const get = (part) => row.querySelector(`[data-part=${part}]`).value;
      const op = get("op");
      const raw = get("value").trim();
      let value = raw;
      if (op === "exists" || op === "not_exists") value = null;
      else if (op === "in") value = raw.split(",").map((v) => v.trim()).filter(Boolean);
      else if ((op === "gt" || op === "lt") && /^-?[0-9]+(\.[0-9]+)?$/.test(raw)) value = Number(raw);
      return {key: get("key").trim(), op, value};
    }).filter((c) => !written || (c.key && (c.value === null || (Array.isArray(c.value) ? c.value.length : c.value !== ""))));
    return {tags_all: tagsOf("seg-tags-all"), tags_any: tagsOf("seg-tags-any"), tags_none: tagsOf("seg-tags-none"),
      attributes, include_opted_out: $("seg-opted-out").checked};
  }

  function clearSegmentErrors() {
    for (const node of $("segment-form").querySelectorAll(".field-error")) node.textContent = "";
    say($("segment-error"), "");
  }

  // Put the API's errors at the field (``prefix`` is "" for a bare filter, "filter." inside a segment).
  function segmentErrors(err, prefix) {
    const loose = [];
    const rows = [...$("seg-conditions").children];
    for (const {path, msg} of err.fields) {
      const parts = (path.startsWith(prefix) ? path.slice(prefix.length) : path).split(".");
      if (parts[0] === "attributes" && parts.length > 1 && rows[Number(parts[1])]) {
        rows[Number(parts[1])].querySelector("[data-part=error]").textContent = msg;
      } else if ($(`seg-${parts[0]}-error`)) {
        $(`seg-${parts[0]}-error`).textContent = msg;
      } else loose.push(msg);
    }
    if (!err.fields.length) loose.push(err.message);
    if (loose.length) say($("segment-error"), loose.join("; "));
  }

  // The live count: one request at a time, the latest rule wins (older answers are dropped).
  let counting = null;
  let countSeq = 0;
  const refreshCount = debounce(async () => {
    const seq = ++countSeq;
    if (counting) counting.abort();
    counting = new AbortController();
    const out = $("segment-count");
    out.textContent = "counting…";
    clearSegmentErrors();
    try {
      const found = await api("/v1/segments/count", {method: "POST", json: rule(true), signal: counting.signal});
      if (seq !== countSeq) return;
      out.textContent = number(found.count);
      out.dataset.count = String(found.count);
    } catch (err) {
      if (err.name === "AbortError" || seq !== countSeq) return;
      out.textContent = "—";
      out.dataset.count = "";
      if (err instanceof ApiError) segmentErrors(err, ""); else say($("segment-error"), err.message);
    }
  }, 400);

  $("segment-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearSegmentErrors();
    say($("segment-message"), "");
    const name = $("seg-name").value.trim();
    if (!name) { $("seg-name-error").textContent = "Give the segment a name."; $("seg-name").focus(); return; }
    try {
      const made = await api("/v1/segments", {method: "POST", json: {name, filter: rule()}});
      say($("segment-message"), `Segment ${made.name} saved.`, "alert info");
      $("seg-name").value = "";
      loadSegments(true);
    } catch (err) {
      if (err instanceof ApiError) {
        if (err.status === 409) $("seg-name-error").textContent = "A segment of this name exists.";
        else segmentErrors(err, "filter.");
      } else say($("segment-error"), err.message);
    }
  });
  for (const id of ["seg-tags-all", "seg-tags-any", "seg-tags-none"]) $(id).addEventListener("input", refreshCount);
  $("seg-opted-out").addEventListener("change", refreshCount);
  $("seg-add-condition").addEventListener("click", addCondition);
  $("segments-more").addEventListener("click", () => loadSegments(false));

  // A running import (started in another tab, or before a reload) is followed again.
  api("/v1/contacts/imports?limit=1").then((page) => {
    if (page.items.length && page.items[0].status === "running") { showImport(page.items[0]); $("import-start").disabled = true; follow(page.items[0].id); }
  }, () => {});
  loadContacts();
  loadSegments(true);
  refreshCount();
})();
