#include "aegis/serve/review_page.h"

namespace aegis::serve {

const std::string& review_page_html() {
  static const std::string html = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aegis: flagged requests</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #f5f5f7; }
  header { background: #1d1d1f; color: #fff; padding: 12px 20px; }
  header h1 { font-size: 18px; margin: 0 0 8px; }
  header input { width: 28em; font-family: monospace; }
  main { padding: 12px 20px; }
  #status { margin: 8px 0 0; min-height: 1.4em; }
  #status.bad { color: #ff8a80; }
  .item { background: #fff; border: 1px solid #d2d2d7; border-radius: 8px; padding: 12px; margin: 0 0 12px; }
  .item.resolved { opacity: 0.55; }
  .item h2 { font-size: 15px; margin: 0 0 6px; }
  .facts { color: #555; margin: 0 0 8px; }
  .facts span { margin-right: 14px; }
  .reason { font-weight: 600; color: #b3261e; }
  .samples { display: flex; flex-wrap: wrap; gap: 16px; }
  .sample figure { margin: 0; display: inline-block; text-align: center; }
  .sample canvas { width: 112px; height: 112px; image-rendering: pixelated; border: 1px solid #ccc; }
  .sample figcaption { font-size: 12px; color: #555; }
  table.features td { padding: 0 8px; font-family: monospace; }
  .actions button { margin-right: 8px; padding: 4px 14px; }
  .decision { font-weight: 600; }
</style>
<script src="/v1/review/app.js" defer></script>
</head>
<body>
<header>
  <h1>aegis &middot; flagged requests awaiting review</h1>
  <form id="login">
    <label>Admin API key <input id="key" type="password" autocomplete="off" spellcheck="false"></label>
    <button id="load" type="submit">Load</button>
    <button id="forget" type="button">Forget key</button>
  </form>
  <p id="status" role="status">Enter an admin key to see the review queue.</p>
</header>
<main id="items"></main>
</body>
</html>
)HTML";
  return html;
}

const std::string& review_page_script() {
  static const std::string js = R"JS("use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const keyInput = $("key"), statusLine = $("status"), list = $("items");
  const KEY = "aegis-review-key";
  keyInput.value = sessionStorage.getItem(KEY) || "";

  function say(text, bad) {
    statusLine.textContent = text;
    statusLine.className = bad ? "bad" : "ok";
  }

  async function api(method, path, body) {
    const headers = { "Authorization": "Bearer " + keyInput.value.trim(), "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                  cache: "no-store", credentials: "omit" });
    let j = {};
    try { j = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) throw new Error((j.error || r.statusText) + " (HTTP " + r.status + ")");
    return j;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  // [C, H, W] with 1 or 3 channels, or [H, W]: drawn as a picture; anything else is a table.
  function imageShape(shape) {
    if (shape.length === 3 && (shape[0] === 1 || shape[0] === 3)) return { c: shape[0], h: shape[1], w: shape[2] };
    if (shape.length === 2) return { c: 1, h: shape[0], w: shape[1] };
    return null;
  }

  function canvasFor(sh, fill) {
    const cv = el("canvas");
    cv.width = sh.w;
    cv.height = sh.h;
    const ctx = cv.getContext("2d");
    const img = ctx.createImageData(sh.w, sh.h);
    for (let p = 0; p < sh.w * sh.h; ++p) {
      const rgb = fill(p);
      img.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * p);
    }
    ctx.putImageData(img, 0, 0);
    return cv;
  }

  function drawInput(values, sh, clip) {
    const lo = clip[0], span = (clip[1] - clip[0]) || 1, plane = sh.w * sh.h;
    const v = (i) => Math.max(0, Math.min(255, Math.round(255 * (values[i] - lo) / span)));
    return canvasFor(sh, (p) => sh.c === 3 ? [v(p), v(plane + p), v(2 * plane + p)] : [v(p), v(p), v(p)]);
  }

  // Signed map summed over channels: red pushes towards the predicted class, blue away.
  function drawMap(values, sh) {
    const plane = sh.w * sh.h, sum = new Float64Array(plane);
    for (let c = 0; c < sh.c; ++c) for (let p = 0; p < plane; ++p) sum[p] += values[c * plane + p];
    let top = 0;
    for (const s of sum) top = Math.max(top, Math.abs(s));
    return canvasFor(sh, (p) => {
      const t = top > 0 ? Math.abs(sum[p]) / top : 0, fade = Math.round(255 * (1 - t));
      return sum[p] >= 0 ? [255, fade, fade] : [fade, fade, 255];
    });
  }

  function featureTable(s) {
    const t = el("table", "features");
    const order = s.input.map((_, i) => i);
    if (s.attribution) order.sort((a, b) => Math.abs(s.attribution[b]) - Math.abs(s.attribution[a]));
    const head = t.insertRow();
    for (const h of ["feature", "value", "attribution"]) head.appendChild(el("th", "", h));
    for (const i of order.slice(0, 10)) {
      const row = t.insertRow();
      row.appendChild(el("td", "", i));
      row.appendChild(el("td", "", s.input[i].toPrecision(4)));
      row.appendChild(el("td", "", s.attribution ? s.attribution[i].toPrecision(4) : "-"));
    }
    return t;
  }

  function sampleView(s, evidence) {
    const box = el("div", "sample");
    const label = "sample " + s.index + ": predicted " + (s.class_name !== undefined ? s.class_name : s.predicted);
    const sh = imageShape(s.shape || []);
    if (!sh) {
      box.appendChild(el("div", "", label));
      box.appendChild(featureTable(s));
      return box;
    }
    const fig = (canvas, caption) => {
      const f = el("figure");
      f.appendChild(canvas);
      f.appendChild(el("figcaption", "", caption));
      box.appendChild(f);
    };
    const input = drawInput(s.input, sh, evidence.clip || [0, 1]);
    input.className = "input";
    fig(input, label);
    if (s.attribution) {
      const map = drawMap(s.attribution, sh);
      map.className = "map";
      fig(map, (evidence.method || "attribution") + " map");
    }
    return box;
  }

  function facts(item) {
    const f = el("div", "facts");
    const add = (text) => f.appendChild(el("span", "", text));
    add("model " + item.model);
    add("key " + item.key_id);
    if (item.request_id) add("request " + item.request_id);
    if (item.endpoint) add("endpoint " + item.endpoint);
    const d = item.details || {};
    if (d.detector) {
      const top = Math.max(...(d.detector.scores || [0]));
      add("detector " + d.detector.name + ": score " + top.toPrecision(3) + " over threshold " +
          Number(d.detector.threshold).toPrecision(3));
    }
    if (d.monitor && d.monitor.alert) add("query monitor: " + (d.monitor.source || "alert"));
    return f;
  }

  async function decide(item, decision, card) {
    try {
      await api("POST", "/v1/review/" + encodeURIComponent(item.id), { decision });
      card.classList.add("resolved");
      for (const b of card.querySelectorAll("button")) b.disabled = true;
      const word = decision === "confirm" ? "confirmed" : "dismissed";
      card.querySelector(".decision").textContent = word;
      say("Review " + item.id + " " + word + "; the decision is in the audit log.");
    } catch (e) {
      say("Could not record the decision: " + e.message, true);
    }
  }

  function render(items) {
    list.replaceChildren();
    for (const item of items) {
      const card = el("section", "item");
      card.id = "item-" + item.id;
      const h = el("h2");
      h.appendChild(el("span", "", "#" + item.id + " "));
      h.appendChild(el("span", "reason", item.reason));
      card.appendChild(h);
      card.appendChild(facts(item));
      const ev = item.evidence || {};
      const samples = el("div", "samples");
      for (const s of ev.samples || []) samples.appendChild(sampleView(s, ev));
      if (ev.error) samples.appendChild(el("p", "bad", "no explanation: " + ev.error));
      card.appendChild(samples);
      const actions = el("div", "actions");
      const confirm = el("button", "confirm", "Confirm (attack)");
      confirm.id = "confirm-" + item.id;
      confirm.addEventListener("click", () => decide(item, "confirm", card));
      const dismiss = el("button", "dismiss", "Dismiss (false alarm)");
      dismiss.id = "dismiss-" + item.id;
      dismiss.addEventListener("click", () => decide(item, "dismiss", card));
      actions.append(confirm, dismiss, el("span", "decision"));
      card.appendChild(actions);
      list.appendChild(card);
    }
  }

  async function load() {
    if (!keyInput.value.trim()) { say("Enter an admin key.", true); return; }
    sessionStorage.setItem(KEY, keyInput.value.trim());
    try {
      const j = await api("GET", "/v1/review");
      render(j.items || []);
      say((j.items || []).length ? (j.items.length + " flagged request(s) await review.")
                                 : "No flagged requests await review.");
    } catch (e) {
      list.replaceChildren();
      say("Could not load the review queue: " + e.message, true);
    }
  }

  $("login").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    keyInput.value = "";
    list.replaceChildren();
    say("Key forgotten.");
  });
  if (keyInput.value) load();
})();
)JS";
  return js;
}

const std::map<std::string, std::string>& review_page_headers() {
  static const std::map<std::string, std::string> h = {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"}};
  return h;
}

}  // namespace aegis::serve
