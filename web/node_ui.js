// The edit node (and the Multiple Angles node) in the graph: its price badge, the widgets that are in the way hidden (never removed), each
// model's own limits, flags and tooltips (lib/model_rules.js), and the defaults of a node the user adds. Works
// on the frontends of ComfyUI 0.3.64 (1.27), 0.12.1 (1.37) and the newest package, in the classic canvas and
// (1.58) the Vue renderer; the recipes and their sources are in docs/frontend.md.
import { ADVANCED_INPUTS, EDIT_NODE, NEW_NODE_DEFAULTS, canvasHidden, widgetLabel } from "./lib/widget_rules.js";
import { EXPLAINED, MODELS_ROUTE, RANGED, flaggedLabel, limitsFor, modelFor, tooltipLine,
         valueProblems } from "./lib/model_rules.js";
import { nodeText } from "./lib/i18n.js";
import { IMAGE_INPUTS, PRICED_NODES, badgeText, estimateBody } from "./lib/price.js";

const ESTIMATE_ROUTE = "/fal_qwen_edit/estimate";
const SIZES_PROPERTY = "fal_last_input_sizes";  // saved in the workflow: sizes only, a later load prices by them
const PRICE_CELL = "fal_price_revision";        // not saved: a non-enumerable key (see priceCell)
const ALWAYS_SHOW_ADVANCED = "Comfy.Node.AlwaysShowAdvancedWidgets";
const PER_FRAME = "one edit per image_1 frame";  // batch_mode's second choice (nodes/fal/edit/node_values.py)
let advancedInputs = ADVANCED_INPUTS;
let schemaTooltips = {};  // the schema's own tooltip of each input (English), where the locales lack one
let modelTable = null;    // GET /fal_qwen_edit/models: each model's fields, ranges and defaults

// The backend's model table, read once before any node is drawn (fal_qwen_edit.js's init). Without it (an
// older backend, a failed request) the node shows every widget, as before, and the run still checks.
export async function loadModels(api) {
  try {
    const response = await api.fetchApi(MODELS_ROUTE);
    if (response.ok) modelTable = await response.json();
  } catch (error) {
    console.warn("fal: could not read the model table", error);
  }
  return modelTable;
}

// What the chosen model would refuse on this node: {widget name: why} (empty before the table arrives).
export function nodeProblems(node) {
  return modelTable ? valueProblems(widgetValues(node), modelTable) : {};
}

export function widgetValues(node) {
  const values = {};
  for (const w of node.widgets ?? []) if (w.name && w.name !== "control_after_generate") values[w.name] = w.value;
  return values;
}

// Sizes the frontend can know: a LoadImage node's loaded picture, else what this node's last run saw.
// A picture's frame count is not known (an animated PNG, GIF or WebP loads as a batch of frames), so where
// it decides the price (image_1 in per-frame mode) only the last run's figure is used.
// isInputConnected/getInputNode are LiteGraph's own in all three frontends (1.58 deprecates `input.link`).
export function inputSizes(node) {
  const sizes = {}, connected = [];
  if (!node.graph) return { sizes, connected };
  const perFrame = node.widgets?.find((w) => w.name === "batch_mode")?.value === PER_FRAME;
  for (const name of PRICED_NODES.get(node.type) ?? IMAGE_INPUTS) {
    const slot = node.inputs?.findIndex((input) => input.name === name) ?? -1;
    if (slot < 0 || !node.isInputConnected(slot)) continue;
    connected.push(name);
    const origin = node.getInputNode(slot);
    const picture = origin?.imgs?.[0];
    if (origin?.type === "LoadImage" && picture?.naturalWidth && !(perFrame && name === "image_1")) {
      sizes[name] = [picture.naturalWidth, picture.naturalHeight, 1];
    } else if (node.properties?.[SIZES_PROPERTY]?.[name]) {
      sizes[name] = node.properties[SIZES_PROPERTY][name];
    }
  }
  return { sizes, connected };
}

// The badge's revision counter. The classic canvas calls a badge function on every frame; the Vue renderer
// (1.58) calls it inside a Vue computed, again only when a reactive value it read changes. There node state
// lives in a reactive store: `node.properties` is a reactive proxy, so a counter kept on it is such a value,
// as a price revision is for core's price badges (systems/badgeSystem.ts, useNodePricing's revision ref).
// The key is non-enumerable: the workflow (JSON of the properties) never carries it. Where properties are a
// plain object (older frontends) the counter is plain too, and the canvas needs nothing more.
function priceCell(node) {
  const properties = node.properties;
  if (!properties || typeof properties !== "object") return null;
  if (!Object.prototype.hasOwnProperty.call(properties, PRICE_CELL)) {
    Object.defineProperty(properties, PRICE_CELL, { value: { revision: 0 }, enumerable: false, configurable: true,
                                                    writable: true });
  }
  return properties[PRICE_CELL];
}

