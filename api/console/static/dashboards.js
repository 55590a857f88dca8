/* The dashboards page: reads GET /v1/dashboards (session cookie) for the chosen range, draws the charts
   with uPlot and writes every figure into the page's tables and tiles (the accessible copy of the charts).
   While "Today" is shown, live events (window.AerosticLive, static/live.js) refresh it at most once every
   THROTTLE_MS; without the live feed it refreshes every FALLBACK_MS instead. */
(function () {
  "use strict";
  var THROTTLE_MS = 3000;
  var FALLBACK_MS = 15000;
  var root = document.getElementById("dashboard");
  var statusLine = document.getElementById("dash-status");
  var rangeError = document.getElementById("range-error");
  var customForm = document.getElementById("custom-range");
  var state = {period: "today", from: null, to: null, bucket: "", loading: false, again: false,
               lastLoad: 0, timer: null, charts: {}, data: null, live: "off"};

  function $(id) { return document.getElementById(id); }

  function count(n) { return n === null || n === undefined ? "\u2014" : Number(n).toLocaleString("en-US"); }

  function percent(rate) { return rate === null || rate === undefined ? "\u2014" : (rate * 100).toFixed(1) + "%"; }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "\u2014";
    var s = Math.round(seconds);
    if (seconds < 60) return (seconds < 10 ? seconds.toFixed(1) : String(s)) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function cell(row, value, numeric) {
    var td = document.createElement("td");
    td.textContent = value;
    if (numeric) td.className = "num";
    row.appendChild(td);
    return td;
  }

  /* Replace the table's rows; the first ``textColumns`` (default 1) are text, the rest numbers. */
  function fill(tableId, rows, emptyId, textColumns) {
    var texts = textColumns === undefined ? 1 : textColumns;
    var body = $(tableId).querySelector("tbody");
    body.textContent = "";
    rows.forEach(function (cells) {
      var tr = document.createElement("tr");
      cells.forEach(function (c, i) { cell(tr, c, i >= texts); });
      body.appendChild(tr);
    });
    if (emptyId) {
      $(emptyId).hidden = rows.length > 0;
      $(tableId).hidden = rows.length === 0;
    }
    return body;
  }

  function when(iso, zone, bucket) {
    var options = bucket === "day" ? {dateStyle: "medium", timeZone: zone}
                                   : {dateStyle: "medium", timeStyle: "short", timeZone: zone};
    try { return new Intl.DateTimeFormat("en-GB", options).format(new Date(iso)); }
    catch (e) { return iso; }
  }

  function query() {
    var params = new URLSearchParams();
    if (state.period === "custom") {
      params.set("from", state.from);
      params.set("to", state.to);
      if (state.bucket) params.set("bucket", state.bucket);
    } else {
      params.set("period", state.period);
    }
    return "/v1/dashboards?" + params.toString();
  }

  function setStatus(kind, text) {
    statusLine.dataset.state = kind;
    statusLine.textContent = text;
  }

  function load() {
    if (state.loading) { state.again = true; return; }
    state.loading = true;
    state.lastLoad = Date.now();
    root.dataset.loading = "true";
    var asked = query();
    fetch(asked, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, status: response.status, body: body}; });
      })
      .then(function (answer) {
        if (!answer.ok) {
          var detail = answer.body && answer.body.detail;
          throw new Error(typeof detail === "string" ? detail : "The dashboards could not be loaded (" + answer.status + ").");
        }
        if (asked === query()) render(answer.body);
      })
      .catch(function (error) {
        setStatus("error", error.message || "The dashboards could not be loaded.");
      })
      .then(function () {
        state.loading = false;
        root.dataset.loading = "false";
        if (state.again) { state.again = false; schedule(); }
      });
  }

  /* A refresh for a live event: at once when the last load is old enough, else once when it is. */
  function schedule() {
    if (state.timer !== null) return;
    var wait = Math.max(0, state.lastLoad + THROTTLE_MS - Date.now());
    state.timer = window.setTimeout(function () { state.timer = null; load(); }, wait);
  }

  function render(data) {
    state.data = data;
    var t = data.totals, r = data.responses;
    $("total-inbound").textContent = count(t.inbound);
    $("total-outbound").textContent = count(t.outbound);
    $("delivery-rate").textContent = percent(t.delivery_rate);
    $("read-rate").textContent = percent(t.read_rate);
    $("frt-median").textContent = duration(r.first_response_s.median);
    $("frt-p90").textContent = duration(r.first_response_s.p90);
    $("res-median").textContent = duration(r.resolution_s.median);
    $("res-p90").textContent = duration(r.resolution_s.p90);
    $("deflection-rate").textContent = percent(r.deflection.rate);
    $("episodes").textContent = count(r.episodes);
    $("dash-timezone").textContent = data.timezone;
    Array.prototype.forEach.call(document.querySelectorAll(".bucket-name"), function (el) {
      el.textContent = data.bucket;
    });

    fill("volume-table", data.buckets.map(function (b) {
      return [when(b.start, data.timezone, data.bucket), count(b.inbound), count(b.outbound), count(b.delivered),
              count(b.read), count(b.failed)];
    }));
    var a = data.outbound_by_author;
    fill("authors-table", [[count(a.agent), count(a.ai), count(a.automation), count(a.campaign), count(a.api)]], null, 0);
    fill("delivery-table", [[count(t.sent), count(t.delivered) + " (" + percent(t.delivery_rate) + ")",
                             count(t.read) + " (" + percent(t.read_rate) + ")", count(t.failed)]], null, 0);
    var failures = fill("failures-table", data.failures.map(function (f) {
      return [f.code === null ? "\u2014" : String(f.code), f.title || "\u2014", count(f.count)];
    }), "failures-empty", 2);
    Array.prototype.forEach.call(failures.rows, function (row, i) { row.dataset.code = String(data.failures[i].code); });
    fill("responses-table", [
      ["First response", duration(r.first_response_s.median), duration(r.first_response_s.p90), count(r.answered)],
      ["Resolution", duration(r.resolution_s.median), duration(r.resolution_s.p90), count(r.resolved)],
    ]);
    var agents = fill("agents-table", data.agents.map(function (g) {
      return [g.name || g.user_id, count(g.handled), count(g.resolved), duration(g.first_response_median_s),
              duration(g.resolution_median_s)];
    }), "agents-empty");
    Array.prototype.forEach.call(agents.rows, function (row, i) { row.dataset.userId = data.agents[i].user_id; });
    var d = r.deflection, ai = data.ai;
    fill("ai-table", [[count(d.bot_handled), count(d.bot_resolved), count(d.handed_over), percent(d.rate),
                       count(ai.reply), count(ai.handoff), count(ai.discarded)]], null, 0);
    var campaigns = fill("campaigns-table", data.campaigns.map(function (c) {
      return [c.name, c.state, count(c.targeted), count(c.sent), count(c.delivered), count(c.read), count(c.failed)];
    }), "campaigns-empty", 2);
    Array.prototype.forEach.call(campaigns.rows, function (row, i) { row.dataset.campaignId = data.campaigns[i].id; });
    var portfolio = fill("portfolio-table", data.portfolio.map(function (p) {
      return [p.name || p.waba_id, p.business_id || p.waba_id, count(p.used),
              p.tier_limit === null ? "Unlimited" : count(p.tier_limit), p.share === null ? "\u2014" : percent(p.share)];
    }), "portfolio-empty", 2);
    Array.prototype.forEach.call(portfolio.rows, function (row, i) { row.dataset.wabaId = data.portfolio[i].waba_id; });

    drawCharts(data);
    root.dataset.loaded = "true";
    root.dataset.period = state.period;
    root.dataset.generatedAt = data.generated_at;
    root.dataset.inbound = String(t.inbound);
    var live = state.period === "today" ? (state.live === "live" ? " \u00b7 live" : "") : "";
    setStatus("ready", "Updated " + when(data.generated_at, data.timezone, "hour") + " (" + data.timezone + ")" + live);
  }

  function chartWidth(target) { return Math.max(260, target.clientWidth || 600); }

  function drawChart(id, data, series) {
    var target = $(id);
    var xs = data.buckets.map(function (b) { return Date.parse(b.start) / 1000; });
    var values = [xs].concat(series.map(function (s) { return data.buckets.map(function (b) { return b[s.key]; }); }));
    var chart = state.charts[id];
    if (chart && chart.tz === data.timezone && chart.series === series) {
      chart.plot.setData(values);
      return;
    }
    if (chart) chart.plot.destroy();
    var zone = data.timezone;
    var options = {
      width: chartWidth(target), height: 240,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), zone); },
      scales: {y: {range: function (u, min, max) { return [0, Math.max(1, max)]; }}},
      axes: [{}, {values: function (u, ticks) { return ticks.map(function (v) { return Number.isInteger(v) ? v : ""; }); }}],
      series: [{}].concat(series.map(function (s) {
        return {label: s.label, stroke: s.color, width: 2, fill: s.fill, points: {show: data.buckets.length < 60}};
      })),
    };
    state.charts[id] = {plot: new uPlot(options, values, target), tz: zone, series: series};
  }

  var VOLUME = [{key: "inbound", label: "In", color: "#128c4a", fill: "rgba(18,140,74,0.08)"},
                {key: "outbound", label: "Out", color: "#2e6fd8", fill: "rgba(46,111,216,0.06)"}];
  var DELIVERY = [{key: "delivered", label: "Delivered", color: "#067647"},
                  {key: "read", label: "Read", color: "#6941c6"},
                  {key: "failed", label: "Failed", color: "#b42318"}];

  function drawCharts(data) {
    if (typeof uPlot === "undefined") return;
    drawChart("volume-chart", data, VOLUME);
    drawChart("delivery-chart", data, DELIVERY);
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    if (resizing !== null) window.clearTimeout(resizing);
    resizing = window.setTimeout(function () {
      resizing = null;
      Object.keys(state.charts).forEach(function (id) {
        state.charts[id].plot.setSize({width: chartWidth($(id)), height: 240});
      });
    }, 150);
  });

  function choose(period) {
    state.period = period;
    Array.prototype.forEach.call(document.querySelectorAll(".range-buttons button"), function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.period === period));
    });
    customForm.hidden = period !== "custom";
    rangeError.hidden = true;
    if (period === "custom") {
      $("range-from").focus();
      return;
    }
    root.dataset.loaded = "false";
    setStatus("loading", "Loading\u2026");
    load();
  }

  Array.prototype.forEach.call(document.querySelectorAll(".range-buttons button"), function (button) {
    button.addEventListener("click", function () { choose(button.dataset.period); });
  });

  customForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var from = $("range-from").value, to = $("range-to").value;
    if (!from || !to) { rangeError.textContent = "Choose both dates."; rangeError.hidden = false; return; }
    if (to < from) { rangeError.textContent = "The last day must not be before the first."; rangeError.hidden = false; return; }
    rangeError.hidden = true;
    state.from = from; state.to = to; state.bucket = $("range-bucket").value;
    root.dataset.loaded = "false";
    setStatus("loading", "Loading\u2026");
    load();
  });

  var today = new Date();
  var iso = function (d) { return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0"); };
  $("range-to").value = iso(today);
  $("range-from").value = iso(new Date(today.getTime() - 6 * 86400000));

  if (window.AerosticLive) {
    state.live = "connecting";
    window.AerosticLive.on("*", function () { if (state.period === "today") schedule(); });
    if (window.AerosticLive.onStatus) {
      window.AerosticLive.onStatus(function (status) {
        var missed = status === "live" && state.live === "reconnecting";
        state.live = status;
        root.dataset.liveStatus = status;
        if (missed && state.period === "today") schedule();  /* events may have been missed meanwhile */
      });
    }
  } else {
    window.setInterval(function () {
      if (state.period === "today" && !document.hidden) load();
    }, FALLBACK_MS);
  }
  load();
})();
