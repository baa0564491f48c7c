// Event Viewer: local times (UTC on hover), and live updates over server-sent events.
"use strict";

function localizeTimes(root) {
  const format = new Intl.DateTimeFormat(undefined, {
    dateStyle: "medium", timeStyle: "medium",
  });
  root.querySelectorAll("time[datetime]").forEach((el) => {
    if (el.dataset.localized) return;
    const when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) {
      el.textContent = format.format(when);
      el.dataset.localized = "1";
    }
  });
}

function startLive() {
  const status = document.getElementById("live-status");
  if (!status || !status.dataset.stream || !window.EventSource) return;
  const rows = document.getElementById("rows");
  let url = status.dataset.stream;
  if (status.dataset.after) url += (url.includes("?") ? "&" : "?") + "after=" + encodeURIComponent(status.dataset.after);
  const source = new EventSource(url);
  let busy = false;
  source.onopen = () => {
    busy = false;
    status.textContent = "Live: new messages appear here as they happen.";
    status.className = "live on";
  };
  // No slot for this stream (too many open for the project or the server): the
  // server says why and when the browser tries again (its retry delay).
  source.addEventListener("busy", (event) => {
    busy = true;
    status.textContent = `Live updates paused: ${event.data} This page retries by itself.`;
    status.className = "live lost";
  });
  source.addEventListener("message", (event) => {
    if (event.lastEventId) source.lastSeq = event.lastEventId;
    const holder = document.createElement("tbody");
    holder.innerHTML = event.data;
    const row = holder.firstElementChild;
    if (!row || rows.querySelector(`tr[data-id="${row.dataset.id}"]`)) return;
    row.classList.add("new");
    rows.prepend(row);
    localizeTimes(row);
    document.querySelectorAll(".empty").forEach((el) => el.remove());
  });
  source.addEventListener("unavailable", (event) => {
    status.textContent = `${event.data || "The message store is not answering."} Retrying… (nothing is lost)`;
    status.className = "live lost";
  });
  // Signed out (here, in another tab, or the token was revoked): the server ended
  // the stream; reloading lets the page say where to go (the sign-in form).
  source.addEventListener("signedout", () => {
    source.close();
    window.location.reload();
  });
  source.onerror = () => {
    if (!busy) {
      status.textContent = "Live updates lost: reconnecting… (the list may be out of date)";
      status.className = "live lost";
    }
    // A stream that answered an error (503 while the store was down) is not
    // reopened by the browser: reopen it, from the last row shown.
    if (source.readyState === EventSource.CLOSED) {
      if (source.lastSeq) status.dataset.after = source.lastSeq;
      setTimeout(startLive, 5000);
    }
  };
}

// From/Until in the zone the rows are shown in (the browser's): the server
// speaks naive UTC, so convert on the way in and back on submit.
function pad(n) { return String(n).padStart(2, "0"); }

function localFieldValue(utc) {
  const when = new Date(utc + "Z");
  if (isNaN(when)) return null;
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}` +
    `T${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}`;
}

function utcFieldValue(local) {
  const when = new Date(local);  // no zone: the browser's local time
  if (isNaN(when)) return local;
  return when.toISOString().slice(0, 19);
}

function localizeRange() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  const inputs = document.querySelectorAll("input[data-utc]");
  inputs.forEach((input) => {
    if (input.value) {
      const local = localFieldValue(input.value);
      if (local) input.value = local;
    }
    const label = input.closest("label").querySelector(".zone-label");
    if (label) label.textContent = `${label.dataset.name} (${zone})`;
    input.dataset.local = "1";
  });
  if (!inputs.length) return;
  inputs[0].form.addEventListener("submit", () => {
    inputs.forEach((input) => {
      if (input.value && input.dataset.local) {
        input.value = utcFieldValue(input.value);
        delete input.dataset.local;  // a second submit (back button) must not convert twice
      }
    });
  });
}

// On a phone the filters start folded, so the first message is on the first screen.
function foldFilters() {
  const fold = document.getElementById("filters");
  if (fold && window.matchMedia("(max-width: 700px)").matches) fold.open = false;
}

document.addEventListener("DOMContentLoaded", () => {
  foldFilters();
  localizeTimes(document);
  localizeRange();
  startLive();
});
