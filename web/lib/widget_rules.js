// Which of the edit node's widgets are in the way for the values it holds now. Hidden, never removed:
// the frontend saves widget values by position, so every widget stays where it is.
export const EDIT_NODE = "FalQwenImageEditPlus";

export const HIDE_RULES = [
  { widgets: ["width", "height"], shownWhen: (values) => values.image_size === "custom" },
  { widgets: ["endpoint"], shownWhen: (values) => values.model === undefined || values.model === "custom" },
];

export function hiddenWidgets(values) {
  const hidden = new Set();
  for (const rule of HIDE_RULES) {
    if (!rule.shownWhen(values)) rule.widgets.forEach((name) => hidden.add(name));
  }
  return hidden;
}

// A new node (added by the user, not loaded): the default model by name, and a seed that stays put,
// so queueing again after changing a downstream node does not pay for a new edit.
export const NEW_NODE_DEFAULTS = { model: "qwen-edit-plus", control_after_generate: "fixed" };
