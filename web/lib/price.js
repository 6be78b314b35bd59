// The price shown before Run. The numbers come from the backend (POST /fal_qwen_edit/estimate, the
// rule the node runs by); this module only builds the question and adds the answers up.
import { t } from "./i18n.js";
import { ANGLES_NODE, EDIT_NODE } from "./widget_rules.js";

export const IMAGE_INPUTS = ["image_1", "image_2", "image_3"];
// The nodes that show a price, each with its image inputs: the edit node, and the Multiple Angles node's
// one image (the backend reads a question by its node: nodes/fal/edit/node_values.py).
export const PRICED_NODES = new Map([[EDIT_NODE, IMAGE_INPUTS], [ANGLES_NODE, ["image"]]]);

// Every amount the pack shows (badge, totals, spend, cap, job rows): dollars to a tenth of a cent, one way,
// since one edit costs a few cents and the cap a few dollars.
export function usd(value) {
  return `$${Number(value).toFixed(3)}`;
}

export function estimateBody(values, sizes, connected, node = undefined) {
  const inputs = PRICED_NODES.get(node) ?? IMAGE_INPUTS, known = {};
  for (const name of inputs) if (sizes[name]) known[name] = sizes[name];
  return { ...(node ? { node } : {}), widgets: values, sizes: known,
           connected: inputs.filter((name) => connected.includes(name)) };
}

export function badgeText(preview) {
  if (!preview) return t("badge.pending");
  if (preview.error) return t("badge.unknown");
  // No table price and none from fal's pricing API: said plainly, never a figure (models/pricing.py).
  if (preview.price_known === false) return t("badge.priceUnknown");
  return t(preview.price_confirmed ? "badge.price" : "badge.assumed", { price: preview.badge });
}

// previews: the answers for every active edit node. Unknown totals are counted, not guessed.
const formatUsd = usd;

export function graphTotal(previews) {
  let usd = 0, known = 0, unpriced = 0;
  const open = [];
  for (const preview of previews) {
    if (!preview || preview.error) { open.push("?"); continue; }
    if (preview.known) { usd += preview.usd; known += 1; }
    else if (preview.price_known === false) unpriced += 1;  // no price at all: counted apart, never added
    else open.push(preview.badge);
  }
  usd = Math.round(usd * 10000) / 10000;
  const params = { usd: formatUsd(usd), count: open.length, badges: [...new Set(open)].join(", ") };
  let text = t(!open.length ? "total.known" : known ? "total.knownAndOpen" : "total.open", params);
  if (unpriced) text = t("total.unpriced", { total: text, count: unpriced });
  return { usd, nodes: previews.length, unknown: open.length + unpriced, text };
}

export function spendText(spend) {
  if (!spend) return "";
  const spent = usd(spend.spent_24h_usd);
  if (spend.daily_cap_usd == null) return t("spend.noCap", { spent });
  return t("spend.capped", { spent, cap: usd(spend.daily_cap_usd), left: usd(spend.remaining_usd) });
}

// Before a prompt is sent: a warning when the known part of this graph's price would cross the cap.
// The backend still refuses such an edit; this saves the round trip.
export function capWarning(total, spend) {
  if (!spend || spend.daily_cap_usd == null || total.usd <= spend.remaining_usd + 1e-9) return null;
  return t("spend.capWarning", { total: usd(total.usd), left: usd(spend.remaining_usd),
                                 cap: usd(spend.daily_cap_usd) });
}

// The gateway's credit left, as the backend read it from the gateway's balance call (asked there at most
// once a minute); nothing for fal direct or fal's proxy, which have no such call.
export function balanceText(balance) {
  if (!balance || balance.mode !== "gateway" || !balance.host) return "";
  const host = balance.host;
  if (balance.unlimited) return t("balance.unlimited", { host });
  if (balance.usd != null) return t("balance.left", { host, usd: usd(balance.usd) });
  return balance.note && balance.note !== "not offered by this gateway"
    ? t("balance.note", { host, note: balance.note }) : t("balance.notOffered", { host });
}
