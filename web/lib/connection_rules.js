// The fal Connection node's fields hold where the key lives, never the key: a value pasted into key_env
// that cannot be a variable's name (or looks like a token), and a base URL's query string, fragment or
// user:password@, are cleared as soon as they are typed or loaded, so a workflow saved or shared after that
// (and the graph a PNG carries) does not hold them. The backend refuses the same values without echoing them
// (nodes/fal/wire/host_trust.py: looks_like_a_key is this same rule; tests/web/key_cases.json holds both to it).
import { t } from "./i18n.js";

export const CONNECTION_NODE = "FalQwenConnection";
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

export function looksLikeAKey(text) {
  const value = String(text ?? "").trim();
  if (!value) return false;
  if (!ENV_NAME.test(value)) return true;
  const digits = (value.match(/[0-9]/g) ?? []).length;
  return value.length >= 20 && /[a-z]/.test(value) && digits >= 3;
}

// The base URL without what may hold a secret: user:password@, the query string and the fragment.
export function cleanBaseUrl(text) {
  let value = String(text ?? "");
  const cut = value.search(/[?#]/);
  if (cut >= 0) value = value.slice(0, cut);
  return value.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@]*@/, "$1");
}

// {changes: {widget name: new value}, reasons: [what was cleared and why]} for the node's widget values.
export function scrubConnection(values) {
  const changes = {}, reasons = [];
  if (looksLikeAKey(values.key_env)) {
    changes.key_env = "";
    reasons.push(t("connection.keyCleared"));
  }
  const base = values.base_url;
  if (typeof base === "string" && cleanBaseUrl(base) !== base) {
    changes.base_url = cleanBaseUrl(base);
    reasons.push(t("connection.urlCleaned"));
  }
  return { changes, reasons };
}
