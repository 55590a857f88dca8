/* The team inbox (/console/inbox): the conversation list with its tabs, filters, unread counts and waiting
   queue; the thread with live ticks and notes; the composer (free text, /canned responses, templates once the
   24-hour window closed); actions, tags, presence and assignment alerts. Everything comes from the JSON API
   with the session cookie and is kept current by the console's live feed (window.AerosticLive); the page
   never polls the API. */
(function () {
  "use strict";

  var root = document.getElementById("inbox");
  if (!root) return;
  var ME = root.dataset.userId;
  var IS_ADMIN = root.dataset.role === "admin";
  var HEARTBEAT_MS = Math.max(5, parseInt(root.dataset.heartbeatS || "20", 10)) * 1000;
  var PAGE = 50;
  var RANK = { queued: -1, accepted: 0, sent: 1, delivered: 2, read: 3, played: 4 };
  var BASE_TITLE = document.title;

  var state = {
    view: "mine", cursor: null, items: [], byKey: {}, open: null, openRow: null,
    messages: [], early: [], notes: [], threadNext: null, agents: {}, teams: [], canned: [], templates: null,
    names: {}, mediaTries: 0, mediaTimer: null, presence: "offline", heartbeat: null, notified: 0, selfAssign: {}, suggestIndex: -1
  };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name === "dataset") Object.keys(value).forEach(function (k) { node.dataset[k] = value[k]; });
      else node.setAttribute(name, value === true ? "" : value);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }
  function show(node, on) { node.hidden = !on; }
  function say(node, text) { node.textContent = text || ""; show(node, !!text); }

  /* --- the API ------------------------------------------------------------------------------------ */
  function detailOf(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && body.detail && body.detail.reason) return body.detail.reason;
    if (body && Array.isArray(body.detail)) return body.detail.map(function (d) { return d.msg; }).join("; ");
    return "The request failed (" + status + ")";
  }
  async function api(method, path, body) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    var response = await fetch(path, init);
    var data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      var error = new Error(detailOf(data, response.status));
      error.status = response.status;
      throw error;
    }
    return data;
  }
  function uuid() {
    return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
  }

  /* --- time --------------------------------------------------------------------------------------- */
  // A record's time as ISO: the feed sends ISO strings; Meta's webhooks say epoch seconds. null if neither.
  function isoTime(value) {
    if (value === null || value === undefined || value === "") return null;
    var d = /^[0-9]+$/.test(String(value)) ? new Date(Number(value) * 1000) : new Date(value);
    return isNaN(d.getTime()) ? null : d.toISOString();
  }
  function clock(iso) {
    if (!iso) return "";
    var d = new Date(iso), now = new Date();
    var same = d.toDateString() === now.toDateString();
    return same ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
                : d.toLocaleDateString([], { month: "short", day: "numeric" });
  }
  function span(ms) {
    var minutes = Math.max(0, Math.floor(ms / 60000));
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    return hours < 48 ? hours + " h " + (minutes % 60) + " min" : Math.floor(hours / 24) + " d";
  }
  function windowLeft(conv) {
    var until = conv && (conv.window_expires_at || conv.window_open_until);
    if (!until) return { open: false, text: "No window" };
    var left = new Date(until).getTime() - Date.now();
    return left > 0 ? { open: true, text: span(left) + " left" } : { open: false, text: "Window closed" };
  }
  var HANDLED = { ai: "AI", automation: "Automation", human: "Human", queue: "Waiting", nobody: "Resolved" };
  function handledLabel(conv) {
    if (conv.handled_by === "human") {
      return conv.assignee_id === ME ? "You" : "Human: " + agentName(conv.assignee_id);
    }
    return HANDLED[conv.handled_by] || conv.handled_by || "";
  }
  function agentName(id) {
    var agent = state.agents[id];
    return agent ? (agent.display_name || agent.email) : "an agent";
  }
  function contactName(conv) {
    return conv.profile_name || (conv.username ? "@" + conv.username : "") || conv.phone || conv.wa_id;
  }

  /* --- the list ----------------------------------------------------------------------------------- */
  function filters() {
    var params = new URLSearchParams();
    var q = $("search").value.trim(), st = $("filter-state").value;
    var team = $("filter-team").value.trim(), tag = $("filter-tag").value.trim();
    if (q) params.set("q", q);
    if (st) params.set("state", st);
    if (team) params.set("team", team);
    if (tag) params.set("tag", tag);
    return params;
  }
  function preview(conv) {
    var last = conv.last_message;
    if (!last) return "";
    var text = last.text || (last.type ? "[" + last.type + "]" : "");
    return (last.direction === "outbound" ? "You: " : "") + text;
  }
  function row(conv) {
    var win = windowLeft(conv);
    var badges = [
      el("span", { "class": "badge", "data-handled": conv.handled_by, text: handledLabel(conv) }),
      el("span", { "class": "badge window", "data-open": String(win.open), text: win.text })
    ];
    if (conv.handoff_reason && conv.state !== "bot") {
      badges.push(el("span", { "class": "badge handoff-reason", text: "Hand-off: " + conv.handoff_reason }));
    }
    var unread = conv.unread ? el("span", { "class": "unread", "data-unread": String(conv.unread),
                                            text: conv.unread >= 99 ? "99+" : String(conv.unread),
                                            "aria-label": conv.unread + " unread" }) : null;
    var button = el("button", { type: "button", "class": "conv", dataset: { key: conv.key, state: conv.state,
                                handledBy: conv.handled_by }, "aria-current": state.open === conv.key ? "true" : null }, [
      el("span", { "class": "top-line" }, [el("span", { "class": "name", text: contactName(conv) }),
                                          el("span", { "class": "time", text: clock(conv.last_message_at) })]),
      el("span", { "class": "bottom-line" }, [el("span", { "class": "preview", text: preview(conv) }), unread]),
      el("span", { "class": "badges" }, badges)
    ]);
    button.addEventListener("click", function () { openConversation(conv.key); });
    return el("li", { dataset: { key: conv.key } }, [button]);
  }
  function renderList() {
    var list = $("conversations"), active = document.activeElement;
    var focused = active && active.classList && active.classList.contains("conv") ? active.dataset.key : null;
    list.textContent = "";
    state.items.forEach(function (conv) { list.appendChild(row(conv)); });
    if (focused) {
      var again = list.querySelector('.conv[data-key="' + CSS.escape(focused) + '"]');
      if (again) again.focus({ preventScroll: true });
    }
    show($("list-empty"), state.items.length === 0);
    show($("more"), !!state.cursor);
    updateTitle();
  }
  async function loadList(more) {
    var params = filters();
    params.set("view", state.view);
    // a refresh fetches again as many as are shown (at most the API's 200), a "Load more" the next page
    params.set("limit", String(more ? PAGE : Math.min(200, Math.max(PAGE, state.items.length))));
    if (more && state.cursor) params.set("cursor", state.cursor);
    try {
      var page = await api("GET", "/v1/conversations?" + params.toString());
      state.items = more ? state.items.concat(page.items) : page.items;
      state.cursor = page.next_cursor;
      state.items.forEach(function (c) {
        var known = state.byKey[c.key];
        if (known && known.version && !c.version) c.version = known.version;
        state.byKey[c.key] = c;
        nameToast(c.key, contactName(c));
      });
      say($("list-error"), "");
      renderList();
      var open = state.open && state.byKey[state.open];
      if (open && open.unread && document.visibilityState !== "hidden") markRead(state.open);
    } catch (error) {
      say($("list-error"), error.message);
    }
  }
  async function loadCounts() {
    try {
      var counts = await api("GET", "/v1/conversations/counts?" + filters().toString());
      $("count-mine").textContent = counts.mine === null ? "–" : counts.mine;
      $("count-unassigned").textContent = counts.unassigned;
      $("count-all").textContent = counts.all;
    } catch (error) { say($("list-error"), error.message); }
  }
  async function loadQueue() {
    try {
      var page = await api("GET", "/v1/conversations/queue?limit=20");
      var list = $("queue");
      list.textContent = "";
      page.items.forEach(function (conv) {
        var since = conv.state_changed_at ? new Date(conv.state_changed_at).getTime() : Date.now();
        var open = el("button", { type: "button", text: contactName(conv) });
        open.addEventListener("click", function () { openConversation(conv.key); });
        list.appendChild(el("li", { dataset: { key: conv.key, since: String(since) } }, [
          open, el("span", { "class": "muted wait", text: " waiting " + span(Date.now() - since) +
                             (conv.team ? " · " + conv.team : "") })]));
        state.byKey[conv.key] = state.byKey[conv.key] || conv;
      });
      $("queue-count").textContent = page.items.length + (page.next_cursor ? "+" : "");
    } catch (error) { say($("list-error"), error.message); }
  }
  var refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      loadList(false); loadCounts(); loadQueue();
    }, 400);
  }
  function selectTab(view) {
    state.view = view;
    state.cursor = null;
    state.items = [];
    document.querySelectorAll(".tabs [role=tab]").forEach(function (tab) {
      tab.setAttribute("aria-selected", String(tab.dataset.view === view));
    });
    loadList(false);
  }

  /* --- the thread --------------------------------------------------------------------------------- */
  function senderLabel(message) {
    var sender = message.sender;
    if (!sender || message.direction === "inbound") return "";
    if (sender.kind === "agent") return sender.id === ME ? "You" : (sender.name || agentName(sender.id));
    if (sender.kind === "ai") return "AI";
    if (sender.kind === "rule") return "Rule: " + (sender.name || "automation");
    if (sender.kind === "campaign") return "Campaign: " + (sender.name || "campaign");
    return "API" + (sender.name ? ": " + sender.name : "");
  }
  function ticks(status) {
    if (status === "failed") return "⚠ failed";
    if (status === "read" || status === "played" || status === "delivered") return "✓✓";
    if (status === "sent") return "✓";
    return "🕓";
  }
  function messageBody(message) {
    var parts = [];
    var media = message.media;
    if (media && media.status === "stored" && (message.type === "image" || message.type === "sticker")) {
      parts.push(el("img", { src: media.url, alt: "Image from the customer", loading: "lazy" }));
    } else if (media) {
      parts.push(el("a", { href: media.url, target: "_blank", rel: "noopener",
                           text: media.status === "failed" ? "Media unavailable" : "Open " + (message.type || "file") }));
    }
    var payload = message.payload || {};
    var out = payload[message.type] || (payload.message && payload.message[message.type]) || null;
    if (!media && out && out.link) parts.push(el("a", { href: out.link, target: "_blank", rel: "noopener", text: "Open " + message.type }));
    if (!media && out && out.id && /^[0-9a-f-]{36}$/.test(out.id)) {  // one of Aerostic's media files
      var url = "/v1/media/" + out.id;
      parts.push(message.type === "image" || message.type === "sticker"
        ? el("img", { src: url, alt: "Image sent", loading: "lazy" })
        : el("a", { href: url, target: "_blank", rel: "noopener", text: "Open " + message.type }));
    }
    var text = message.text;
    if (!text && message.type === "template") {
      var tpl = out || {};
      text = "Template: " + (tpl.name || "");
    }
    if (!text && !parts.length) text = "[" + (message.type || "message") + "]";
    if (text) parts.push(el("div", { "class": "body", text: text }));
    return parts;
  }
  function bubble(message) {
    var status = message.status || (message.direction === "outbound" ? "queued" : "");
    var metaLine = [el("span", { "class": "time", text: clock(message.sent_at || message.created_at) })];
    if (message.direction === "outbound") {
      metaLine.unshift(el("span", { "class": "sender", text: senderLabel(message) }));
      metaLine.push(el("span", { "class": "ticks", "data-status": status, text: ticks(status),
                                 title: status, "aria-label": "Status: " + status }));
    }
    var children = messageBody(message);
    children.push(el("div", { "class": "meta-line" }, metaLine));
    if (status === "failed" && message.error) {
      var e = message.error;
      children.push(el("div", { "class": "failure", text: "Failed" + (e.code !== null && e.code !== undefined ? " (" + e.code + ")" : "") +
                               (e.title ? ": " + e.title : "") + (e.details ? " — " + e.details : "") }));
    }
    return el("li", { "class": "bubble", dataset: { messageId: message.id || "", wamid: message.wamid || "",
                                                     direction: message.direction, status: status } }, children);
  }
  function noteItem(note) {
    var author = note.author === "user:" + ME ? "You" : (note.author.indexOf("user:") === 0 ?
      agentName(note.author.slice(5)) : "API");
    return el("li", { "class": "note", dataset: { noteId: note.id } }, [
      el("div", { "class": "body", text: note.text }),
      el("div", { "class": "meta-line" }, [el("span", { "class": "sender", text: "Note · " + author }),
                                           el("span", { "class": "time", text: clock(note.created_at) })])]);
  }
  function renderThread() {
    var list = $("messages");
    var entries = state.messages.map(function (m) { return { at: m.sent_at || m.created_at, seq: m.seq, node: bubble(m) }; })
      .concat(state.notes.map(function (n) { return { at: n.created_at, seq: 0, node: noteItem(n) }; }));
    entries.sort(function (a, b) { return new Date(a.at) - new Date(b.at) || a.seq - b.seq; });
    var pane = $("thread-pane");
    var atBottom = !list.children.length || pane.scrollHeight - pane.scrollTop - pane.clientHeight < 80;
    list.textContent = "";
    entries.forEach(function (entry) { list.appendChild(entry.node); });
    show($("older"), !!state.threadNext);
    if (atBottom) list.lastElementChild && list.lastElementChild.scrollIntoView({ block: "nearest" });
  }
  function mergeMessages(incoming) {
    var known = {};
    state.messages.forEach(function (m, i) { known[m.id || m.wamid] = i; });
    incoming.forEach(function (m) {
      var id = m.id || m.wamid, at = known[id];
      if (at !== undefined) {
        var old = state.messages[at];
        keepNewerStatus(old, m);
        if (!m.text && old.text) m.text = old.text;
        if (!m.sender && old.sender) m.sender = old.sender;
        state.messages[at] = m;
      } else {
        state.messages.push(m);
        known[id] = state.messages.length - 1;
      }
    });
    state.messages.forEach(function (m, i) { m.seq = i; });
    applyEarly();
  }
  function rankOf(status) { return status in RANK ? RANK[status] : -2; }
  // Whether the status ``incoming`` brings replaces the one ``current`` holds (each a message or a status event),
  // whichever way they arrive: a failure stands against anything short of delivered, otherwise the higher status
  // wins. An ambiguous failure (the send timed out after Meta may have taken it) replaces no status Meta reported
  // and yields to any, as the projector's does.
  function replaces(incoming, current) {
    var status = incoming.status, now = current.status || "queued";
    var ambiguous = !!(status === "failed" ? incoming.ambiguous : current.ambiguous);
    if (status === "failed") return rankOf(now) < (ambiguous ? RANK.sent : RANK.delivered);
    if (now === "failed") return ambiguous && rankOf(status) >= RANK.sent;
    return rankOf(status) > rankOf(now);
  }
  // What the page already knows can be newer than what a read brings: a failure or a tick from the feed before
  // the projector wrote it (a thread read in between), or the feed's "message.out" after the result.
  function keepNewerStatus(old, m) {
    if (old.key && !m.key) m.key = old.key;
    if (m.status === "failed" && !m.ambiguous) return;  // a failure the projector stored stands
    if (!replaces(old, m)) return;
    m.status = old.status;
    if (old.status === "failed") m.error = m.error || old.error;
  }
  async function loadThread(key, older) {
    var path = "/v1/conversations/" + encodeURIComponent(key) + "/thread?limit=" + PAGE +
               (older && state.threadNext ? "&before=" + state.threadNext : "");
    var page = await api("GET", path);
    if (state.open !== key) return;
    if (older || state.threadNext === null) state.threadNext = page.next;
    mergeMessages(page.messages.slice().reverse());
    renderThread();
    rereadPendingMedia(key);
  }
  function rereadPendingMedia(key) {
    // A customer's file is downloaded from Meta a moment after its message: read the thread again a few
    // times (1, 2, 4 … s, at most six) until every file is stored or failed. The feed has no media event.
    var pending = state.messages.some(function (m) { return m.media && m.media.status === "pending"; });
    if (!pending) { state.mediaTries = 0; return; }
    if (state.mediaTimer || state.mediaTries >= 6) return;
    var delay = 1000 * Math.pow(2, state.mediaTries);
    state.mediaTries += 1;
    state.mediaTimer = setTimeout(function () {
      state.mediaTimer = null;
      if (state.open === key) loadThread(key, false).catch(function () { /* the next event reads it again */ });
    }, delay);
  }
  async function loadNotes(key) {
    var notes = [], cursor = null;
    for (var i = 0; i < 5; i++) {
      var page = await api("GET", "/v1/conversations/" + encodeURIComponent(key) + "/notes?limit=200" +
                           (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      notes = notes.concat(page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    if (state.open !== key) return;
    state.notes = notes;
    renderThread();
  }
  async function markRead(key) {
    if (document.visibilityState === "hidden") return;
    try {
      await api("POST", "/v1/conversations/" + encodeURIComponent(key) + "/read");
      var conv = state.byKey[key];
      if (conv && conv.unread) { conv.unread = 0; renderList(); }
    } catch (error) { /* the marker is best effort: the next open sets it */ }
  }
  function renderHeader(conv) {
    $("thread-name").textContent = contactName(conv);
    $("thread-number").textContent = [conv.phone, conv.username ? "@" + conv.username : ""].filter(Boolean).join(" · ");
    var handled = $("thread-handled");
    handled.textContent = handledLabel(conv);
    handled.dataset.handled = conv.handled_by;
    $("thread-state").textContent = conv.state;
    $("thread-state").dataset.state = conv.state;
    var win = windowLeft(conv);
    $("thread-window").textContent = win.text;
    $("thread-window").dataset.open = String(win.open);
    var reason = conv.handoff_reason && conv.state !== "bot" ? "Hand-off reason: " + conv.handoff_reason : "";
    say($("thread-handoff"), reason);
    show($("take"), conv.assignee_id !== ME && conv.state !== "closed");
    show($("resolve"), conv.state !== "closed");
    show($("reopen"), conv.state === "closed" || conv.state === "bot");
    show($("assign-box"), IS_ADMIN);
    $("thread-pane").dataset.key = conv.key;
    $("thread-pane").dataset.state = conv.state;
    $("thread-pane").dataset.assignee = conv.assignee_id || "";
    composerMode(conv);
  }
  async function openConversation(key) {
    state.open = key;
    state.messages = []; state.notes = []; state.threadNext = null; state.mediaTries = 0;
    root.dataset.view = "thread";
    show($("thread-empty"), false);
    show($("thread"), true);
    say($("action-error"), ""); say($("composer-error"), "");
    document.querySelectorAll(".conv").forEach(function (b) {
      b.setAttribute("aria-current", String(b.dataset.key === key));
    });
    var known = state.byKey[key];
    if (known) renderHeader(known);
    $("messages").textContent = "";
    try {
      var conv = await api("GET", "/v1/conversations/" + encodeURIComponent(key));
      if (state.open !== key) return;
      state.openRow = conv;
      state.byKey[key] = Object.assign(state.byKey[key] || {}, conv);
      renderHeader(conv);
      renderContact(conv);
      await Promise.all([loadThread(key, false), loadNotes(key), loadHistory(key)]);
      await markRead(key);
      $("reply-text").focus({ preventScroll: true });
    } catch (error) {
      say($("action-error"), error.message);
    }
  }
  function closeThread() {
    root.dataset.view = "list";
    var current = document.querySelector('.conv[data-key="' + CSS.escape(state.open || "") + '"]');
    if (current) current.focus();
  }

  /* --- live ticks --------------------------------------------------------------------------------- */
  // A status can reach the page before its message does, or before the message learns its wamid: Kafka keeps
  // order within a partition, not between Meta's statuses (wa.statuses) and the dispatcher's results
  // (outbound.results). Such a status waits here (the latest EARLY_MAX) until its message shows up.
  var EARLY_MAX = 200;
  // A status is the message's by id (results, local failures), by wamid, or by the idempotency key Meta's
  // statuses carry back (an ambiguous send has no wamid of its own).
  function matches(m, data) {
    return (data.message_id && m.id === data.message_id) || (data.wamid && m.wamid === data.wamid) ||
           (data.key && m.key === data.key);
  }
  function applyOne(m, data) {
    if (data.wamid) m.wamid = data.wamid;
    if (data.key) m.key = data.key;
    if (data.status === "failed" && data.ambiguous) m.ambiguous = true;
    if (!replaces(data, m)) return;
    m.status = data.status;
    m.error = data.status === "failed" ? { code: data.error_code, title: data.error_title, details: data.error_details } : null;
  }
  function applyEarly() {
    var applied = false;
    state.early = state.early.filter(function (data) {
      var found = state.messages.filter(function (m) { return matches(m, data); });
      found.forEach(function (m) { applyOne(m, data); });
      applied = applied || found.length > 0;
      return !found.length;
    });
    return applied;
  }
  function applyStatus(data) {
    var found = state.messages.filter(function (m) { return matches(m, data); });
    found.forEach(function (m) { applyOne(m, data); });
    if (!found.length) {
      state.early.push(data);
      if (state.early.length > EARLY_MAX) state.early.shift();
    }
    if (applyEarly() || found.length) renderThread();
  }

  /* --- the composer ------------------------------------------------------------------------------- */
  function composerMode(conv) {
    var open = windowLeft(conv).open;
    var noteMode = $("note-mode").checked;
    show($("free-text"), true);
    show($("template-composer"), !open && !noteMode);
    $("reply-text").placeholder = open || noteMode ? "Reply… (type / for canned responses)"
                                                   : "The window is closed: write an internal note, or send a template below";
    $("send").textContent = noteMode ? "Add note" : "Send";
    $("send").disabled = !open && !noteMode;
    if (!open && !noteMode) loadTemplates();
  }
  async function sendReply(event) {
    event.preventDefault();
    var key = state.open, text = $("reply-text").value.trim();
    if (!key || !text) return;
    say($("composer-error"), "");
    $("send").disabled = true;
    try {
      if ($("note-mode").checked) {
        var note = await api("POST", "/v1/conversations/" + encodeURIComponent(key) + "/notes", { text: text });
        state.notes.push(note);
      } else {
        var accepted = await api("POST", "/v1/conversations/" + encodeURIComponent(key) + "/reply",
                                 { message: { type: "text", text: { body: text } }, idempotency_key: uuid() });
        mergeMessages([{ id: accepted.id, wamid: null, direction: "outbound", type: "text", text: text,
                         status: "queued", created_at: new Date().toISOString(), sender: { kind: "agent", id: ME } }]);
      }
      $("reply-text").value = "";
      closeSuggestions();
      renderThread();
    } catch (error) {
      say($("composer-error"), error.message);
    } finally {
      composerMode(state.byKey[key] || {});
    }
  }

  /* canned responses: "/shortcut" at the caret */
  function slashToken() {
    var box = $("reply-text"), caret = box.selectionStart, before = box.value.slice(0, caret);
    var match = /(^|\s)\/([^\s\/]{0,50})$/.exec(before);
    return match ? { start: caret - match[2].length - 1, end: caret, query: match[2].toLowerCase() } : null;
  }
  function closeSuggestions() {
    $("canned-suggestions").textContent = "";
    show($("canned-suggestions"), false);
    $("reply-text").setAttribute("aria-expanded", "false");
    state.suggestIndex = -1;
  }
  function suggestions() {
    var token = slashToken();
    if (!token || !state.canned.length) return [];
    return state.canned.filter(function (c) { return c.shortcut.toLowerCase().indexOf(token.query) === 0; }).slice(0, 8);
  }
  function renderSuggestions() {
    var found = suggestions(), list = $("canned-suggestions");
    list.textContent = "";
    if (!found.length) { closeSuggestions(); return; }
    if (state.suggestIndex >= found.length || state.suggestIndex < 0) state.suggestIndex = 0;
    found.forEach(function (canned, i) {
      var item = el("li", { role: "option", id: "canned-" + i, "aria-selected": String(i === state.suggestIndex),
                            dataset: { shortcut: canned.shortcut } },
                    [el("span", { "class": "shortcut", text: "/" + canned.shortcut }), el("span", { text: canned.text })]);
      item.addEventListener("mousedown", function (event) { event.preventDefault(); insertCanned(canned); });
      list.appendChild(item);
    });
    show(list, true);
    $("reply-text").setAttribute("aria-expanded", "true");
    $("reply-text").setAttribute("aria-activedescendant", "canned-" + state.suggestIndex);
  }
  function insertCanned(canned) {
    var box = $("reply-text"), token = slashToken();
    if (!token) return;
    box.value = box.value.slice(0, token.start) + canned.text + box.value.slice(token.end);
    var caret = token.start + canned.text.length;
    box.setSelectionRange(caret, caret);
    closeSuggestions();
    box.focus();
  }
  function composerKeys(event) {
    var open = !$("canned-suggestions").hidden, found = open ? suggestions() : [];
    if (open && found.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        state.suggestIndex = (state.suggestIndex + (event.key === "ArrowDown" ? 1 : found.length - 1)) % found.length;
        renderSuggestions();
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        insertCanned(found[Math.max(0, state.suggestIndex)]);
        return;
      }
      if (event.key === "Escape") { event.preventDefault(); closeSuggestions(); return; }
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) sendReply(event);
  }
  async function loadCanned() {
    var items = [], cursor = null;
    try {
      for (var i = 0; i < 5; i++) {
        var page = await api("GET", "/v1/canned-responses?limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
        items = items.concat(page.items || []);
        cursor = page.next_cursor;
        if (!cursor) break;
      }
    } catch (error) {
      items = []; // not there yet (404) or refused: no suggestions
    }
    state.canned = items.filter(function (c) { return c && c.shortcut && c.text; });
  }

  /* templates once the window has closed */
  async function loadTemplates() {
    if (state.templates !== null) return;
    state.templates = [];
    var cursor = null;
    try {
      for (var i = 0; i < 5; i++) {
        var page = await api("GET", "/v1/templates?status=APPROVED&limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
        state.templates = state.templates.concat(page.items);
        cursor = page.next_cursor;
        if (!cursor) break;
      }
    } catch (error) { say($("composer-error"), error.message); }
    var select = $("template-select");
    select.textContent = "";
    select.appendChild(el("option", { value: "", text: state.templates.length ? "Choose a template…" : "No approved templates" }));
    state.templates.forEach(function (t) {
      select.appendChild(el("option", { value: t.id, text: t.name + " (" + t.language + ")" }));
    });
  }
  function chosenTemplate() {
    var id = $("template-select").value;
    return state.templates ? state.templates.filter(function (t) { return t.id === id; })[0] : null;
  }
  function templateValues() {
    var values = {};
    document.querySelectorAll("#template-vars input").forEach(function (input) {
      if (input.value.trim()) values[input.dataset.ref] = input.value.trim();
    });
    return values;
  }
  function fill(text, prefix, values) {
    return String(text || "").replace(/\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g, function (all, name) {
      return values[prefix + "." + name] || all;
    });
  }
  function renderPreview() {
    var t = chosenTemplate(), values = templateValues(), lines = [];
    if (t) {
      t.components.forEach(function (c) {
        var type = String(c.type || "").toUpperCase();
        if (type === "HEADER") lines.push(String(c.format || "TEXT").toUpperCase() === "TEXT" ? fill(c.text, "header", values)
                                          : (values.header || "[" + String(c.format).toLowerCase() + "]"));
        else if (type === "BODY") lines.push(fill(c.text, "body", values));
        else if (type === "FOOTER") lines.push(c.text || "");
        else if (type === "BUTTONS") lines.push((c.buttons || []).map(function (b) { return "[" + b.text + "]"; }).join(" | "));
      });
    }
    $("template-preview").textContent = lines.filter(Boolean).join("\n");
    var missing = t ? t.variables.filter(function (ref) { return !values[ref] && ref.indexOf("button.") !== 0; }) : [""];
    $("send-template").disabled = !t || missing.length > 0;
  }
  function chooseTemplate() {
    var t = chosenTemplate(), box = $("template-vars");
    box.textContent = "";
    (t ? t.variables : []).forEach(function (ref, i) {
      var id = "template-var-" + i;
      box.appendChild(el("label", { "for": id, text: ref }));
      var input = el("input", { type: "text", id: id, maxlength: "1024", dataset: { ref: ref } });
      input.addEventListener("input", renderPreview);
      box.appendChild(input);
    });
    renderPreview();
  }
  async function sendTemplate() {
    var key = state.open, t = chosenTemplate();
    if (!key || !t) return;
    say($("composer-error"), "");
    $("send-template").disabled = true;
    try {
      var accepted = await api("POST", "/v1/conversations/" + encodeURIComponent(key) + "/reply",
                               { template: { id: t.id, values: templateValues() }, idempotency_key: uuid() });
      mergeMessages([{ id: accepted.id, wamid: null, direction: "outbound", type: "template",
                       text: $("template-preview").textContent, status: "queued",
                       created_at: new Date().toISOString(), sender: { kind: "agent", id: ME } }]);
      renderThread();
      $("template-select").value = "";
      chooseTemplate();
    } catch (error) {
      say($("composer-error"), error.message);
      renderPreview();
    }
  }

  /* --- actions ------------------------------------------------------------------------------------ */
  async function act(action, body) {
    var key = state.open;
    if (!key) return;
    say($("action-error"), "");
    try {
      if (action === "assign" && body && body.agent_id === ME) state.selfAssign[key] = Date.now();
      await api("POST", "/v1/conversations/" + encodeURIComponent(key) + "/" + action, body);
      toast({ assign: "Assignment sent", transfer: "Transfer sent", resolve: "Resolving…", reopen: "Reopening…" }[action]);
    } catch (error) {
      delete state.selfAssign[key];
      say($("action-error"), error.message);
    }
  }
  function transferBody() {
    var value = $("transfer-target").value;
    if (!value) return null;
    return value.indexOf("team:") === 0 ? { team: value.slice(5) } : { agent_id: value.slice(6) };
  }
  async function loadAgents() {
    var agents = {}, cursor = null;
    for (var i = 0; i < 10; i++) {
      var page = await api("GET", "/v1/agents?limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      page.items.forEach(function (a) { agents[a.user_id] = a; });
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    state.agents = agents;
    var teams = {};
    Object.keys(agents).forEach(function (id) { (agents[id].teams || []).forEach(function (t) { teams[t] = true; }); });
    state.teams = Object.keys(teams).sort();
    var assign = $("assign-agent"), transfer = $("transfer-target");
    assign.textContent = ""; transfer.textContent = "";
    transfer.appendChild(el("option", { value: "", text: "Transfer to…" }));
    Object.keys(agents).forEach(function (id) {
      var label = (agents[id].display_name || agents[id].email) + " (" + agents[id].presence + ")";
      assign.appendChild(el("option", { value: id, text: label }));
      if (id !== ME) transfer.appendChild(el("option", { value: "agent:" + id, text: label }));
    });
    state.teams.forEach(function (t) { transfer.appendChild(el("option", { value: "team:" + t, text: "Team " + t })); });
    if (agents[ME]) showPresence(agents[ME].presence);
  }

  /* --- presence ----------------------------------------------------------------------------------- */
  function showPresence(presence) {
    state.presence = presence;
    var badge = $("presence-state");
    badge.textContent = presence;
    badge.dataset.presence = presence;
    root.dataset.presence = presence;
    ["online", "away"].forEach(function (p) { $("presence-" + p).setAttribute("aria-pressed", String(presence === p)); });
  }
  async function beat() {
    if (state.presence !== "online" && state.presence !== "away") return;
    try {
      await api("PUT", "/v1/agents/me/presence", { status: state.presence });
    } catch (error) { toast("Presence not saved: " + error.message); }
  }
  async function setPresence(presence) {
    try {
      var result = await api("PUT", "/v1/agents/me/presence", { status: presence });
      showPresence(result.status);
      if (state.heartbeat) clearInterval(state.heartbeat);
      state.heartbeat = setInterval(beat, HEARTBEAT_MS);
      if (result.claimed && result.claimed.length) refreshSoon();
    } catch (error) { toast("Presence not saved: " + error.message); }
  }

  /* --- notifications ------------------------------------------------------------------------------ */
  function toast(text, action) {
    if (!text) return;
    var box = $("toasts");
    var item = el("div", { "class": "toast" }, [el("span", { text: text })]);
    if (action) {
      var button = el("button", { type: "button", "class": "secondary", text: action.label });
      button.addEventListener("click", function () { item.remove(); action.run(); });
      item.appendChild(button);
    }
    box.appendChild(item);
    while (box.children.length > 4) box.removeChild(box.firstChild);
    setTimeout(function () { item.remove(); }, action ? 15000 : 5000);
    return item;
  }
  function updateTitle() {
    document.title = (state.notified ? "(" + state.notified + ") " : "") + BASE_TITLE;
  }
  var audio = null;
  function soundOn() { return localStorage.getItem("aerostic.inbox.sound") === "on"; }
  function audioContext() {
    // Browsers start audio only after a gesture: the context is made (or resumed) on one, then reused.
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    if (!audio) audio = new Ctx();
    if (audio.state === "suspended") audio.resume();
    return audio;
  }
  function beep() {
    if (!soundOn()) return;
    try {
      var ctx = audioContext();
      if (!ctx) return;
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, ctx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.4);
      osc.connect(gain); gain.connect(ctx.destination);
      osc.start(); osc.stop(ctx.currentTime + 0.4);
    } catch (error) { /* no audio device: the toast and the title still tell */ }
  }
  function assignedToMe(key, data) {
    var self = state.selfAssign[key];
    delete state.selfAssign[key];
    if (self && Date.now() - self < 60000) return;
    var conv = state.byKey[key], known = conv ? contactName(conv) : state.names[key];
    var reason = data.reason ? " (" + data.reason + ")" : "";
    state.notified += 1;
    updateTitle();
    root.dataset.lastAssigned = key;
    var item = toast("Assigned to you: " + (known || data.wa_id || key) + reason,
                     { label: "Open", run: function () { openConversation(key); } });
    // The assignment can reach the page before the customer's message (another topic): name them when it does.
    if (!known) {
      var waiting = assignedToasts[key] = { item: item, reason: reason };
      setTimeout(function () {  // the toast is gone by then: so is the wait for the name
        if (assignedToasts[key] === waiting) delete assignedToasts[key];
      }, 15000);
    }
    beep();
  }
  var assignedToasts = {};
  function nameToast(key, name) {
    var waiting = assignedToasts[key];
    if (!waiting || !name) return;
    delete assignedToasts[key];
    waiting.item.firstChild.textContent = "Assigned to you: " + name + waiting.reason;
  }

  /* --- the contact panel -------------------------------------------------------------------------- */
  function renderContact(conv) {
    show($("contact-empty"), false);
    show($("contact"), true);
    $("contact-name").textContent = contactName(conv);
    $("contact-number").textContent = [conv.phone, conv.username ? "@" + conv.username : "", conv.user_id]
      .filter(Boolean).join(" · ");
    var opt = $("contact-optout");
    opt.dataset.optedOut = String(!!conv.opted_out);
    opt.textContent = conv.opted_out ? "Opted out of campaigns" : "Subscribed to campaigns";
    var tags = $("contact-tags");
    tags.textContent = "";
    (conv.tags || []).forEach(function (tag) {
      var remove = el("button", { type: "button", "aria-label": "Remove tag " + tag, text: "×" });
      remove.addEventListener("click", function () { changeTags([], [tag]); });
      tags.appendChild(el("li", { dataset: { tag: tag } }, [el("span", { text: tag }), remove]));
    });
    var attrs = $("contact-attributes");
    attrs.textContent = "";
    Object.keys(conv.attributes || {}).sort().forEach(function (name) {
      attrs.appendChild(el("dt", { text: name }));
      attrs.appendChild(el("dd", { text: conv.attributes[name] }));
    });
    $("tag-add").disabled = !conv.contact_id;
  }
  async function changeTags(add, remove) {
    var conv = state.openRow;
    if (!conv || !conv.contact_id) return;
    say($("contact-error"), "");
    try {
      var contact = await api("PATCH", "/v1/contacts/" + conv.contact_id, { add_tags: add, remove_tags: remove });
      conv.tags = contact.tags;
      conv.attributes = contact.attributes;
      conv.opted_out = contact.opted_out;
      renderContact(conv);
    } catch (error) { say($("contact-error"), error.message); }
  }
  async function loadHistory(key) {
    var history = await api("GET", "/v1/conversations/" + encodeURIComponent(key) + "/history");
    if (state.open !== key) return;
    var convs = $("contact-conversations"), camps = $("contact-campaigns");
    convs.textContent = ""; camps.textContent = "";
    history.conversations.forEach(function (c) {
      var text = c.closed_at ? "Resolved " + clock(c.closed_at) + (c.closed_by ? " (" + c.closed_by + ")" : "")
                             : "On number " + c.phone_number_id + " · " + c.state;
      var item = el("li", { text: text + " " });
      if (c.conversation_key !== key) {
        var open = el("button", { type: "button", "class": "secondary", text: "Open" });
        open.addEventListener("click", function () { openConversation(c.conversation_key); });
        item.appendChild(open);
      }
      convs.appendChild(item);
    });
    if (!history.conversations.length) convs.appendChild(el("li", { "class": "muted", text: "None" }));
    history.campaigns.forEach(function (c) {
      camps.appendChild(el("li", { text: c.name + " · " + c.recipient_state + (c.reason ? " (" + c.reason + ")" : "") +
                                         (c.sent_at ? " · " + clock(c.sent_at) : "") }));
    });
    if (!history.campaigns.length) camps.appendChild(el("li", { "class": "muted", text: "None" }));
  }

  /* --- the live feed ------------------------------------------------------------------------------ */
  function refreshLater(ms) { setTimeout(refreshSoon, ms); }
  function applyConversation(conv, data) {
    if (!conv || (conv.version && data.version && data.version < conv.version)) return;
    conv.state = data.state; conv.assignee_id = data.assignee_id; conv.team = data.team;
    conv.handoff_reason = data.reason;
    if (data.version) conv.version = data.version;
    conv.handled_by = data.state === "bot" ? (conv.handled_by === "automation" ? "automation" : "ai")
                                           : { agent: "human", queued: "queue", closed: "nobody" }[data.state];
  }
  function onLive(event) {
    var key = event.conversation_key, data = event.data || {};
    if (event.type === "reset") {
      refreshSoon();
      if (state.open) openConversation(state.open);
      return;
    }
    if (event.type === "message.status") { applyStatus(data); return; }  // the list shows no ticks: no refresh
    if (event.type === "message.in" && key && data.profile_name) {
      state.names[key] = data.profile_name;
      nameToast(key, data.profile_name);
    }
    if (event.type === "message.in" || event.type === "message.out") {
      if (key && key === state.open) {
        if (event.type === "message.out") {
          mergeMessages([{ id: data.message_id, wamid: null, direction: "outbound", type: data.type, text: data.text,
                           payload: { message: data.message }, status: "queued", created_at: event.at,
                           sender: { kind: { agent: "agent", ai: "ai", rule: "rule", campaign: "campaign" }[data.author] || "api",
                                     id: data.author === "agent" ? data.requested_by : null } }]);
        } else {
          var sent = isoTime(data.timestamp) || event.at;
          mergeMessages([{ id: null, wamid: data.wamid, direction: "inbound", type: data.type, text: data.text,
                           status: null, sent_at: sent, created_at: event.at }]);
        }
        renderThread();
        // The projector writes the message a moment after the feed saw it: read the thread (media, senders)
        // again then, and move the read marker past it.
        setTimeout(function () {
          if (state.open !== key) return;
          loadThread(key, false).then(function () { if (event.type === "message.in") return markRead(key); })
            .catch(function (error) { say($("action-error"), error.message); });
        }, 1500);
      }
      refreshSoon(); refreshLater(2000);
      return;
    }
    if (event.type === "conversation") {
      var before = state.byKey[key];
      var previous = before ? before.assignee_id : undefined;
      applyConversation(before, data);
      if (data.assignee_id === ME && previous !== ME) assignedToMe(key, data);
      if (key === state.open && state.openRow) {
        applyConversation(state.openRow, data);
        renderHeader(state.openRow);
        loadHistory(key).catch(function () { /* the panel keeps what it had */ });
      }
      renderList();
      refreshSoon(); refreshLater(2000);
      return;
    }
    if (event.type === "contact") {
      var open = state.openRow;
      if (open && open.wa_id === data.wa_id) {
        open.tags = data.tags; open.attributes = data.attributes; open.opted_out = data.opted_out;
        renderContact(open);
      }
      refreshSoon();
      return;
    }
    if (event.type === "presence") {
      if (state.agents[data.user_id]) state.agents[data.user_id].presence = data.presence;
      if (data.user_id === ME) showPresence(data.presence);
    }
  }
  function connectLive() {
    var live = window.AerosticLive;  // the console's feed (live.js, loaded by the layout before this file)
    if (!live) {
      var badge = $("live-status");
      if (badge) { badge.dataset.status = "off"; badge.textContent = "Live updates unavailable: reload to see changes"; }
      return;
    }
    ["message.in", "message.out", "message.status", "conversation", "contact", "presence", "reset"].forEach(function (type) {
      live.on(type, onLive);
    });
    var wasLive = false;
    live.onStatus(function (s) {
      root.dataset.live = s;
      if (s === "live" && wasLive) {  // events may have been missed while reconnecting: fetch again once
        refreshSoon();
        if (state.open) loadThread(state.open, false).catch(function () { /* shown on the next action */ });
      }
      if (s === "live") wasLive = true;
    });
  }

  /* --- wiring ------------------------------------------------------------------------------------- */
  document.querySelectorAll(".tabs [role=tab]").forEach(function (tab) {
    tab.addEventListener("click", function () { selectTab(tab.dataset.view); });
    tab.addEventListener("keydown", function (event) {
      if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
      var tabs = Array.prototype.slice.call(document.querySelectorAll(".tabs [role=tab]"));
      var next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      next.focus(); selectTab(next.dataset.view);
    });
  });
  var filterTimer = null;
  function filtersChanged() {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(function () { state.cursor = null; state.items = []; loadList(false); loadCounts(); }, 250);
  }
  ["search", "filter-team", "filter-tag"].forEach(function (id) { $(id).addEventListener("input", filtersChanged); });
  $("filter-state").addEventListener("change", filtersChanged);
  $("filters").addEventListener("submit", function (event) { event.preventDefault(); filtersChanged(); });
  $("more").addEventListener("click", function () { loadList(true); });
  $("back").addEventListener("click", closeThread);
  $("older").addEventListener("click", function () { if (state.open) loadThread(state.open, true); });
  $("composer").addEventListener("submit", sendReply);
  $("reply-text").addEventListener("input", renderSuggestions);
  $("reply-text").addEventListener("keydown", composerKeys);
  // Closed a moment after the box loses focus (a click on a suggestion lands first), unless it has it again by then.
  $("reply-text").addEventListener("blur", function () {
    setTimeout(function () { if (document.activeElement !== $("reply-text")) closeSuggestions(); }, 150);
  });
  $("note-mode").addEventListener("change", function () { composerMode(state.byKey[state.open] || {}); });
  $("template-select").addEventListener("change", chooseTemplate);
  $("send-template").addEventListener("click", sendTemplate);
  $("take").addEventListener("click", function () { act("assign", { agent_id: ME }); });
  $("assign").addEventListener("click", function () { act("assign", { agent_id: $("assign-agent").value }); });
  $("transfer").addEventListener("click", function () {
    var body = transferBody();
    if (body) act("transfer", body); else say($("action-error"), "Choose an agent or a team to transfer to.");
  });
  $("resolve").addEventListener("click", function () { act("resolve"); });
  $("reopen").addEventListener("click", function () { act("reopen"); });
  $("contact-toggle").addEventListener("click", function () {
    var pane = $("contact-pane"), open = pane.dataset.open !== "true";
    pane.dataset.open = String(open);
    $("contact-toggle").setAttribute("aria-expanded", String(open));
    if (open && root.dataset.view === "thread" && window.matchMedia("(max-width: 760px)").matches) pane.scrollIntoView();
  });
  $("tag-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var tag = $("tag-input").value.trim();
    if (tag) { changeTags([tag], []); $("tag-input").value = ""; }
  });
  $("presence-online").addEventListener("click", function () { setPresence("online"); });
  $("presence-away").addEventListener("click", function () { setPresence("away"); });
  var sound = $("sound-toggle");
  sound.checked = soundOn();
  ["pointerdown", "keydown"].forEach(function (type) {
    document.addEventListener(type, function wake() {
      if (soundOn()) { try { audioContext(); } catch (error) { /* no audio */ } }
      document.removeEventListener(type, wake);
    });
  });
  sound.addEventListener("change", function () {
    localStorage.setItem("aerostic.inbox.sound", sound.checked ? "on" : "off");
    if (sound.checked) beep();
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && root.dataset.view === "thread" && $("canned-suggestions").hidden) closeThread();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      state.notified = 0; updateTitle();
      if (state.open) markRead(state.open);
    }
  });
  window.addEventListener("focus", function () { state.notified = 0; updateTitle(); });
  // The window's countdown is a clock on the page, not a request: re-render the times every 30 s.
  setInterval(function () {
    document.querySelectorAll("#conversations li[data-key]").forEach(function (item) {
      var badge = item.querySelector(".badge.window"), win = windowLeft(state.byKey[item.dataset.key]);
      if (badge) { badge.textContent = win.text; badge.dataset.open = String(win.open); }
    });
    if (state.open && state.byKey[state.open]) {
      var conv = state.byKey[state.open], win = windowLeft(conv);
      $("thread-window").textContent = win.text;
      $("thread-window").dataset.open = String(win.open);
      if ($("template-composer").hidden === win.open) composerMode(conv);
    }
  }, 30000);

  connectLive();
  Promise.all([loadAgents().catch(function (error) { say($("list-error"), error.message); }), loadCanned()])
    .then(function () { return Promise.all([loadList(false), loadCounts(), loadQueue()]); })
    .then(function () {
      if (state.presence === "online" || state.presence === "away") {
        state.heartbeat = setInterval(beat, HEARTBEAT_MS);
        beat();
      }
      root.dataset.ready = "true";
    });
})();
