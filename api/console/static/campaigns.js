// The Campaigns pages: the list (state and progress), the create wizard (template → audience → variables →
// schedule → review and launch) and a campaign's page (live funnel, pause/resume/cancel, recipients, export).
(function () {
  "use strict";
  const {api, ApiError, el, pageData, say, when, number, labelled} = window.AdminPages;
  const data = pageData();
  const $ = (id) => document.getElementById(id);
  const stateLabel = (state) => labelled(data.states, state, data.state_tone);

  // --- the list -------------------------------------------------------------------------------------------
  function listPage() {
    let cursor = null;
    async function load(reset) {
      const params = new URLSearchParams({limit: "20"});
      if (cursor && !reset) params.set("cursor", cursor);
      try {
        const page = await api(`/v1/campaigns?${params}`);
        const body = $("campaigns-body");
        if (reset) body.replaceChildren();
        for (const c of page.items) body.append(row(c));
        if (!body.children.length) body.append(el("tr", {}, el("td", {colspan: 6, class: "muted"}, "No campaigns yet. ", el("a", {href: "/console/campaigns/new"}, "Create one"), ".")));
        cursor = page.next_cursor;
        $("campaigns-more").hidden = !cursor;
      } catch (err) {
        say($("campaigns-error"), `The campaigns could not be loaded: ${err.message}`);
      }
    }
    function row(c) {  // the list gives each campaign's progress and what it waits for: no request per row
      const progress = el("td", {"data-col": "progress"});
      if (c.state === "draft") {
        progress.append(el("span", {class: "muted", text: "—"}));
      } else {
        const p = c.progress;
        const bar = el("span");
        bar.style.width = `${p.percent}%`;
        progress.append(el("div", {class: "progress", role: "progressbar", "aria-label": `${c.name} progress`,
          "aria-valuenow": String(p.percent), "aria-valuemin": "0", "aria-valuemax": "100"}, bar),
        el("span", {class: "muted", text: `${number(p.done)} of ${number(p.total)} (${p.percent}%)`}));
      }
      const state = el("td", {"data-col": "state"}, stateLabel(c.state));
      if (c.waiting_for) {
        state.append(" ", el("span", {class: "muted", "data-col": "waiting",
          text: `(waiting: ${data.skip_reasons[c.waiting_for] || c.waiting_for})`}));
      }
      return el("tr", {dataset: {campaign: c.id}},
        el("td", {}, el("a", {href: `/console/campaigns/${c.id}`, text: c.name})),
        el("td", {text: `${c.template.name} (${c.template.language})`}),
        state,
        progress,
        el("td", {class: "num", text: number(c.audience_size)}),
        el("td", {text: when(c.created_at)}));
    }
    $("campaigns-more").addEventListener("click", () => load(false));
    load(true);
  }

  // --- the wizard -----------------------------------------------------------------------------------------
  function wizard() {
    const form = $("wizard");
    let step = 1;
    let numbers = [];
    let templates = [];
    let draft = null;  // the campaign saved for review; cancelled and saved again when the choices change
    let draftKey = "";
    let audienceCount = null;

    const template = () => templates.find((t) => t.id === $("cmp-template").value) || null;
    const sender = () => numbers.find((n) => n.phone_number_id === $("cmp-from").value) || numbers[0] || null;

    async function loadChoices() {
      try {
        const connection = await api("/v1/whatsapp/connection");
        numbers = connection.numbers.filter((n) => n.status !== "deleted");
        $("cmp-from").replaceChildren(...numbers.map((n) => el("option", {value: n.phone_number_id},
          `${n.display_phone_number || n.phone_number_id}${n.verified_name ? ` (${n.verified_name})` : ""}`)));
        $("cmp-from-box").hidden = numbers.length < 2;
        if (!numbers.length) $("cmp-template-error").textContent = "Connect a WhatsApp number first (WhatsApp & keys).";
        templates = [];
        let cursor = null;
        for (let i = 0; i < 10; i++) {  // at most 2,000 templates
          const params = new URLSearchParams({limit: "200", status: "APPROVED"});
          if (cursor) params.set("cursor", cursor);
          const page = await api(`/v1/templates?${params}`);
          templates.push(...page.items);
          cursor = page.next_cursor;
          if (!cursor) break;
        }
        fillTemplates();
        const segments = [];
        cursor = null;
        for (let i = 0; i < 3; i++) {  // a tenant has at most 500 segments
          const params = new URLSearchParams({limit: "200"});
          if (cursor) params.set("cursor", cursor);
          const page = await api(`/v1/segments?${params}`);
          segments.push(...page.items);
          cursor = page.next_cursor;
          if (!cursor) break;
        }
        $("cmp-segment").replaceChildren(el("option", {value: ""}, "Every subscribed contact"),
          ...segments.map((s) => el("option", {value: s.id}, s.name)));
      } catch (err) {
        say($("wizard-error"), `The wizard could not load your templates and segments: ${err.message}`);
      }
    }

    function fillTemplates() {
      const number_ = sender();
      const usable = templates.filter((t) => !number_ || !number_.waba_id || t.waba_id === number_.waba_id);
      $("cmp-template").replaceChildren(el("option", {value: ""}, usable.length ? "Choose a template" : "No approved template"),
        ...usable.map((t) => el("option", {value: t.id}, `${t.name} (${t.language}, ${t.category.toLowerCase()})`)));
      showTemplate();
    }

    function showTemplate() {
      const t = template();
      $("cmp-template-preview").textContent = t ? t.preview : "Choose a template.";
      buildVariables();
    }

    // Step 3: one row per template variable: where its value comes from.
    function buildVariables() {
      const t = template();
      const box = $("cmp-variables");
      const refs = t ? t.variables : [];
      if (box.dataset.template === (t ? t.id : "")) return;
      box.dataset.template = t ? t.id : "";
      if (!refs.length) {
        box.replaceChildren(el("p", {class: "muted", text: "This template has no variables."}));
        return;
      }
      box.replaceChildren(...refs.map((ref, i) => {
        const placeholder = ref.includes(".") ? `{{${ref.split(".").slice(1).join(".")}}}` : ref;
        const kind = el("select", {id: `cmp-var-${i}-kind`, "data-part": "kind"},
          el("option", {value: "profile_name"}, "Contact's name"), el("option", {value: "wa_id"}, "Contact's WhatsApp number"),
          el("option", {value: "attribute"}, "Contact attribute"), el("option", {value: "text"}, "Fixed text"));
        const value = el("input", {type: "text", id: `cmp-var-${i}-value`, "data-part": "value", maxlength: 190});
        const valueLabel = el("label", {for: `cmp-var-${i}-value`}, "Attribute name");
        const valueBox = el("div", {hidden: true}, valueLabel, value);
        const fallback = el("input", {type: "text", id: `cmp-var-${i}-default`, "data-part": "default", maxlength: 1024});
        kind.addEventListener("change", () => {
          valueBox.hidden = kind.value !== "attribute" && kind.value !== "text";
          valueLabel.textContent = kind.value === "text" ? "Text" : "Attribute name";
        });
        return el("fieldset", {class: "variable", dataset: {ref}},
          el("legend", {}, "Variable ", el("code", {text: placeholder}), el("span", {class: "muted", text: ` (${ref})`})),
          el("div", {class: "row"},
            el("div", {}, el("label", {for: `cmp-var-${i}-kind`}, "Fill with"), kind), valueBox,
            el("div", {}, el("label", {for: `cmp-var-${i}-default`}, "Default when empty"), fallback)),
          el("p", {class: "field-error", "data-part": "error", id: `cmp-var-${i}-error`}));
      }));
    }

    function variables() {
      const out = {};
      for (const row of $("cmp-variables").querySelectorAll("fieldset.variable")) {
        const get = (part) => row.querySelector(`[data-part=${part}]`).value;
        const kind = get("kind");
        const value = get("value").trim();
        const source = kind === "attribute" ? `attribute:${value}` : kind === "text" ? `text:${get("value")}` : kind;
        const spec = {source};
        if (get("default")) spec.default = get("default");
        out[row.dataset.ref] = spec;
      }
      return out;
    }

    function schedule() {
      if (!$("cmp-when-later").checked) return {};
      return {send_at: $("cmp-send-at").value ? `${$("cmp-send-at").value}:00`.slice(0, 19) : null, timezone: $("cmp-timezone").value.trim() || "UTC"};
    }

    function body() {
      const t = template();
      const segment = $("cmp-segment").value;
      const out = {name: $("cmp-name").value.trim(), template: {name: t.name, language: t.language},
        audience: segment ? {kind: "segment", segment_id: segment} : {kind: "segment", filter: {}},
        variables: variables(), schedule: schedule()};
      if (numbers.length > 1) out.from = $("cmp-from").value;
      return out;
    }

    async function countAudience() {
      const out = $("cmp-audience-count");
      out.textContent = "counting…";
      const segment = $("cmp-segment").value;
      try {
        const found = segment ? await api(`/v1/segments/${segment}/count`) : await api("/v1/segments/count", {method: "POST", json: {}});
        if (segment !== $("cmp-segment").value) return;
        audienceCount = found.count;
        out.textContent = number(found.count);
        out.dataset.count = String(found.count);
      } catch (err) {
        out.textContent = "—";
        $("cmp-segment-error").textContent = err.message;
      }
    }

    function clearErrors() {
      for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
      say($("wizard-error"), "");
    }

    // Checks before leaving a step (the API checks again when the draft is saved).
    function check(n) {
      const problems = [];
      if (n === 1) {
        if (!$("cmp-name").value.trim()) problems.push(["cmp-name", "Give the campaign a name."]);
        if (!template()) problems.push(["cmp-template", "Choose an approved template."]);
      } else if (n === 2) {
        if (audienceCount === 0) problems.push(["cmp-segment", "Nobody is in this audience."]);
      } else if (n === 3) {
        $("cmp-variables").querySelectorAll("fieldset.variable").forEach((row, i) => {
          const kind = row.querySelector("[data-part=kind]").value;
          if ((kind === "attribute" || kind === "text") && !row.querySelector("[data-part=value]").value.trim()) {
            problems.push([`cmp-var-${i}`, kind === "text" ? "Type the text." : "Name the attribute."]);
          }
        });
      } else if (n === 4 && $("cmp-when-later").checked) {
        if (!$("cmp-send-at").value) problems.push(["cmp-schedule", "Choose the date and time."]);
      }
      for (const [id, msg] of problems) $(`${id}-error`).textContent = msg;
      if (problems.length) {
        const input = $(problems[0][0]) || $(`${problems[0][0]}-value`);
        if (input) input.focus();
      }
      return !problems.length;
    }

    function show(n) {
      step = n;
      for (const set of form.querySelectorAll("fieldset[data-step]")) set.hidden = Number(set.dataset.step) !== n;
      for (const li of $("wizard-steps").children) {
        if (Number(li.dataset.step) === n) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
      }
      $("wizard-back").hidden = n === 1;
      $("wizard-next").hidden = n === 5;
      $("cmp-launch").hidden = n !== 5;
      form.dataset.step = String(n);
      const first = $(`step-${n}`).querySelector("input, select, textarea");
      if (first && n !== 5) first.focus();
    }

    // Where an API error about the draft belongs: the step and the field.
    function placeError(err) {
      for (const {path, msg} of err.fields) {
        const parts = path.split(".");
        if (parts[0] === "variables") {
          const rows = [...$("cmp-variables").querySelectorAll("fieldset.variable")];
          const i = rows.findIndex((r) => r.dataset.ref === parts.slice(1).join("."));
          if (i >= 0) $(`cmp-var-${i}-error`).textContent = msg; else $("cmp-variables-error").textContent = msg;
          return 3;
        }
        if (parts[0] === "audience") { $("cmp-segment-error").textContent = msg; return 2; }
        if (parts[0] === "schedule") { $("cmp-schedule-error").textContent = msg; return 4; }
        if (parts[0] === "template") { $("cmp-template-error").textContent = msg; return 1; }
        if (parts[0] === "name") { $("cmp-name-error").textContent = msg; return 1; }
        if (parts[0] === "from") { $("cmp-from-error").textContent = msg; return 1; }
      }
      say($("wizard-error"), err.message);
      return 5;
    }

    async function review() {
      const request = body();
      const key = JSON.stringify(request);
      const status = $("review-status");
      $("cmp-launch").disabled = true;
      if (!draft || key !== draftKey) {  // a back-step and a change edit the same draft
        status.textContent = "Saving the campaign as a draft…";
        try {
          draft = draft ? await api(`/v1/campaigns/${draft.id}`, {method: "PUT", json: request})
            : await api("/v1/campaigns", {method: "POST", json: request});
          draftKey = key;
        } catch (err) {
          status.textContent = "";
          if (err instanceof ApiError) show(placeError(err)); else say($("wizard-error"), err.message);
          return;
        }
      }
      form.dataset.campaign = draft.id;
      const t = template();
      $("review-name").textContent = request.name;
      $("review-template").textContent = `${t.name} (${t.language}, ${t.category.toLowerCase()})`;
      $("review-audience").textContent = `${$("cmp-segment").selectedOptions[0].textContent}: ${number(draft.audience_size)} contacts`;
      $("review-when").textContent = request.schedule.send_at ? `${request.schedule.send_at.replace("T", " ")} (${request.schedule.timezone})` : "When you launch it";
      $("review-cost-note").textContent = data.pricing_note;
      $("review-tier-note").textContent = data.tier_note;
      status.textContent = "Draft saved. Check the message and the estimate, then launch.";
      const [preview, estimate] = await Promise.allSettled([
        api(`/v1/campaigns/${draft.id}/preview`, {method: "POST", json: {}}),
        api(`/v1/campaigns/${draft.id}/estimate`)]);
      if (preview.status === "fulfilled") {
        $("review-sample").textContent = `+${preview.value.contact}`;
        $("review-preview").textContent = preview.value.text;
        $("review-preview").dataset.ready = "true";
      } else {
        $("review-sample").textContent = "—";
        $("review-preview").textContent = `No preview: ${preview.reason.message}`;
      }
      if (estimate.status === "fulfilled") {
        const e = estimate.value;
        const rates = e.by_rate.map((r) => `${number(r.recipients)} × ${e.currency} ${r.rate}`).join(" + ");
        $("review-cost").textContent = `Estimate: ${e.currency} ${e.total.toFixed(2)} for ${number(e.recipients)} recipients (${rates || "none"}, ${e.category})`;
        $("review-cost").dataset.total = String(e.total);
      } else {
        $("review-cost").textContent = `No estimate: ${estimate.reason.message}`;
      }
      const number_ = numbers.find((n) => n.phone_number_id === draft.phone_number_id) || sender();
      const tier = number_ && number_.messaging_limit_tier;
      const limit = tier ? data.tier_limits[tier] : undefined;
      const warning = $("review-tier-warning");
      const tierWords = tier && window.AerosticLabels ? window.AerosticLabels.label("tier", tier) : tier;
      if (tier && limit === null) {
        $("review-tier").textContent = `${tierWords} (${tier})`;
        say(warning, "");
      } else if (tier && limit !== undefined) {
        $("review-tier").textContent = `${tierWords} (${tier}); ${number(draft.audience_size)} in the audience`;
        say(warning, draft.audience_size > limit ? `The audience is larger than the daily limit: about ${number(draft.audience_size - limit)} people will wait until the next 24-hour window.` : "");
      } else {
        $("review-tier").textContent = `Not known yet for this number (${number(draft.audience_size)} in the audience)`;
        say(warning, "");
      }
      $("cmp-launch").disabled = false;
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors();
      if (!check(step)) return;
      show(step + 1);
      if (step === 2) countAudience();
      if (step === 5) await review();
    });
    $("wizard-back").addEventListener("click", () => { clearErrors(); show(step - 1); });
    $("cmp-launch").addEventListener("click", async () => {
      if (!draft) return;
      $("cmp-launch").disabled = true;
      try {
        await api(`/v1/campaigns/${draft.id}/launch`, {method: "POST"});
        window.location.assign(`/console/campaigns/${draft.id}`);
      } catch (err) {
        say($("wizard-error"), `The campaign was not launched: ${err.message}`);
        $("cmp-launch").disabled = false;
      }
    });
    $("cmp-from").addEventListener("change", fillTemplates);
    $("cmp-template").addEventListener("change", showTemplate);
    $("cmp-segment").addEventListener("change", countAudience);
    for (const id of ["cmp-when-now", "cmp-when-later"]) $(id).addEventListener("change", () => { $("cmp-later-box").hidden = !$("cmp-when-later").checked; });
    try { $("cmp-timezone").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (err) { /* keep UTC */ }
    show(1);
    loadChoices();
  }

  // --- one campaign ---------------------------------------------------------------------------------------
  function campaignPage() {
    const id = data.campaign_id;
    const STAGES = ["targeted", "sent", "delivered", "read", "replied", "failed", "skipped", "queued"];
    let view = null;

    function showFunnel(funnel) {
      const top = Math.max(1, Number(funnel.targeted) || 0);
      for (const stage of STAGES) {
        const n = Number(funnel[stage]) || 0;
        const cell = $(`funnel-${stage}`);
        cell.textContent = number(n);
        cell.dataset.count = String(n);
        cell.parentElement.querySelector(".bar > span").style.width = `${Math.min(100, (100 * n) / top)}%`;
      }
    }

    function show(c) {
      view = c;
      $("campaign-name").textContent = c.name;
      document.title = `${c.name} · Aerostic`;
      const state = $("campaign-state");
      state.dataset.state = c.state;
      state.textContent = data.states[c.state] || c.state;
      $("campaign-reason").textContent = c.state_reason ? `(${c.state_reason})` : (c.waiting_for ? `(waiting: ${data.skip_reasons[c.waiting_for] || c.waiting_for})` : "");
      $("cmp-pause").hidden = !["running", "scheduled"].includes(c.state);
      $("cmp-resume").hidden = c.state !== "paused";
      $("cmp-cancel").hidden = !["draft", "scheduled", "running", "paused"].includes(c.state);
      if (c.state === "draft") { $("cmp-resume").hidden = false; $("cmp-resume").textContent = "Launch"; } else $("cmp-resume").textContent = "Resume";
      if (c.funnel) showFunnel(c.funnel);
      const p = c.progress || {percent: 0, done: 0, total: 0};
      const bar = $("campaign-progress");
      bar.setAttribute("aria-valuenow", String(p.percent));
      bar.firstElementChild.style.width = `${p.percent}%`;
      $("campaign-progress-text").textContent = `${number(p.done)} of ${number(p.total)} handled (${p.percent}%)${c.eta_s ? `, about ${Math.ceil(c.eta_s / 60)} min left` : ""}`;
      const facts = [["Template", `${c.template.name} (${c.template.language}, ${c.template.category})`],
        ["Audience", `${number(c.audience_size)} contacts`], ["Created", when(c.created_at)],
        ["Launched", when(c.launched_at)], ["Finished", when(c.finished_at)]];
      $("campaign-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {text: k}), el("dd", {text: v})]));
    }

    async function load() {
      try {
        show(await api(`/v1/campaigns/${id}`));
        say($("campaign-error"), "");
      } catch (err) {
        say($("campaign-error"), `The campaign could not be loaded: ${err.message}`);
      }
    }

    // Re-read on live events, at most one read in flight and one waiting (events come in bursts).
    let reading = false;
    let again = false;
    async function reread() {
      if (reading) { again = true; return; }
      reading = true;
      try { await load(); } finally {
        reading = false;
        if (again) { again = false; setTimeout(reread, 250); }
      }
    }

    async function command(verb, label) {
      if (verb === "cancel" && !window.confirm("Cancel this campaign for good? Nobody else will be sent it.")) return;
      for (const b of ["cmp-pause", "cmp-resume", "cmp-cancel"]) $(b).disabled = true;
      try {
        show(await api(`/v1/campaigns/${id}/${verb}`, {method: "POST"}));
        say($("campaign-error"), "");
      } catch (err) {
        say($("campaign-error"), `${label} did not work: ${err.message}`);
      } finally {
        for (const b of ["cmp-pause", "cmp-resume", "cmp-cancel"]) $(b).disabled = false;
      }
    }

    // Recipients, a page at a time, by state.
    let recipientsCursor = null;
    let recipientsAsked = 0;  // only the latest request's answer is shown: an older one may come back later
    async function recipients(reset) {
      const asked = ++recipientsAsked;
      const params = new URLSearchParams({limit: "50"});
      const state = $("recipient-state").value;
      if (state) params.set("state", state);
      if (!reset && recipientsCursor) params.set("cursor", recipientsCursor);
      const exportParams = new URLSearchParams({format: "csv"});
      if (state) exportParams.set("state", state);
      $("recipients-export").href = `/v1/campaigns/${id}/recipients?${exportParams}`;
      try {
        const page = await api(`/v1/campaigns/${id}/recipients?${params}`);
        if (asked !== recipientsAsked) return;
        $("recipients-body").dataset.showing = state || "all";
        $("recipients-body").replaceChildren(...page.items.map((r) => el("tr", {dataset: {state: r.state}},
          el("td", {text: r.wa_id ? `+${r.wa_id}` : r.contact}),
          el("td", {}, labelled(data.recipient_states, r.state)),
          el("td", {text: r.reason ? (data.skip_reasons[r.reason] || r.reason) : (r.error_code ? `${r.error_code} ${r.error_title || ""}` : "—")}),
          el("td", {text: when(r.sent_at || r.submitted_at)}), el("td", {text: when(r.delivered_at)}), el("td", {text: when(r.read_at)}))));
        if (!page.items.length) $("recipients-body").append(el("tr", {}, el("td", {colspan: 6, class: "muted", text: "Nobody in this state."})));
        recipientsCursor = page.next_cursor;
        $("recipients-next").disabled = !recipientsCursor;
        $("recipients-first").disabled = reset;
        say($("recipients-error"), "");
      } catch (err) {
        if (asked !== recipientsAsked) return;
        say($("recipients-error"), `The recipients could not be loaded: ${err.message}`);
      }
    }

    $("recipient-state").append(...data.recipient_state_values.map((s) => el("option", {value: s}, data.recipient_states[s] || s)));
    $("recipient-state").addEventListener("change", () => recipients(true));
    $("recipients-next").addEventListener("click", () => recipients(false));
    $("recipients-first").addEventListener("click", () => recipients(true));
    $("cmp-pause").addEventListener("click", () => command("pause", "Pause"));
    $("cmp-resume").addEventListener("click", () => command(view && view.state === "draft" ? "launch" : "resume", "Resume"));
    $("cmp-cancel").addEventListener("click", () => command("cancel", "Cancel"));
    $("cmp-refresh").addEventListener("click", () => { load(); recipients(true); });

    // The layout's live feed (live.js runs before this deferred file); its badge in the header shows its state.
    const live = window.AerosticLive;
    if (live) {
      live.onStatus((status) => { if (status === "live") reread(); });  // catch up on what passed meanwhile
      live.on("campaign", (event) => {
        const d = event.data || {};
        if (d.campaign_id !== id) return;
        if (d.funnel && typeof d.funnel === "object") showFunnel(d.funnel);
        reread();
      });
    }
    load();
    recipients(true);
  }

  if ($("campaigns-body")) listPage();
  if ($("wizard")) wizard();
  if (data.campaign_id) campaignPage();
})();
