// The dashboard: reads the HTTP API with the person's key, follows GET /events, and redraws
// what changed. No framework: the page is small, and every value goes in as text, never as HTML.
//
// Live events come through fetch() and a small Server-Sent Events reader rather than
// EventSource: EventSource cannot send an Authorization header, and the other way to pass a
// key (in the URL) would put the secret in access logs and browser history. The reader keeps
// the last event id and sends it back as Last-Event-ID when it reconnects, as EventSource does.

const STATUSES = ["new", "in_progress", "completed", "error"];
const WORDS = { new: "new", in_progress: "in progress", completed: "completed", error: "error" };
const KEY_STORE = "tasks.apiKey";
const LIST_LIMIT = 50;
const STATS_EVERY_MS = 5000;
const SILENT_STREAM_MS = 35000; // the server sends a keep-alive at least every 15 s
const SCOPES = { read: 1, write: 2, admin: 3 };
const CHART_HEIGHT = 215;
const CHART_SECONDS = 120;
const DIAGNOSIS_EVERY_MS = 3000; // while a task is open: its queue, the workers, a pause change
// A diagnosis state as a word, and the colour of the status it resembles (blue waits as it
// should, amber is held back or busy, red needs a person, green is done).
const STATES = {
  finished: ["finished", "completed"], cancel_requested: ["cancel requested", "in_progress"],
  lease_expired: ["lease expired", "error"], running: ["running", "in_progress"],
  scheduled: ["scheduled", "new"], paused: ["paused", "in_progress"],
  dispatch_pending: ["dispatch pending", "in_progress"], no_workers: ["no workers", "error"],
  queued: ["queued", "new"],
};

const $ = (id) => document.getElementById(id);
const state = {
  key: sessionStorage.getItem(KEY_STORE) || "",
  scope: "read",
  filter: new Set(),
  tasks: new Map(), // id -> task, for the rows shown
  rows: new Map(), // id -> <li>
  loading: null, // events seen while a listing is on its way, applied again after it lands
  counts: null,
  oldest: null, // when the oldest task waiting in `new` got there (ms), or null
  open: null, // the task shown in the detail dialog
  historyRun: 0,
  diagnosisRun: 0,
  diagnosisTimer: 0,
  dispatch: null, // GET /dispatch: {paused, since, actor, reason}
  stopper: null,
  statsTimer: 0,
  chart: null,
  rates: [],
};

// ---------------------------------------------------------------- HTTP

class Problem extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function headers(extra = {}) {
  const out = { Accept: "application/json", ...extra };
  if (state.key) out.Authorization = `Bearer ${state.key}`;
  return out;
}

async function api(path, { method = "GET", body } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method, cache: "no-store",
      headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new Problem(0, "The service cannot be reached right now.");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (response.status === 401) askForKey(state.key ? "That key was not accepted." : "");
  if (!response.ok) {
    throw new Problem(response.status, data?.detail || `${response.status} ${response.statusText}`);
  }
  return { status: response.status, data };
}

const query = (params) => new URLSearchParams(params).toString();

// ---------------------------------------------------------------- keys and start-up

async function start() {
  stop();
  let who;
  try {
    who = (await api("/ui/key")).data;
  } catch (problem) {
    if (problem.status !== 401) setLive("offline", problem.message);
    if (problem.status !== 401) state.statsTimer = setTimeout(start, STATS_EVERY_MS);
    return;
  }
  state.scope = who.scope;
  $("key-panel").hidden = true;
  $("board").hidden = false;
  $("who").hidden = $("forget").hidden = !who.required;
  $("who").textContent = who.required ? `Key: ${who.name} (${who.scope})` : "";
  applyScope();
  state.stopper = new AbortController();
  follow(state.stopper.signal);
  refreshStats();
  if (location.hash.startsWith("#task=")) openTask(location.hash.slice(6));
}

function stop() {
  state.stopper?.abort();
  state.stopper = null;
  clearTimeout(state.statsTimer);
}

function askForKey(message, tone = "bad") {
  stop();
  if (state.key) sessionStorage.removeItem(KEY_STORE);
  state.key = "";
  $("detail").close();
  $("pause-dialog").close();
  $("board").hidden = true;
  $("key-panel").hidden = false;
  $("who").hidden = $("forget").hidden = true;
  state.dispatch = null;
  renderDispatch();
  show($("notice"), "");
  show($("key-message"), message, tone);
  setLive("offline", "Waiting for an API key");
  $("key-input").focus();
}

