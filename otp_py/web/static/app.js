// otp_py's web observer: draws the tree the server pushes (server-sent events), keeps
// a timeline of its reports, and sends the operator's actions back. Plain script, no
// build step, no library. Everything the tree says (ids, reasons, tracebacks, logs) is
// put in the page as text (textContent), never as markup.
"use strict";

(function () {
  const STATES = {
    running: { icon: "\u2714", label: "running" },
    restarting: { icon: "\u21BB", label: "restarting" },
    stopped: { icon: "\u25A0", label: "stopped" },
    ignored: { icon: "\u2298", label: "ignored" },
  };
  const EVENT_LABELS = {
    ChildStarted: ["\u25B6", "started"],
    ChildExited: ["\u25FC", "exited"],
    ChildTerminated: ["\u25A0", "stopped"],
    ChildStartFailed: ["\u2716", "start failed"],
    ChildIgnored: ["\u2298", "ignored"],
    RestartScheduled: ["\u25F7", "restart scheduled"],
    IntensityExceeded: ["\u26A0", "gave up"],
    SupervisorStarting: ["\u25B7", "supervisor starting"],
    SupervisorStarted: ["\u25B6", "supervisor started"],
    SupervisorExited: ["\u25FC", "supervisor exited"],
    ChildUnstoppable: ["\u26A0", "unstoppable"],
    OutputDropped: ["\u26A0", "output dropped"],
  };
  const MAX_EVENTS = 300;

  const $ = (id) => document.getElementById(id);
  const treeBox = $("tree");
  const eventsList = $("events");
  const filter = $("filter");
  const toast = $("toast");

  let offset = 0; // server clock minus ours, seconds
  let root = null;
  let events = [];
  let selected = null;
  const cards = new Map(); // path -> element (a supervisor's box or a child's card)

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "\u2013";
    seconds = Math.max(0, seconds);
    if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
    const m = Math.floor(seconds / 60);
    if (m < 60) return m + " min " + Math.floor(seconds % 60) + " s";
    const h = Math.floor(m / 60);
    if (h < 48) return h + " h " + (m % 60) + " min";
    return Math.floor(h / 24) + " d " + (h % 24) + " h";
  }

  function clock(at) {
    const d = new Date(at * 1000);
    const pad = (n, w) => String(n).padStart(w || 2, "0");
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      "." + pad(d.getMilliseconds(), 3);
  }

  function now() { return Date.now() / 1000 + offset; }

  function under(path, subtree) {
    return !subtree || path === subtree || path.startsWith(subtree + "/");
  }

  // ---------------------------------------------------------------- the tree

  function stateOf(node) {
    return STATES[node.state] || { icon: "?", label: node.state || "unknown" };
  }

  function lastExitText(node) {
    const last = node.last_exit;
    if (!last) return "\u2013";
    return last.reason + (last.outcome ? " (" + last.outcome + ")" : "");
  }

  function setFact(card, name, text) {
    const slot = card.querySelector('[data-fact="' + name + '"]');
    if (slot && slot.textContent !== text) slot.textContent = text;
  }

  function fact(name, label) {
    return el("div", { class: "fact fact-" + name },
      el("dt", { text: label }), el("dd", { "data-fact": name }));
  }

  function makeChild(node) {
    const card = el("article", { class: "child", "data-path": node.path });
    const pick = el("button", { type: "button", class: "pick" },
      el("span", { class: "state-icon", "aria-hidden": "true" }),
      el("span", { class: "child-id", text: node.id }));
    card.append(
      el("h3", {}, pick),
      el("p", { class: "state-line" },
        el("span", { class: "state-text", "data-fact": "state" }),
        el("span", { class: "kind", "data-fact": "kind" })),
      el("dl", { class: "facts" },
        fact("status", "status"), fact("pid", "pid"), fact("uptime", "uptime"),
        fact("restarts", "restarts"), fact("last", "last exit")));
    card.addEventListener("click", () => select(node.path));
    return card;
  }

  function makeSupervisor(node, isRoot) {
    const box = el("section", { class: "sup" + (isRoot ? " root" : ""), "data-path": node.path });
    const heading = el(isRoot ? "h2" : "h3", { class: "sup-title" },
      el("span", { class: "state-icon", "aria-hidden": "true" }),
      el("span", { class: "sup-id", text: node.id }));
    const meter = el("meter", { min: "0", max: "1", low: "0.5", high: "0.8", optimum: "0",
      value: "0", "data-fact": "meter" });
    const gauge = el("div", { class: "gauge" },
      el("span", { class: "gauge-label", "data-fact": "budget" }), meter);
    box.append(
      el("header", { class: "sup-head" }, heading,
        el("p", { class: "sup-facts" },
          el("span", { class: "badge", "data-fact": "strategy" }),
          el("span", { class: "intensity", "data-fact": "intensity" }),
          el("span", { class: "state-text", "data-fact": "state" })),
        gauge),
      el("p", { class: "note", "data-fact": "note", hidden: true }),
      el("div", { class: "children" }),
      el("p", { class: "more", "data-fact": "more", hidden: true }));
    box.querySelector(".sup-title").addEventListener("click", (e) => {
      e.stopPropagation();
      if (!isRoot) select(node.path);
    });
    return box;
  }

  function updateCard(card, node) {
    const st = stateOf(node);
    for (const name of Object.keys(STATES)) card.classList.toggle("state-" + name, node.state === name);
    card.classList.toggle("abnormal", !!(node.last_exit && node.last_exit.abnormal));
    card.classList.toggle("selected", selected === node.path);
    const icon = card.querySelector(".state-icon");
    if (icon.textContent !== st.icon) icon.textContent = st.icon;
    setFact(card, "state", st.label);
    card.dataset.state = node.state || "";
    card.dataset.pid = node.pid === null || node.pid === undefined ? "" : String(node.pid);
    card.dataset.restarts = String(node.restarts ?? "");
    card.dataset.started = node.started_at ? String(node.started_at) : "";
    const upText = node.started_at && node.state === "running"
      ? duration(now() - node.started_at) : "\u2013";
    if (node.kind === "supervisor") {
      setFact(card, "strategy", node.strategy || "");
      setFact(card, "intensity", node.intensity || "");
      const meter = card.querySelector('[data-fact="meter"]');
      const budget = node.budget;
      if (budget === null || budget === undefined) {
        meter.hidden = true;
        setFact(card, "budget", "restart budget: no limit");
      } else {
        meter.hidden = false;
        meter.value = Math.min(1, budget);
        const pct = Math.round(budget * 100) + "%";
        meter.textContent = pct;
        setFact(card, "budget", "restart budget used: " + pct);
        meter.setAttribute("aria-label", "restart budget of " + node.path + " used: " + pct);
      }
      const note = card.querySelector('[data-fact="note"]');
      note.hidden = !node.note;
      note.textContent = node.note ? "\u26A0 " + node.note : "";
      const more = card.querySelector('[data-fact="more"]');
      more.hidden = !node.more;
      if (node.more) {
        const parts = Object.entries(node.more.states).map(([s, n]) => n + " " + s);
        more.textContent = "\u2026 and " + node.more.count + " more (" + parts.join(", ") + ")";
      }
      const pick = card.querySelector(".sup-title");
      pick.title = node.restarts !== null && node.restarts !== undefined
        ? node.restarts + " restarts" : "";
    } else {
      setFact(card, "kind", node.backend || "");
      setFact(card, "pid", node.pid === null || node.pid === undefined ? "\u2013" : String(node.pid));
      setFact(card, "uptime", upText);
      setFact(card, "restarts", String(node.restarts ?? "\u2013"));
      setFact(card, "last", lastExitText(node));
      const status = card.querySelector(".fact-status");
      status.hidden = !node.status;
      setFact(card, "status", node.status || "");
      const pick = card.querySelector(".pick");
      pick.setAttribute("aria-label", node.path + ": " + st.label + ", pid " +
        (node.pid ?? "none") + ", " + (node.restarts ?? 0) + " restarts; show details");
    }
  }

  function place(container, index, child) {
    const at = container.children[index];
    if (at !== child) container.insertBefore(child, at || null);
  }

  function render(node, container, index, isRoot, seen) {
    const isSup = node.kind === "supervisor";
    let card = cards.get(node.path);
    if (card && (card.classList.contains("sup") !== isSup)) {
      card.remove();
      card = null;
    }
    if (!card) {
      card = isSup ? makeSupervisor(node, isRoot) : makeChild(node);
      cards.set(node.path, card);
    }
    seen.add(node.path);
    place(container, index, card);
    updateCard(card, node);
    if (isSup) {
      const box = card.querySelector(".children");
      const kids = node.children || [];
      kids.forEach((kid, i) => render(kid, box, i, false, seen));
      while (box.children.length > kids.length) box.lastChild.remove();
    }
  }

  function drawTree(message) {
    offset = message.now - Date.now() / 1000;
    root = message.root;
    const seen = new Set();
    const empty = treeBox.querySelector(".empty");
    if (empty) empty.remove();
    render(root, treeBox, 0, true, seen);
    while (treeBox.children.length > 1) treeBox.lastChild.remove();
    for (const path of [...cards.keys()]) if (!seen.has(path)) cards.delete(path);
    treeBox.setAttribute("aria-busy", "false");
    const info = message.tree || {};
    $("tree-title").textContent = "tree " + (info.id || root.id);
    document.title = (info.id || root.id) + " \u2013 otp_py observer";
    drawSummary(info);
    drawFilterOptions();
    if (selected && !cards.has(selected)) closeDetails();
  }

  function count(node, acc) {
    for (const kid of node.children || []) {
      if (kid.kind === "supervisor") count(kid, acc);
      else acc[kid.state] = (acc[kid.state] || 0) + 1;
    }
    return acc;
  }

  function drawSummary(info) {
    if (!root) return;
    const states = count(root, {});
    const parts = Object.entries(states).map(([s, n]) => n + " " + s);
    const up = root.started_at ? ", up " + duration(now() - root.started_at) : "";
    $("summary").textContent = (info.running === false ? "ended" : "pid " + (info.pid ?? "?") + up) +
      " \u2022 " + (parts.join(", ") || "no children");
  }

  function drawFilterOptions() {
    const paths = [];
    const walk = (node) => {
      if (node.kind === "supervisor") {
        paths.push(node.path);
        (node.children || []).forEach(walk);
      }
    };
    walk(root);
    const have = [...filter.options].slice(1).map((o) => o.value);
    if (have.join("\n") === paths.join("\n")) return;
    const keep = filter.value;
    while (filter.options.length > 1) filter.remove(1);
    for (const p of paths) filter.append(el("option", { value: p, text: p }));
    if (keep && paths.includes(keep)) filter.value = keep;
  }

  function tick() {
    for (const card of cards.values()) {
      if (card.classList.contains("sup")) continue;
      const started = parseFloat(card.dataset.started);
      if (card.dataset.state === "running" && started) {
        setFact(card, "uptime", duration(now() - started));
      }
    }
    if (root) drawSummary({ pid: undefined, ...lastInfo });
  }
  let lastInfo = {};

  function flash(path) {
    const card = cards.get(path);
    if (!card) return;
    card.classList.remove("flash");
    void card.offsetWidth; // start the animation again
    card.classList.add("flash");
    card.dataset.crashes = String((parseInt(card.dataset.crashes || "0", 10)) + 1);
  }

  // ---------------------------------------------------------------- the timeline

  function eventRow(event) {
    let [icon, label] = EVENT_LABELS[event.type] || ["\u2022", event.type];
    if (event.type === "ChildExited" && event.abnormal) { icon = "\u2716"; label = "crashed"; }
    return el("li", { class: "event ev-" + event.type + (event.abnormal ? " abnormal" : ""),
      "data-path": event.path },
    el("time", { datetime: new Date(event.at * 1000).toISOString(), text: clock(event.at) }),
    el("span", { class: "ev-kind" }, el("span", { "aria-hidden": "true", text: icon + " " }), label),
    el("span", { class: "ev-text", text: event.text }));
  }

  function drawEvents() {
    const subtree = filter.value;
    const rows = [];
    for (let i = events.length - 1; i >= 0 && rows.length < MAX_EVENTS; i--) {
      if (under(events[i].path, subtree)) rows.push(eventRow(events[i]));
    }
    eventsList.replaceChildren(...rows);
    if (!rows.length) eventsList.append(el("li", { class: "event empty", text: "no events yet" }));
  }

  function addEvent(event) {
    events.push(event);
    if (events.length > 2 * MAX_EVENTS) events = events.slice(-MAX_EVENTS);
    if (under(event.path, filter.value)) {
      const empty = eventsList.querySelector(".empty");
      if (empty) empty.remove();
      eventsList.prepend(eventRow(event));
      while (eventsList.children.length > MAX_EVENTS) eventsList.lastChild.remove();
    }
  }

  function onReport(event) {
    addEvent(event);
    const card = cards.get(event.path);
    if ((event.type === "ChildExited" && event.abnormal) || event.type === "ChildStartFailed" ||
        event.type === "IntensityExceeded") {
      flash(event.path);
    }
    if (card && !card.classList.contains("sup")) {
      // Shown at once; the picture that follows (SETTLE later) has the rest (the pid).
      if (event.type === "ChildStarted") {
        card.dataset.state = "running";
        setFact(card, "state", STATES.running.label);
        if (event.restarts !== undefined) {
          setFact(card, "restarts", String(event.restarts));
          card.dataset.restarts = String(event.restarts);
        }
      } else if (event.type === "ChildExited" || event.type === "ChildTerminated") {
        setFact(card, "last", event.text.replace(/^.*?exited: |^.*?terminated [^:]*: /, ""));
      }
    }
    if (selected && event.path === selected) refreshDetailsSoon();
  }

  filter.addEventListener("change", drawEvents);

  // ---------------------------------------------------------------- details

  let detailsTimer = null;

  function refreshDetailsSoon() {
    if (detailsTimer) return;
    detailsTimer = setTimeout(() => { detailsTimer = null; if (selected) loadDetails(selected); }, 300);
  }

  function select(path) {
    selected = path;
    for (const [p, card] of cards) card.classList.toggle("selected", p === path);
    $("details").hidden = false;
    $("details-title").textContent = path;
    loadDetails(path);
    if (window.matchMedia("(max-width: 900px)").matches) $("details").scrollIntoView();
  }

  function closeDetails() {
    selected = null;
    $("details").hidden = true;
    for (const card of cards.values()) card.classList.remove("selected");
  }
  $("details-close").addEventListener("click", closeDetails);

  async function loadDetails(path) {
    let reply;
    try {
      const response = await fetch("api/child?path=" + encodeURIComponent(path),
        { credentials: "same-origin" });
      reply = await response.json();
    } catch (err) {
      reply = { ok: false, error: String(err) };
    }
    if (selected !== path) return;
    const facts = $("details-facts");
    const history = $("details-history");
    const logs = $("details-logs");
    if (!reply.ok) {
      facts.replaceChildren(el("div", { class: "fact" }, el("dt", { text: "error" }),
        el("dd", { text: reply.error })));
      history.replaceChildren();
      logs.replaceChildren();
      return;
    }
    const c = reply.child;
    const st = stateOf(c);
    const rows = [
      ["state", st.icon + " " + st.label],
      ["kind", c.kind === "supervisor" ? "supervisor" : c.backend],
      ["pid", c.pid ?? "\u2013"],
      ["uptime", c.started_at && c.state === "running" ? duration(now() - c.started_at) : "\u2013"],
      ["restarts", c.restarts ?? "\u2013"],
      ["restart", c.restart],
      ["shutdown", c.shutdown],
      [c.kind === "supervisor" ? "strategy" : "runs", c.kind === "supervisor" ? c.strategy : c.target],
      ["last exit", lastExitText(c)],
    ];
    if (c.status) rows.splice(1, 0, ["status", c.status]);
    for (const [role, probe] of Object.entries(c.probes || {})) {
      rows.push([role, probe.probe + " (" + probe.timing + "): " + (probe.summary || "")]);
    }
    facts.replaceChildren(...rows.map(([k, v]) => el("div", { class: "fact" },
      el("dt", { text: k }), el("dd", { text: String(v ?? "\u2013") }))));
    const isProcess = c.backend === "process" || c.backend === "command";
    document.querySelector('.signal').hidden = !isProcess || c.kind === "supervisor";
    const exits = (c.history || []).slice().reverse();
    history.replaceChildren(...exits.map((h) => {
      const item = el("li", { class: h.abnormal ? "abnormal" : "" },
        el("p", {},
          el("span", { "aria-hidden": "true", text: (h.abnormal ? "\u2716 " : "\u25FC ") }),
          el("time", { text: clock(h.at) }), " ",
          el("strong", { text: h.reason }),
          el("span", { class: "muted", text: (h.uptime !== null ? " after " + duration(h.uptime) + " up" : "") +
            (h.delay ? "; restarted after " + duration(h.delay) : "") })));
      if (h.traceback) {
        item.append(el("details", {}, el("summary", { text: "traceback" }),
          el("pre", { class: "trace", text: h.traceback })));
      }
      if (h.stderr) {
        item.append(el("details", {}, el("summary", { text: "stderr tail" }),
          el("pre", { class: "trace", text: h.stderr })));
      }
      return item;
    }));
    if (!exits.length) history.append(el("li", { class: "muted", text: "no exits yet" }));
    const blocks = [];
    for (const stream of ["stdout", "stderr"]) {
      const log = (c.logs || {})[stream] || { lines: [] };
      const body = log.note ? el("p", { class: "muted", text: log.note })
        : el("pre", { class: "log", tabindex: "0", "aria-label": stream + " of " + path,
          text: log.lines.length ? log.lines.join("\n") : "(nothing yet)" });
      blocks.push(el("section", { class: "log-block" },
        el("h4", { text: stream + (log.file ? " \u2013 last " + log.lines.length +
          (log.lines.length === 1 ? " line" : " lines") : "") }), body));
      if (log.note) break; // (the same reason for both streams)
    }
    logs.replaceChildren(...blocks);
    for (const pre of logs.querySelectorAll("pre.log")) pre.scrollTop = pre.scrollHeight;
  }

  // ---------------------------------------------------------------- actions

  let toastTimer = null;
  function say(text, bad) {
    toast.textContent = text;
    toast.classList.toggle("bad", !!bad);
    toast.classList.add("shown");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => toast.classList.remove("shown"), 5000);
  }

  async function act(op, path) {
    const body = { op: op, path: path };
    if (op === "signal") {
      body.signal = $("signal-name").value;
      body.group = $("signal-group").checked;
    }
    try {
      const response = await fetch("api/action", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      const reply = await response.json().catch(() => ({ ok: false, error: response.statusText }));
      say(reply.ok ? (reply.message || "done") : "refused: " + reply.error, !reply.ok);
    } catch (err) {
      say("the request failed: " + err, true);
    }
    if (selected === path) refreshDetailsSoon();
  }

  const dialog = $("confirm");
  let pending = null;
  function confirmStop(path) {
    pending = path;
    $("confirm-title").textContent = "Stop " + path + "?";
    $("confirm-text").textContent = "It stays stopped (its supervisor will not restart it) " +
      "until someone starts it again.";
    if (dialog.showModal) dialog.showModal(); else dialog.setAttribute("open", "");
    $("confirm-cancel").focus();
  }
  $("confirm-cancel").addEventListener("click", () => { pending = null; dialog.close(); });
  $("confirm-ok").addEventListener("click", () => {
    const path = pending;
    pending = null;
    dialog.close();
    if (path) act("terminate", path);
  });

  for (const button of document.querySelectorAll(".actions button[data-op]")) {
    button.addEventListener("click", () => {
      if (!selected) return;
      const op = button.dataset.op;
      if (op === "terminate") confirmStop(selected);
      else act(op, selected);
    });
  }

  // ---------------------------------------------------------------- the stream

  const conn = $("connection");
  function connection(text, cls, icon) {
    conn.className = "conn " + cls;
    conn.replaceChildren(el("span", { "aria-hidden": "true", text: icon + " " }), text);
  }

  function connect() {
    const stream = new EventSource("api/stream", { withCredentials: true });
    stream.addEventListener("hello", (e) => {
      const message = JSON.parse(e.data);
      lastInfo = message.tree || {};
      events = message.events || [];
      drawTree(message);
      drawEvents();
      connection("live", "conn-live", "\u25CF");
    });
    stream.addEventListener("tree", (e) => {
      const message = JSON.parse(e.data);
      lastInfo = message.tree || {};
      drawTree(message);
    });
    stream.addEventListener("report", (e) => onReport(JSON.parse(e.data)));
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED) {
        connection("disconnected: reload the page", "conn-lost", "\u2716");
      } else {
        connection("reconnecting\u2026", "conn-wait", "\u25CC");
      }
    });
  }

  setInterval(tick, 1000);
  connect();
})();
