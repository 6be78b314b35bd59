// The price shown before Run. The numbers come from the backend (POST /fal_qwen_edit/estimate, the
// rule the node runs by); this module only builds the question and adds the answers up.
export const IMAGE_INPUTS = ["image_1", "image_2", "image_3"];

// Every amount the pack shows (badge, totals, spend, cap, job rows): dollars to a tenth of a cent, one way,
// since one edit costs a few cents and the cap a few dollars.
export function usd(value) {
  return `$${Number(value).toFixed(3)}`;
}

export function estimateBody(values, sizes, connected) {
  const known = {};
  for (const name of IMAGE_INPUTS) if (sizes[name]) known[name] = sizes[name];
  return { widgets: values, sizes: known, connected: IMAGE_INPUTS.filter((name) => connected.includes(name)) };
}

export function badgeText(preview) {
  if (!preview) return "fal: …";
  if (preview.error) return "fal: price ?";
  return `fal ${preview.badge}${preview.price_confirmed ? "" : " (assumed)"}`;
}

// previews: the answers for every active edit node. Unknown totals are counted, not guessed.
const formatUsd = usd;

export function graphTotal(previews) {
  let usd = 0, known = 0;
  const open = [];
  for (const preview of previews) {
    if (!preview || preview.error) { open.push("?"); continue; }
    if (preview.known) { usd += preview.usd; known += 1; } else open.push(preview.badge);
  }
  usd = Math.round(usd * 10000) / 10000;
  const parts = [];
  if (known || !open.length) parts.push(`≈${formatUsd(usd)}`);
  if (open.length) parts.push(`+ ${open.length} priced by size (${[...new Set(open)].join(", ")})`);
  return { usd, nodes: previews.length, unknown: open.length, text: parts.join(" ") };
}

export function spendText(spend) {
  if (!spend) return "";
  const spent = `${usd(spend.spent_24h_usd)} spent in 24 h`;
  if (spend.daily_cap_usd == null) return `${spent} (no daily cap)`;
  return `${spent} of ${usd(spend.daily_cap_usd)}; ${usd(spend.remaining_usd)} left`;
}

// Before a prompt is sent: a warning when the known part of this graph's price would cross the cap.
// The backend still refuses such an edit; this saves the round trip.
export function capWarning(total, spend) {
  if (!spend || spend.daily_cap_usd == null || total.usd <= spend.remaining_usd + 1e-9) return null;
  return `This run is estimated at ${usd(total.usd)}, but only ${usd(spend.remaining_usd)} of ` +
    `your ${usd(spend.daily_cap_usd)} daily fal cap is left: the fal nodes over the cap will be ` +
    `refused (nothing is uploaded or paid for them). Raise [budget] daily_usd or FAL_DAILY_BUDGET_USD to run ` +
    `them. Queue anyway?`;
}

// The gateway's credit left, as the backend read it from the gateway's balance call (asked there at most
// once a minute); nothing for fal direct or fal's proxy, which have no such call.
export function balanceText(balance) {
  if (!balance || balance.mode !== "gateway" || !balance.host) return "";
  if (balance.unlimited) return `Gateway ${balance.host}: unlimited token`;
  if (balance.usd != null) return `Gateway ${balance.host}: ${usd(balance.usd)} left`;
  return `Gateway ${balance.host}: ${balance.note && balance.note !== "not offered by this gateway"
    ? balance.note : "balance not offered by this gateway"}`;
}
