// Which of the edit node's widgets are in the way for the values it holds now. Hidden, never removed:
// the frontend saves widget values by position, so every widget stays where it is.
import { t } from "./i18n.js";
import { modelHidden } from "./model_rules.js";

export const EDIT_NODE = "FalQwenImageEditPlus";
export const ANGLES_NODE = "FalQwenMultipleAngles";  // width/height and advanced ones as here; no model widget

export const HIDE_RULES = [
  { widgets: ["width", "height"], shownWhen: (values) => values.image_size === "custom" },
  { widgets: ["endpoint"], shownWhen: (values) => values.model === undefined || values.model === "custom" },
];

// `table`: the backend's model table (GET /fal_qwen_edit/models), when it has arrived: the widgets the chosen
// model does not take are hidden too (lib/model_rules.js).
export function hiddenWidgets(values, table = null) {
  const hidden = modelHidden(values, table);
  for (const rule of HIDE_RULES) {
    if (!rule.shownWhen(values)) rule.widgets.forEach((name) => hidden.add(name));
  }
  return hidden;
}

// The inputs the node's schema marks `advanced` (nodes/qwen_edit_node.py; tests/test_web_logic.py checks the
// two agree). ComfyUI 0.10+ sends the mark itself; this list serves the older ones (0.3.64), which do not.
export const ADVANCED_INPUTS = ["fal_picks_seed", "acceleration", "sync_mode", "concurrency", "size_mismatch",
  "timeout", "force_new_job", "endpoint", "image_urls", "input_resize", "upload_format", "start_timeout",
  "priority"];

// On the classic canvas: every widget hidden now, by the rules above and, unless the node shows its advanced
// inputs (its context menu's "Show Advanced") or the frontend's Comfy.Node.AlwaysShowAdvancedWidgets is on,
// the advanced ones. The Vue renderer collapses advanced inputs itself, so there only the rules apply.
export function canvasHidden(values, { advanced = [], showAdvanced = false, alwaysShow = false, vue = false,
                                      table = null } = {}) {
  const hidden = hiddenWidgets(values, table);
  if (!vue && !showAdvanced && !alwaysShow) advanced.forEach((name) => hidden.add(name));
  return hidden;
}

// What a widget's label says about a value that means "decided elsewhere" (where a widget has a label);
// `label` is the widget's own label (its name in the user's language), `name` when it has none.
export function widgetLabel(name, value, label = name) {
  if (name === "start_timeout") {
    if (value === -1) return t("widget.auto", { label });
    if (value === 0) return t("widget.none", { label });
  }
  return name;
}

// A new node (added by the user, not loaded): the default model by name, and a seed that stays put,
// so queueing again after changing a downstream node does not pay for a new edit.
export const NEW_NODE_DEFAULTS = { model: "qwen-edit-plus", control_after_generate: "fixed" };
