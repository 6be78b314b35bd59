// The fal Connection node's rule for pasted keys (web/lib/connection_rules.js), on the same cases as the
// backend's looks_like_a_key (tests/test_host_trust.py reads key_cases.json too).
import "./locale_setup.mjs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { cleanBaseUrl, looksLikeAKey, scrubConnection } from "../../web/lib/connection_rules.js";

const CASES = JSON.parse(readFileSync(new URL("./key_cases.json", import.meta.url), "utf8"));

test("a value is a key where a variable's name belongs by the backend's own rule", () => {
  for (const [text, isKey] of CASES) assert.equal(looksLikeAKey(text), isKey, text);
});

test("a pasted key in key_env is cleared and the reason says so, without the key", () => {
  const key = "4f1c2d3e-5a6b-7c8d-9e0f-a1b2c3d4e5f6:0123456789abcdef0123456789abcdef";
  const { changes, reasons } = scrubConnection({ key_env: key, base_url: "" });
  assert.deepEqual(changes, { key_env: "" });
  assert.equal(reasons.length, 1);
  assert.match(reasons[0], /NAME of an environment variable/);
  assert.ok(!reasons[0].includes(key));
});

test("a variable's name and a plain base URL are left alone", () => {
  assert.deepEqual(scrubConnection({ key_env: "FAL_GATEWAY_TOKEN", base_url: "https://gw.example.com/api" }),
                   { changes: {}, reasons: [] });
  assert.deepEqual(scrubConnection({}), { changes: {}, reasons: [] });
});

test("a base URL loses its query string, fragment and user:password@", () => {
  assert.equal(cleanBaseUrl("https://gw.example.com/api?token=sk-123"), "https://gw.example.com/api");
  assert.equal(cleanBaseUrl("https://gw.example.com/api#sk-123"), "https://gw.example.com/api");
  assert.equal(cleanBaseUrl("https://me:s3cret@gw.example.com/api"), "https://gw.example.com/api");
  assert.equal(cleanBaseUrl("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  const { changes, reasons } = scrubConnection({ key_env: "", base_url: "https://gw.example.com/?key=sk-secret-1" });
  assert.deepEqual(changes, { base_url: "https://gw.example.com/" });
  assert.ok(!reasons[0].includes("sk-secret-1") && /query string/.test(reasons[0]));
});

test("the node clears a pasted key when a workflow is loaded and when it is typed, and says why", async () => {
  const { setupConnectionNode } = await import("../../web/connection_ui.js");
  const told = [];
  const app = { extensionManager: { toast: { add: (message) => told.push(message) } } };
  class FakeNode {
    constructor() {
      this.widgets = [{ name: "mode", value: "auto" }, { name: "base_url", value: "" },
                      { name: "key_env", value: "FAL_KEY" }];
    }
    configure(info) { info.widgets_values.forEach((value, i) => { this.widgets[i].value = value; }); }
  }
  setupConnectionNode(FakeNode, app);
  const loaded = new FakeNode();
  loaded.onNodeCreated();
  loaded.configure({ widgets_values: ["gateway", "https://gw.example.com?t=sk-abc", "sk_live_51HxQ2eKb7Zc9yT3mN8pL4aR6"] });
  assert.deepEqual(loaded.widgets.map((w) => w.value), ["gateway", "https://gw.example.com", ""]);
  assert.equal(told.length, 2);
  assert.ok(told.every((t) => t.severity === "warn" && !t.detail.includes("sk_live") && !t.detail.includes("sk-abc")));
  const typed = loaded.widgets.find((w) => w.name === "key_env");
  typed.value = "4f1c2d3e-5a6b:0123456789abcdef";
  typed.callback(typed.value);
  assert.equal(typed.value, "");
  assert.equal(told.length, 3);
});
