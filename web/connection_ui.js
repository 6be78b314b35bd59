// The fal Connection node in the graph: a key pasted where a variable's name belongs is cleared as soon as it
// is typed (the widget's callback, and the watch loop for frontends whose callbacks differ) or loaded with a
// workflow (configure), and a toast says why. The rule itself is in lib/connection_rules.js.
import { CONNECTION_NODE, scrubConnection } from "./lib/connection_rules.js";
import { t } from "./lib/i18n.js";

const FIELDS = ["key_env", "base_url"];

function tell(app, reasons) {
  const toast = app?.extensionManager?.toast;
  for (const reason of reasons) {
    if (toast?.add) toast.add({ severity: "warn", summary: t("connection.toastTitle"), detail: reason, life: 12000 });
    else console.warn(`fal Connection: ${reason}`);
  }
}

export function scrubNode(node, app) {
  const values = {};
  for (const w of node.widgets ?? []) if (FIELDS.includes(w.name)) values[w.name] = w.value;
  const { changes, reasons } = scrubConnection(values);
  for (const [name, value] of Object.entries(changes)) {
    const widget = node.widgets.find((w) => w.name === name);
    if (widget) widget.value = value;
  }
  if (reasons.length) {
    tell(app, reasons);
    node.setDirtyCanvas?.(true, true);
  }
  return reasons;
}

export function setupConnectionNode(nodeType, app) {
  const created = nodeType.prototype.onNodeCreated;
  nodeType.prototype.onNodeCreated = function () {
    const result = created?.apply(this, arguments);
    const node = this;
    for (const widget of this.widgets ?? []) {
      if (!FIELDS.includes(widget.name)) continue;
      const callback = widget.callback;
      widget.callback = function () {
        const out = callback?.apply(this, arguments);
        scrubNode(node, app);
        return out;
      };
    }
    return result;
  };
  const configure = nodeType.prototype.configure;
  nodeType.prototype.configure = function () {
    const result = configure.apply(this, arguments);
    scrubNode(this, app);  // a loaded or pasted workflow that holds a key: cleared before it is saved again
    return result;
  };
}

export function watchConnectionNodes(app, everyMs = 400) {
  setInterval(() => {
    const graphs = new Set([app.graph, app.canvas?.graph].filter(Boolean));
    for (const graph of graphs) {
      for (const node of graph._nodes ?? graph.nodes ?? []) if (node.type === CONNECTION_NODE) scrubNode(node, app);
    }
  }, everyMs);
}
