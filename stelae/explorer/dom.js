// DOM helpers shared by the explorer's views. Untrusted data only ever becomes text nodes.

/** Build a DOM element; strings become text nodes (untrusted data never becomes HTML). */
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) if (kid != null) el.append(kid instanceof Node ? kid : String(kid));
  return el;
}
export const fill = (el, ...kids) => el.replaceChildren(...kids.flat().filter((k) => k != null));
export const status = (kind, ...text) => h("p", { class: `status ${kind}`, role: kind === "bad" ? "alert" : null }, h("span", {}, ...text));
export const kv = (rows) => h("table", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))));
export const mono = (s) => h("span", { class: "mono" }, s);
export const pill = (kind, s) => h("span", { class: `pill ${kind}` }, s);
export const keyIdHex = (id) => id.toString(16).padStart(8, "0");
export const time = (secs) => new Date(Number(secs) * 1000).toISOString().replace(".000Z", "Z");

export function setFlag(name, value) {
  if (value == null) delete document.body.dataset[name];
  else document.body.dataset[name] = String(value);
}

