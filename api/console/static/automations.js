/* The automations page: the tenant's rules in evaluation order (summarised in words), a form for every
   trigger, condition and action of /v1/automations, reordering, enabling, and each rule's executions. */
(function () {
  "use strict";
  const {api, store, everyPage, el, showErrors, clearErrors, when, splitList, quoteList} = window.AdminPages;
  const $ = (id) => document.getElementById(id);

  const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const DAY_NAMES = {mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun"};
  const STATES = ["bot", "queued", "agent", "closed"];
  const STATE_NAMES = {bot: "with the bot", queued: "waiting for an agent", agent: "with an agent", closed: "closed"};
  const OPS = {eq: "equals", neq: "does not equal", contains: "contains", exists: "is set", missing: "is not set"};
  const MATCHES = {word: "as a whole word", exact: "as the exact message", contains: "anywhere in the text"};
  const CONDITION_NAMES = {contact_tags: "Contact tags", contact_attribute: "Contact attribute",
    conversation_state: "Conversation state", time_window: "Time window"};
  const ACTION_NAMES = {reply: "Reply", add_tag: "Add a tag", remove_tag: "Remove a tag",
    set_attribute: "Set an attribute", assign: "Assign", handoff: "Hand over", resolve: "Resolve",
    opt_out: "Opt out", opt_in: "Opt in"};
  const EXECUTIONS_PAGE = 20;

  let rules = [];
  let agents = [];
  let editing = null; // the id of the rule being edited, or null for a new one
  let uid = 0;
  let executionsOf = null;
  let executionsCursor = null;

  // --- words ---------------------------------------------------------------------------------------

  function agentName(id) {
    const found = agents.find((a) => a.user_id === id);
    return found ? (found.display_name || found.email) : `user ${id.slice(0, 8)}`;
  }

  function triggerWords(t) {
    switch (t && t.type) {
      case "keyword": {
        const match = t.match || "word";
        if (match === "exact") return `the message is exactly ${quoteList(t.keywords || [])}`;
        if (match === "contains") return `the message contains ${quoteList(t.keywords || [])}`;
        return `the message has the word ${quoteList(t.keywords || [])}`;
      }
      case "regex": return `the message matches the pattern ${t.pattern}`;
      case "payload": return `the customer taps the button or list reply ${quoteList(t.payloads || [])}`;
      case "message_received": return "any customer message arrives";
      case "first_message": return "a conversation's first message arrives";
      case "outside_business_hours": return "a message arrives outside business hours";
      case "conversation_resolved": return "a conversation is resolved";
      default: return `an unknown trigger (${t && t.type})`;
    }
  }

  function conditionWords(c) {
    switch (c.type) {
      case "contact_tags": {
        const parts = [];
        if (c.has && c.has.length) parts.push(`the contact has the tag ${quoteList(c.has, "and")}`);
        if (c.lacks && c.lacks.length) parts.push(`the contact lacks the tag ${quoteList(c.lacks, "and")}`);
        return parts.join(" and ");
      }
      case "contact_attribute":
        return `the contact's “${c.key}” ${OPS[c.op] || c.op}${c.value !== null && c.value !== undefined ? ` “${c.value}”` : ""}`;
      case "conversation_state":
        return `the conversation is ${(c.states || []).map((s) => STATE_NAMES[s] || s).join(" or ")}`;
      case "time_window": {
        const days = (c.days || DAYS).length === 7 ? "any day" : (c.days || []).map((d) => DAY_NAMES[d] || d).join(", ");
        return `it is between ${c.start} and ${c.end} on ${days} (${c.timezone || "the tenant's time zone"})`;
      }
      default: return `an unknown condition (${c.type})`;
    }
  }

  function messageWords(message) {
    if (message && message.type === "text" && message.text) return `reply “${message.text.body}”`;
    if (message && message.type === "template" && message.template) return `reply with the template “${message.template.name}”`;
    return `reply with a${message && message.type === "interactive" ? "n" : ""} ${message && message.type} message`;
  }

  function actionWords(a) {
    switch (a.type) {
      case "reply": return messageWords(a.message);
      case "add_tag": return `add the tag “${a.tag}”`;
      case "remove_tag": return `remove the tag “${a.tag}”`;
      case "set_attribute": return `set “${a.key}” to “${a.value}”`;
      case "assign":
        if (a.agent_id) return `assign to ${agentName(a.agent_id)}`;
        if (a.team) return `assign to the best free agent of team “${a.team}”`;
        return "assign to the best free agent";
      case "handoff": return `hand over to ${a.team ? `team “${a.team}”` : "any agent"}${a.reason ? ` (“${a.reason}”)` : ""}`;
      case "resolve": return "resolve the conversation";
      case "opt_out": return "opt the contact out";
      case "opt_in": return "opt the contact in";
      default: return `an unknown action (${a.type})`;
    }
  }

  function ruleWords(rule) {
    let text = `When ${triggerWords(rule.trigger)}`;
    if (rule.conditions && rule.conditions.length) text += `, only if ${rule.conditions.map(conditionWords).join(" and ")}`;
    text += `: ${(rule.actions || []).map(actionWords).join(", then ")}.`;
    if (rule.stop) text += " Later rules do not run.";
    return text;
  }

  // --- the list ------------------------------------------------------------------------------------

  function renderRules(focus) {
    const list = $("rules");
    list.replaceChildren();
    $("rules-empty").hidden = rules.length > 0;
    rules.forEach((rule, index) => {
      const name = rule.name;
      const toggle = el("button", {type: "button", class: "secondary small", "aria-pressed": rule.enabled ? "true" : "false",
        "data-action": "toggle", text: rule.enabled ? "Disable" : "Enable", "aria-label": `${rule.enabled ? "Disable" : "Enable"} ${name}`,
        onclick: () => toggleRule(rule)});
      const up = el("button", {type: "button", class: "secondary small", "data-action": "up", text: "Move up",
        "aria-label": `Move ${name} up`, disabled: index === 0, onclick: () => move(rule, -1)});
      const down = el("button", {type: "button", class: "secondary small", "data-action": "down", text: "Move down",
        "aria-label": `Move ${name} down`, disabled: index === rules.length - 1, onclick: () => move(rule, 1)});
      list.append(el("li", {id: `rule-${rule.id}`, dataset: {ruleId: rule.id, name, enabled: String(rule.enabled), position: String(index)}},
        el("h3", {},
          el("span", {class: "rule-name", text: `${index + 1}. ${name}`}),
          el("span", {class: `badge ${rule.enabled ? "on" : "off"}`, "data-role": "state", text: rule.enabled ? "Enabled" : "Disabled"}),
          rule.stop ? el("span", {class: "badge", text: "Stops later rules"}) : null,
          rule.problem ? el("span", {class: "badge bad", text: "Never runs"}) : null),
        el("p", {class: "summary", "data-role": "summary", text: ruleWords(rule)}),
        rule.problem ? el("p", {class: "part-error", text: `This rule no longer validates and never runs: ${rule.problem}. Edit or delete it.`}) : null,
        el("div", {class: "actions-bar"}, up, down, toggle,
          el("button", {type: "button", class: "secondary small", "data-action": "edit", text: "Edit", "aria-label": `Edit ${name}`,
            onclick: () => openEditor(rule)}),
          el("button", {type: "button", class: "secondary small", "data-action": "executions", text: "Executions",
            "aria-label": `Executions of ${name}`, onclick: () => openExecutions(rule)}),
          el("button", {type: "button", class: "danger", "data-action": "delete", text: "Delete", "aria-label": `Delete ${name}`,
            onclick: () => deleteRule(rule)}))));
    });
    $("rules").dataset.loaded = "true";
    if (focus) {
      const li = $(`rule-${focus.id}`);
      // The pressed button, else (a move to the top or bottom disables it) the other move, else Edit.
      const other = {up: "down", down: "up"}[focus.action];
      const candidates = [focus.action, other, "edit"].filter(Boolean)
        .map((action) => li && li.querySelector(`[data-action=${action}]`));
      const button = candidates.find((b) => b && !b.disabled);
      if (button) button.focus();
    }
  }

  async function load(focus) {
    try {
      rules = await everyPage("/v1/automations", 200, 5);  // every rule: the order is set as a whole
      clearErrors($("list-errors"));
      renderRules(focus);
    } catch (error) {
      showErrors($("list-errors"), error);
    }
  }

  function notice(text) {
    $("list-notice").textContent = text;
  }

  async function move(rule, step) {
    const index = rules.findIndex((r) => r.id === rule.id);
    const target = index + step;
    if (index < 0 || target < 0 || target >= rules.length) return;
    const ids = rules.map((r) => r.id);
    [ids[index], ids[target]] = [ids[target], ids[index]];
    try {
      rules = await api("/v1/automations/order", {method: "PUT", json: {ids}});
      clearErrors($("list-errors"));
      notice(`“${rule.name}” is now rule ${target + 1}.`);
      renderRules({id: rule.id, action: step < 0 ? "up" : "down"});
    } catch (error) {
      showErrors($("list-errors"), error);
      await load();
    }
  }

  async function toggleRule(rule) {
    try {
      await api(`/v1/automations/${rule.id}`, {method: "PATCH", json: {enabled: !rule.enabled}});
      clearErrors($("list-errors"));
      notice(`“${rule.name}” is ${rule.enabled ? "disabled" : "enabled"}.`);
      await load({id: rule.id, action: "toggle"});
    } catch (error) {
      showErrors($("list-errors"), error);
    }
  }

  async function deleteRule(rule) {
    if (!window.confirm(`Delete the rule “${rule.name}”? Its recorded executions stay.`)) return;
    try {
      await api(`/v1/automations/${rule.id}`, {method: "DELETE"});
      notice(`“${rule.name}” was deleted.`);
      if (executionsOf && executionsOf.id === rule.id) $("executions-panel").hidden = true;
      await load();
      $("new-rule").focus();
    } catch (error) {
      showErrors($("list-errors"), error);
    }
  }

  // --- the form ------------------------------------------------------------------------------------

  function field(labelText, control, hint) {
    const id = control.id || `f${(uid += 1)}`;
    control.id = id;
    return el("div", {}, el("label", {for: id, text: labelText}), control,
      hint ? el("p", {class: "muted", text: hint}) : null);
  }

  function textInput(value, attrs) {
    const input = el("input", {type: "text", autocomplete: "off", ...(attrs || {})});
    input.value = value === null || value === undefined ? "" : value;
    return input;
  }

  function select(options, value) {
    const node = el("select", {}, Object.entries(options).map(([v, label]) => el("option", {value: v, text: label})));
    if (value !== undefined && value !== null) node.value = value;
    return node;
  }

  function checks(legend, options, chosen) {
    const box = el("fieldset", {}, el("legend", {text: legend}));
    for (const [value, label] of Object.entries(options)) {
      const input = el("input", {type: "checkbox", value, checked: chosen.includes(value)});
      box.append(el("label", {class: "check"}, input, label));
    }
    return box;
  }

  function checked(box) {
    return Array.from(box.querySelectorAll("input[type=checkbox]")).filter((i) => i.checked).map((i) => i.value);
  }

  function renderTrigger(trigger) {
    const box = $("trigger-fields");
    box.replaceChildren();
    const t = trigger || {type: $("trigger-type").value};
    if (t.type === "keyword") {
      const words = textInput((t.keywords || []).join(", "), {id: "trigger-keywords", maxlength: 5000});
      const match = select(MATCHES, t.match || "word");
      match.id = "trigger-match";
      box.append(el("div", {class: "row"}, field("Keywords (comma-separated)", words, "Case and accents are ignored."),
        field("Matched", match)));
    } else if (t.type === "regex") {
      box.append(field("Pattern (RE2 regular expression, case-insensitive)", textInput(t.pattern, {id: "trigger-pattern", maxlength: 200})));
    } else if (t.type === "payload") {
      box.append(field("Button payloads or reply ids (comma-separated)", textInput((t.payloads || []).join(", "), {id: "trigger-payloads"})));
    } else {
      box.append(el("p", {class: "muted", text: `Runs when ${triggerWords(t)}.`}));
    }
  }

  function collectTrigger() {
    const type = $("trigger-type").value;
    if (type === "keyword") return {type, keywords: splitList($("trigger-keywords").value), match: $("trigger-match").value};
    if (type === "regex") return {type, pattern: $("trigger-pattern").value};
    if (type === "payload") return {type, payloads: splitList($("trigger-payloads").value)};
    return {type};
  }

  function partShell(kind, type, names, container) {
    const n = container.children.length + 1;
    const part = el("div", {class: "part", dataset: {type, kind}});
    const title = el("strong", {class: "part-title", text: `${kind === "condition" ? "Condition" : "Action"} ${n}: ${names[type]}`});
    const remove = el("button", {type: "button", class: "danger", "data-action": "remove",
      text: "Remove", "aria-label": `Remove ${kind} ${n}`, onclick: () => { part.remove(); renumber(container, kind, names); }});
    part.append(el("div", {class: "part-head"}, el("div", {}, title), remove));
    const body = el("div", {class: "part-body"});
    part.append(body, el("p", {class: "part-error", role: "alert"}));
    container.append(part);
    return body;
  }

  function renumber(container, kind, names) {
    Array.from(container.children).forEach((part, i) => {
      part.querySelector(".part-title").textContent = `${kind === "condition" ? "Condition" : "Action"} ${i + 1}: ${names[part.dataset.type]}`;
      part.querySelector("[data-action=remove]").setAttribute("aria-label", `Remove ${kind} ${i + 1}`);
    });
  }

  function addCondition(c) {
    const body = partShell("condition", c.type, CONDITION_NAMES, $("conditions"));
    if (c.type === "contact_tags") {
      body.append(el("div", {class: "row"},
        field("Has all of these tags (comma-separated)", textInput((c.has || []).join(", "), {"data-field": "has"})),
        field("Lacks all of these tags (comma-separated)", textInput((c.lacks || []).join(", "), {"data-field": "lacks"}))));
    } else if (c.type === "contact_attribute") {
      const op = select(OPS, c.op || "eq");
      op.dataset.field = "op";
      const value = textInput(c.value, {"data-field": "value", maxlength: 1000});
      const sync = () => { value.disabled = op.value === "exists" || op.value === "missing"; };
      op.addEventListener("change", sync);
      sync();
      body.append(el("div", {class: "row"}, field("Attribute", textInput(c.key, {"data-field": "key", maxlength: 100})),
        field("Test", op), field("Value", value)));
    } else if (c.type === "conversation_state") {
      const box = checks("The conversation is", STATE_NAMES, c.states || ["bot"]);
      box.dataset.field = "states";
      body.append(box);
    } else if (c.type === "time_window") {
      const days = checks("Days", DAY_NAMES, c.days || DAYS);
      days.dataset.field = "days";
      body.append(days, el("div", {class: "row"},
        field("From", el("input", {type: "time", "data-field": "start", value: c.start || "09:00"})),
        field("Until", el("input", {type: "time", "data-field": "end", value: c.end || "17:00"})),
        field("Time zone (IANA, empty for the tenant's)", textInput(c.timezone, {"data-field": "timezone", placeholder: "Europe/Paris"}))));
    }
    return body;
  }

  function value(part, name) {
    const node = part.querySelector(`[data-field=${name}]`);
    return node ? node.value : "";
  }

  function collectCondition(part) {
    const type = part.dataset.type;
    if (type === "contact_tags") return {type, has: splitList(value(part, "has")), lacks: splitList(value(part, "lacks"))};
    if (type === "contact_attribute") {
      const op = value(part, "op");
      const c = {type, key: value(part, "key"), op};
      if (op !== "exists" && op !== "missing") c.value = value(part, "value");
      return c;
    }
    if (type === "conversation_state") return {type, states: checked(part.querySelector("[data-field=states]"))};
    if (type === "time_window") {
      const c = {type, days: checked(part.querySelector("[data-field=days]")), start: value(part, "start"), end: value(part, "end")};
      const zone = value(part, "timezone").trim();
      c.timezone = zone || null;
      return c;
    }
    return {type};
  }

  function isPlainText(message) {
    return message && message.type === "text" && message.text && Object.keys(message).length === 2
      && Object.keys(message.text).every((k) => k === "body" || k === "preview_url");
  }

  function addAction(a) {
    const body = partShell("action", a.type, ACTION_NAMES, $("actions"));
    if (a.type === "reply") {
      const message = a.message || {type: "text", text: {body: ""}};
      const plain = isPlainText(message);
      const kind = select({text: "A text message", json: "Another message (template, interactive, media) as JSON"}, plain ? "text" : "json");
      kind.dataset.field = "kind";
      const text = el("textarea", {"data-field": "body", maxlength: 4096});
      text.value = plain ? message.text.body : "";
      const json = el("textarea", {"data-field": "json", rows: 6});
      json.value = plain ? "" : JSON.stringify(message, null, 2);
      const textField = field("Message", text);
      const jsonField = field("Message object (as POST /v1/messages takes it, without “to”)", json,
        'e.g. {"type": "template", "template": {"name": "hello", "language": {"code": "en"}}}');
      const sync = () => { textField.hidden = kind.value !== "text"; jsonField.hidden = kind.value === "text"; };
      kind.addEventListener("change", sync);
      sync();
      body.append(field("Reply with", kind), textField, jsonField);
    } else if (a.type === "add_tag" || a.type === "remove_tag") {
      body.append(field("Tag", textInput(a.tag, {"data-field": "tag", maxlength: 100})));
    } else if (a.type === "set_attribute") {
      body.append(el("div", {class: "row"}, field("Attribute", textInput(a.key, {"data-field": "key", maxlength: 100})),
        field("Value", textInput(a.value, {"data-field": "value", maxlength: 1000}))));
    } else if (a.type === "assign") {
      const mode = select({any: "The best free agent", agent: "A chosen agent", team: "The best free agent of a team"},
        a.agent_id ? "agent" : a.team ? "team" : "any");
      mode.dataset.field = "mode";
      const options = {};
      for (const agent of agents) options[agent.user_id] = `${agent.display_name || agent.email} (${agent.role})`;
      if (a.agent_id && !(a.agent_id in options)) options[a.agent_id] = agentName(a.agent_id);
      const who = select(options, a.agent_id);
      who.dataset.field = "agent_id";
      const team = textInput(a.team, {"data-field": "team", maxlength: 50});
      const whoField = field("Agent", who);
      const teamField = field("Team", team);
      const sync = () => { whoField.hidden = mode.value !== "agent"; teamField.hidden = mode.value !== "team"; };
      mode.addEventListener("change", sync);
      sync();
      body.append(el("div", {class: "row"}, field("Assign to", mode), whoField, teamField));
    } else if (a.type === "handoff") {
      body.append(el("div", {class: "row"},
        field("Team (empty for any agent)", textInput(a.team, {"data-field": "team", maxlength: 50})),
        field("Reason shown to the agent (optional)", textInput(a.reason, {"data-field": "reason", maxlength: 500}))));
    } else {
      body.append(el("p", {class: "muted", text: `This action will ${actionWords(a)}.`}));
    }
  }

  function collectAction(part) {
    const type = part.dataset.type;
    if (type === "reply") {
      if (value(part, "kind") === "text") return {type, message: {type: "text", text: {body: value(part, "body")}}};
      let message;
      try {
        message = JSON.parse(value(part, "json"));
      } catch (e) {
        throw new Error("the message object is not valid JSON");
      }
      return {type, message};
    }
    if (type === "add_tag" || type === "remove_tag") return {type, tag: value(part, "tag")};
    if (type === "set_attribute") return {type, key: value(part, "key"), value: value(part, "value")};
    if (type === "assign") {
      const mode = value(part, "mode");
      if (mode === "agent") return {type, agent_id: value(part, "agent_id") || null};
      if (mode === "team") return {type, team: value(part, "team").trim() || null};
      return {type};
    }
    if (type === "handoff") {
      return {type, team: value(part, "team").trim() || null, reason: value(part, "reason").trim() || null};
    }
    return {type};
  }

  function clearFormErrors() {
    clearErrors($("rule-errors"));
    for (const node of document.querySelectorAll("#rule-form .part-error, #rule-form .field-error")) node.textContent = "";
  }

  function placeErrors(error) {
    showErrors($("rule-errors"), error);
    for (const problem of error.problems || []) {
      const [head, index] = problem.loc;
      let target = null;
      if (head === "name") target = $("rule-name-error");
      else if (head === "trigger") target = $("trigger-error");
      else if (head === "conditions" && typeof index === "number") {
        const part = $("conditions").children[index];
        target = part && part.querySelector(".part-error");
      } else if (head === "actions" && typeof index === "number") {
        const part = $("actions").children[index];
        target = part && part.querySelector(".part-error");
      } else if (head === "actions") target = $("actions-error");
      if (target) target.textContent = [target.textContent, problem.msg].filter(Boolean).join(" ");
    }
  }

  function openEditor(rule) {
    editing = rule ? rule.id : null;
    clearFormErrors();
    $("rule-form-title").textContent = rule ? `Edit “${rule.name}”` : "New rule";
    $("rule-name").value = rule ? rule.name : "";
    $("rule-enabled").checked = rule ? rule.enabled : true;
    $("rule-stop").checked = rule ? rule.stop : false;
    const trigger = rule ? rule.trigger : {type: "keyword", keywords: [], match: "word"};
    $("trigger-type").value = trigger.type;
    renderTrigger(trigger);
    $("conditions").replaceChildren();
    $("actions").replaceChildren();
    for (const c of rule ? rule.conditions : []) addCondition(c);
    for (const a of rule ? rule.actions : [{type: "reply", message: {type: "text", text: {body: ""}}}]) addAction(a);
    $("rule-editor").hidden = false;
    $("rule-editor").dataset.editing = editing || "";
    $("rule-name").focus();
  }

  function closeEditor() {
    $("rule-editor").hidden = true;
    editing = null;
  }

  async function save(event) {
    event.preventDefault();
    clearFormErrors();
    const body = {name: $("rule-name").value.trim(), enabled: $("rule-enabled").checked, stop: $("rule-stop").checked,
      trigger: collectTrigger(), conditions: Array.from($("conditions").children).map(collectCondition), actions: []};
    const local = [];
    Array.from($("actions").children).forEach((part, i) => {
      try {
        body.actions.push(collectAction(part));
      } catch (e) {
        local.push({loc: ["actions", i], msg: e.message});
      }
    });
    if (local.length) {
      placeErrors({message: "", problems: local});
      return;
    }
    const button = $("save-rule");
    button.disabled = true;
    try {
      const saved = await store("/v1/automations", editing, body);
      closeEditor();
      notice(`“${saved.name}” was saved.`);
      await load({id: saved.id, action: "edit"});
    } catch (error) {
      placeErrors(error);
      $("rule-errors").focus();
    } finally {
      button.disabled = false;
    }
  }

  // --- executions ----------------------------------------------------------------------------------

  async function loadExecutions(more) {
    const rule = executionsOf;
    const params = new URLSearchParams({limit: String(EXECUTIONS_PAGE)});
    if (more && executionsCursor) params.set("cursor", executionsCursor);
    try {
      const page = await api(`/v1/automations/${rule.id}/executions?${params}`);
      if (executionsOf !== rule) return;
      clearErrors($("executions-errors"));
      const tbody = $("executions-body");
      if (!more) tbody.replaceChildren();
      for (const run of page.items) {
        tbody.append(el("tr", {dataset: {executionId: String(run.id)}},
          el("td", {"data-label": "When", text: when(run.executed_at)}),
          el("td", {"data-label": "Conversation"}, el("code", {text: run.conversation_key})),
          el("td", {"data-label": "Actions taken", text: `${run.actions.map(actionWords).join(", then ")}${run.stopped ? " (later rules stopped)" : ""}`})));
      }
      executionsCursor = page.next_cursor;
      $("executions-more").hidden = !executionsCursor;
      $("executions-empty").hidden = tbody.children.length > 0;
      $("executions-panel").dataset.loaded = "true";
    } catch (error) {
      showErrors($("executions-errors"), error);
    }
  }

  function openExecutions(rule) {
    executionsOf = rule;
    executionsCursor = null;
    $("executions-title").textContent = `Executions of “${rule.name}”`;
    $("executions-panel").dataset.ruleId = rule.id;
    $("executions-panel").dataset.loaded = "false";
    $("executions-body").replaceChildren();
    $("executions-panel").hidden = false;
    $("executions-title").setAttribute("tabindex", "-1");
    $("executions-title").focus();
    loadExecutions(false);
  }

  // --- wiring --------------------------------------------------------------------------------------

  $("new-rule").addEventListener("click", () => openEditor(null));
  $("cancel-rule").addEventListener("click", () => { closeEditor(); $("new-rule").focus(); });
  $("rule-form").addEventListener("submit", save);
  $("trigger-type").addEventListener("change", () => renderTrigger(null));
  $("add-condition").addEventListener("click", () => {
    const type = $("add-condition-type").value;
    const defaults = {contact_tags: {type, has: [], lacks: []}, contact_attribute: {type, op: "eq"},
      conversation_state: {type, states: ["bot"]}, time_window: {type, days: DAYS, start: "09:00", end: "17:00"}};
    const body = addCondition(defaults[type]);
    const first = body.querySelector("input, select, textarea");
    if (first) first.focus();
  });
  $("add-action").addEventListener("click", () => {
    const type = $("add-action-type").value;
    addAction({type});
    const part = $("actions").lastElementChild;
    const first = part.querySelector(".part-body input, .part-body select, .part-body textarea") || part.querySelector("button");
    first.focus();
  });
  $("executions-more").addEventListener("click", () => loadExecutions(true));
  $("executions-close").addEventListener("click", () => { $("executions-panel").hidden = true; executionsOf = null; });
  $("rule-errors").setAttribute("tabindex", "-1");

  // Deferred after live.js (base.html): a rule's reply going out is a new execution of it. The execution is
  // recorded by the projector, which may trail the reply: the first page is read again until it shows a new run.
  const LIVE_RETRIES_MS = [500, 1000, 2000, 4000, 8000];
  let liveRefresh = null;

  function topExecution() {
    const first = $("executions-body").firstElementChild;
    return first ? first.dataset.executionId : null;
  }

  async function refreshUntilNew(rule, before, attempt) {
    if (executionsOf !== rule) { liveRefresh = null; return; }
    await loadExecutions(false);
    if (topExecution() !== before || attempt + 1 >= LIVE_RETRIES_MS.length) { liveRefresh = null; return; }
    liveRefresh = window.setTimeout(() => refreshUntilNew(rule, before, attempt + 1), LIVE_RETRIES_MS[attempt + 1]);
  }

  if (window.AerosticLive && typeof window.AerosticLive.on === "function") {
    window.AerosticLive.on("message.out", (event) => {
      const data = event.data || {};
      if (!executionsOf || data.author !== "rule" || data.requested_by !== executionsOf.id || liveRefresh !== null) return;
      const rule = executionsOf;
      const before = topExecution();
      liveRefresh = window.setTimeout(() => refreshUntilNew(rule, before, 0), LIVE_RETRIES_MS[0]);
    });
  }

  (async () => {
    try {
      const page = await api("/v1/agents?limit=200");
      agents = page.items;
    } catch (error) {
      agents = [];
    }
    await load();
  })();
})();
