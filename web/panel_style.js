// The fal panel's look and its large-image overlay. Colours come from the frontend's theme variables, which
// every frontend checked (1.27, 1.37, 1.58) sets on :root from the active colour palette, dark or light
// (its comfy_base colours: --fg-color, --comfy-menu-bg, --comfy-input-bg, --input-text, --descrip-text,
// --border-color, --content-hover-bg, --error-text), so the panel follows the palette like the rest of ComfyUI.
import { t } from "./lib/i18n.js";
const STYLE_ID = "fal-qwen-panel-style";

const CSS = `
.fal-qwen-panel { display: flex; flex-direction: column; height: 100%; overflow: auto; box-sizing: border-box;
  color: var(--fg-color, inherit); background: var(--comfy-menu-bg, transparent); font-size: 12px; }
.fal-qwen-panel button, .fal-qwen-panel select, .fal-qwen-panel input {
  font: inherit; font-size: 12px; color: var(--input-text, inherit); background: var(--comfy-input-bg, transparent);
  border: 1px solid var(--border-color, #8886); border-radius: 6px; padding: 3px 8px; }
.fal-qwen-panel button { cursor: pointer; }
.fal-qwen-panel button:hover, .fal-qwen-panel select:hover { background: var(--content-hover-bg, #8883);
  color: var(--content-hover-fg, inherit); }
.fal-qwen-head { padding: 10px 12px; display: flex; flex-direction: column; gap: 4px;
  border-bottom: 1px solid var(--border-color, #8886); }
.fal-qwen-title { display: flex; align-items: center; justify-content: space-between; gap: 8px;
  font-size: 14px; font-weight: 600; }
.fal-qwen-title small { font-weight: normal; color: var(--descrip-text, inherit); font-size: 11px; }
.fal-qwen-muted { color: var(--descrip-text, inherit); font-size: 11px; }
.fal-qwen-error { color: var(--error-text, #e55); font-size: 11px; }
.fal-qwen-bar { height: 6px; border-radius: 3px; background: var(--comfy-input-bg, #8883); overflow: hidden; }
.fal-qwen-bar > div { height: 6px; border-radius: 3px; background: var(--p-primary-color, #4a8); }
.fal-qwen-bar > div.fal-qwen-near-cap { background: var(--error-text, #c44); }
.fal-qwen-row { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; }
.fal-qwen-jobs { flex: 1; }
.fal-qwen-job { padding: 8px 12px; border-bottom: 1px solid var(--border-color, #8886); display: flex;
  flex-direction: column; gap: 3px; }
.fal-qwen-thumb { width: 56px; height: 56px; object-fit: cover; border-radius: 4px; cursor: zoom-in; }
.fal-qwen-empty { padding: 12px; color: var(--descrip-text, inherit); }
.fal-qwen-keys summary { cursor: pointer; }
.fal-qwen-overlay { position: fixed; inset: 0; z-index: 10000; background: rgba(0, 0, 0, 0.85); display: flex;
  flex-wrap: wrap; gap: 8px; align-items: center; justify-content: center; cursor: zoom-out; }
.fal-qwen-overlay img { max-width: 45vw; max-height: 90vh; cursor: default; }
.fal-qwen-overlay .fal-qwen-close { position: absolute; top: 12px; right: 16px; font-size: 18px; line-height: 1;
  padding: 6px 10px; border-radius: 6px; border: 1px solid var(--border-color, #8886); cursor: pointer;
  color: var(--input-text, #ddd); background: var(--comfy-input-bg, #222); }
.fal-qwen-overlay .fal-qwen-muted { color: #ddd; }
`;

export function installPanelStyle(doc = document) {
  if (doc.getElementById(STYLE_ID)) return;
  const style = doc.createElement("style");
  style.id = STYLE_ID;
  style.textContent = CSS;
  doc.head.append(style);
}

// A full-window view of `children` (the outputs): closed by its × button, by Escape, or by a click outside
// the pictures. Returns the function that closes it.
export function openOverlay(children, doc = document) {
  const overlay = doc.createElement("div");
  overlay.className = "fal-qwen-overlay";
  overlay.setAttribute("role", "dialog");
  overlay.setAttribute("aria-label", "fal outputs");
  const closeButton = doc.createElement("button");
  closeButton.className = "fal-qwen-close";
  closeButton.title = t("panel.close");
  closeButton.setAttribute("aria-label", "Close");
  closeButton.textContent = "×";
  const close = () => {
    overlay.remove();
    doc.removeEventListener("keydown", onKey, true);
  };
  const onKey = (event) => {
    if (event.key !== "Escape") return;
    event.stopPropagation();  // Escape closes this, not whatever ComfyUI binds Escape to as well
    close();
  };
  closeButton.addEventListener("click", close);
  overlay.addEventListener("click", (event) => { if (event.target === overlay) close(); });
  overlay.append(closeButton, ...children);
  doc.addEventListener("keydown", onKey, true);
  doc.body.append(overlay);
  closeButton.focus();
  return close;
}
