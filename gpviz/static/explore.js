// gpviz explorer front end (anywidget ESM): the expression's numbers are dragged or typed;
// Python (gpviz/explorer/widget.py) recomputes metrics and slices on a copy of the model.
// Each parameter's chart is gpviz.js's (window.gpviz.chart: the widget's module is gpviz.js, then this file):
// its dot is dragged along the axis as the number is, the fitted value stays as a hollow ring.
const SVGNS = "http://www.w3.org/2000/svg";
const METRICS = [
  ["log_likelihood", "log likelihood"], ["data_fit", "  data fit"], ["complexity", "  complexity"],
  ["log_prior_total", "log prior"], ["map_objective", "log lik + log prior (MAP)"],
  ["loo_mse", "LOO MSE"], ["loo_nlpd", "LOO NLPD"],
];

function fmt(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : Number(v.toPrecision(4)).toString();
}

function clamp(p, v) {
  // a dragged value stays strictly inside its constraint: a value on an enforced bound has no raw value
  const lo = p.lower, hi = p.upper;
  if (lo !== null && v <= lo) v = lo + Math.max(1e-9, Math.abs(lo) * 1e-6);
  if (hi !== null && v >= hi) v = hi - Math.max(1e-9, Math.abs(hi) * 1e-6);
  return v;
}

function dragged(p, start, dx, fine) {
  // positive parameters move by factors (a lengthscale of 0.01 and one of 100 drag alike), others by steps
  const step = (fine ? 0.1 : 1) * dx / 100;
  if (p.lower !== null && p.lower >= 0) return clamp(p, start * Math.exp(step));
  return clamp(p, start + step * Math.max(Math.abs(start), 1));
}

