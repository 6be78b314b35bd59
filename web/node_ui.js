// The edit node in the graph: its price badge, the widgets that are in the way hidden (never removed),
// and the defaults of a node the user adds. Works on the frontends of ComfyUI 0.3.64 (1.27), 0.12.1
// (1.37) and the newest package; the recipes and their sources are in docs/frontend.md.
import { EDIT_NODE, NEW_NODE_DEFAULTS, hiddenWidgets } from "./lib/widget_rules.js";
import { IMAGE_INPUTS, badgeText, estimateBody } from "./lib/price.js";

const ESTIMATE_ROUTE = "/fal_qwen_edit/estimate";
const SIZES_PROPERTY = "fal_last_input_sizes";  // saved in the workflow: sizes only, a later load prices by them

export function widgetValues(node) {
  const values = {};
  for (const w of node.widgets ?? []) if (w.name && w.name !== "control_after_generate") values[w.name] = w.value;
  return values;
}

function linkOf(graph, id) {
  return graph.links instanceof Map ? graph.links.get(id) : graph.links?.[id];
}

// Sizes the frontend can know: a LoadImage node's loaded picture, else what this node's last run saw.
export function inputSizes(node) {
  const sizes = {}, connected = [];
  const graph = node.graph;
  for (const name of IMAGE_INPUTS) {
    const slot = node.inputs?.find((input) => input.name === name);
    if (!slot || slot.link == null || !graph) continue;
    connected.push(name);
    const link = linkOf(graph, slot.link);
    const origin = link ? graph.getNodeById(link.origin_id) : null;
    const picture = origin?.imgs?.[0];
    if (origin?.type === "LoadImage" && picture?.naturalWidth) {
      sizes[name] = [picture.naturalWidth, picture.naturalHeight, 1];
    } else if (node.properties?.[SIZES_PROPERTY]?.[name]) {
      sizes[name] = node.properties[SIZES_PROPERTY][name];
    }
  }
  return { sizes, connected };
}

// Asks the backend when the question changed; answers for an older question are dropped.
export function refreshPrice(node, api) {
  const { sizes, connected } = inputSizes(node);
  const question = JSON.stringify(estimateBody(widgetValues(node), sizes, connected));
  if (question === node._falQuestion && node._falAnswer) return node._falAnswer;
  node._falQuestion = question;
  node._falAnswer = (async () => {
    let price;
    try {
      const response = await api.fetchApi(ESTIMATE_ROUTE, { method: "POST", body: question,
                                                            headers: { "Content-Type": "application/json" } });
      const answer = await response.json();
      price = response.ok ? answer : { error: answer.error ?? `HTTP ${response.status}` };
    } catch (error) {
      price = { error: String(error) };
    }
    if (node._falQuestion === question) {
      node._falPrice = price;
      node.setDirtyCanvas?.(true, true);
    }
    return price;
  })();
  return node._falAnswer;
}

function setHidden(node, widget, hidden) {
  if (Boolean(widget._falHidden) === hidden) return false;
  widget.hidden = hidden;
  widget.options = widget.options ?? {};
  widget.options.hidden = hidden;  // Vue nodes read this (1.27, 1.37); a proxy onto the same state in 1.58
  if (hidden) {
    // 1.27 still lays hidden widgets out; a zero height closes the gap
    widget._falOwnSize = Object.prototype.hasOwnProperty.call(widget, "computeSize") ? widget.computeSize : null;
    widget.computeSize = () => [0, -4];
  } else if (widget._falOwnSize) {
    widget.computeSize = widget._falOwnSize;
  } else {
    delete widget.computeSize;
  }
  widget._falHidden = hidden;
  return true;
}

export function applyHiding(node) {
  const hidden = hiddenWidgets(widgetValues(node));
  let changed = false;
  for (const widget of node.widgets ?? []) {
    if (["width", "height", "endpoint"].includes(widget.name)) changed = setHidden(node, widget, hidden.has(widget.name)) || changed;
  }
  if (changed && node.computeSize) {
    node.setSize([node.size[0], node.computeSize()[1]]);
    node.setDirtyCanvas?.(true, true);
  }
}

function setWidget(node, name, value) {
  const widget = node.widgets?.find((w) => w.name === name);
  if (widget) widget.value = value;
}

export function setupEditNode(nodeType, nodeData, api) {
  const schemaDefaults = { model: nodeData.input?.optional?.model?.[1]?.default ?? "custom",
                           control_after_generate: "randomize" };
  const created = nodeType.prototype.onNodeCreated;
  nodeType.prototype.onNodeCreated = function () {
    const result = created?.apply(this, arguments);
    for (const [name, value] of Object.entries(NEW_NODE_DEFAULTS)) setWidget(this, name, value);
    const Badge = globalThis.LGraphBadge;
    if (Badge) {
      this.badges = this.badges ?? [];
      this.badges.push(() => new Badge({ text: badgeText(this._falPrice), bgColor: "#35506b" }));
    }
    applyHiding(this);
    return result;
  };
  // A loaded (or pasted) node keeps what it saved; widgets it did not save get the schema's defaults,
  // as without this extension, not the new-node ones.
  const configure = nodeType.prototype.configure;
  nodeType.prototype.configure = function (info) {
    for (const [name, value] of Object.entries(schemaDefaults)) setWidget(this, name, value);
    const result = configure.apply(this, arguments);
    applyHiding(this);
    return result;
  };
  const executed = nodeType.prototype.onExecuted;
  nodeType.prototype.onExecuted = function (output) {
    const sizes = output?.fal_input_sizes?.[0];
    if (sizes) this.properties = { ...(this.properties ?? {}), [SIZES_PROPERTY]: sizes };
    return executed?.apply(this, arguments);
  };
}

export function editNodes(app) {
  const graphs = new Set([app.graph, app.canvas?.graph].filter(Boolean));
  return [...graphs].flatMap((graph) => (graph._nodes ?? graph.nodes ?? []).filter((n) => n.type === EDIT_NODE));
}

// Widget callbacks differ between frontends; one light loop catches every change the same way.
export function watchEditNodes(app, api, everyMs = 400) {
  setInterval(() => {
    for (const node of editNodes(app)) {
      applyHiding(node);
      refreshPrice(node, api);
    }
  }, everyMs);
}
