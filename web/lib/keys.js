// The fal panel's Keys section, its pure part: what each line says. The key itself never comes back
// from the server (GET /fal_qwen_edit/keys answers "set / not set, and from where").

import { t } from "./i18n.js";

// label and placeholder are read in the current language each time the section is drawn
const kindOf = (kind, key, secret) => ({ kind, secret, get label() { return t(`keys.${key}Label`); },
                                         get placeholder() { return t(`keys.${key}Placeholder`); } });
export const KEY_KINDS = [kindOf("fal", "fal", true), kindOf("gateway", "gateway", true),
                          kindOf("gateway_url", "gatewayUrl", false)];

export function keyLine(status, kind) {
  const item = status?.[kind];
  if (!item) return t("keys.unknown");
  if (!item.set) return t("keys.notSet");
  if (kind === "gateway_url" && item.host) return t("keys.hostFrom", { host: item.host, source: item.source });
  return t("keys.setFrom", { source: item.source });
}

// The saved value is what is in use only when nothing that wins over it (environment, config.ini) is set.
export function overridden(status, kind) {
  const item = status?.[kind];
  return Boolean(item?.saved && item.set && !String(item.source).startsWith("saved from ComfyUI"));
}

export function modeLine(status) {
  const mode = status?.mode;
  if (!mode) return "";
  if (mode.in_use) return t("keys.modeInUse", { mode: mode.in_use === "fal" ? t("keys.modeFal") : mode.in_use });
  return mode.problem ? t("keys.notReady", { problem: mode.problem }) : "";
}