function applyScope() {
  const level = SCOPES[state.scope] || 1;
  $("create-panel").hidden = level < SCOPES.write;
  const notes = {
    1: "This key can only read: creating tasks needs a write or admin key; retrying, cancelling and pausing dispatch need an admin key.",
    2: "This key can create tasks; retrying, cancelling and pausing dispatch need an admin key.",
  };
  show($("notice"), notes[level] || "");
  if (state.open) renderActions(state.open);
  renderDispatch();
}

// ---------------------------------------------------------------- live events

async function follow(signal) {
  let lastId = "";
  let delay = 3000;
  while (!signal.aborted) {
    const silent = new AbortController();
    const quit = () => silent.abort();
    signal.addEventListener("abort", quit);
    let watchdog = setTimeout(quit, SILENT_STREAM_MS);
    const alive = () => { clearTimeout(watchdog); watchdog = setTimeout(quit, SILENT_STREAM_MS); };
    try {
      const response = await fetch("/events", {
        headers: headers({ Accept: "text/event-stream", ...(lastId && { "Last-Event-ID": lastId }) }),
        cache: "no-store", signal: silent.signal,
      });
      if (response.status === 401) return askForKey("That key was not accepted.");
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      setLive("live");
      loadTasks(); // whatever happened while away; events from now on are merged into it
      for await (const message of messages(response.body, alive)) {
        if (message.retry) delay = message.retry;
        if (message.id) lastId = message.id;
        if (message.event === "transition") {
          try {
            heard(JSON.parse(message.data));
          } catch (error) { // a bug here must show, not pass for a dropped connection
            console.error("dashboard: an event could not be shown", error);
          }
        }
      }
    } catch {
      // a dropped or silent connection: reconnect below, resuming after lastId
    } finally {
      clearTimeout(watchdog);
      signal.removeEventListener("abort", quit);
    }
    if (signal.aborted) return;
    setLive("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** Server-Sent Events from a byte stream: {event, data, id, retry} per message. */
async function* messages(body, onChunk) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let message = { event: "message", data: [], id: "", retry: 0 };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      onChunk();
      buffer += value;
      const lines = buffer.split(/\r?\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (message.data.length) yield { ...message, data: message.data.join("\n") };
          message = { event: "message", data: [], id: "", retry: 0 };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + (line[colon + 1] === " " ? 2 : 1));
        if (field === "event") message.event = value;
        else if (field === "data") message.data.push(value);
        else if (field === "id") message.id = value;
        else if (field === "retry" && /^\d+$/.test(value)) message.retry = Number(value);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function heard(event) {
  state.loading?.push(event.task);
  upsert(event.task);
  nudgeCounts(event);
  if (state.open?.id === event.task_id) {
    if (stamp(event.task.updated_at) >= stamp(state.open.updated_at)) {
      state.open = event.task;
      renderDetail(event.task);
    }
    loadHistory(event.task_id);
    loadDiagnosis(event.task_id);
  }
}

function setLive(kind, why = "") {
  const words = { live: "Live", reconnecting: "Reconnecting…", offline: "Offline", connecting: "Connecting…" };
  $("live").dataset.state = kind;
  $("live").textContent = words[kind];
  $("live").title = why || (kind === "live" ? "Following every change as it happens" : "");
}

// ---------------------------------------------------------------- the list

async function loadTasks() {
  const pending = [];
  state.loading = pending;
  const params = [["limit", LIST_LIMIT], ...[...state.filter].map((s) => ["status", s])];
  try {
    const page = (await api(`/tasks?${query(params)}`)).data;
    if (state.loading !== pending) return; // a newer listing was asked for meanwhile
    state.tasks.clear();
    state.rows.clear();
    $("tasks").replaceChildren();
    for (const task of page.items) upsert(task, true);
    for (const task of pending) upsert(task);
    show($("tasks-message"), "");
  } catch (problem) {
    show($("tasks-message"), `The tasks could not be listed: ${problem.message}`, "bad");
  } finally {
    if (state.loading === pending) state.loading = null;
    $("tasks-empty").hidden = state.tasks.size > 0;
  }
}

/** Show `task` where it belongs (newest first), or drop it if it no longer matches. */
function upsert(task, append = false) {
  const known = state.tasks.get(task.id);
  if (known && stamp(task.updated_at) < stamp(known.updated_at)) return;
  const wanted = state.filter.size === 0 || state.filter.has(task.status);
  if (!wanted) {
    if (known) { state.rows.get(task.id).remove(); state.rows.delete(task.id); state.tasks.delete(task.id); }
    $("tasks-empty").hidden = state.tasks.size > 0;
    return;
  }
  if (known) {
    state.tasks.set(task.id, task);
    const row = state.rows.get(task.id);
    if (known.status !== task.status) flash(row);
    fillRow(row, task);
    return;
  }
  const list = $("tasks");
  const later = append ? null
    : [...list.children].find((li) => newer(task, state.tasks.get(li.dataset.id))) ?? null;
  if (!append && !later && state.tasks.size >= LIST_LIMIT) return; // older than the page shown
  const row = document.createElement("li");
  fillRow(row, task);
  list.insertBefore(row, later);
  state.tasks.set(task.id, task);
  state.rows.set(task.id, row);
  if (!append) flash(row);
  while (state.tasks.size > LIST_LIMIT) {
    const last = list.lastElementChild;
    state.tasks.delete(last.dataset.id); state.rows.delete(last.dataset.id); last.remove();
  }
  $("tasks-empty").hidden = true;
}

/** The row's button stays the same element, so that keyboard focus survives an update. */
function fillRow(row, task) {
  row.dataset.id = task.id;
  let button = row.firstElementChild;
  if (!button) {
    button = el("button", { type: "button", class: "row" });
    button.addEventListener("click", () => openTask(row.dataset.id));
    row.append(button);
  }
  button.replaceChildren(
    badge(task.status),
    el("span", { class: "title" }, task.title),
    el("span", { class: "meta" },
      scheduled(task) ? el("span", { class: "starts" }, timeUntil(task.run_at, "starts in {}", "due now"), " · ") : "",
      task.attempts > 1 ? `attempt ${task.attempts} · ` : "",
      task.source === "amqp" ? "via AMQP · " : "",
      timeAgo(task.updated_at)));
}

/** Waiting for its start time (asked for at creation, still ahead then): worth a word. */
const scheduled = (task) => task.status === "new" && Boolean(task.run_at)
  && stamp(task.run_at) > stamp(task.created_at);

function flash(row) {
  row.classList.remove("changed");
  void row.offsetWidth; // restart the animation
  row.classList.add("changed");
}

const newer = (a, b) => stamp(a.created_at) > stamp(b.created_at)
  || (a.created_at === b.created_at && a.id > b.id);

/** RFC 3339 UTC with the fraction padded to 6 digits, so that strings compare as times. */
const stamp = (iso) => iso.replace(/(?:\.(\d+))?Z$/, (_, f = "") => `.${f.padEnd(6, "0")}Z`);

// ---------------------------------------------------------------- counts and throughput

async function refreshStats() {
  clearTimeout(state.statsTimer);
  refreshDispatch(); // a pause made elsewhere shows within one tick
  try {
    const stats = (await api("/stats")).data;
    state.counts = { ...stats.by_status };
    state.oldest = stats.oldest_new_age_seconds === null ? null
      : Date.now() - stats.oldest_new_age_seconds * 1000;
    renderCounts();
    renderQueues(stats.dispatch_queues);
    drawRates(stats.throughput);
  } catch {
    // the live indicator and the list say what is wrong; try again on the next tick
  }
  if (state.stopper) state.statsTimer = setTimeout(refreshStats, STATS_EVERY_MS);
}

/** Between two readings of /stats, the counts follow the events. */
function nudgeCounts(event) {
  if (!state.counts) return;
  const { from_status: from, to_status: to } = event;
  if (from) state.counts[from] = Math.max(0, (state.counts[from] || 0) - 1);
  state.counts[to] = (state.counts[to] || 0) + 1;
  if (to === "new" && state.oldest == null) state.oldest = Date.parse(event.at);
  if (!state.counts.new) state.oldest = null;
  renderCounts();
}

function renderCounts() {
  for (const status of STATUSES) {
    document.querySelector(`[data-count="${status}"]`).textContent =
      (state.counts?.[status] ?? 0).toLocaleString();
  }
  const oldest = $("oldest");
  if (state.oldest == null) {
    oldest.textContent = "none";
    oldest.removeAttribute("title");
  } else {
    oldest.replaceChildren(timeAgo(new Date(state.oldest).toISOString(), "", true));
  }
}

/** What waits in the dispatch queues for a worker; each queue's figures in the tooltip. */
function renderQueues(queues) {
  $("queues-line").hidden = !queues;
  if (!queues) return;
  const ready = queues.reduce((sum, q) => sum + q.ready, 0);
  const idle = queues.filter((q) => q.consumers === 0).length;
  const text = $("queues");
  text.textContent = `${ready.toLocaleString()} ready`
    + (queues.length > 1 ? ` in ${queues.length} queues` : "")
    + (idle ? ` · ${idle === queues.length ? "no worker consuming" : `${idle} queue(s) without a worker`}` : "");
  text.classList.toggle("bad", idle > 0);
  text.title = queues.map((q) => `${q.queue}: ${q.ready.toLocaleString()} ready, `
    + `${q.consumers} consumer(s)`).join("\n");
}

function drawRates(rates) {
  state.rates = rates;
  const x = rates.map((r) => Date.parse(r.at) / 1000);
  const data = [x, rates.map((r) => r.created_per_second), rates.map((r) => r.finished_per_second)];
  legendAt(rates.length - 1);
  $("chart-note").hidden = rates.length > 0;
  const box = $("chart");
  if (!window.uPlot) {
    box.textContent = "The chart library did not load; the figures above are current.";
    return;
  }
  if (state.chart) { state.chart.setData(data); return; }
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const axis = { stroke: color("--muted"), grid: { stroke: color("--line"), width: 1 },
    ticks: { stroke: color("--line"), width: 1 } };
  state.chart = new window.uPlot({
    width: box.clientWidth, height: CHART_HEIGHT, legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true, range: xRange }, // uPlot pads a lone point by days: not what we want
      y: { range: (u, min, max) => [0, Math.max(1, max * 1.15)] },
    },
    axes: [{ ...axis, space: 80, values: (u, ticks) => ticks.map(clock) }, { ...axis, size: 44 }],
    series: [{},
      { label: "created/s", width: 2, stroke: color("--created"), fill: color("--created-fill") },
      { label: "finished/s", width: 2, stroke: color("--finished"), fill: color("--finished-fill") }],
    hooks: { setCursor: [(u) => legendAt(u.cursor.idx ?? state.rates.length - 1)] },
  }, data, box);
  new ResizeObserver(() => state.chart.setSize({ width: box.clientWidth, height: CHART_HEIGHT }))
    .observe(box);
}

/** Every sample, and at least the last CHART_SECONDS, ending at the newest (or now). */
function xRange() {
  const at = (rate) => Date.parse(rate.at) / 1000;
  const end = state.rates.length ? at(state.rates[state.rates.length - 1]) : Date.now() / 1000;
  const first = state.rates.length ? at(state.rates[0]) : end;
  return [Math.min(first, end - CHART_SECONDS), end];
}

const clock = (seconds) => new Date(seconds * 1000).toLocaleTimeString([], {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
});

function legendAt(i) {
  const rate = state.rates[i];
  $("rate-created").textContent = rate ? rate.created_per_second.toFixed(1) : "–";
  $("rate-finished").textContent = rate ? rate.finished_per_second.toFixed(1) : "–";
  $("rate-at").replaceChildren(rate ? timeAgo(rate.at, "· ") : "");
}

// ---------------------------------------------------------------- one task

async function openTask(id) {
  const dialog = $("detail");
  history.replaceState(null, "", `#task=${id}`);
  show($("actions-message"), "");
  $("reason").value = "";
  try {
    const task = (await api(`/tasks/${encodeURIComponent(id)}`)).data;
    state.open = task;
    renderDetail(task);
    $("detail-history").replaceChildren(el("li", { class: "muted" }, "Loading…"));
    $("diagnosis-state").replaceChildren();
    $("diagnosis-detail").textContent = "Loading…";
    if (!dialog.open) dialog.showModal();
    loadHistory(id);
    loadDiagnosis(id);
    clearInterval(state.diagnosisTimer);
    state.diagnosisTimer = setInterval(() => state.open && loadDiagnosis(state.open.id), DIAGNOSIS_EVERY_MS);
  } catch (problem) {
    history.replaceState(null, "", location.pathname);
    show($("tasks-message"), `That task could not be opened: ${problem.message}`, "bad");
  }
}

function renderDetail(task) {
  $("detail-title").textContent = task.title;
  $("detail-status").replaceChildren(badge(task.status));
  show($("detail-error"), task.error || "", "bad");
  const fields = [
    ["Id", el("code", {}, task.id)], ["Source", task.source], ["Attempts", String(task.attempts)],
    ["Created", timeAgo(task.created_at)],
    ...(task.run_at ? [["Starts", startsAt(task)]] : []),
    ["Started", timeAgo(task.started_at)],
    ["Finished", timeAgo(task.finished_at)], ["Updated", timeAgo(task.updated_at)],
  ];
  $("detail-fields").replaceChildren(...fields.flatMap(([name, value]) =>
    [el("dt", {}, name), el("dd", {}, value)]));
  const description = $("detail-description");
  description.textContent = task.description || "None.";
  description.classList.toggle("muted", !task.description);
  $("detail-payload").textContent = JSON.stringify(task.payload, null, 2);
  renderActions(task);
}

/** The start time as a date and clock, and how far off it is while the task waits for it. */
function startsAt(task) {
  const node = el("span", { id: "detail-starts" }, el("time", { datetime: task.run_at }, exact(task.run_at)));
  if (task.status === "new") node.append(" · ", timeUntil(task.run_at, "in {}", "due now"));
  return node;
}

/** GET /tasks/{id}/diagnosis into the detail: the state as a badge, the sentence beside it. */
async function loadDiagnosis(id) {
  const run = ++state.diagnosisRun;
  try {
    const found = (await api(`/tasks/${encodeURIComponent(id)}/diagnosis`)).data;
    if (run !== state.diagnosisRun || state.open?.id !== id) return;
    const [word, look] = STATES[found.state] || [found.state, "new"];
    const tone = found.state === "finished" ? `s-${found.status}` : `s-${look}`;
    const badgeNode = el("span", { class: `badge ${tone}`, "data-state": found.state }, word);
    $("diagnosis-state").replaceChildren(badgeNode);
    $("diagnosis-detail").textContent = found.detail;
    $("detail-diagnosis").dataset.state = found.state;
  } catch (problem) {
    if (run !== state.diagnosisRun || state.open?.id !== id) return;
    $("diagnosis-state").replaceChildren();
    $("diagnosis-detail").textContent = `Not available right now: ${problem.message}`;
  }
}

async function loadHistory(id) {
  const run = ++state.historyRun;
  try {
    const changes = (await api(`/tasks/${encodeURIComponent(id)}/history`)).data;
    if (run !== state.historyRun || state.open?.id !== id) return;
    $("detail-history").replaceChildren(...changes.map((change) => el("li", { class: `s-${change.to_status}` },
      el("div", { class: "move" },
        change.from_status ? badge(change.from_status) : el("span", { class: "muted" }, "created"),
        el("span", { class: "arrow", "aria-label": "to" }, "→"), badge(change.to_status),
        timeAgo(change.at)),
      el("div", { class: "muted small" }, [
        `attempt ${change.attempt}`,
        change.worker && `worker ${change.worker}`,
        change.actor && `by ${change.actor}`,
      ].filter(Boolean).join(" · ")),
      change.reason ? el("div", { class: "reason" }, change.reason) : "")));
  } catch (problem) {
    if (run === state.historyRun) {
      $("detail-history").replaceChildren(el("li", { class: "bad" }, problem.message));
    }
  }
}

function renderActions(task) {
  const admin = (SCOPES[state.scope] || 1) >= SCOPES.admin;
  const canRetry = task.status === "error";
  const canCancel = task.status === "new" || task.status === "in_progress";
  $("actions").hidden = !admin || !(canRetry || canCancel);
  $("retry").hidden = !canRetry;
  $("cancel").hidden = !canCancel;
  const denied = $("actions-denied");
  denied.hidden = admin || !(canRetry || canCancel);
  denied.textContent = "Retry and cancel need an admin key.";
}

async function act(action) {
  const task = state.open;
  const reason = $("reason").value.trim();
  const buttons = [$("retry"), $("cancel")];
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const done = await api(`/tasks/${task.id}/${action}`, {
      method: "POST", body: reason ? { reason } : {},
    });
    const words = action === "retry" ? "Sent back to new: a worker will take it again."
      : done.status === 202 ? "Its worker is stopping it; it ends in error in a moment."
        : "Cancelled.";
    show($("actions-message"), words, "good");
    $("reason").value = "";
    if (state.open?.id === done.data.id && stamp(done.data.updated_at) >= stamp(state.open.updated_at)) {
      state.open = done.data;
      renderDetail(done.data);
    }
    upsert(done.data);
    loadHistory(task.id);
    loadDiagnosis(task.id);
  } catch (problem) {
    const lead = { 409: "Not possible now: ", 403: "Not allowed: " }[problem.status] || "";
    show($("actions-message"), lead + problem.message, "bad");
    if (problem.status === 403) { state.scope = "write"; applyScope(); }
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// ---------------------------------------------------------------- pausing dispatch

async function refreshDispatch() {
  try {
    state.dispatch = (await api("/dispatch")).data;
  } catch {
    return; // the live indicator says when the service is away; the banner keeps what it knew
  }
  renderDispatch();
}

/** The banner while paused (who, since when, why) with Resume; Pause in the header otherwise. */
function renderDispatch() {
  const dispatch = state.dispatch;
  const admin = (SCOPES[state.scope] || 1) >= SCOPES.admin;
  const paused = Boolean(dispatch?.paused);
  $("paused-banner").hidden = !paused;
  $("pause").hidden = !dispatch || paused || !admin;
  $("resume").hidden = !admin;
  $("resume-denied").hidden = admin;
  if (!paused) return;
  const by = $("paused-by");
  by.replaceChildren();
  if (dispatch.since) by.append("since ", el("time", { datetime: dispatch.since }, exact(dispatch.since)), " (", timeAgo(dispatch.since), ")");
  if (dispatch.actor) by.append(` by ${dispatch.actor}`);
  if (dispatch.reason) by.append(": ", el("q", { id: "paused-reason" }, dispatch.reason));
}

async function switchDispatch(action, body, message) {
  try {
    state.dispatch = (await api(`/dispatch/${action}`, { method: "POST", body })).data;
    show(message, "");
    renderDispatch();
    if (state.open) loadDiagnosis(state.open.id);
    return true;
  } catch (problem) {
    const lead = { 403: "Not allowed: " }[problem.status] || "";
    show(message, `${action === "pause" ? "Not paused" : "Not resumed"}: ${lead}${problem.message}`, "bad");
    if (problem.status === 403) { state.scope = "write"; applyScope(); }
    return false;
  }
}

async function pauseDispatch(event) {
  event.preventDefault();
  const reason = $("pause-reason").value.trim();
  $("pause-confirm").disabled = true;
  try {
    if (await switchDispatch("pause", reason ? { reason } : {}, $("pause-message"))) {
      $("pause-dialog").close();
    }
  } finally {
    $("pause-confirm").disabled = false;
  }
}

async function resumeDispatch() {
  $("resume").disabled = true;
  try {
    await switchDispatch("resume", {}, $("dispatch-message"));
  } finally {
    $("resume").disabled = false;
  }
}

// ---------------------------------------------------------------- creating

async function create(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const message = $("create-message");
  const title = form.title.value.trim();
  if (!title) return show(message, "A title is needed.", "bad", form.title);
  let payload = {};
  const text = form.payload.value.trim();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch (error) {
      return show(message, `The payload is not valid JSON: ${error.message}`, "bad", form.payload);
    }
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      return show(message, 'The payload must be a JSON object, such as {"image_id": 42}.',
        "bad", form.payload);
    }
  }
  const body = { title, payload };
  if (form.description.value.trim()) body.description = form.description.value;
  const at = form.run_at.value;
  const delay = form.delay.value.trim();
  if (at && delay) return show(message, "Give a start time or a delay, not both.", "bad", form.delay);
  if (at) {
    const moment = new Date(at); // a datetime-local value: the person's local time
    if (Number.isNaN(moment.getTime())) return show(message, "The start time is not a valid date and time.", "bad", form.run_at);
    body.run_at = moment.toISOString();
  } else if (delay) {
    const seconds = Number(delay) * Number(form.delay_unit.value);
    if (!Number.isFinite(seconds) || seconds < 0) {
      return show(message, "The delay must be a number, 0 or more.", "bad", form.delay);
    }
    body.delay_seconds = seconds;
  }
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const task = (await api("/tasks", { method: "POST", body })).data;
    form.reset();
    upsert(task);
    const later = scheduled(task) ? `, to start ${exact(task.run_at)}` : "";
    show(message, `Created “${task.title}”${later}.`, "good");
  } catch (problem) {
    show(message, `Not created: ${problem.message}`, "bad");
    if (problem.status === 403) { state.scope = "read"; applyScope(); }
  } finally {
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------- small helpers

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const badge = (status) => el("span", { class: `badge s-${status}` }, WORDS[status] || status);

/** A <time> that says "12 s ago" (kept current by the ticker) with the exact time on hover;
 * with `since`, "12 s" (how long since then). */
function timeAgo(iso, prefix = "", since = false) {
  if (!iso) return el("span", { class: "muted" }, "–");
  const moment = new Date(iso);
  const node = el("time", {
    datetime: iso, "data-at": String(moment.getTime()), "data-text": `${prefix}{}${since ? "" : " ago"}`,
    title: `${moment.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" })} (${iso})`,
  });
  node.textContent = relative(node);
  return node;
}

/** A <time> for a moment to come: `future` ("in {}") while it is ahead, `due` once it is not. */
function timeUntil(iso, future, due) {
  const node = el("time", {
    datetime: iso, "data-at": String(new Date(iso).getTime()), "data-text": future,
    "data-due": due, title: `${exact(iso)} (${iso})`,
  });
  node.textContent = relative(node);
  return node;
}

/** A date and time as this browser's locale writes it, to the second. */
const exact = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });

