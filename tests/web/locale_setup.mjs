// Imported first by the tests of web/lib: the pack's locale files, as GET /i18n hands them to the frontend,
// with English as the language unless a test sets another.
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { installMessages, setLocaleSource } from "../../web/lib/i18n.js";

const LOCALES = new URL("../../locales/", import.meta.url);

export function localeAnswer() {
  const answer = {};
  for (const lang of readdirSync(LOCALES)) {
    const main = new URL(`${lang}/main.json`, LOCALES);
    if (existsSync(main)) answer[lang] = JSON.parse(readFileSync(main, "utf-8"));
  }
  return answer;
}

export const languages = installMessages(localeAnswer());
export let current = "en";
export function useLanguage(lang) {
  current = lang;
}
setLocaleSource(() => current);