function line(points, cls) {
  const el = document.createElementNS(SVGNS, "polyline");
  el.setAttribute("points", points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
  el.setAttribute("class", cls);
  return el;
}

function sliceChart(curve, near) {
  const W = 180, H = 90, pad = 4;
  const ys = curve.lower.concat(curve.upper, near ? near.y : []);
  const xs = curve.x.concat(near ? near.x : []);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + (W - 2 * pad) * (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5);
  const sy = (y) => H - pad - (H - 2 * pad) * (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5);
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("class", "gpx-slice");
  const band = curve.x.map((x, i) => [sx(x), sy(curve.upper[i])])
    .concat(curve.x.map((x, i) => [sx(x), sy(curve.lower[i])]).reverse());
  const poly = document.createElementNS(SVGNS, "polygon");
  poly.setAttribute("points", band.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
  poly.setAttribute("class", "gpx-band");
  svg.appendChild(poly);
  svg.appendChild(line(curve.x.map((x, i) => [sx(x), sy(curve.mean[i])]), "gpx-mean"));
  if (near) near.x.forEach((x, i) => {
    const c = document.createElementNS(SVGNS, "circle");
    c.setAttribute("cx", sx(x).toFixed(1)); c.setAttribute("cy", sy(near.y[i]).toFixed(1));
    c.setAttribute("r", 2.5); c.setAttribute("class", "gpx-point");
    svg.appendChild(c);
  });
  return svg;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "gpx";
  el.appendChild(root);
  let params = Object.fromEntries(model.get("params").map((p) => [p.key, p]));
  model.on("change:params", () => { params = Object.fromEntries(model.get("params").map((p) => [p.key, p])); });
  let seq = 0;

  const send = (req) => {
    seq += 1;
    model.set("request", { ...req, seq });
    model.save_changes();
  };
  // a drag sends one request at a time: the next waits for Python's answer (the `done` trait), and only the
  // latest value dragged meanwhile goes out, so a slow kernel never falls behind the mouse
  let pending = null, inflight = false, timer = null;
  const pump = () => {
    if (inflight || !pending) return;
    inflight = true;
    const req = pending;
    pending = null;
    timer = setTimeout(() => { inflight = false; pump(); }, 2000);  // an answer lost must not stop the drag
    send(req);
  };
  model.on("change:done", () => { clearTimeout(timer); inflight = false; pump(); });
  // `final` marks the value a gesture ends on: Python then also refreshes the output's saved picture
  const throttled = (key, value, final = false) => { pending = { key, value, final }; pump(); };

  const title = document.createElement("div");
  title.className = "gpx-title";
  title.textContent = model.get("title");
  if (model.get("members") > 1) {  // a batched model: one member explored at a time
    const pick = document.createElement("select");
    pick.className = "gpx-member";
    for (let i = 0; i < model.get("members"); i++) pick.add(new Option(`${model.get("member_label")}: ${i}`, String(i)));
    pick.value = String(model.get("member"));
    pick.addEventListener("change", () => { model.set("member", Number(pick.value)); model.save_changes(); });
    title.append(" ", pick);
  }
  const code = document.createElement("pre");
  code.className = "gpx-code";
  const numbers = {};
  for (const seg of model.get("segments")) {
    if (seg.text !== undefined) { code.appendChild(document.createTextNode(seg.text)); continue; }
    const p = params[seg.key];
    const span = document.createElement("span");
    span.className = "gpx-num";
    span.dataset.key = seg.key;
    span.title = `${p.label} (fitted ${fmt(p.fitted)}); drag, shift for fine steps, double-click to type`;
    (numbers[seg.key] = numbers[seg.key] || []).push(span);
    span.addEventListener("pointerdown", (ev) => {
      const start = model.get("values")[seg.key], x0 = ev.clientX;
      let last = null;
      span.setPointerCapture(ev.pointerId);
      const move = (e) => {
        const v = dragged(params[seg.key], start, e.clientX - x0, e.shiftKey);
        for (const s of numbers[seg.key]) s.textContent = fmt(v);
        last = v;
        throttled(seg.key, v);
      };
      const up = () => {
        span.removeEventListener("pointermove", move); span.removeEventListener("pointerup", up);
        if (last !== null) throttled(seg.key, last, true);
      };
      span.addEventListener("pointermove", move);
      span.addEventListener("pointerup", up);
    });
    span.addEventListener("dblclick", () => {
      const input = document.createElement("input");
      input.className = "gpx-input";
      input.value = String(model.get("values")[seg.key]);
      span.replaceWith(input);
      input.focus();
      let closed = false;  // Enter closes the input, and the blur that follows must not close it again
      const done = (commit) => {
        if (closed) return;
        closed = true;
        input.replaceWith(span);
        // a typed text that is not a finite number goes to Python as typed: its refusal names it
        const typed = input.value.trim(), v = Number(typed);
        if (commit) send({ key: seg.key, value: typed !== "" && Number.isFinite(v) ? v : typed, final: true });
      };
      input.addEventListener("keydown", (e) => { if (e.key === "Enter") done(true); if (e.key === "Escape") done(false); });
      input.addEventListener("blur", () => done(true));
    });
    code.appendChild(span);
  }

  const error = document.createElement("div");
  error.className = "gpx-error";
  const table = document.createElement("table");
  table.className = "gpx-metrics";
  const reset = document.createElement("button");
  reset.className = "gpx-reset";
  reset.textContent = "reset to fitted values";
  reset.addEventListener("click", () => send({ reset: true, final: true }));
  const charts = document.createElement("div");
  charts.className = "gpx-slices";

  // every parameter's chart, drawn by gpviz.js from what a model page's spec holds for it
  const spec = model.get("charts");
  const paramBox = document.createElement("div");
  paramBox.className = "gpviz-figure gpx-params";
  const views = {};
  const member = () => (model.get("members") > 1 ? model.get("member") : -1);
  const column = (key) => {  // every member's value, the explored one's as it is now
    const vs = spec.values[key].slice(), m = Math.max(0, model.get("member"));
    vs[m] = model.get("values")[key];
    return vs;
  };
  for (const key of Object.keys(spec.params || {})) {
    const p = params[key];
    const row = document.createElement("div");
    row.className = "gpx-param-row";
    const label = document.createElement("span");
    label.className = "gpx-param-label";
    label.textContent = p ? p.label : key;
    const holder = document.createElement("span");
    holder.className = "gpviz-param";
    holder.dataset.key = key;
    holder.dataset.label = p ? p.label : key;
    row.append(label, holder);
    paramBox.appendChild(row);
    const meta = spec.params[key];
    const view = window.gpviz.chart(holder, key, meta, spec.axes[meta.axis], column(key));
    views[key] = view;
    // a drag on the explored member's dot sets the value under the pointer, throttled as a number's drag
    view.canvas.classList.add("gpx-drag");
    view.canvas.addEventListener("pointerdown", (ev) => {
      const r = view.canvas.getBoundingClientRect(), at = ev.clientX - r.left;
      if (Math.abs(at - view.xOf(model.get("values")[key])) > 8) return;  // on the dot (or beside it) only
      ev.preventDefault();
      view.canvas.setPointerCapture(ev.pointerId);
      let last = null;
      const move = (e) => {
        const v = clamp(params[key], view.valueAt(e.clientX - view.canvas.getBoundingClientRect().left));
        last = v;
        for (const s of numbers[key] || []) s.textContent = fmt(v);
        drawChart(key, v);
        throttled(key, v);
      };
      const up = () => {
        view.canvas.removeEventListener("pointermove", move); view.canvas.removeEventListener("pointerup", up);
        if (last !== null) throttled(key, last, true);
      };
      view.canvas.addEventListener("pointermove", move);
      view.canvas.addEventListener("pointerup", up);
    });
  }
  // `value`: the explored member's value drawn (default: the synced one); the fitted value stays as a ring
  const drawChart = (key, value) => {
    const vs = column(key);
    if (value !== undefined) vs[Math.max(0, model.get("member"))] = value;
    views[key].draw(vs, member(), params[key] ? params[key].fitted : null);
  };
  const drawCharts = () => {
    // the explored member's values as Python sent them stay in its slot: a member switched away from keeps them
    const m = Math.max(0, model.get("member")), values = model.get("values");
    for (const key of Object.keys(views)) {
      if (values[key] !== undefined) spec.values[key][m] = values[key];
      drawChart(key);
    }
  };
  root.append(title, code, paramBox, error, table, reset, charts);

  const drawValues = () => {
    const values = model.get("values");
    for (const [key, spans] of Object.entries(numbers)) {
      for (const s of spans) {
        s.textContent = fmt(values[key]);
        s.dataset.value = String(values[key]);  // the full value (the text is rounded), for tests and tools
        s.classList.toggle("gpx-moved", values[key] !== params[key].fitted);
      }
    }
  };
  const drawMetrics = () => {
    const now = model.get("metrics"), fitted = model.get("fitted_metrics");
    table.replaceChildren();
    const head = table.insertRow();
    for (const h of ["", "now", "fitted"]) head.insertCell().textContent = h;
    // each prior's own row sits under the log prior it adds to
    const priors = Object.keys(now.log_prior || {}).map((k) => [`prior:${k}`, `  ${k}`]);
    const at = METRICS.findIndex(([name]) => name === "log_prior_total") + 1;
    const rows = METRICS.slice(0, at).concat(priors, METRICS.slice(at));
    for (const [name, text] of rows) {
      const get = (m) => (name.startsWith("prior:") ? (m.log_prior || {})[name.slice(6)] : m[name]);
      const row = table.insertRow();
      row.dataset.metric = name;
      row.insertCell().textContent = text;
      row.insertCell().textContent = fmt(get(now));
      row.insertCell().textContent = fmt(get(fitted));
    }
  };
  const drawSlices = () => {
    charts.replaceChildren();
    const caption = document.createElement("div");
    caption.className = "gpx-units";
    caption.textContent = `posterior mean ± 2 sd along each input, the others held at one point (${model.get("slice_units")})`;
    charts.appendChild(caption);
    const near = Object.fromEntries(model.get("near").map((n) => [n.input, n]));
    for (const curve of model.get("curves")) {
      const box = document.createElement("div");
      box.className = "gpx-chart";
      const label = document.createElement("div");
      label.textContent = curve.input;
      // the ranges drawn, in the units the slices are in (original where the model's transforms invert)
      const ys = curve.lower.concat(curve.upper, near[curve.input] ? near[curve.input].y : []);
      const xs = curve.x.concat(near[curve.input] ? near[curve.input].x : []);
      const range = document.createElement("div");
      range.className = "gpx-range";
      range.textContent = `x ${fmt(Math.min(...xs))} … ${fmt(Math.max(...xs))}, y ${fmt(Math.min(...ys))} … ${fmt(Math.max(...ys))}`;
      box.append(label, sliceChart(curve, near[curve.input]), range);
      charts.appendChild(box);
    }
  };
  const drawError = () => { error.textContent = model.get("error"); };

  drawValues(); drawCharts(); drawMetrics(); drawSlices(); drawError();
  model.on("change:values", () => { drawValues(); drawCharts(); });
  model.on("change:params", drawCharts);
  model.on("change:metrics", drawMetrics);
  model.on("change:fitted_metrics", drawMetrics);
  model.on("change:curves", drawSlices);
  model.on("change:error", drawError);
  return () => { root.remove(); };
}

export default { render };