function relative(node) {
  const ahead = Number(node.dataset.at) - Date.now();
  const until = node.dataset.due !== undefined;
  if (until && ahead < 500) return node.dataset.due;
  const seconds = Math.max(0, Math.round((until ? ahead : -ahead) / 1000));
  let span = seconds < 60 ? `${seconds} s` : seconds < 3600 ? `${Math.floor(seconds / 60)} min`
    : seconds < 2 * 86400 ? `${Math.floor(seconds / 3600)} h` : `${Math.floor(seconds / 86400)} d`;
  const minutes = Math.floor(seconds / 60) % 60; // "in 1 h" would undersell 1 h 59 min
  if (until && seconds >= 3600 && seconds < 2 * 86400 && minutes) span += ` ${minutes} min`;
  return node.dataset.text.replace("{}", span);
}

function tick() {
  for (const node of document.querySelectorAll("time[data-at]")) {
    const text = relative(node);
    if (node.textContent !== text) node.textContent = text;
  }
}

function show(node, text, tone = "", focus = null) {
  node.hidden = !text;
  node.textContent = text;
  node.classList.toggle("bad", tone === "bad");
  node.classList.toggle("good", tone === "good");
  focus?.focus();
}

// ---------------------------------------------------------------- wiring

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("key-input").value.trim();
  $("key-input").value = "";
  sessionStorage.setItem(KEY_STORE, state.key);
  show($("key-message"), "");
  start();
});
$("forget").addEventListener("click", () => askForKey("This tab no longer holds a key.", ""));
$("pause").addEventListener("click", () => {
  $("pause-reason").value = "";
  show($("pause-message"), "");
  $("pause-dialog").showModal();
});
$("pause-form").addEventListener("submit", pauseDispatch);
$("pause-keep").addEventListener("click", () => $("pause-dialog").close());
$("resume").addEventListener("click", resumeDispatch);
$("create-form").addEventListener("submit", create);
$("retry").addEventListener("click", () => act("retry"));
$("cancel").addEventListener("click", () => act("cancel"));
$("detail-close").addEventListener("click", () => $("detail").close());
$("detail").addEventListener("click", (event) => {
  if (event.target === event.currentTarget) event.currentTarget.close(); // the backdrop
});
$("detail").addEventListener("close", () => {
  state.open = null;
  clearInterval(state.diagnosisTimer);
  history.replaceState(null, "", location.pathname);
});
for (const box of document.querySelectorAll(".filter input")) {
  box.addEventListener("change", () => {
    state.filter = new Set([...document.querySelectorAll(".filter input:checked")].map((b) => b.value));
    loadTasks();
  });
}
if (matchMedia("(max-width: 560px)").matches) $("create-panel").open = false; // the list first
setInterval(tick, 1000);
start();
