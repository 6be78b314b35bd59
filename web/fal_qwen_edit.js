// The pack's frontend extension: the price on the edit and Multiple Angles nodes before Run, the graph's
// total against the daily cap, the nodes' widgets that are in the way hidden and each model's own ranges,
// their text kept after a run, the fal sidebar panel, and the Connection node's fields kept free of pasted keys.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { ANGLES_NODE, EDIT_NODE } from "./lib/widget_rules.js";
import { CONNECTION_NODE } from "./lib/connection_rules.js";
import { installMessages, setLocaleSource } from "./lib/i18n.js";
import { setupConnectionNode, watchConnectionNodes } from "./connection_ui.js";
import { keepNodeText } from "./node_status.js";
import { loadModels, refreshPrice, setupAnglesNode, setupEditNode, watchEditNodes } from "./node_ui.js";
import { registerPanel, panelState } from "./panel.js";
import { graphPrice, installRunGuard } from "./run_guard.js";

// The language the frontend shows: its Comfy.Locale setting, else the browser's (as the frontend decides).
function frontendLocale() {
  let locale;
  try {
    locale = app.extensionManager?.setting?.get?.("Comfy.Locale") ?? app.ui?.settings?.getSettingValue?.("Comfy.Locale");
  } catch {
    locale = undefined;
  }
  return locale || globalThis.navigator?.language || "en";
}

// The pack's strings from the same GET /i18n answer the frontend merges its custom-node translations from.
async function loadMessages() {
  try {
    const response = await api.fetchApi("/i18n");
    if (response.ok) installMessages(await response.json());
  } catch (error) {
    console.warn("fal: could not load the pack's translations", error);
  }
}

app.registerExtension({
  name: "fal.QwenEdit",
  async init() {
    setLocaleSource(frontendLocale);
    await Promise.all([loadMessages(), loadModels(api)]);  // before any node, badge or panel is drawn
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === EDIT_NODE) setupEditNode(nodeType, nodeData, app, api);
    if (nodeData.name === ANGLES_NODE) setupAnglesNode(nodeType, app, api);
    if (nodeData.name === CONNECTION_NODE) setupConnectionNode(nodeType, app);
  },
  async setup() {
    registerPanel(app, api);
    installRunGuard(app, api);
    watchEditNodes(app, api);
    watchConnectionNodes(app);
    keepNodeText(app, api, (node) => node.type?.startsWith("FalQwen"));
    // tests and scripts read the same figures the badge and the panel show
    globalThis.falQwenEdit = { graphPrice: () => graphPrice(app, api), priceOf: (node) => refreshPrice(node, api),
                               panel: panelState };
  },
});
