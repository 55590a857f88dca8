/* The inbox settings page: /v1/settings/waiting and /v1/canned-responses with the session cookie.
   The root's data-ready turns "true" once both are loaded; data-saved counts successful saves (tests wait on it). */
(function () {
  "use strict";
  var root = document.getElementById("inbox-settings");
  if (!root) { return; }
  var DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  var MAX_RANGES = 4;
  var $ = function (id) { return document.getElementById(id); };
  var saves = 0;

  function api(method, path, body) {
    var init = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      if (response.status === 204) { return null; }
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) { throw { status: response.status, detail: data && data.detail }; }
        return data;
      });
    });
  }

  function problem(error) {
    if (error && Array.isArray(error.detail)) {
      return error.detail.map(function (d) {
        var loc = (d.loc || []).filter(function (p) { return p !== "body"; });
        var message = String(d.msg || "").replace(/^Value error, /, "");
        var where = loc.join(" › ");
        if (loc[0] === "hours" && loc.length >= 3 && DAYS.indexOf(loc[1]) >= 0) {
          where = dayName(loc[1]) + ", hours " + (Number(loc[2]) + 1) + (loc[3] === 1 ? " (closes)" : " (opens)");
        }
        if (d.type === "string_pattern_mismatch" && loc[0] === "hours") {
          message = "write a time as HH:MM, 00:00 to 23:59";
        }
        return (where ? where + ": " : "") + message;
      }).join("\n");
    }
    if (error && typeof error.detail === "string") { return error.detail; }
    if (error && error.status === 403) { return "Only an admin can change this."; }
    return "Something went wrong; try again.";
  }

  function show(box, text) {
    box.textContent = text || "";
    box.hidden = !text;
  }

  function saved() {
    saves += 1;
    root.setAttribute("data-saved", String(saves));
  }

  /* --- the waiting acknowledgement and business hours ------------------------------------------------- */

  var zoneSelect = $("timezone");

  function fillZones(current) {
    var zones = [];
    try { zones = Intl.supportedValuesOf("timeZone"); } catch (e) { zones = []; }
    if (zones.indexOf("UTC") < 0) { zones.unshift("UTC"); }
    if (current && zones.indexOf(current) < 0) { zones.unshift(current); }
    zoneSelect.textContent = "";
    zones.forEach(function (zone) {
      var option = document.createElement("option");
      option.value = zone;
      option.textContent = zone.replace(/_/g, " ");
      zoneSelect.appendChild(option);
    });
    zoneSelect.value = current || "UTC";
  }

  function dayName(day) { return $("day-" + day + "-name").textContent; }

  function refreshDay(day) {
    var list = $("ranges-" + day);
    var count = list.children.length;
    $("closed-" + day).hidden = count > 0;
    $("add-" + day).disabled = count >= MAX_RANGES;
    Array.prototype.forEach.call(list.children, function (row, index) {
      row.setAttribute("data-index", String(index));
      row.querySelector(".remove .sr-only").textContent = " hours " + (index + 1) + " on " + dayName(day);
    });
  }

  function addRange(day, start, end) {
    var list = $("ranges-" + day);
    var n = list.children.length;
    var id = day + "-" + Date.now().toString(36) + "-" + n;
    var row = document.createElement("div");
    row.className = "range";
    row.innerHTML =
      '<label class="opens-label" for="' + id + '-start">Opens</label>' +
      '<input type="text" id="' + id + '-start" class="start" inputmode="numeric" maxlength="5" placeholder="09:00" autocomplete="off">' +
      '<label for="' + id + '-end">closes</label>' +
      '<input type="text" id="' + id + '-end" class="end" inputmode="numeric" maxlength="5" placeholder="17:00" autocomplete="off">' +
      '<button type="button" class="remove">Remove<span class="sr-only"></span></button>';
    row.querySelector(".start").value = start || "";
    row.querySelector(".end").value = end || "";
    row.querySelector(".remove").addEventListener("click", function () {
      var next = row.nextElementSibling || row.previousElementSibling;
      list.removeChild(row);
      refreshDay(day);
      (next ? next.querySelector(".start") : $("add-" + day)).focus();
    });
    list.appendChild(row);
    refreshDay(day);
    return row;
  }

  DAYS.forEach(function (day) {
    $("add-" + day).addEventListener("click", function () {
      var list = $("ranges-" + day);
      var last = list.lastElementChild;
      var start = last ? last.querySelector(".end").value : "09:00";
      addRange(day, start, last ? "" : "17:00").querySelector(".start").focus();
    });
  });

  function fillWaiting(settings) {
    $("acknowledge").checked = !!settings.acknowledge;
    $("ai-while-waiting").checked = !!settings.ai_answers_while_waiting;
    $("in-hours-text").value = settings.in_hours_text || "";
    $("out-of-hours-text").value = settings.out_of_hours_text || "";
    fillZones(settings.timezone);
    DAYS.forEach(function (day) {
      $("ranges-" + day).textContent = "";
      ((settings.hours || {})[day] || []).forEach(function (range) { addRange(day, range[0], range[1]); });
      refreshDay(day);
    });
  }

  function readWaiting() {
    var hours = {};
    DAYS.forEach(function (day) {
      var ranges = [];
      Array.prototype.forEach.call($("ranges-" + day).children, function (row) {
        ranges.push([row.querySelector(".start").value.trim(), row.querySelector(".end").value.trim()]);
      });
      if (ranges.length) { hours[day] = ranges; }
    });
    return {
      acknowledge: $("acknowledge").checked,
      ai_answers_while_waiting: $("ai-while-waiting").checked,
      in_hours_text: $("in-hours-text").value,
      out_of_hours_text: $("out-of-hours-text").value,
      timezone: zoneSelect.value,
      hours: hours
    };
  }

  $("waiting-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var button = $("save-waiting");
    button.disabled = true;
    show($("waiting-errors"), "");
    $("waiting-status").textContent = "Saving…";
    api("PUT", "/v1/settings/waiting", readWaiting()).then(function (settings) {
      fillWaiting(settings);
      $("waiting-status").textContent = "Saved.";
      saved();
    }).catch(function (error) {
      $("waiting-status").textContent = "";
      show($("waiting-errors"), problem(error));
    }).then(function () { button.disabled = false; });
  });

  /* --- canned responses --------------------------------------------------------------------------------- */

  var nextCursor = null;
  var shown = 0;

  function cannedRow(item) {
    var row = document.createElement("tr");
    row.setAttribute("data-id", item.id);
    row.setAttribute("data-shortcut", item.shortcut);
    var shortcut = document.createElement("td");
    var code = document.createElement("code");
    code.textContent = "/" + item.shortcut;
    shortcut.appendChild(code);
    var text = document.createElement("td");
    text.className = "text";
    text.textContent = item.text;
    var actions = document.createElement("td");
    actions.className = "actions";
    var edit = document.createElement("button");
    edit.type = "button";
    edit.className = "secondary edit";
    edit.innerHTML = 'Edit<span class="sr-only"></span>';
    edit.querySelector(".sr-only").textContent = " /" + item.shortcut;
    edit.addEventListener("click", function () { startEdit(item); });
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove delete";
    remove.innerHTML = 'Delete<span class="sr-only"></span>';
    remove.querySelector(".sr-only").textContent = " /" + item.shortcut;
    remove.addEventListener("click", function () {
      if (!window.confirm("Delete the canned response /" + item.shortcut + "?")) { return; }
      api("DELETE", "/v1/canned-responses/" + encodeURIComponent(item.id)).then(function () {
        row.parentNode.removeChild(row);
        shown -= 1;
        $("canned-empty").hidden = shown > 0;
        $("canned-status").textContent = "Deleted /" + item.shortcut + ".";
        if ($("canned-form").getAttribute("data-editing") === item.id) { resetForm(); }
        saved();
        $("canned-shortcut").focus();
      }).catch(function (error) { show($("canned-errors"), problem(error)); });
    });
    actions.appendChild(edit);
    actions.appendChild(remove);
    row.appendChild(shortcut);
    row.appendChild(text);
    row.appendChild(actions);
    return row;
  }

  function loadCanned(more) {
    var path = "/v1/canned-responses?limit=100" + (more && nextCursor ? "&cursor=" + encodeURIComponent(nextCursor) : "");
    return api("GET", path).then(function (page) {
      var list = $("canned-list");
      if (!more) { list.textContent = ""; shown = 0; }
      page.items.forEach(function (item) { list.appendChild(cannedRow(item)); shown += 1; });
      nextCursor = page.next_cursor;
      $("canned-more").hidden = !nextCursor;
      $("canned-empty").hidden = shown > 0;
    });
  }

  $("canned-more").addEventListener("click", function () {
    loadCanned(true).catch(function (error) { show($("canned-errors"), problem(error)); });
  });

  function resetForm() {
    var form = $("canned-form");
    form.setAttribute("data-editing", "");
    form.reset();
    $("canned-form-title").textContent = "Add a canned response";
    $("canned-save").textContent = "Add";
    $("canned-cancel").hidden = true;
    show($("canned-errors"), "");
  }

  function startEdit(item) {
    $("canned-form").setAttribute("data-editing", item.id);
    $("canned-shortcut").value = item.shortcut;
    $("canned-text").value = item.text;
    $("canned-form-title").textContent = "Edit /" + item.shortcut;
    $("canned-save").textContent = "Save";
    $("canned-cancel").hidden = false;
    show($("canned-errors"), "");
    $("canned-shortcut").focus();
  }

  $("canned-cancel").addEventListener("click", function () { resetForm(); $("canned-shortcut").focus(); });

  $("canned-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var editing = $("canned-form").getAttribute("data-editing");
    var body = { shortcut: $("canned-shortcut").value.trim(), text: $("canned-text").value };
    var button = $("canned-save");
    button.disabled = true;
    show($("canned-errors"), "");
    var request = editing ? api("PUT", "/v1/canned-responses/" + encodeURIComponent(editing), body)
                          : api("POST", "/v1/canned-responses", body);
    request.then(function (item) {
      var list = $("canned-list");
      var fresh = cannedRow(item);
      var old = editing ? list.querySelector('tr[data-id="' + CSS.escape(editing) + '"]') : null;
      if (old) { list.replaceChild(fresh, old); } else { list.appendChild(fresh); shown += 1; }
      $("canned-empty").hidden = shown > 0;
      $("canned-status").textContent = (editing ? "Saved /" : "Added /") + item.shortcut + ".";
      resetForm();
      saved();
      $("canned-shortcut").focus();
    }).catch(function (error) {
      var message = error && error.status === 409 ? "That shortcut is already in use: choose another."
                                                   : problem(error);
      show($("canned-errors"), message);
    }).then(function () { button.disabled = false; });
  });

  /* --- load ----------------------------------------------------------------------------------------------- */

  Promise.all([api("GET", "/v1/settings/waiting").then(fillWaiting), loadCanned(false)]).then(function () {
    root.setAttribute("data-ready", "true");
  }).catch(function (error) {
    show($("waiting-errors"), problem(error));
    root.setAttribute("data-ready", "error");
  });
}());
