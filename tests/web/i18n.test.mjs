// The pack's frontend strings per language: whole templates, English for what a language lacks.
import { current, languages, localeAnswer, useLanguage } from "./locale_setup.mjs";
import { test, afterEach } from "node:test";
import assert from "node:assert/strict";
import { format, installMessages, pickLanguage, t } from "../../web/lib/i18n.js";
import { badgeText, capWarning, graphTotal, spendText } from "../../web/lib/price.js";
import { addedNote, costText, statusLabel, timeAgo } from "../../web/lib/jobs.js";
import { KEY_KINDS, modeLine } from "../../web/lib/keys.js";
import { widgetLabel } from "../../web/lib/widget_rules.js";

afterEach(() => useLanguage("en"));

test("the language is Comfy.Locale's, by its first part when the pack lacks the region, else English", () => {
  assert.ok(languages.includes("en") && languages.includes("zh"));
  assert.equal(pickLanguage("zh", ["en", "zh"]), "zh");
  assert.equal(pickLanguage("zh-CN", ["en", "zh"]), "zh");
  assert.equal(pickLanguage("ZH", ["en", "zh"]), "zh");
  assert.equal(pickLanguage("fr", ["en", "zh"]), "en");
  assert.equal(pickLanguage(undefined, ["en", "zh"]), "en");
});

test("Chinese templates keep Chinese word order, with the figures in their places", () => {
  useLanguage("zh");
  assert.equal(spendText({ spent_24h_usd: 0.97, daily_cap_usd: 1, remaining_usd: 0.03 }),
               "24 小时内已花费 $0.970，每日上限 $1.000，剩余 $0.030");
  assert.equal(badgeText({ badge: "$0.035/MP", price_confirmed: false }), "fal $0.035/MP（估计）");
  assert.equal(badgeText({ badge: "price unknown", price_known: false }), "fal：暂无已知价格");
  assert.match(capWarning({ usd: 0.06 }, { spent_24h_usd: 0.97, daily_cap_usd: 1, remaining_usd: 0.03 }),
               /^本次运行预计花费 \$0\.060，但你的 fal 每日上限 \$1\.000 只剩 \$0\.030/);
  assert.equal(graphTotal([{ known: true, usd: 0.03 }, { known: false, badge: "$0.02/MP" }]).text,
               "≈$0.030，另有 1 个按尺寸计价（$0.02/MP）");
  assert.equal(costText({ cost_usd_estimate: 0.03 }), "约 $0.030（估算）");
  assert.equal(statusLabel({ status: "done" }), "已完成");
  assert.equal(timeAgo(100, 190), "2 分钟前");
  assert.equal(KEY_KINDS[0].label, "fal 密钥");
  assert.equal(modeLine({ mode: { in_use: "fal" } }), "未接 fal 连接节点的编辑使用：fal 直连");
  assert.equal(widgetLabel("start_timeout", -1, "排队超时"), "排队超时（自动）");
  assert.match(addedNote({ connection: { kind: "gateway", host: "gw.example" }, default_connection: false }),
               /经网关（gw\.example）提交/);
  useLanguage("en");
  assert.equal(KEY_KINDS[0].label, "fal key");  // read again in the language of the moment
});

test("a key a language lacks comes from English; one no language has shows itself", () => {
  const answer = localeAnswer();
  delete answer.zh.falQwenEdit.panel.refresh;
  installMessages(answer);
  try {
    useLanguage("zh");
    assert.equal(t("panel.refresh"), "Refresh");
    assert.equal(t("panel.more"), "更多");
    assert.equal(t("no.such.key"), "no.such.key");
  } finally {
    installMessages(localeAnswer());
  }
});

test("placeholders are filled by name; an unknown one is left for the eye", () => {
  assert.equal(format("{a} of {b}", { a: 1, b: "x" }), "1 of x");
  assert.equal(format("{a} {missing}", { a: 1 }), "1 {missing}");
  assert.equal(current, "en");
});
