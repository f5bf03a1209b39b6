// dxflow director admin UI: plain DOM, every value set with textContent (never innerHTML).
"use strict";

const $ = (sel) => document.querySelector(sel);
let timer = null;
let tab = "agents";
let sessions = [];
let generation = 0; // only the latest refresh may render: answers can arrive out of order

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const data = await resp.json().catch(() => ({}));
  if (resp.status === 401) showLogin();
  if (!resp.ok) throw new Error(data.error || `${resp.status} ${resp.statusText}`);
  return data;
}

function showError(err) { $("#error").textContent = err ? String(err.message || err) : ""; }

function when(epoch) {
  if (!epoch) return "–";
  return new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function gib(bytes) { return bytes ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : "–"; }

function confirmAction(text) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

async function act(text, method, path) {
  if (text && !(await confirmAction(text))) return;
  try {
    await api(method, path);
    showError(null);
  } catch (err) {
    showError(err);
  }
  await refresh();
}

async function loadAgents(mine) {
  const state = $("#agent-state").value;
  const agents = await api("GET", "/v1/admin/agents" + (state ? `?state=${encodeURIComponent(state)}` : ""));
  if (mine !== generation) return;
  const rows = agents.map((a) => {
    const base = `/v1/admin/agents/${encodeURIComponent(a.guid)}`;
    const actions = el("td", {});
    if (a.state === "pending") {
      actions.append(el("button", { type: "button", onclick: () => act(null, "POST", `${base}/approve`) }, "Approve"));
    }
    if (a.state === "pending" || a.state === "revoked") {
      actions.append(el("button", { type: "button",
        onclick: () => act(`Deny and remove agent ${a.hostname}?`, "POST", `${base}/deny`) }, "Deny"));
    }
    if (a.state === "registered" || a.state === "pending") {
      actions.append(el("button", { type: "button",
        onclick: () => act(`Revoke agent ${a.hostname}? Its certificate stops working at once.`, "POST",
          `${base}/revoke`) }, "Revoke"));
    }
    return el("tr", { "data-guid": a.guid },
      el("td", {}, a.hostname), el("td", { class: "mono" }, a.guid),
      el("td", { class: `state-${a.state}` }, a.state), el("td", {}, a.ip || "–"),
      el("td", {}, when(a.lastSeen)), el("td", {}, when(a.certNotAfter)), actions);
  });
  $("#agents tbody").replaceChildren(...rows);
  const reg = await api("GET", "/v1/admin/registrations");
  if (mine !== generation) return;
  const full = reg.busiest.filter((b) => b.full).map((b) => b.ip);
  let notice = reg.pending ? `${reg.pending} pending registration(s) of at most ${reg.maxPending}.` : "";
  if (reg.pending >= reg.maxPending) notice += " The cap is reached: new agents are refused until you approve or deny.";
  if (full.length) notice += ` At the per-address cap (${reg.maxPendingPerAddress}): ${full.join(", ")}.`;
  $("#registrations").textContent = notice;
}

// Reachable through an agent tunnel to the director hub (held by this replica or by another one)?
function hubCell(hub) {
  if (!hub || !hub.connected) return el("td", { class: "hub" }, el("span", { class: "badge hub-off" }, "offline"));
  const where = hub.replica ? `through ${hub.replica}` : "through this replica";
  return el("td", { class: "hub", title: `tunnel up since ${when(hub.since)}, ${where}` },
    el("span", { class: "badge hub-on" }, "connected"));
}

async function loadServers(mine) {
  const servers = await api("GET", "/v1/servers");
  if (mine !== generation) return;
  const rows = servers.map((s) => {
    const st = s.stats || {};
    const load = [st.load1, st.load5, st.load15].map((v) => (v === undefined ? "–" : Number(v).toFixed(2)));
    const engine = s.engine && s.engine.port ? `${s.engine.address}:${s.engine.port}` : "–";
    const health = s.engine && s.engine.healthy ? " ✓" : "";
    return el("tr", { "data-server": s.id },
      el("td", {}, s.hostname), el("td", {}, s.ip || "–"), el("td", {}, st.cores ?? "–"),
      el("td", {}, `${gib(st.free_memory)} / ${gib(st.total_memory)}`),
      el("td", {}, st.cpu_usage === undefined ? "–" : `${Number(st.cpu_usage).toFixed(1)} %`),
      el("td", {}, load.join(" / ")),
      el("td", { class: "tags" }, ...(s.tags || []).map((t) => el("span", { class: "tag" }, t))),
      el("td", {}, engine + health), el("td", {}, (s.sessions || []).length), hubCell(s.hub));
  });
  $("#servers tbody").replaceChildren(...rows);
}

function renderSessions() {
  const needle = $("#session-filter").value.trim().toLowerCase();
  const shown = sessions.filter((s) => !needle ||
    [s.id, s.owner, s.hostname].some((v) => String(v || "").toLowerCase().includes(needle)));
  const rows = shown.map((s) => {
    const path = `/v1/sessions/${encodeURIComponent(s.id)}?serverId=${encodeURIComponent(s.serverId)}`;
    return el("tr", { "data-session": s.id },
      el("td", { class: "mono" }, s.id), el("td", {}, s.owner || "–"), el("td", {}, s.hostname),
      el("td", {}, s.type || "–"), el("td", {}, s.state || "–"),
      el("td", {}, el("button", { type: "button",
        onclick: () => act(`Close session ${s.id} of ${s.owner} on ${s.hostname}?`, "DELETE", path) }, "Close")));
  });
  $("#sessions tbody").replaceChildren(...rows);
}

async function loadSessions(mine) {
  const found = await api("GET", "/v1/sessions");
  if (mine !== generation) return;
  sessions = found;
  renderSessions();
}

async function refresh() {
  const mine = ++generation;
  try {
    if (tab === "agents") await loadAgents(mine);
    else if (tab === "servers") await loadServers(mine);
    else await loadSessions(mine);
    if (mine === generation) document.body.dataset.loaded = tab;
  } catch (err) {
    showError(err);
  }
}

function setRefresh(seconds) {
  if (timer) clearInterval(timer);
  timer = seconds > 0 ? setInterval(refresh, seconds * 1000) : null;
  localStorage.setItem("dxflow-refresh", String(seconds));
}

function showTab(name) {
  tab = name;
  for (const button of document.querySelectorAll("nav button")) {
    button.classList.toggle("active", button.dataset.tab === name);
  }
  for (const section of ["agents", "servers", "sessions"]) $(`#${section}`).hidden = section !== name;
  refresh();
}

function showLogin() {
  setRefresh(0);
  $("#app").hidden = true;
  $("#who").hidden = true;
  $("#login").hidden = false;
}

function showApp(who) {
  $("#user").textContent = who.user;
  $("#login").hidden = true;
  $("#who").hidden = false;
  $("#app").hidden = false;
  const saved = Number(localStorage.getItem("dxflow-refresh") || "0");
  $("#refresh").value = String(saved);
  setRefresh(saved);
  showTab(tab);
}

async function start() {
  $("#login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      await api("POST", "/v1/admin/login",
        { userID: form.get("userID"), password: form.get("password"), otp: form.get("otp") });
      $("#login-error").textContent = "";
      event.target.reset();
      showApp(await api("GET", "/v1/auth-health"));
    } catch (err) {
      const generic = err.message === "invalid credentials";
      $("#login-error").textContent = generic ? "Wrong user, password or one-time password." : err.message;
    }
  });
  $("#logout").addEventListener("click", async () => { await api("POST", "/v1/logout"); showLogin(); });
  $("#reload").addEventListener("click", refresh);
  $("#refresh").addEventListener("change", (e) => setRefresh(Number(e.target.value)));
  $("#agent-state").addEventListener("change", refresh);
  $("#session-filter").addEventListener("input", renderSessions);
  for (const button of document.querySelectorAll("nav button")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  try {
    const who = await api("GET", "/v1/auth-health");
    if (who.admin) showApp(who);
    else showLogin();
  } catch {
    showLogin();
  }
}

document.addEventListener("DOMContentLoaded", start);
