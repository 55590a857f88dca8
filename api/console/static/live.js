/* The console's live feed: one EventSource to /v1/live for the page (see api/live/stream.py).
 *
 * window.AerosticLive = {
 *   on(type, fn)   handlers by event type ("message.in", "message.out", "message.status", "conversation",
 *                  "contact", "ai", "presence", "campaign", "reset"; "*" for all); fn gets the event object
 *                  {id, type, at, conversation_key, data}. Returns a function that removes the handler.
 *   onStatus(fn)   fn("connecting" | "live" | "reconnecting"), called at once with the current status.
 *   status         the current status;  last: the last event received (or null).
 * }
 * EventSource reconnects by itself and sends the last id it saw (Last-Event-ID), so the server resumes the
 * stream without a gap. When the server refused the stream (429/503 past its limits, 401 signed out), the
 * browser gives up; this file then opens a new one after a pause, from the last event's id.
 * The header's #live-status shows "Live" or "Reconnecting…".
 */
(function () {
  "use strict";
  var handlers = {};
  var statusHandlers = [];
  var source = null;
  var retryTimer = null;
  var retryMs = 2000;
  var api = {
    status: "connecting",
    last: null,
    on: function (type, fn) {
      (handlers[type] = handlers[type] || []).push(fn);
      return function () {
        handlers[type] = (handlers[type] || []).filter(function (f) { return f !== fn; });
      };
    },
    onStatus: function (fn) {
      statusHandlers.push(fn);
      fn(api.status);
    }
  };

  function setStatus(status) {
    if (api.status === status) { return; }
    api.status = status;
    var badge = document.getElementById("live-status");
    if (badge) {
      badge.textContent = status === "live" ? "Live" : status === "connecting" ? "Connecting…" : "Reconnecting…";
      badge.setAttribute("data-status", status);
    }
    statusHandlers.forEach(function (fn) { call(fn, status); });
  }

  function call(fn, value) {
    try { fn(value); } catch (err) { setTimeout(function () { throw err; }); }
  }

  function deliver(message) {
    var event;
    try { event = JSON.parse(message.data); } catch (err) { return; }
    api.last = event;
    (handlers[event.type] || []).forEach(function (fn) { call(fn, event); });
    (handlers["*"] || []).forEach(function (fn) { call(fn, event); });
  }

  function open() {
    retryTimer = null;
    var url = "/v1/live";
    if (api.last && api.last.id) { url += "?last_event_id=" + encodeURIComponent(api.last.id); }
    source = new EventSource(url, { withCredentials: true });
    source.onopen = function () { retryMs = 2000; setStatus("live"); };
    source.onmessage = deliver;
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {  // refused: the browser will not retry by itself
        source.close();
        setStatus("reconnecting");
        if (!retryTimer) { retryTimer = setTimeout(open, retryMs); retryMs = Math.min(retryMs * 2, 30000); }
      } else {
        setStatus("reconnecting");
      }
    };
  }

  window.AerosticLive = api;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { setStatus("connecting"); open(); });
  } else {
    open();
  }
  window.addEventListener("pagehide", function () { if (source) { source.close(); } });
})();
