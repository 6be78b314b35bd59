// Before a prompt is sent: values the chosen model would refuse, and the graph's price against what is left
// of the daily cap. Wraps app.queuePrompt (what the Run button calls on every frontend checked) and passes
// every argument on.
import { t } from "./lib/i18n.js";
import { capWarning, graphTotal } from "./lib/price.js";
import { EDIT_NODE } from "./lib/widget_rules.js";
import { nodeProblems, pricedNodes, refreshPrice } from "./node_ui.js";

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

// Every value an active edit node holds that its model would refuse, one line each ("Qwen Image Edit Plus
// (fal) #3: num_inference_steps: 1 is out of range for qwen-edit-plus; use 2-100.").
export function refusedValues(app) {
  const nodes = pricedNodes(app).filter((node) => node.type === EDIT_NODE && (node.mode ?? ACTIVE) === ACTIVE);
  return nodes.flatMap((node) => Object.values(nodeProblems(node)).map((why) => `${node.title ?? node.type} #${node.id}: ${why}`));
}

export function installRunGuard(app, api, ask = (text) => window.confirm(text)) {
  const queuePrompt = app.queuePrompt;
  app.queuePrompt = async function (...args) {
    try {
      // the run would stop on the node before any upload or payment; said here, before the prompt is sent
      const refused = refusedValues(app);
      if (refused.length && !ask(t("model.runWarning", { problems: refused.join("\n") }))) return false;
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
