// Before a prompt is sent: the graph's price against what is left of the daily cap. Wraps
// app.queuePrompt (what the Run button calls on every frontend checked) and passes every argument on.
import { capWarning, graphTotal } from "./lib/price.js";
import { pricedNodes, refreshPrice } from "./node_ui.js";

const ACTIVE = 0;  // LiteGraph mode ALWAYS; 2 (muted) and 4 (bypassed) nodes do not run

export async function fetchSpend(api) {
  try {
    const response = await api.fetchApi("/fal_qwen_edit/spend");
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

export async function graphPrice(app, api) {
  const nodes = pricedNodes(app).filter((node) => (node.mode ?? ACTIVE) === ACTIVE);
  const previews = await Promise.all(nodes.map((node) => refreshPrice(node, api)));
  return graphTotal(previews);
}

export function installRunGuard(app, api, ask = (text) => window.confirm(text)) {
  const queuePrompt = app.queuePrompt;
  app.queuePrompt = async function (...args) {
    try {
      const total = await graphPrice(app, api);
      if (total.nodes) {
        const warning = capWarning(total, await fetchSpend(api));
        if (warning && !ask(warning)) return false;
      }
    } catch (error) {
      console.warn("fal: could not price the graph before queueing", error);
    }
    return queuePrompt.apply(this, args);
  };
}
