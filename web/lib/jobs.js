// The fal panel's job list: pure logic (no DOM), so Node's test runner can check it.
import { t } from "./i18n.js";
import { usd } from "./price.js";
// A job is the backend's JSON (GET /fal_qwen_edit/jobs): request_id, status, model, prompt, times in
// Unix seconds, cost_usd_estimate / cost_usd_billed, thumbnails, known_locally, …
export const RESULT_NODE = "FalQwenResultByRequestId";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isRequestId(text) {
  return typeof text === "string" && UUID.test(text);
}

// Live events update a job in place; new jobs go first; newest submitted first.
export function mergeJob(jobs, job) {
  const others = jobs.filter((j) => j.request_id !== job.request_id);
  const old = jobs.find((j) => j.request_id === job.request_id);
  const merged = old ? { ...old, ...job } : job;
  return [merged, ...others].sort((a, b) => (b.submitted_at ?? 0) - (a.submitted_at ?? 0));
}

export function mergePage(jobs, page) {
  return page.reduce((list, job) => mergeJob(list, job), jobs);
}

const LABELS = ["running", "done", "failed", "cancelled", "unknown"];
export function statusLabel(job) {
  return LABELS.includes(job.status ?? "unknown") ? t(`jobs.status.${job.status ?? "unknown"}`) : String(job.status);
}

export function costText(job) {
  if (job.cost_usd_billed != null) return t("jobs.billed", { usd: usd(job.cost_usd_billed) });
  if (job.cost_usd_estimate != null) return t("jobs.estimated", { usd: usd(job.cost_usd_estimate) });
  return t("jobs.costUnknown");
}

export function timeAgo(seconds, now = Date.now() / 1000) {
  if (seconds == null) return "";
  const s = Math.max(0, Math.round(now - seconds));
  if (s < 60) return t("jobs.secondsAgo", { n: s });
  if (s < 3600) return t("jobs.minutesAgo", { n: Math.round(s / 60) });
  if (s < 86400) return t("jobs.hoursAgo", { n: Math.round(s / 3600) });
  return t("jobs.daysAgo", { n: Math.round(s / 86400) });
}

// What a user may do with a job. Nothing here submits: Fetch and Add to graph reach a job that exists.
export function actionsFor(job) {
  const actions = ["copy"];
  if (job.status === "running") actions.push("cancel");
  if (job.status === "done" && (!job.known_locally || !(job.thumbnails ?? []).length)) actions.push("fetch");
  if (job.status === "done" || job.status === "running") actions.push("add");
  return actions;
}

export function spendFraction(spend) {
  if (!spend || !spend.daily_cap_usd) return null;
  return Math.min(1, spend.spent_24h_usd / spend.daily_cap_usd);
}

export function promptLine(job, length = 90) {
  const text = (job.prompt ?? "").replace(/\s+/g, " ").trim();
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

// Where to list jobs from: fal's own request history only where it can be read (fal direct with a key; the
// backend says so with every page as fal_history.available), else this machine's jobs alone.
export function sourceOptions(falHistory) {
  const local = [["local", t("jobs.sourceLocal")]];
  return falHistory?.available ? [...local, ["all", t("jobs.sourceAll")], ["fal", t("jobs.sourceFal")]] : local;
}

const CONNECTIONS = ["fal", "gateway", "proxy"];

// What "Add to graph" says: the new node reaches the job with this machine's settings unless the job was
// made through another connection (a fal Connection node's gateway, proxy or key variable).
export function addedNote(job) {
  if (job.default_connection === false && job.connection) {
    const kind = job.connection.kind, host = job.connection.host;
    const how = CONNECTIONS.includes(kind) ? t(`jobs.via.${kind}`) : kind;
    return t(host ? "jobs.addedOtherConnectionHost" : "jobs.addedOtherConnection", { how, host });
  }
  return t("jobs.addedDefault");
}
