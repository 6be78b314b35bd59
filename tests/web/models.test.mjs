// Each model's own widgets and ranges on the edit node, from the backend's own table: tests/test_web_logic.py
// writes GET /fal_qwen_edit/models' answer (node_values.models_answer) to a file and names it in FAL_MODELS_JSON,
// so these rules are checked against the table the run uses, not a copy of it.
import { current, useLanguage } from "./locale_setup.mjs";
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { canvasHidden, hiddenWidgets } from "../../web/lib/widget_rules.js";
import { flaggedLabel, limitsFor, modelFor, tooltipLine, valueProblem, valueProblems } from "../../web/lib/model_rules.js";

const FILE = process.env.FAL_MODELS_JSON;
const table = FILE ? JSON.parse(readFileSync(FILE, "utf-8")) : null;
const skip = table ? false : "FAL_MODELS_JSON is not set: run through tests/test_web_logic.py";
const QWEN_2 = ["qwen-image-2-edit", "qwen-image-2-pro-edit", "qwen-image-max-edit"];
const OLDER = ["qwen-edit-plus", "qwen-edit-plus-lora", "qwen-edit-2511", "qwen-edit-2511-lora", "qwen-edit",
               "qwen-edit-lora"];
const PER_MODEL = ["num_inference_steps", "guidance_scale", "acceleration", "enable_prompt_expansion"];
const values = (model, more = {}) => ({ model, image_size: "custom", endpoint: "fal-ai/qwen-image-edit-plus", ...more });

afterEach(() => useLanguage("en"));

test("Qwen-Image-2, 2 Pro and Max hide steps, guidance and acceleration; the older models prompt expansion", { skip }, () => {
  for (const model of QWEN_2) {
    const hidden = hiddenWidgets(values(model), table);
    assert.deepEqual(PER_MODEL.filter((name) => hidden.has(name)), ["num_inference_steps", "guidance_scale", "acceleration"], model);
  }
  for (const model of OLDER) {
    const hidden = hiddenWidgets(values(model), table);
    assert.deepEqual(PER_MODEL.filter((name) => hidden.has(name)), ["enable_prompt_expansion"], model);
  }
  // custom with an id the table lacks: the generic rules, every widget shown (fal has the last word)
  const custom = hiddenWidgets(values("custom", { endpoint: "someone/else" }), table);
  assert.deepEqual(PER_MODEL.filter((name) => custom.has(name)), []);
  // custom with a known id is that model, as the backend's spec_for decides
  assert.equal(modelFor(values("custom", { endpoint: " fal-ai/qwen-image-2/edit/ " }), table).name, "qwen-image-2-edit");
  assert.ok(hiddenWidgets(values("custom", { endpoint: "fal-ai/qwen-image-2/edit" }), table).has("num_inference_steps"));
  // a workflow saved before the model input: its endpoint decides
  assert.equal(modelFor({ endpoint: "fal-ai/qwen-image-edit-plus" }, table).name, "qwen-edit-plus");
  // before the table arrives only the value rules apply
  assert.deepEqual([...hiddenWidgets(values("qwen-image-2-edit"), null)], ["endpoint"]);
  assert.ok(canvasHidden(values("qwen-image-2-edit"), { table, vue: true }).has("guidance_scale"));
});

test("a number widget's limits are the model's range inside the schema's own", { skip }, () => {
  const steps = { min: 1, max: 100 }, seed = { min: 0, max: 2 ** 32 - 1 };
  assert.deepEqual(limitsFor("num_inference_steps", table.models["qwen-edit-plus"], steps), { min: 2, max: 100 });
  assert.deepEqual(limitsFor("num_inference_steps", table.models["qwen-edit-2511"], steps), { min: 1, max: 50 });
  assert.deepEqual(limitsFor("seed", table.models["qwen-image-2-edit"], seed), { min: 0, max: 2147483647 });
  assert.deepEqual(limitsFor("seed", table.models["qwen-edit-plus"], seed), seed);  // the schema's 2^32-1 is narrower
  assert.deepEqual(limitsFor("num_images", table.models["qwen-image-max-edit"], { min: 1, max: 6 }), { min: 1, max: 6 });
  assert.deepEqual(limitsFor("num_images", table.models["qwen-edit-plus"], { min: 1, max: 6 }), { min: 1, max: 4 });
  // a widget the model does not take keeps its own limits
  assert.deepEqual(limitsFor("num_inference_steps", table.models["qwen-image-2-edit"], steps), steps);
});