// Asks the backend when the question changed; answers for an older question are dropped.
export function refreshPrice(node, api) {
  const { sizes, connected } = inputSizes(node);
  const question = JSON.stringify(estimateBody(widgetValues(node), sizes, connected, node.type));
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
      const cell = priceCell(node);
      if (cell) cell.revision += 1;  // the Vue renderer re-runs the badge function
      node.setDirtyCanvas?.(true, true);
    }
    return price;
  })();
  return node._falAnswer;
}

function priceBadge(node, api) {
  const Badge = globalThis.LGraphBadge;
  return () => {
    void priceCell(node)?.revision;  // read: the Vue renderer runs this again when it changes
    // Widget values live in a reactive store in 1.58: reading them here (the question) makes a widget
    // change run this again at once in the Vue renderer. A question asked before costs nothing.
    refreshPrice(node, api);
    return new Badge({ text: badgeText(node._falPrice), bgColor: "#35506b" });
  };
}

function setting(app, id) {
  try {
    return app?.extensionManager?.setting?.get?.(id) ?? app?.ui?.settings?.getSettingValue?.(id);
  } catch {
    return undefined;
  }
}

function setHidden(widget, hidden) {
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

// `widget.advanced` is what LiteGraph's node menu looks at for "Show Advanced"/"Hide Advanced" (which
// toggles `node.showAdvanced`, saved with the node) in 1.27, 1.37 and 1.58 (where a runtime write gates
// only the canvas: the Vue renderer keeps the schema's mark and its own "Show advanced inputs").
function markAdvanced(widget, advanced) {
  if (widget._falAdvanced === advanced) return;
  widget.advanced = advanced;
  widget._falAdvanced = advanced;
}

// A widget's label: its own (the name in the user's language), what a value decided elsewhere means
// (start_timeout's auto/none), and, when the chosen model would refuse the value, a warning with its range.
// The label is what both renderers draw on the widget's row (1.58 keeps it in the reactive widget store).
function setLabel(widget, flaggedFor) {
  const own = widget._falLabel !== undefined ? widget._falLabel ?? widget.name : widget.label ?? widget.name;
  const special = widgetLabel(widget.name, widget.value, own);
  const base = special === widget.name ? own : special;
  const label = flaggedFor ? flaggedLabel(base, widget.name, flaggedFor) : base;
  if (label === own && widget._falLabel === undefined) return;
  if (widget._falLabel === undefined) widget._falLabel = widget.label ?? null;
  const wanted = label === own ? widget._falLabel ?? undefined : label;
  if (widget.label !== wanted) widget.label = wanted;
}

// A number widget's limits follow the model: the frontend's own arrows, drag and typed values stay inside
// them, and "randomize" picks inside them (it reads options.min/max when it runs, in all three frontends). A
// value already outside is left as it is and flagged: a saved value never changes behind the user's back.
// A new options object, not a write into the old one: 1.58's Vue renderer reads the widget store's options,
// which an assignment updates (BaseWidget's options setter) and a write into the object does not.
function setLimits(widget, model) {
  const options = widget.options ?? {};
  if (!widget._falOwnLimits) widget._falOwnLimits = { min: options.min, max: options.max };
  const { min, max } = limitsFor(widget.name, model, widget._falOwnLimits);
  if (options.min === min && options.max === max) return;
  widget.options = { ...options, min, max };
}

// The classic canvas reads widget.tooltip when the pointer rests on the widget (1.27, 1.37, 1.58: NodeTooltip,
// "widget.tooltip ?? translated"); 1.58's Vue renderer copies it into the widget store when the widget is
// registered (deriveWidgetRenderState), so there the widget is registered again, which keeps its state and
// refreshes that copy.
function setTooltip(node, widget, model) {
  if (!EXPLAINED.includes(widget.name)) return;
  if (widget._falOwnTooltip === undefined) widget._falOwnTooltip = widget.tooltip ?? null;
  const line = tooltipLine(widget.name, model, widget._falOwnLimits ?? widget.options ?? {});
  const base = nodeText(`${EDIT_NODE}.inputs.${widget.name}.tooltip`) ?? schemaTooltips[widget.name] ?? "";
  const wanted = line ? [base, line].filter(Boolean).join("\n") : widget._falOwnTooltip ?? undefined;
  if (widget.tooltip === wanted) return;
  widget.tooltip = wanted;
  if (globalThis.LiteGraph?.vueNodesMode === true && node.graph && node.id != null && node.id !== -1) {
    try {
      widget.setNodeId?.(node.id);
    } catch (error) {
      console.warn("fal: could not refresh a widget's tooltip", error);
    }
  }
}

export function advancedShown(node, app) {
  return Boolean(node.showAdvanced) || setting(app, ALWAYS_SHOW_ADVANCED) === true;
}

// The node as its values and the chosen model want it: widgets in the way hidden, the model's limits, values it
// would refuse flagged, tooltips that say its range.
export function applyHiding(node, app) {
  const vue = globalThis.LiteGraph?.vueNodesMode === true;
  const alwaysShow = setting(app, ALWAYS_SHOW_ADVANCED) === true;
  const values = widgetValues(node);
  // The model rules are the edit node's: the Multiple Angles node has no model widget (and one model).
  const table = node.type === EDIT_NODE ? modelTable : null;
  const hidden = canvasHidden(values, { advanced: advancedInputs, showAdvanced: Boolean(node.showAdvanced),
                                        alwaysShow, vue, table });
  const model = table ? modelFor(values, table) : null;
  const problems = table ? valueProblems(values, table) : {};
  let changed = false;
  for (const widget of node.widgets ?? []) {
    if (!widget.name) continue;
    if (advancedInputs.includes(widget.name)) markAdvanced(widget, !alwaysShow);
    changed = setHidden(widget, hidden.has(widget.name)) || changed;
    if (model && RANGED.includes(widget.name)) setLimits(widget, model);
    if (widget.name === "start_timeout" || problems[widget.name] || widget._falLabel !== undefined) {
      setLabel(widget, problems[widget.name] ? model : null);
    }
    if (model) setTooltip(node, widget, model);
  }
  if (changed && !vue && node.computeSize) {  // the Vue renderer sizes nodes by their DOM
    node.setSize([node.size[0], node.computeSize()[1]]);
    node.setDirtyCanvas?.(true, true);
  }
}

function setWidget(node, name, value) {
  const widget = node.widgets?.find((w) => w.name === name);
  if (widget) widget.value = value;
}

// The inputs the schema marks advanced (ComfyUI 0.10+), else the list kept for older ones.
function markedAdvanced(nodeData) {
  const inputs = { ...nodeData.input?.required, ...nodeData.input?.optional };
  const marked = Object.entries(inputs).filter(([, spec]) => spec?.[1]?.advanced).map(([name]) => name);
  return marked.length ? marked : ADVANCED_INPUTS;
}

function addPriceBadge(node, api) {
  if (!globalThis.LGraphBadge) return;
  node.badges = node.badges ?? [];
  node.badges.push(priceBadge(node, api));
}

// A run's input sizes, kept with the node: a later load prices by them.
function keepInputSizes(nodeType) {
  const executed = nodeType.prototype.onExecuted;
  nodeType.prototype.onExecuted = function (output) {
    const sizes = output?.fal_input_sizes?.[0];
    if (sizes) this.properties = { ...(this.properties ?? {}), [SIZES_PROPERTY]: sizes };
    return executed?.apply(this, arguments);
  };
}

// The Multiple Angles node: the same price badge, a new node's seed that stays put, and the same hiding:
// width/height only for a custom size, the advanced inputs (named as on the edit node) when asked. It has
// no model or endpoint widget, so no other rule touches it.
export function setupAnglesNode(nodeType, app, api) {
  const created = nodeType.prototype.onNodeCreated;
  nodeType.prototype.onNodeCreated = function () {
    const result = created?.apply(this, arguments);
    setWidget(this, "control_after_generate", NEW_NODE_DEFAULTS.control_after_generate);
    addPriceBadge(this, api);
    applyHiding(this, app);
    return result;
  };
  const configure = nodeType.prototype.configure;
  nodeType.prototype.configure = function (info) {
    const result = configure.apply(this, arguments);
    applyHiding(this, app);
    return result;
  };
  keepInputSizes(nodeType);
}

export function setupEditNode(nodeType, nodeData, app, api) {
  advancedInputs = markedAdvanced(nodeData);
  const inputs = { ...nodeData.input?.required, ...nodeData.input?.optional };
  schemaTooltips = Object.fromEntries(Object.entries(inputs).map(([name, spec]) => [name, spec?.[1]?.tooltip ?? ""]));
  const schemaDefaults = { model: nodeData.input?.optional?.model?.[1]?.default ?? "custom",
                           control_after_generate: "randomize" };
  const created = nodeType.prototype.onNodeCreated;
  nodeType.prototype.onNodeCreated = function () {
    const result = created?.apply(this, arguments);
    for (const [name, value] of Object.entries(NEW_NODE_DEFAULTS)) setWidget(this, name, value);
    addPriceBadge(this, api);
    applyHiding(this, app);
    return result;
  };
  // A loaded (or pasted) node keeps what it saved; widgets it did not save get the schema's defaults,
  // as without this extension, not the new-node ones.
  const configure = nodeType.prototype.configure;
  nodeType.prototype.configure = function (info) {
    for (const [name, value] of Object.entries(schemaDefaults)) setWidget(this, name, value);
    const result = configure.apply(this, arguments);
    applyHiding(this, app);
    return result;
  };
  keepInputSizes(nodeType);
}

// Every node of the graph that shows a price (the edit nodes and the Multiple Angles nodes).
export function pricedNodes(app) {
  const graphs = new Set([app.graph, app.canvas?.graph].filter(Boolean));
  return [...graphs].flatMap((graph) => (graph._nodes ?? graph.nodes ?? []).filter((n) => PRICED_NODES.has(n.type)));
}

// Widget callbacks differ between frontends, a LoadImage's picture arrives when it arrives, the renderer
// and the settings can change: one light loop catches every change the same way.
export function watchEditNodes(app, api, everyMs = 400) {
  setInterval(() => {
    for (const node of pricedNodes(app)) {
      applyHiding(node, app);
      refreshPrice(node, api);
    }
  }, everyMs);
}
