// Node's own test runner (node --test tests/web/): the frontend's pure logic.
import "./locale_setup.mjs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { hiddenWidgets } from "../../web/lib/widget_rules.js";
import { badgeText, balanceText, capWarning, estimateBody, graphTotal, spendText } from "../../web/lib/price.js";
import { actionsFor, costText, isRequestId, mergeJob, promptLine, spendFraction, timeAgo } from "../../web/lib/jobs.js";

test("width and height show only for a custom size, endpoint only for a custom model", () => {
  assert.deepEqual([...hiddenWidgets({ image_size: "auto", model: "qwen-edit-plus" })].sort(),
                   ["endpoint", "height", "width"]);
  assert.deepEqual([...hiddenWidgets({ image_size: "custom", model: "custom" })], []);
  assert.deepEqual([...hiddenWidgets({ image_size: "square_hd", model: "custom" })].sort(), ["height", "width"]);
});

test("the estimate question carries only known sizes and the wired inputs", () => {
  const body = estimateBody({ model: "qwen-edit-plus" }, { image_1: [640, 480, 1], image_2: null },
                            ["image_2", "image_1"]);
  assert.deepEqual(body, { widgets: { model: "qwen-edit-plus" }, sizes: { image_1: [640, 480, 1] },
                           connected: ["image_1", "image_2"] });
});

test("the Multiple Angles node's question names the node and its one image input", () => {
  const body = estimateBody({ horizontal_angle: 90 }, { image: [640, 480, 1], image_1: [1, 1, 1] }, ["image"],
                            "FalQwenMultipleAngles");
  assert.deepEqual(body, { node: "FalQwenMultipleAngles", widgets: { horizontal_angle: 90 },
                           sizes: { image: [640, 480, 1] }, connected: ["image"] });
});

test("badges say the backend's figure and when it is assumed", () => {
  assert.equal(badgeText({ badge: "≈$0.031", price_confirmed: true }), "fal ≈$0.031");
  assert.equal(badgeText({ badge: "$0.035/MP", price_confirmed: false }), "fal $0.035/MP (assumed)");
  assert.equal(badgeText(null), "fal: …");
});

test("an unknown price is said plainly, never as a figure, and the total does not add it", () => {
  const unknown = { known: false, usd: null, badge: "price unknown", price_known: false, price_confirmed: false };
  assert.equal(badgeText(unknown), "fal: price unknown");
  const total = graphTotal([{ known: true, usd: 0.03, price_known: true }, unknown]);
  assert.equal(total.usd, 0.03);
  assert.equal(total.unknown, 1);
  assert.equal(total.text, "≈$0.030; 1 of unknown price");
  assert.equal(graphTotal([unknown, { known: false, badge: "$0.03/MP" }]).text,
               "1 priced by size ($0.03/MP); 1 of unknown price");
});

test("the graph total adds known prices and counts the rest, never guessing them", () => {
  const total = graphTotal([{ known: true, usd: 0.03, badge: "≈$0.030" }, { known: true, usd: 0.0612 },
                            { known: false, badge: "$0.03/MP" }]);
  assert.equal(total.usd, 0.0912);
  assert.equal(total.unknown, 1);
  assert.equal(total.text, "≈$0.091 + 1 priced by size ($0.03/MP)");
  assert.equal(graphTotal([]).text, "≈$0.000");
});

test("the cap warning appears only when the known total crosses what is left", () => {
  const spend = { spent_24h_usd: 0.97, daily_cap_usd: 1, remaining_usd: 0.03 };
  assert.equal(capWarning({ usd: 0.03 }, spend), null);
  assert.match(capWarning({ usd: 0.06 }, spend), /only \$0\.030 of your \$1\.000 daily fal cap is left/);
  assert.equal(capWarning({ usd: 100 }, { spent_24h_usd: 3, daily_cap_usd: null, remaining_usd: null }), null);
  assert.equal(spendText(spend), "$0.970 spent in 24 h of $1.000; $0.030 left");
  assert.equal(spendFraction(spend), 0.97);
});

test("the header's balance line: a gateway's credit, an unlimited token, or why there is none", () => {
  const gateway = { mode: "gateway", host: "api.example.com" };
  assert.equal(balanceText({ ...gateway, usd: 12.3456, unlimited: false }), "Gateway api.example.com: $12.346 left");
  assert.equal(balanceText({ ...gateway, usd: null, unlimited: true }), "Gateway api.example.com: unlimited token");
  assert.equal(balanceText({ ...gateway, usd: null, unlimited: false, note: "not offered by this gateway" }),
               "Gateway api.example.com: balance not offered by this gateway");
  assert.equal(balanceText({ ...gateway, usd: null, unlimited: false, note: "the balance could not be asked (ConnectTimeout)" }),
               "Gateway api.example.com: the balance could not be asked (ConnectTimeout)");
  assert.equal(balanceText({ mode: "fal" }), "");  // fal direct: no such call, no line
  assert.equal(balanceText(null), "");
});

