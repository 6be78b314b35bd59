// The edit node's own text after a run: the backend's last progress text on the node (the result, or why the
// run failed and what to do). 1.27 and 1.37 keep a node's progress text until the next run; 1.58 removes it
// from every node when the job ends (executionStore's resetExecutionState → useProgressTextPreviews'
// clearTextPreviews), which would leave a failed node with a red outline and no reason on it. So for the
// pack's nodes the last text is shown again, through the frontend's own progress_text event, where the
// frontend removed it.
const TEXT_WIDGET = "$$node-text-preview";  // the widget core's progress text lives in (all three frontends)
const ENDS = ["execution_success", "execution_error", "execution_interrupted"];

function nodeOf(app, id) {
  const graph = app.canvas?.graph ?? app.graph;
  return graph?.getNodeById?.(id) ?? graph?.getNodeById?.(Number(id)) ?? null;
}

export function keepNodeText(app, api, isOurs, settleMs = 300) {
  const last = new Map();  // node id → {node, text}: the node's last text, from this run or an earlier one
  api.addEventListener("progress_text", (event) => {
    const { nodeId, text } = event.detail ?? {};
    if (nodeId == null || !text || String(nodeId).includes(":")) return;
    const node = nodeOf(app, String(nodeId));
    if (node && isOurs(node)) last.set(String(nodeId), { node, text });
  });
  const restore = () => setTimeout(() => {  // after the frontend's own end-of-job clean-up
    for (const [nodeId, { node, text }] of last) {
      if (nodeOf(app, nodeId) !== node) {  // another workflow now, or the node was removed
        last.delete(nodeId);
        continue;
      }
      if (!node.widgets?.some((w) => w.name === TEXT_WIDGET)) api.dispatchCustomEvent?.("progress_text", { nodeId, text });
    }
  }, settleMs);
  for (const type of ENDS) api.addEventListener(type, restore);
}
