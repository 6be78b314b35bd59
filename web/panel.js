// The "fal" sidebar tab: the graph's price and the 24 h spend against the cap, then every job with
// its thumbnails, cost and status (live over ComfyUI's websocket), and per job: Cancel, Fetch
// outputs (free), Copy request id, Add to graph, and the outputs shown large on click.
import { RESULT_NODE, actionsFor, addedNote, costText, mergeJob, mergePage, promptLine, sourceOptions,
         spendFraction, statusLabel, timeAgo } from "./lib/jobs.js";
import { KEY_KINDS, keyLine, modeLine, overridden } from "./lib/keys.js";
import { t } from "./lib/i18n.js";
import { balanceText, spendText } from "./lib/price.js";
import { installPanelStyle, openOverlay } from "./panel_style.js";
import { fetchSpend, graphPrice } from "./run_guard.js";

const JOB_EVENT = "fal_qwen_edit.job";
const PAGE = 30;
const state = { jobs: [], cursor: null, source: "local", note: "", total: null, spend: null, root: null,
                falHistory: null, keys: null, keysNote: "", keysOpen: false, balance: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "style") node.style.cssText = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

async function callJson(api, path, options) {
  const response = await api.fetchApi(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
  return body;
}

async function loadJobs(api, more = false) {
  const query = new URLSearchParams({ limit: String(PAGE), source: state.source });
  if (more && state.cursor) query.set("cursor", state.cursor);
  try {
    const page = await callJson(api, `/fal_qwen_edit/jobs?${query}`);
    state.jobs = more ? mergePage(state.jobs, page.jobs) : mergePage([], page.jobs);
    state.cursor = page.next_cursor;
    state.falHistory = page.fal_history ?? null;
    if (!state.falHistory?.available && state.source !== "local") {  // e.g. the machine moved to a gateway
      state.source = "local";
      await loadJobs(api);
    }
  } catch (error) {
    state.note = t("panel.listFailed", { error: error.message });
  }
}

async function refreshHeader(app, api) {
  [state.total, state.spend, state.balance] = await Promise.all([graphPrice(app, api), fetchSpend(api),
    callJson(api, "/fal_qwen_edit/balance").catch(() => null)]);
}

async function loadKeys(api) {
  try {
    state.keys = await callJson(api, "/fal_qwen_edit/keys");
  } catch (error) {
    state.keys = null;
    state.keysNote = error.message;
  }
}

// Keys typed here go to this machine's ComfyUI server only (saved_keys.ini), never into the graph;
// the field is emptied as soon as the request is sent.
function keysSection(api) {
  const change = async (kind, input, method) => {
    const value = input?.value ?? "";
    if (input) input.value = "";
    try {
      state.keys = method === "POST"
        ? await callJson(api, "/fal_qwen_edit/keys", { method, headers: { "Content-Type": "application/json" },
                                                       body: JSON.stringify({ kind, value }) })
        : await callJson(api, `/fal_qwen_edit/keys?kind=${encodeURIComponent(kind)}`, { method });
      state.keysNote = t(method === "POST" ? "keys.saved" : "keys.cleared");
    } catch (error) {
      state.keysNote = error.message;
    }
    render();
  };
  const rows = KEY_KINDS.map(({ kind, label, secret, placeholder }) => {
    const input = el("input", { class: `fal-qwen-key-input fal-qwen-key-${kind}`, type: secret ? "password" : "text",
      autocomplete: "off", spellcheck: "false", placeholder, style: "flex:1;min-width:0" });
    return el("div", { class: "fal-qwen-key-row", "data-kind": kind, style: "margin-top:4px" },
      el("div", { style: "font-size:11px" }, el("b", {}, `${label}: `),
        el("span", { class: "fal-qwen-key-status" }, keyLine(state.keys, kind)),
        overridden(state.keys, kind) ? ` ${t("keys.overridden")}` : null),
      el("div", { style: "display:flex;gap:4px" }, input,
        el("button", { class: "fal-qwen-key-save", onclick: () => change(kind, input, "POST") }, t("keys.save")),
        state.keys?.[kind]?.saved
          ? el("button", { class: "fal-qwen-key-clear", onclick: () => change(kind, null, "DELETE") }, t("keys.clear")) : null));
  });
  const details = el("details", { class: "fal-qwen-keys", style: "margin-top:6px;font-size:12px" },
    el("summary", { style: "cursor:pointer" }, t("keys.title")),
    el("div", { style: "font-size:11px;opacity:.8" }, t("keys.intro")),
    ...(state.keys ? rows : []),
    el("div", { class: "fal-qwen-keys-mode", style: "font-size:11px;margin-top:4px" }, modeLine(state.keys)),
    state.keysNote ? el("div", { class: "fal-qwen-keys-note", style: "font-size:11px" }, state.keysNote) : null);
  details.open = state.keysOpen;
  details.addEventListener("toggle", () => { state.keysOpen = details.open; });
  return details;
}

function addToGraph(app, job) {
  const node = globalThis.LiteGraph.createNode(RESULT_NODE);
  const canvas = app.canvas;
  const [x, y] = canvas.ds.convertCanvasToOffset([canvas.canvas.clientWidth / 2, canvas.canvas.clientHeight / 2]);
  node.pos = [x - node.size[0] / 2, y - node.size[1] / 2];
  for (const [name, value] of [["request_id", job.request_id], ["endpoint", job.endpoint]]) {
    const widget = node.widgets?.find((w) => w.name === name);
    if (widget && value) { widget.value = value; widget.callback?.(value, canvas, node); }
  }
  (canvas.graph ?? app.graph).add(node);
  canvas.selectNode?.(node);
  app.graph.setDirtyCanvas(true, true);
  state.note = addedNote(job);
  return node;
}

function showLarge(api, job) {
  callJson(api, `/fal_qwen_edit/jobs/${job.request_id}`).then((full) => {
    const urls = full.outputs?.length ? full.outputs : full.thumbnails ?? [];
    openOverlay(urls.length ? urls.map((url) => el("img", { src: api.apiURL(url), alt: t("panel.outputAlt") }))
      : [el("div", { class: "fal-qwen-muted" }, t("panel.noOutputs"))]);
  }).catch((error) => { state.note = error.message; render(); });
}

function jobRow(app, api, job) {
  const act = async (what) => {
    try {
      if (what === "copy") {
        await navigator.clipboard?.writeText(job.request_id).catch(() => {});
        state.note = t("panel.copied", { id: job.request_id });
      } else if (what === "add") {
        addToGraph(app, job);
      } else {
        const answer = await callJson(api, `/fal_qwen_edit/jobs/${job.request_id}/${what}`, { method: "POST" });
        state.jobs = mergeJob(state.jobs, answer.job ?? answer);
        state.note = answer.message ?? "";
      }
    } catch (error) {
      state.note = t("panel.actionFailed", { action: t(`panel.${what}`), error: error.message });
    }
    render();
  };
  const thumbs = (job.thumbnails ?? []).map((url) => el("img", { src: api.apiURL(url), class: "fal-qwen-thumb",
    title: t("panel.showLarge"), onclick: () => showLarge(api, job) }));
  return el("div", { class: `fal-qwen-job fal-qwen-${job.status}`, "data-request-id": job.request_id },
    thumbs.length ? el("div", { class: "fal-qwen-row" }, ...thumbs) : null,
    el("div", {},
      el("b", { class: "fal-qwen-status" }, statusLabel(job)), " · ", job.model ?? job.endpoint ?? "", " · ",
      el("span", { class: "fal-qwen-cost" }, costText(job)), " · ", timeAgo(job.submitted_at),
      job.known_locally === false ? el("span", { class: "fal-qwen-remote" }, t("panel.onlyOnFal")) : null),
    el("div", { class: "fal-qwen-muted" }, promptLine(job)),
    job.error ? el("div", { class: "fal-qwen-error" }, job.error) : null,
    el("div", { class: "fal-qwen-row" }, ...actionsFor(job).map((what) =>
      el("button", { class: `fal-qwen-${what}`, onclick: () => act(what) }, t(`panel.${what}`)))));
}

function render() {
  const { root, app, api } = state;
  if (!root) return;
  const fraction = spendFraction(state.spend);
  const refresh = async () => { await Promise.all([loadJobs(api), refreshHeader(app, api)]); render(); };
  const sources = sourceOptions(state.falHistory);
  const header = el("div", { class: "fal-qwen-head" },
    el("div", { class: "fal-qwen-title" }, el("span", {}, "fal ", el("small", {}, t("panel.subtitle"))),
      el("button", { class: "fal-qwen-refresh", title: t("panel.refresh"), onclick: refresh }, t("panel.refresh"))),
    el("div", { class: "fal-qwen-total", style: "font-weight:600" },
      state.total ? t(state.total.nodes === 1 ? "total.graphOne" : "total.graphMany",
                      { total: state.total.text, nodes: state.total.nodes }) : ""),
    el("div", { class: "fal-qwen-spend" }, spendText(state.spend)),
    balanceText(state.balance) ? el("div", { class: "fal-qwen-balance" }, balanceText(state.balance)) : null,
    fraction == null ? null : el("div", { class: "fal-qwen-bar" },
      el("div", { class: `fal-qwen-spendbar${fraction > 0.9 ? " fal-qwen-near-cap" : ""}`,
                  style: `width:${(fraction * 100).toFixed(1)}%` })),
    // fal's own request history only where it can be read (fal direct with a key): elsewhere no choice
    sources.length > 1 ? el("div", { class: "fal-qwen-row" }, el("span", { class: "fal-qwen-muted" }, t("panel.jobsFrom")),
      el("select", { class: "fal-qwen-source", onchange: async (e) => { state.source = e.target.value; await loadJobs(api); render(); } },
        ...sources.map(([value, text]) => {
          const option = el("option", { value }, text);
          option.selected = value === state.source;
          return option;
        }))) : null,
    state.note ? el("div", { class: "fal-qwen-note fal-qwen-muted" }, state.note) : null,
    keysSection(api));
  const list = el("div", { class: "fal-qwen-jobs" }, ...state.jobs.map((job) => jobRow(app, api, job)),
    state.jobs.length ? null : el("div", { class: "fal-qwen-empty" }, t("panel.noJobsOnMachine")),
    state.cursor ? el("button", { class: "fal-qwen-more", onclick: async () => { await loadJobs(api, true); render(); } }, t("panel.more")) : null);
  root.replaceChildren(el("div", { class: "fal-qwen-panel" }, header, list));
}

export function registerPanel(app, api) {
  Object.assign(state, { app, api });
  installPanelStyle();
  api.addEventListener(JOB_EVENT, (event) => {  // registered at once: unregistered types are dropped
    state.jobs = mergeJob(state.jobs, event.detail);
    render();
  });
  const tab = {
    id: "fal-qwen-edit", icon: "pi pi-images", title: t("panel.tabTitle"), tooltip: t("panel.tabTooltip"),
    type: "custom",
    render: async (root) => {  // runs every time the tab opens
      state.root = root;
      render();
      await Promise.all([loadJobs(api), refreshHeader(app, api), loadKeys(api)]);
      render();
    },
    destroy: () => { state.root = null; },
  };
  if (typeof app.extensionManager?.registerSidebarTab === "function") {
    app.extensionManager.registerSidebarTab(tab);
    return true;
  }
  console.warn(t("panel.noSidebar"));
  return false;
}

export const panelState = state;