test("a value the chosen model refuses is flagged as the backend words it", { skip }, () => {
  assert.equal(valueProblem("num_inference_steps", 1, table.models["qwen-edit-plus"]),
               "num_inference_steps: 1 is out of range for qwen-edit-plus; use 2-100.");
  assert.equal(valueProblem("num_inference_steps", 1, table.models["qwen-edit-2511"]), null);
  assert.equal(valueProblem("num_inference_steps", 1, table.models["qwen-image-2-edit"]), null);  // not sent
  assert.deepEqual(valueProblems(values("qwen-image-2-pro-edit", { seed: 3000000000, num_images: 6 }), table),
                   { seed: "seed: 3000000000 is out of range for qwen-image-2-pro-edit; use 0-2147483647." });
  assert.deepEqual(valueProblems(values("qwen-image-2-pro-edit", { seed: 3000000000, fal_picks_seed: true }), table), {});
  assert.deepEqual(Object.keys(valueProblems(values("qwen-edit-plus", { num_images: 6, output_format: "webp",
                                                                       acceleration: "high" }), table)),
                   ["num_images", "output_format", "acceleration"]);
  assert.deepEqual(valueProblems(values("qwen-edit-plus", { acceleration: "default", guidance_scale: 0 }), table), {});
  assert.match(valueProblems(values("qwen-edit-2511", { guidance_scale: 0.5 }), table).guidance_scale, /use 1-20\.$/);
  assert.equal(flaggedLabel("steps", "num_inference_steps", table.models["qwen-edit-plus"]), "steps ⚠ 2-100");
});

test("the tooltip says the chosen model's range and default, and what auto makes", { skip }, () => {
  const own = { min: 1, max: 100 };
  assert.equal(tooltipLine("num_inference_steps", table.models["qwen-edit-plus"], own),
               "qwen-edit-plus: 2-100, fal's default 50.");
  assert.equal(tooltipLine("num_inference_steps", table.models["qwen-edit-2511"], own),
               "qwen-edit-2511: 1-50, fal's default 28.");
  assert.equal(tooltipLine("num_inference_steps", table.models["qwen-image-2-edit"], own), null);
  assert.equal(tooltipLine("seed", table.models["qwen-image-max-edit"], { min: 0, max: 2 ** 32 - 1 }),
               "qwen-image-max-edit: 0-2147483647.");
  assert.equal(tooltipLine("enable_prompt_expansion", table.models["qwen-image-2-edit"]),
               "qwen-image-2-edit: fal's default on.");
  assert.equal(tooltipLine("acceleration", table.models["qwen-edit-plus"]),
               "qwen-edit-plus: none, regular, fal's default regular.");
  for (const model of ["qwen-edit-plus", "qwen-edit-2509"]) {
    assert.equal(tooltipLine("image_size", table.models[model]), `auto on ${model}: fal makes square_hd.`);
  }
  for (const model of ["qwen-edit-2511", "qwen-edit-plus-lora", "qwen-edit-2511-lora", ...QWEN_2]) {
    assert.equal(tooltipLine("image_size", table.models[model]),
                 `auto on ${model}: fal takes the output size from the last input image.`);
  }
  useLanguage("zh");
  assert.equal(tooltipLine("num_inference_steps", table.models["qwen-edit-plus"], own), "qwen-edit-plus：2-100，fal 默认 50。");
  assert.equal(valueProblem("num_inference_steps", 1, table.models["qwen-edit-plus"]),
               "num_inference_steps：1 超出 qwen-edit-plus 的范围；请用 2-100。");
  assert.equal(current, "zh");
});
