// The fal panel's Keys section: what it says about each key (never the key, which it never gets).
import "./locale_setup.mjs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { KEY_KINDS, keyLine, modeLine, overridden } from "../../web/lib/keys.js";

const status = {
  fal: { set: true, source: "saved from ComfyUI (/home/a/.config/comfyui-fal-qwen-edit/saved_keys.ini)", saved: true },
  gateway: { set: true, source: "environment variable FAL_GATEWAY_TOKEN", saved: true },
  gateway_url: { set: true, source: "environment variable FAL_GATEWAY_URL", saved: false, host: "gw.example.com" },
  mode: { in_use: "gateway" },
};

test("each kind says whether it is set and where from", () => {
  assert.deepEqual(KEY_KINDS.map((k) => k.kind), ["fal", "gateway", "gateway_url"]);
  assert.match(keyLine(status, "fal"), /^set: saved from ComfyUI/);
  assert.equal(keyLine(status, "gateway_url"), "gw.example.com (environment variable FAL_GATEWAY_URL)");
  assert.equal(keyLine({ fal: { set: false } }, "fal"), "not set");
  assert.equal(keyLine(null, "fal"), "unknown");
});

test("a saved key that the environment overrides is said to be unused", () => {
  assert.equal(overridden(status, "gateway"), true);
  assert.equal(overridden(status, "fal"), false);
  assert.equal(overridden(status, "gateway_url"), false);
});

test("the mode line names the mode in use or why none is ready", () => {
  assert.equal(modeLine(status), "Edits without a fal Connection node use: gateway");
  assert.equal(modeLine({ mode: { in_use: "fal" } }), "Edits without a fal Connection node use: fal direct");
  assert.equal(modeLine({ mode: { in_use: "", problem: "No fal key found." } }), "Not ready: No fal key found.");
});
