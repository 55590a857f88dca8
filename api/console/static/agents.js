/* The agents & teams page: the tenant's users with role, teams, capacity, presence and open conversations
   (/v1/agents), changing an agent's teams and capacity, adding a user (/v1/users), and the teams with their
   members and waiting conversations (/v1/teams). Presence and load follow the live feed when it is there. */
(function () {
  "use strict";
  const {api, el, showErrors, clearErrors, splitList} = window.AdminPages;
  const $ = (id) => document.getElementById(id);
  const PAGE = 50;

  let cursor = null;
  let agents = [];
  let editing = null;

  function row(agent) {
    const name = agent.display_name ? `${agent.display_name} (${agent.email})` : agent.email;
    return el("tr", {id: `agent-${agent.user_id}`, dataset: {userId: agent.user_id, email: agent.email,
      capacity: String(agent.capacity), teams: agent.teams.join(",")}},
      el("td", {"data-label": "User", text: name}),
      el("td", {"data-label": "Role", text: agent.role}),
      el("td", {"data-label": "Teams", "data-role": "teams", text: agent.teams.length ? agent.teams.join(", ") : "—"}),
      el("td", {"data-label": "Capacity", "data-role": "capacity", text: String(agent.capacity)}),
      el("td", {"data-label": "Presence", "data-role": "presence", text: agent.presence}),
      el("td", {"data-label": "Open", "data-role": "open", text: String(agent.open_conversations)}),
      el("td", {}, el("button", {type: "button", class: "secondary small", "data-action": "edit", text: "Change",
        "aria-label": `Change teams and capacity of ${agent.email}`, onclick: () => openAgent(agent)})));
  }

  function upsert(agent) {
    const index = agents.findIndex((a) => a.user_id === agent.user_id);
    if (index >= 0) agents[index] = agent; else agents.push(agent);
    const existing = $(`agent-${agent.user_id}`);
    const fresh = row(agent);
    if (existing) existing.replaceWith(fresh); else $("agents-body").append(fresh);
  }

  async function loadAgents(more) {
    const params = new URLSearchParams({limit: String(PAGE)});
    if (more && cursor) params.set("cursor", cursor);
    try {
      const page = await api(`/v1/agents?${params}`);
      clearErrors($("agents-errors"));
      if (!more) { agents = []; $("agents-body").replaceChildren(); }
      for (const agent of page.items) upsert(agent);
      cursor = page.next_cursor;
      $("agents-more").hidden = !cursor;
      $("agents-table").dataset.loaded = "true";
    } catch (error) {
      showErrors($("agents-errors"), error);
    }
  }

  function openAgent(agent) {
    editing = agent;
    clearErrors($("agent-errors"));
    $("agent-form-title").textContent = `Change ${agent.email}`;
    $("agent-display-name").value = agent.display_name || "";
    $("agent-capacity").value = String(agent.capacity);
    $("agent-teams").value = agent.teams.join(", ");
    $("agent-form").dataset.userId = agent.user_id;
    $("agent-form").hidden = false;
    $("agent-capacity").focus();
  }

  function closeAgent() {
    const agent = editing;
    $("agent-form").hidden = true;
    editing = null;
    const button = agent && $(`agent-${agent.user_id}`);
    if (button) button.querySelector("[data-action=edit]").focus();
  }

  async function saveAgent(event) {
    event.preventDefault();
    if (!editing) return;
    clearErrors($("agent-errors"));
    const capacityText = $("agent-capacity").value.trim();
    const capacity = Number(capacityText);
    if (!capacityText || !Number.isInteger(capacity)) {
      showErrors($("agent-errors"), {message: "Capacity must be a whole number from 0 to 100.", problems: []});
      $("agent-capacity").focus();
      return;
    }
    const name = $("agent-display-name").value.trim();
    const body = {capacity, teams: splitList($("agent-teams").value), display_name: name || null};
    const button = $("agent-save");
    button.disabled = true;
    try {
      const saved = await api(`/v1/agents/${editing.user_id}`, {method: "PUT", json: body});
      upsert(saved);
      $("agents-notice").textContent = `Saved ${saved.email}: capacity ${saved.capacity}, teams ${saved.teams.join(", ") || "none"}.`;
      closeAgent();
      await loadTeams();
    } catch (error) {
      showErrors($("agent-errors"), error);
    } finally {
      button.disabled = false;
    }
  }

  async function addUser(event) {
    event.preventDefault();
    clearErrors($("user-errors"));
    $("user-notice").textContent = "";
    const body = {email: $("user-email-input").value.trim(), role: $("user-role-input").value,
      password: $("user-password-input").value};
    const button = $("user-add");
    button.disabled = true;
    try {
      const user = await api("/v1/users", {method: "POST", json: body});
      $("user-notice").textContent = `Added ${user.email} (${user.role}). Give them the password to sign in.`;
      $("user-email-input").value = "";
      $("user-password-input").value = "";
      await loadAgents(false);
    } catch (error) {
      showErrors($("user-errors"), error);
    } finally {
      button.disabled = false;
    }
  }

  async function loadTeams() {
    try {
      const teams = await api("/v1/teams");
      clearErrors($("teams-errors"));
      const list = $("teams");
      list.replaceChildren();
      for (const team of teams.items) {
        list.append(el("li", {id: `team-${encodeURIComponent(team.team)}`, dataset: {team: team.team,
          waiting: String(team.waiting), members: team.members.map((m) => m.email).join(",")}},
          el("h3", {}, el("span", {text: team.team}),
            el("span", {class: `badge ${team.waiting ? "bad" : ""}`, "data-role": "waiting",
              text: `${team.waiting} waiting`})),
          el("p", {"data-role": "members", text: team.members.length
            ? `Members: ${team.members.map((m) => m.display_name || m.email).join(", ")}`
            : "No members: nobody takes this queue's conversations."})));
      }
      $("teams-empty").hidden = teams.items.length > 0;
      $("teams-unassigned").textContent = `${teams.waiting_without_team} conversation${teams.waiting_without_team === 1 ? "" : "s"} waiting for any agent.`
        + (teams.truncated ? " Only the first 500 teams are listed." : "");
      list.dataset.loaded = "true";
    } catch (error) {
      showErrors($("teams-errors"), error);
    }
  }

  let teamsTimer = null;

  function follow() {
    // Deferred after live.js (base.html): presence as it changes, queues as conversations move.
    const live = window.AerosticLive;
    if (!live || typeof live.on !== "function") return;
    live.on("presence", (event) => {
      const tr = event.data && $(`agent-${event.data.user_id}`);
      if (tr) tr.querySelector("[data-role=presence]").textContent = event.data.presence;
    });
    live.on("conversation", () => {
      if (teamsTimer === null) teamsTimer = window.setTimeout(() => { teamsTimer = null; loadTeams(); }, 1000);
    });
  }

  $("agents-more").addEventListener("click", () => loadAgents(true));
  $("agent-form").addEventListener("submit", saveAgent);
  $("agent-cancel").addEventListener("click", closeAgent);
  $("user-form").addEventListener("submit", addUser);
  $("teams-refresh").addEventListener("click", loadTeams);

  loadAgents(false);
  loadTeams();
  follow();
})();
