// The pack's frontend extension: the price on the edit node before Run, the graph's total against
// the daily cap, the node's widgets that are in the way hidden, its text kept after a run, the fal
// sidebar panel, and the Connection node's fields kept free of pasted keys.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { EDIT_NODE } from "./lib/widget_rules.js";
import { CONNECTION_NODE } from "./lib/connection_rules.js";
import { setupConnectionNode, watchConnectionNodes } from "./connection_ui.js";
import { keepNodeText } from "./node_status.js";
import { refreshPrice, setupEditNode, watchEditNodes } from "./node_ui.js";
import { registerPanel, panelState } from "./panel.js";
import { graphPrice, installRunGuard } from "./run_guard.js";

app.registerExtension({
  name: "fal.QwenEdit",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === EDIT_NODE) setupEditNode(nodeType, nodeData, app, api);
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
