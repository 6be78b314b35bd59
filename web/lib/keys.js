// The fal panel's Keys section, its pure part: what each line says. The key itself never comes back
// from the server (GET /fal_qwen_edit/keys answers "set / not set, and from where").

export const KEY_KINDS = [
  { kind: "fal", label: "fal key", secret: true, placeholder: "paste a fal key (id:secret)" },
  { kind: "gateway", label: "Gateway token", secret: true, placeholder: "paste the gateway's token" },
  { kind: "gateway_url", label: "Gateway URL", secret: false, placeholder: "https://your-gateway.example.com" },
];

export function keyLine(status, kind) {
  const item = status?.[kind];
  if (!item) return "unknown";
  if (!item.set) return "not set";
  if (kind === "gateway_url" && item.host) return `${item.host} (${item.source})`;
  return `set: ${item.source}`;
}

// The saved value is what is in use only when nothing that wins over it (environment, config.ini) is set.
export function overridden(status, kind) {
  const item = status?.[kind];
  return Boolean(item?.saved && item.set && !String(item.source).startsWith("saved from ComfyUI"));
}

export function modeLine(status) {
  const mode = status?.mode;
  if (!mode) return "";
  if (mode.in_use) return `Edits without a fal Connection node use: ${mode.in_use === "fal" ? "fal direct" : mode.in_use}`;
  return mode.problem ? `Not ready: ${mode.problem}` : "";
}
