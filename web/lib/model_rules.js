// Each model's own widgets, ranges and defaults on the edit node. The facts are the backend's endpoint table
// (GET /fal_qwen_edit/models: nodes/fal/edit/node_values.py, models_answer), the one the run checks its values
// against, never a JavaScript copy; what is here is only how the node shows them: which widgets the chosen
// model does not take (the run drops them, so they are hidden), the limits a number widget gets, a value the
// run would refuse, and the line its tooltip adds.
import { t } from "./i18n.js";

export const MODELS_ROUTE = "/fal_qwen_edit/models";

// Widgets whose limits follow the model: the schema offers the widest of the table (or, for seed, its own
// 0 to 2^32-1), each model takes its own part of it.
export const RANGED = ["num_inference_steps", "guidance_scale", "num_images", "seed"];
// Choice widgets a model may offer fewer options of; acceleration's "default" is never sent.
export const CHOICES = ["output_format", "acceleration"];
const NOT_SENT_VALUES = { acceleration: ["default"] };
// The widgets whose tooltip gains a line for the chosen model.
export const EXPLAINED = [...RANGED, ...CHOICES, "image_size", "enable_prompt_expansion"];

// The model the node's values mean, as the backend's spec_for decides: a model by name; "custom" (or no
// model: a workflow saved before that input) the endpoint id's own model when the table knows the id, else
// the generic rules (every field, the widest ranges: fal's answer has the last word there).
export function modelFor(values, table) {
  if (!table?.models) return null;
  const name = values.model;
  if (name && name !== table.custom) return table.models[name] ?? null;
  const endpoint = String(values.endpoint || table.default_endpoint || "").trim().replace(/^\/+|\/+$/g, "");
  return table.models[table.endpoints?.[endpoint]] ?? table.models[table.custom] ?? null;
}

// The widgets the model does not take: hidden on the node, and never sent.
export function modelHidden(values, table) {
  return new Set(modelFor(values, table)?.not_sent ?? []);
}

function takes(model, name) {
  return Boolean(model) && !model.not_sent?.includes(name);
}

// The model's range for a widget (the seed's from the table's stated seed range), or null.
export function rangeOf(name, model) {
  if (!takes(model, name)) return null;
  return (name === "seed" ? model.seed_range : model.ranges?.[name]) ?? null;
}

// The limits a number widget gets for the model: the model's range inside the schema's own (`own`: the
// widget's options as the schema made them). A widget the model does not take keeps its own.
export function limitsFor(name, model, own) {
  const range = RANGED.includes(name) ? rangeOf(name, model) : null;
  if (!range) return { min: own.min, max: own.max };
  return { min: Math.max(own.min ?? -Infinity, range[0]), max: Math.min(own.max ?? Infinity, range[1]) };
}

export function span(low, high) {
  return `${low}-${high}`;
}

// Why the run would refuse this widget's value on the model (the backend's rule, in the user's language), or
// null. A widget the model does not take is never sent, so no value of it is wrong.
export function valueProblem(name, value, model) {
  if (!takes(model, name) || value === undefined || value === null) return null;
  const range = rangeOf(name, model);
  if (range && RANGED.includes(name) && typeof value === "number" && !(value >= range[0] && value <= range[1])) {
    return t("model.outOfRange", { name, value, model: model.name, range: span(range[0], range[1]) });
  }
  const options = model.enums?.[name];
  if (CHOICES.includes(name) && options && !NOT_SENT_VALUES[name]?.includes(value) && !options.includes(value)) {
    return t("model.notOffered", { name, value, model: model.name, options: options.join(", ") });
  }
  return null;
}

// Every value of the node the chosen model would refuse: {widget name: why}. The seed is not sent when fal
// picks it.
export function valueProblems(values, table) {
  const model = modelFor(values, table);
  const found = {};
  for (const name of [...RANGED, ...CHOICES]) {
    if (name === "seed" && values.fal_picks_seed) continue;
    const why = valueProblem(name, values[name], model);
    if (why) found[name] = why;
  }
  return found;
}

function shown(value) {
  if (value === true) return t("model.on");
  if (value === false) return t("model.off");
  return String(value);
}

// The line a widget's tooltip gains for the chosen model: its range (within the widget's own limits `own`)
// or its choices, and fal's default; for image_size, what "auto" makes on that model. Null: nothing to add.
export function tooltipLine(name, model, own = {}) {
  if (!model || !EXPLAINED.includes(name)) return null;
  if (name === "image_size") {
    const made = model.size_when_omitted;
    return made === "input" ? t("model.autoInput", { model: model.name })
      : t("model.autoPreset", { model: model.name, preset: made });
  }
  if (!takes(model, name) || !model.fields?.includes(name)) return null;
  const fallback = model.defaults?.[name];
  const range = RANGED.includes(name) ? limitsFor(name, model, own) : null;
  const options = CHOICES.includes(name) ? model.enums?.[name] : null;
  const what = range && Number.isFinite(range.min) && Number.isFinite(range.max) ? span(range.min, range.max)
    : options ? options.join(", ") : null;
  if (what && fallback !== undefined) return t("model.rangeDefault", { model: model.name, range: what, default: shown(fallback) });
  if (what) return t("model.range", { model: model.name, range: what });
  if (fallback !== undefined) return t("model.default", { model: model.name, default: shown(fallback) });
  return null;
}

// A flagged widget's label: its own label and the range the model takes.
export function flaggedLabel(label, name, model) {
  const range = rangeOf(name, model);
  const options = model?.enums?.[name];
  const what = range && RANGED.includes(name) ? span(range[0], range[1]) : options ? options.join(", ") : "";
  return t("model.flag", { label, range: what });
}
