// The pack's own frontend strings in the user's language. Every text is one whole-sentence template with
// named placeholders ("{usd} spent in 24 h"), so each language keeps its own word order; no sentence is
// glued together from translated pieces. The templates are the pack's locales/<lang>/main.json (under
// "falQwenEdit"), which ComfyUI's server merges into its GET /i18n answer (app/custom_node_manager.py,
// build_translations); the language is the frontend's own setting Comfy.Locale (else the browser's, as
// the frontend does). A key a language lacks comes from English; a language the pack lacks is English.
export const NAMESPACE = "falQwenEdit";
export const FALLBACK = "en";

const store = { messages: {}, nodeDefs: {}, locale: () => FALLBACK };

// i18n: the /i18n answer ({lang: {falQwenEdit: {...}, nodeDefs: {...}, ...}}), or {lang: {falQwenEdit}}.
// The node texts are kept too (by reference): a widget whose tooltip the extension extends starts from its
// own tooltip in the user's language, as the frontend would show it.
export function installMessages(i18n) {
  store.messages = {};
  store.nodeDefs = {};
  for (const [lang, messages] of Object.entries(i18n ?? {})) {
    if (messages?.[NAMESPACE]) store.messages[lang] = messages[NAMESPACE];
    if (messages?.nodeDefs) store.nodeDefs[lang] = messages.nodeDefs;
  }
  return Object.keys(store.messages);
}

// where: a function answering the language wanted now (read on every lookup: a change applies at once).
export function setLocaleSource(where) {
  store.locale = where;
}

// The language to use for `wanted` ("zh", "zh-CN", "ja-JP", …): itself, else its first part, else English.
export function pickLanguage(wanted, available = Object.keys(store.messages)) {
  const text = String(wanted ?? "").trim();
  const byLower = new Map(available.map((lang) => [lang.toLowerCase(), lang]));
  return byLower.get(text.toLowerCase()) ?? byLower.get(text.toLowerCase().split(/[-_]/)[0]) ?? FALLBACK;
}

function lookup(messages, key) {
  let value = messages;
  for (const part of key.split(".")) value = value && typeof value === "object" ? value[part] : undefined;
  return typeof value === "string" && value ? value : undefined;
}

export function format(template, params = {}) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

export function currentLanguage() {
  let wanted;
  try {
    wanted = store.locale();
  } catch {
    wanted = FALLBACK;
  }
  return pickLanguage(wanted);
}

// The text for `key` in the current language with its placeholders filled (the key itself if no language
// has it, so a missing string shows where it is missing rather than nothing).
export function t(key, params = {}) {
  const template = lookup(store.messages[currentLanguage()], key) ?? lookup(store.messages[FALLBACK], key) ?? key;
  return format(template, params);
}

// A node text as the frontend looks it up (nodeDefs.<node>.inputs.<input>.tooltip …), in the current
// language, else English; undefined when neither has it (the caller falls back to the schema's text).
export function nodeText(key) {
  return lookup(store.nodeDefs[currentLanguage()], key) ?? lookup(store.nodeDefs[FALLBACK], key);
}
