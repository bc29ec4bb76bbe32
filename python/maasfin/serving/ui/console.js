// maasfin web console: every call carries the key as a bearer header; names are shown with
// textContent, never as HTML; the report is shown in a sandboxed frame (no scripts).
"use strict";
(function () {
  const prefix = location.pathname.replace(/\/ui\/?$/, "");
  const SVG = "http://www.w3.org/2000/svg";
  let key = "";
  let selected = null;
  let previous = {};
  let timer = null;

  const $ = (id) => document.getElementById(id);
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    if (key) opts.headers["Authorization"] = "Bearer " + key;
    const r = await fetch(prefix + path, opts);
    return r;
  }
  function setStatus(text, error) {
    const s = $("status");
    s.textContent = text;
    s.className = error ? "error" : "";
  }
  const fmt = (v, d) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(d));

  async function poll() {
    let r;
    try {
      r = await api("/v1/console/models");
    } catch (e) {
      setStatus("server unreachable", true);
      return;
    }
    if (r.status !== 200) {
      const body = await r.json().catch(() => ({}));
      setStatus(r.status + ": " + (body.error || r.statusText), true);
      return;
    }
    const now = performance.now() / 1000;
    const body = await r.json();
    setStatus("connected · " + body.models.length + " model(s)");
    const tbody = $("models").querySelector("tbody");
    tbody.replaceChildren();
    for (const m of body.models) {
      const st = m.stats;
      const prev = previous[m.name];
      let rate = null;
      let errRate = st.requests ? st.errors / st.requests : null;
      if (prev && now > prev.t) {
        rate = (st.requests - prev.requests) / (now - prev.t);
        const dr = st.requests - prev.requests;
        if (dr > 0) errRate = (st.errors - prev.errors) / dr;
      }
      previous[m.name] = { t: now, requests: st.requests, errors: st.errors };
      const tr = el("tr");
      tr.dataset.model = m.name;
      if (m.name === selected) tr.className = "selected";
      tr.append(
        el("td", m.name),
        el("td", m.versions.map((v) => v.version + " (" + v.state + ")").join(", "), "l"),
        el("td", Object.entries(m.labels).map(([k, v]) => k + "→" + v).join(", "), "l"),
        el("td", fmt(rate, 2)),
        el("td", fmt(errRate, 3)),
        el("td", fmt(st.latency_ms.p50, 2)),
        el("td", fmt(st.latency_ms.p95, 2)),
        el("td", fmt(st.latency_ms.p99, 2))
      );
      tr.addEventListener("click", () => select(m.name));
      tbody.append(tr);
    }
  }

  async function drift() {
    const box = $("drift");
    const r = await api("/v1/models/" + encodeURIComponent(selected) + "/drift");
    const body = await r.json();
    box.replaceChildren();
    if (r.status !== 200) {
      box.append(el("p", body.error || r.statusText, "error"));
      return;
    }
    const rows = body.features.concat([{ feature: "score", psi: body.score.psi, band: body.score.band }]);
    box.append(el("p", "window: " + body.window.rows + " of " + body.window.capacity + " rows"));
    const max = Math.max(0.3, ...rows.map((f) => f.psi || 0));
    const h = 18, left = 150, width = 260;
    const chart = svg("svg", { width: left + width + 60, height: rows.length * h + 10, class: "drift-chart", role: "img" });
    rows.forEach((f, i) => {
      const y = i * h + 4;
      chart.append(svg("text", { x: left - 6, y: y + 12, "text-anchor": "end", "font-size": 12 }, f.feature));
      const color = { stable: "#1e8449", watch: "#d4ac0d", act: "#b03a2e" }[f.band] || "#999";
      const bar = svg("rect", { x: left, y: y, height: h - 5, width: Math.max(1, ((f.psi || 0) / max) * width), fill: color });
      bar.dataset.feature = f.feature;
      bar.dataset.psi = f.psi === null ? "" : String(f.psi);
      chart.append(bar);
      chart.append(svg("text", { x: left + width + 4, y: y + 12, "font-size": 11 }, f.psi === null ? "–" : f.psi.toFixed(3)));
    });
    box.append(chart);
  }

  function buildForm(features) {
    const form = $("applicant");
    form.replaceChildren();
    for (const f of features) {
      const label = el("label");
      const input = el("input");
      input.name = f;
      input.required = true;
      label.append(el("span", f), input);
      form.append(label);
    }
    const button = el("button", "Score");
    button.type = "submit";
    form.append(button);
  }

  async function score(event) {
    event.preventDefault();
    const record = {};
    for (const input of $("applicant").querySelectorAll("input")) {
      const v = input.value.trim();
      record[input.name] = v !== "" && !Number.isNaN(Number(v)) ? Number(v) : v;
    }
    const r = await api("/v1/explain", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model_name: selected, input_data: [record] }),
    });
    const body = await r.json();
    const out = $("score");
    out.replaceChildren();
    if (r.status !== 200) {
      out.append(el("p", body.error || r.statusText, "error"));
      return;
    }
    const p = body.predictions[0];
    const value = el("p", "score " + (Array.isArray(p) ? p[0] : p), "value");
    value.id = "score-value";
    value.dataset.score = String(Array.isArray(p) ? p[0] : p);
    out.append(value);
    const list = el("ol");
    list.id = "reasons";
    for (const reason of body.reasons[0]) {
      const item = el("li", (reason.code ? reason.code + " " : "") + reason.feature + (reason.text ? ": " + reason.text : "") + " (" + reason.contribution.toFixed(4) + ")");
      item.dataset.feature = reason.feature;
      item.dataset.contribution = String(reason.contribution);
      list.append(item);
    }
    out.append(list);
  }

  async function select(name) {
    selected = name;
    $("detail").hidden = false;
    $("detail-title").textContent = name;
    $("score").replaceChildren();
    for (const tr of $("models").querySelectorAll("tbody tr")) tr.className = tr.dataset.model === name ? "selected" : "";
    const card = await api("/v1/models/" + encodeURIComponent(name) + "/card");
    const body = await card.json();
    if (card.status !== 200) {
      $("report-note").textContent = body.error || card.statusText;
      return;
    }
    buildForm(body.features);
    const frame = $("report");
    if (body.report) {
      const page = await api("/v1/models/" + encodeURIComponent(name) + "/card", { headers: { Accept: "text/html" } });
      frame.srcdoc = page.status === 200 ? await page.text() : "";
      $("report-note").textContent = page.status === 200 ? "" : "the report page could not be rendered (" + page.status + ")";
    } else {
      frame.srcdoc = "";
      $("report-note").textContent = "This version has no stored validation report.";
    }
    await drift();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    key = $("key").value.trim();
    previous = {};
    if (timer) clearInterval(timer);
    poll();
    timer = setInterval(poll, 2000);
  });
  $("applicant").addEventListener("submit", score);
  $("drift-refresh").addEventListener("click", drift);
})();
