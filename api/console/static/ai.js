/* The AI agent page: try a question, the knowledge base (search, add, edit, delete, paged), the AI settings
   (provider, threshold), the calibration at the threshold, and the knowledge gaps (handed-over questions). */
(function () {
  "use strict";
  const {api, store, el, showErrors, clearErrors, when, splitList} = window.AdminPages;
  const $ = (id) => document.getElementById(id);
  const KB_PAGE = 20;

  let kbCursor = null;
  let kbQuery = "";
  let editingEntry = null;
  let settings = {provider: "offline", threshold: 0.7};
  let suggested = null;

  const percent = (v) => (v === null || v === undefined ? "not enough entries to tell" : `${Math.round(v * 100)} %`);

  // --- try a question ------------------------------------------------------------------------------

  async function tryQuestion(event) {
    event.preventDefault();
    clearErrors($("ai-try-errors"));
    const question = $("ai-try-question").value.trim();
    if (!question) {
      showErrors($("ai-try-errors"), {message: "Write a question first.", problems: []});
      $("ai-try-question").focus();
      return;
    }
    const button = $("ai-try");
    button.disabled = true;
    $("ai-try-result").dataset.state = "asking";
    try {
      const result = await api("/v1/ai/try", {method: "POST", json: {question}});
      const verdict = $("ai-try-verdict");
      verdict.dataset.verdict = result.would_send ? "send" : "handover";
      verdict.textContent = result.would_send ? "Would send this reply" : "Would hand over to an agent";
      $("ai-try-confidence").textContent = `${result.confidence.toFixed(2)} (${Math.round(result.confidence * 100)} %)`;
      $("ai-try-confidence").dataset.value = String(result.confidence);
      $("ai-try-threshold").textContent = result.threshold.toFixed(2);
      $("ai-try-reply").textContent = result.reply || "No answer found in the knowledge base.";
      $("ai-try-reason").textContent = result.reason;
      $("ai-try-provider").textContent = result.provider;
      $("ai-try-note").textContent = result.note || "";
      $("ai-try-note").hidden = !result.note;
      $("ai-try-result").hidden = false;
      $("ai-try-result").dataset.state = "answered";
    } catch (error) {
      $("ai-try-result").dataset.state = "failed";
      showErrors($("ai-try-errors"), error);
    } finally {
      button.disabled = false;
    }
  }

  // --- knowledge base ------------------------------------------------------------------------------

  function entryItem(entry) {
    return el("li", {id: `entry-${entry.id}`, dataset: {entryId: entry.id, question: entry.question}},
      el("h3", {text: entry.question}),
      el("p", {text: entry.answer}),
      entry.keywords.length ? el("p", {class: "muted", text: `Keywords: ${entry.keywords.join(", ")}`}) : null,
      el("p", {class: "muted", text: `Changed ${when(entry.updated_at)}`}),
      el("div", {class: "actions-bar"},
        el("button", {type: "button", class: "secondary small", "data-action": "edit", text: "Edit",
          "aria-label": `Edit “${entry.question}”`, onclick: () => openEntry(entry)}),
        el("button", {type: "button", class: "danger", "data-action": "delete", text: "Delete",
          "aria-label": `Delete “${entry.question}”`, onclick: () => deleteEntry(entry)})));
  }

  async function loadEntries(more) {
    const params = new URLSearchParams({limit: String(KB_PAGE)});
    if (kbQuery) params.set("q", kbQuery);
    if (more && kbCursor) params.set("cursor", kbCursor);
    try {
      const page = await api(`/v1/knowledge?${params}`);
      clearErrors($("kb-list-errors"));
      const list = $("kb-list");
      if (!more) list.replaceChildren();
      for (const entry of page.items) list.append(entryItem(entry));
      kbCursor = page.next_cursor;
      $("kb-more").hidden = !kbCursor;
      $("kb-empty").hidden = list.children.length > 0;
      $("kb-empty").textContent = kbQuery ? `No entry contains “${kbQuery}”.` : "No entries yet: add the questions customers ask.";
      list.dataset.loaded = "true";
    } catch (error) {
      showErrors($("kb-list-errors"), error);
    }
  }

  function clearEntryErrors() {
    clearErrors($("kb-errors"));
    for (const id of ["kb-question-error", "kb-answer-error", "kb-keywords-error"]) $(id).textContent = "";
  }

  function openEntry(entry, prefill) {
    editingEntry = entry ? entry.id : null;
    clearEntryErrors();
    $("kb-form-title").textContent = entry ? "Edit entry" : "New entry";
    $("kb-question").value = entry ? entry.question : (prefill || "");
    $("kb-answer").value = entry ? entry.answer : "";
    $("kb-keywords").value = entry ? entry.keywords.join(", ") : "";
    $("kb-form").hidden = false;
    (prefill ? $("kb-answer") : $("kb-question")).focus();
  }

  function closeEntry() {
    $("kb-form").hidden = true;
    editingEntry = null;
  }

  async function saveEntry(event) {
    event.preventDefault();
    clearEntryErrors();
    const body = {question: $("kb-question").value.trim(), answer: $("kb-answer").value.trim(),
      keywords: splitList($("kb-keywords").value)};
    const button = $("kb-save");
    button.disabled = true;
    try {
      const saved = await store("/v1/knowledge", editingEntry, body);
      closeEntry();
      $("kb-notice").textContent = `Saved “${saved.question}”.`;
      await loadEntries(false);
      const item = $(`entry-${saved.id}`);
      if (item) item.querySelector("[data-action=edit]").focus();
      else $("kb-new").focus();
    } catch (error) {
      showErrors($("kb-errors"), error);
      for (const problem of error.problems || []) {
        const target = $(`kb-${problem.loc[0]}-error`);
        if (target) target.textContent = problem.msg;
      }
    } finally {
      button.disabled = false;
    }
  }

  async function deleteEntry(entry) {
    if (!window.confirm(`Delete the entry “${entry.question}”?`)) return;
    try {
      await api(`/v1/knowledge/${entry.id}`, {method: "DELETE"});
      $("kb-notice").textContent = `Deleted “${entry.question}”.`;
      await loadEntries(false);
      $("kb-new").focus();
    } catch (error) {
      showErrors($("kb-list-errors"), error);
    }
  }

  // --- settings ------------------------------------------------------------------------------------

  function meaning(threshold) {
    const t = Number(threshold);
    if (t <= 0) return "0.00: every answer the AI finds is sent, however unsure it is.";
    if (t >= 1) return "1.00: only answers the AI is completely sure of are sent; nearly everything goes to an agent.";
    const level = t < 0.4 ? "Few" : t < 0.7 ? "Some" : t < 0.85 ? "Most doubtful" : "Nearly all but the surest";
    return `${t.toFixed(2)}: the AI sends its answer when it is at least ${Math.round(t * 100)} % sure; `
      + `otherwise the conversation goes to an agent. ${level} answers are held back.`;
  }

  function showThreshold() {
    const value = $("ai-threshold").value;
    $("ai-threshold-value").textContent = Number(value).toFixed(2);
    $("ai-threshold-meaning").textContent = meaning(value);
  }

  async function loadSettings() {
    try {
      settings = await api("/v1/settings/ai");
      const radio = $(`provider-${settings.provider}`);
      if (radio) radio.checked = true;
      $("ai-threshold").value = String(settings.threshold);
      showThreshold();
      $("ai-settings-form").dataset.loaded = "true";
    } catch (error) {
      showErrors($("ai-settings-errors"), error);
    }
    try {
      const status = await api("/v1/ai/status");
      const offline = status.api && status.api.offline;
      const workers = status.workers || [];
      $("ai-model-status").textContent = `${offline ? `The offline provider here: ${offline.provider}. ` : ""}`
        + `${workers.length} AI worker${workers.length === 1 ? "" : "s"} running. `
        + "The OpenAI-compatible model (its base URL, model name and key) is configured for the whole deployment "
        + "(AEROSTIC_OPENAI_BASE_URL, _MODEL, _API_KEY); without it, customers of a tenant that chose it are handed to agents.";
    } catch (error) {
      $("ai-model-status").textContent = "";
    }
  }

  async function saveSettings(event) {
    event.preventDefault();
    clearErrors($("ai-settings-errors"));
    $("ai-settings-notice").textContent = "";
    const chosen = document.querySelector("input[name=provider]:checked");
    const body = {provider: chosen ? chosen.value : "offline", threshold: Number($("ai-threshold").value)};
    const button = $("ai-settings-save");
    button.disabled = true;
    try {
      settings = await api("/v1/settings/ai", {method: "PUT", json: body});
      $("ai-settings-notice").textContent = `Saved: ${settings.provider}, threshold ${settings.threshold.toFixed(2)}.`;
      await loadCalibration();
    } catch (error) {
      showErrors($("ai-settings-errors"), error);
    } finally {
      button.disabled = false;
    }
  }

  // --- calibration and gaps ------------------------------------------------------------------------

  async function loadCalibration() {
    $("calibration").dataset.loaded = "false";
    try {
      const c = await api("/v1/ai/calibration");
      clearErrors($("calibration-errors"));
      $("calibration-threshold").textContent = c.threshold.toFixed(2);
      $("calibration-precision").textContent = `${percent(c.expected_precision)} of the replies sent would be right`;
      $("calibration-coverage").textContent = `${percent(c.expected_coverage)} of answerable questions would get a reply`;
      $("calibration-oos").textContent = percent(c.expected_oos_recall);
      suggested = c.suggested_threshold;
      $("calibration-suggested").textContent = suggested === null
        ? `none reaches ${Math.round(c.target_precision * 100)} % precision yet: add entries`
        : `${suggested.toFixed(2)} (the lowest with ${Math.round(c.target_precision * 100)} % expected precision)`;
      $("calibration-apply").hidden = suggested === null || Math.abs(suggested - c.threshold) < 0.005;
      $("calibration").dataset.loaded = "true";
    } catch (error) {
      showErrors($("calibration-errors"), error);
    }
  }

  async function loadGaps(event) {
    if (event) event.preventDefault();
    const days = $("gaps-days").value;
    try {
      const gaps = await api(`/v1/ai/gaps?days=${encodeURIComponent(days)}&limit=20`);
      clearErrors($("gaps-errors"));
      $("gaps-summary").textContent = `${gaps.handed_over} question${gaps.handed_over === 1 ? "" : "s"} handed over in the last ${gaps.days} days, grouped by ${gaps.grouped_by}.`;
      const list = $("gaps");
      list.replaceChildren();
      gaps.items.forEach((gap, i) => {
        list.append(el("li", {dataset: {gap: String(i)}},
          el("h3", {text: gap.question}),
          el("p", {text: `Asked ${gap.count} time${gap.count === 1 ? "" : "s"}, last ${when(gap.last_at)}.`}),
          gap.examples && gap.examples.length ? el("p", {class: "muted", text: `Also asked as: ${gap.examples.join(" · ")}`}) : null,
          el("div", {class: "actions-bar"}, el("button", {type: "button", class: "secondary small", "data-action": "answer",
            text: "Answer it in the knowledge base", "aria-label": `Add a knowledge-base entry for “${gap.question}”`,
            onclick: () => openEntry(null, gap.question)}))));
      });
      list.dataset.loaded = "true";
    } catch (error) {
      showErrors($("gaps-errors"), error);
    }
  }

  // --- wiring --------------------------------------------------------------------------------------

  $("ai-try-form").addEventListener("submit", tryQuestion);
  $("kb-search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    kbQuery = $("kb-q").value.trim();
    loadEntries(false);
  });
  $("kb-clear").addEventListener("click", () => { $("kb-q").value = ""; kbQuery = ""; loadEntries(false); });
  $("kb-new").addEventListener("click", () => openEntry(null));
  $("kb-more").addEventListener("click", () => loadEntries(true));
  $("kb-form").addEventListener("submit", saveEntry);
  $("kb-cancel").addEventListener("click", () => { closeEntry(); $("kb-new").focus(); });
  $("ai-threshold").addEventListener("input", showThreshold);
  $("ai-settings-form").addEventListener("submit", saveSettings);
  $("calibration-refresh").addEventListener("click", loadCalibration);
  $("calibration-apply").addEventListener("click", () => {
    if (suggested === null) return;
    $("ai-threshold").value = String(suggested);
    showThreshold();
    $("ai-threshold").focus();
  });
  $("gaps-form").addEventListener("submit", loadGaps);

  loadEntries(false);
  loadSettings();
  loadCalibration();
  loadGaps();
})();