test("live job events update in place and keep the newest first", () => {
  let jobs = mergeJob([], { request_id: "a", status: "running", submitted_at: 10 });
  jobs = mergeJob(jobs, { request_id: "b", status: "running", submitted_at: 20 });
  jobs = mergeJob(jobs, { request_id: "a", status: "done", thumbnails: ["/t"] });
  assert.deepEqual(jobs.map((j) => [j.request_id, j.status]), [["b", "running"], ["a", "done"]]);
  assert.equal(jobs[1].submitted_at, 10);
});

test("actions: cancel while running, fetch for a result not on this machine, never a new job", () => {
  assert.deepEqual(actionsFor({ status: "running" }), ["copy", "cancel", "add"]);
  assert.deepEqual(actionsFor({ status: "done", known_locally: false, thumbnails: [] }), ["copy", "fetch", "add"]);
  assert.deepEqual(actionsFor({ status: "done", known_locally: true, thumbnails: ["/t"] }), ["copy", "add"]);
  assert.deepEqual(actionsFor({ status: "failed" }), ["copy"]);
});

test("costs say whether they are billed or estimated; request ids are UUIDs", () => {
  assert.equal(costText({ cost_usd_billed: 0.0312, cost_usd_estimate: 0.03 }), "$0.031 billed");
  assert.equal(costText({ cost_usd_estimate: 0.03 }), "≈$0.030 est.");
  assert.equal(costText({}), "cost unknown");
  assert.ok(isRequestId("9c08e7d8-312c-402d-a691-c207a9cb8121"));
  assert.ok(!isRequestId("../../etc/passwd"));
  assert.equal(timeAgo(100, 190), "2 min ago");
  assert.equal(timeAgo(100, 130), "30 s ago");
  assert.equal(promptLine({ prompt: "a  b\nc" }), "a b c");
});

test("on the classic canvas advanced inputs hide unless the node or the setting shows them; Vue keeps its own", async () => {
  const { canvasHidden } = await import("../../web/lib/widget_rules.js");
  const values = { image_size: "auto", model: "qwen-edit-plus" };
  const advanced = ["timeout", "endpoint"];
  assert.deepEqual([...canvasHidden(values, { advanced })].sort(), ["endpoint", "height", "timeout", "width"]);
  assert.deepEqual([...canvasHidden(values, { advanced, showAdvanced: true })].sort(), ["endpoint", "height", "width"]);
  assert.deepEqual([...canvasHidden(values, { advanced, alwaysShow: true })].sort(), ["endpoint", "height", "width"]);
  assert.deepEqual([...canvasHidden(values, { advanced, vue: true })].sort(), ["endpoint", "height", "width"]);
});

test("start_timeout's automatic and no-deadline values say so in its label", async () => {
  const { widgetLabel } = await import("../../web/lib/widget_rules.js");
  assert.equal(widgetLabel("start_timeout", -1), "start_timeout (auto)");
  assert.equal(widgetLabel("start_timeout", 0), "start_timeout (none)");
  assert.equal(widgetLabel("start_timeout", 120), "start_timeout");
  assert.equal(widgetLabel("timeout", -1), "timeout");
});

test("money is rounded one way everywhere: the header's spend and a job's cost agree", async () => {
  const { usd } = await import("../../web/lib/price.js");
  const spent = { spent_24h_usd: 0.0056, daily_cap_usd: 5, remaining_usd: 4.9944 };
  assert.equal(spendText(spent), "$0.006 spent in 24 h of $5.000; $4.994 left");
  assert.equal(costText({ cost_usd_billed: 0.0056 }), "$0.006 billed");
  assert.equal(usd(0.0056), "$0.006");
});

test("fal's history is offered only where it can be read", async () => {
  const { sourceOptions } = await import("../../web/lib/jobs.js");
  assert.deepEqual(sourceOptions({ available: false, reason: "a gateway" }).map(([v]) => v), ["local"]);
  assert.deepEqual(sourceOptions(null).map(([v]) => v), ["local"]);
  assert.deepEqual(sourceOptions({ available: true }).map(([v]) => v), ["local", "all", "fal"]);
});

test("Add to graph says what the new node needs to reach the job", async () => {
  const { addedNote } = await import("../../web/lib/jobs.js");
  assert.match(addedNote({ connection: { kind: "gateway", host: "gw.example" }, default_connection: true }),
               /running it fetches this job's outputs/);
  assert.match(addedNote({ connection: null }), /running it fetches/);
  const other = addedNote({ connection: { kind: "gateway", host: "gw.example" }, default_connection: false });
  assert.match(other, /went through a gateway \(gw\.example\)/);
  assert.match(other, /fal Connection node/);
});
