/* gpviz: draws every parameter of a model expression inline (loaded after the rows2prose header).
 *
 * What comes from rows2prose 0.1.0 (its header defines the globals `d3` and `r2p`):
 *   - r2p.hiddenTimeState and r2p.timeControl drive the animated fit trace (play, pause, scrub);
 *   - r2p.parseColumns is REPLACED below (see fastParseColumns).
 * What gpviz draws itself, and why rows2prose's views are not used for it:
 *   - r2p.scalarDistributionView / scalarDistributionListView place points with a linear scale even
 *     when given a log scale, have no markers (prior mode, constraint bound), draw 2 px unlabelled
 *     bands, and throw on NaN; r2p.scalarView draws nothing for negative values on a log axis. The
 *     small `paramView` below is a canvas dot plot with a true log or linear axis, labelled bands,
 *     markers and visible flags for NaN, +-inf and non-positive values on a log axis.
 *   - The Python side never lets JS sort the shared column buffers (rows2prose's timelines sort
 *     i_timestep in place): rows come sorted by (i_timestep, i_model) with step offsets precomputed.
 * Everything user-controlled reaches the DOM through textContent / setAttribute only.
 */
(function () {
  "use strict";

  var VERSION = "6";  // bumped when mount(), its spec, the mount call or the exported names change (a notebook may hold an older copy)

  /* ---------------------------------------------------------------- base64 -> typed arrays */

  var B64 = new Uint8Array(256).fill(255);
  (function () {
    var abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (var i = 0; i < abc.length; i++) B64[abc.charCodeAt(i)] = i;
  })();

  // Fallback for browsers without Uint8Array.fromBase64: a table-driven decoder (rows2prose's
  // `Uint8Array.from(atob(s), c => c.charCodeAt(0))` calls a closure per byte and is ~80x slower).
  function decodeBase64Fallback(s) {
    var n = s.length;
    while (n > 0 && s.charCodeAt(n - 1) === 61) n--; // strip "=" padding
    var out = new Uint8Array(Math.floor(n * 3 / 4)), o = 0, i = 0;
    for (; i + 4 <= n; i += 4) {
      var a = B64[s.charCodeAt(i)], b = B64[s.charCodeAt(i + 1)],
          c = B64[s.charCodeAt(i + 2)], d = B64[s.charCodeAt(i + 3)];
      out[o++] = (a << 2) | (b >> 4);
      out[o++] = ((b & 15) << 4) | (c >> 2);
      out[o++] = ((c & 3) << 6) | d;
    }
    var rest = n - i;
    if (rest >= 2) {
      var a2 = B64[s.charCodeAt(i)], b2 = B64[s.charCodeAt(i + 1)];
      out[o++] = (a2 << 2) | (b2 >> 4);
      if (rest === 3) {
        var c2 = B64[s.charCodeAt(i + 2)];
        out[o++] = ((b2 & 15) << 4) | (c2 >> 2);
      }
    }
    return out;
  }

  var decodeBase64 = (typeof Uint8Array.fromBase64 === "function")
    ? function (s) { return Uint8Array.fromBase64(s); }
    : decodeBase64Fallback;

  var ARRAY_TYPES = {
    float32: Float32Array, float64: Float64Array, int32: Int32Array, uint32: Uint32Array,
    int16: Int16Array, uint16: Uint16Array, int8: Int8Array, uint8: Uint8Array
  };

  // Drop-in replacement for r2p.parseColumns ({col: {type, data}} -> {col: TypedArray}).
  function fastParseColumns(d) {
    var parsed = {};
    Object.keys(d).forEach(function (k) {
      var type = d[k].type, Ctor = ARRAY_TYPES[type];
      if (!Ctor) throw new Error("gpviz: unknown column type " + JSON.stringify(type) + " for " + JSON.stringify(k));
      var bytes = decodeBase64(d[k].data);
      // fromBase64 and the fallback return fresh, 0-aligned buffers
      parsed[k] = new Ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / Ctor.BYTES_PER_ELEMENT);
    });
    return parsed;
  }

  // A packed figure: every column in one base64 text inside the container's
  // <script type="application/octet-stream" class="gpviz-data"> (parsed by the HTML parser, never
  // by the JS parser), decoded once; each column is a typed-array view at its 8-byte-aligned offset.
  function unpackColumns(container, layout) {
    var holder = container.querySelector("script.gpviz-data");
    if (!holder) throw new Error("gpviz: figure " + container.id + " has no data element");
    var bytes = decodeBase64(holder.textContent.trim());
    var parsed = {};
    Object.keys(layout).forEach(function (k) {
      var c = layout[k], Ctor = ARRAY_TYPES[c.type];
      if (!Ctor) throw new Error("gpviz: unknown column type " + JSON.stringify(c.type) + " for " + JSON.stringify(k));
      if (c.offset + c.length * Ctor.BYTES_PER_ELEMENT > bytes.byteLength) {
        throw new Error("gpviz: column " + JSON.stringify(k) + " runs past the figure's data");
      }
      parsed[k] = new Ctor(bytes.buffer, bytes.byteOffset + c.offset, c.length);
    });
    return parsed;
  }

  /* ---------------------------------------------------------------- compact frame data */

  // The decoder of gpviz/html/compact.py (its docstring describes the format): the payload is a zlib
  // stream, inflated natively by DecompressionStream; each column is zigzag varints of code deltas
  // (along each member's steps in a timeline grid, else along rows); "sig" codes are values rounded
  // to `digits` significant digits, "int" codes are the integers themselves, "f64" is raw float64.
  var POW10 = [];
  for (var p10 = 0; p10 < 330; p10++) POW10.push(Number("1e" + p10));  // correctly rounded, as Python's table

  function inflate(bytes) {
    if (typeof DecompressionStream !== "function") {
      return Promise.reject(new Error("gpviz: this browser cannot inflate the figure's data (no DecompressionStream)"));
    }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (b) { return new Uint8Array(b); });
  }

  function decodeCompactColumn(bytes, col, grid, name) {
    var n = col.length;
    if (col.codec === "f64") return new Float64Array(bytes.buffer, bytes.byteOffset + col.offset, n);
    var sig = col.codec === "sig";
    if (!sig && col.codec !== "int") throw new Error("gpviz: unknown codec " + JSON.stringify(col.codec) + " for " + JSON.stringify(name));
    var out = sig ? new Float64Array(n) : new Int32Array(n);
    var steps = grid ? grid[0] : n, members = grid ? grid[1] : 1;
    var digits = col.digits, base = Math.pow(10, digits - 1), per = 9 * base, e0 = col.e0, top = col.top;
    var pos = col.offset, end = col.offset + col.nbytes;
    for (var m = 0; m < members; m++) {
      var q = 0;
      for (var s = 0, row = m; s < steps; s++, row += members) {
        var b = bytes[pos++], u = b & 127, mul = 128;
        while (b & 128) { b = bytes[pos++]; u += (b & 127) * mul; mul *= 128; }
        q += (u % 2) ? -(u + 1) / 2 : u / 2;  // zigzag, in arithmetic (deltas may pass 2^31 - 1)
        if (!sig) { out[row] = q; continue; }
        var v;
        if (q === 0) v = 0;
        else if (q === top) v = Infinity;
        else if (q === -top) v = -Infinity;
        else if (q === top + 1) v = NaN;
        else {
          var mag = (q < 0 ? -q : q) - 1, decade = Math.floor(mag / per), k = e0 + decade - digits + 1;
          var mant = mag - decade * per + base;
          v = k >= 0 ? mant * POW10[k] : mant / POW10[-k];  // exact power of ten: the value nearest the decimal
          if (q < 0) v = -v;
        }
        out[row] = v;
      }
    }
    if (pos !== end) throw new Error("gpviz: column " + JSON.stringify(name) + " does not end where its layout says");
    return out;
  }

  // A compact figure's columns: base64 -> inflate -> decode. Resolves to {column: TypedArray}.
  // `selector`: the data element (default the figure's columns; a fit's loss points travel in their own).
  function unpackCompact(container, layout, selector) {
    var holder = container.querySelector(selector || "script.gpviz-data");
    if (!holder) return Promise.reject(new Error("gpviz: figure " + container.id + " has no data element"));
    return inflate(decodeBase64(holder.textContent.trim())).then(function (bytes) {
      if (bytes.byteLength !== layout.bytes) throw new Error("gpviz: figure data inflates to " + bytes.byteLength + " bytes, expected " + layout.bytes);
      var table = {};
      Object.keys(layout.columns).forEach(function (k) {
        table[k] = decodeCompactColumn(bytes, layout.columns[k], layout.grid, k);
      });
      return table;
    });
  }

  // Re-applied every time this file runs: a notebook output re-running the rows2prose header
  // creates a fresh `r2p` object.
  if (window.r2p) window.r2p.parseColumns = fastParseColumns;

  // The CSS came in a <style class="gpviz-css"> beside this script; a copy in the document's head keeps
  // every figure styled when the notebook output that brought it is cleared or rerun.
  (function () {
    if (document.getElementById("gpviz-css")) return;
    var src = document.querySelector("style.gpviz-css");
    if (!src || !document.head) return;
    var css = document.createElement("style");
    css.id = "gpviz-css";
    css.textContent = src.textContent;
    document.head.appendChild(css);
  })();

  if (window.gpviz && window.gpviz.version === VERSION) {
    drainQueue();
    return;
  }

  /* ---------------------------------------------------------------- formatting */

  function fmt(v) {
    if (v !== v) return "NaN";
    if (v === Infinity) return "inf";
    if (v === -Infinity) return "-inf";
    if (v === 0) return "0";
    var a = Math.abs(v);
    if (a >= 1e4 || a < 1e-3) {
      var s = v.toExponential(1).replace(".0e", "e").replace("e+", "e");
      return s;
    }
    return String(parseFloat(v.toPrecision(a >= 100 ? 3 : 2)));
  }

  // A value in `digits` significant digits (3; a compact figure prints the digits its values carry).
  function fmtValue(v, digits) {
    var p = digits || 3;
    if (v !== v || !isFinite(v)) return fmt(v);
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(p - 1).replace("e+", "e");
    return String(parseFloat(v.toPrecision(p)));
  }

  /* ---------------------------------------------------------------- geometry */

  var PLOT_W = 150,   // CSS px of the axis
      EDGE = 8,       // CSS px each side: where out-of-range and flagged values are drawn
      ROW_H = 14,     // height of a single strip (snapshot, batch)
      PROFILE_H = 18, // height of the "why here?" band under a chart (html/svg.py's PROFILE_H)
      PROFILE_DROP = 8, // a profile curve is drawn from its peak down to this far below it (view/records.PROFILE_DROP)
      PROFILE_COLORS = { ll: "#4a90d9", lp: "#1a9a3a", sum: "#222222" },
      COLORS = {
        strip: "#e6e6e6", stripAlt: "#f3f3f3", dot: "#1f5fbf", bad: "#d62728",
        prior: "#1a9a3a", tick: "#c4c4c4", zero: "#8a8a8a", highlight: "#ff7f0e", ghost: "#7a7a7a"
      };

  function makeScale(axis) {
    if (axis.kind === "log") {
      var l0 = Math.log10(axis.lo), l1 = Math.log10(axis.hi), ls = (l1 - l0) || 1;
      // pixel position is linear in log10(value): a TRUE log axis
      var logScale = function (v) { return EDGE + (Math.log10(v) - l0) / ls * PLOT_W; };
      logScale.invert = function (x) { return Math.pow(10, l0 + (x - EDGE) / PLOT_W * ls); };
      return logScale;
    }
    // halves: hi - lo overflows to Infinity for values near +-1.8e308
    var a = axis.lo / 2, span = (axis.hi / 2 - a) || 1;
    var linScale = function (v) { return EDGE + (v / 2 - a) / span * PLOT_W; };
    linScale.invert = function (x) { return 2 * (a + (x - EDGE) / PLOT_W * span); };  // the value at CSS px x
    return linScale;
  }

  // Where a value goes: {x, kind}; kind is "ok", "nan", "inf" (+-inf), "nonpos" (<= 0 on a log
  // axis) or "out" (finite but outside the axis, drawn at the edge).
  function place(v, axis, scale) {
    if (v !== v) return { x: NaN, kind: "nan" };
    if (v === Infinity) return { x: EDGE + PLOT_W + EDGE / 2, kind: "inf" };
    if (v === -Infinity) return { x: EDGE / 2, kind: "inf" };
    if (axis.kind === "log" && v <= 0) return { x: EDGE / 2, kind: "nonpos" };
    var x = scale(v);
    if (x < EDGE - 0.5) return { x: EDGE / 2, kind: "out" };
    if (x > EDGE + PLOT_W + 0.5) return { x: EDGE + PLOT_W + EDGE / 2, kind: "out" };
    return { x: x, kind: "ok" };
  }

  function atBound(v, b) {
    return b !== null && b !== undefined && Math.abs(v - b) <= 1e-4 * Math.max(Math.abs(b), 1e-8);
  }

  // A few round values inside [lo, hi] for an axis: decades on a wide log axis (1, 2, 5 times a power of
  // ten on a narrow one), multiples of 1, 2 or 5 times a power of ten on a linear one. Labels come from
  // fmt(): plain numbers ("0.01", "2", "300"), exponents only below 1e-3 or from 1e4 on.
  function niceTicks(axis, want) {
    var lo = axis.lo, hi = axis.hi, out = [], k, m;
    want = want || 4;
    if (!(hi > lo) || !isFinite(lo) || !isFinite(hi)) return out;
    if (axis.kind === "log") {
      var k0 = Math.floor(Math.log10(lo)), k1 = Math.ceil(Math.log10(hi));
      var mults = (k1 - k0 >= 3) ? [1] : (k1 - k0 >= 2 ? [1, 3] : [1, 2, 5]);
      var stride = Math.max(1, Math.ceil((k1 - k0 + 1) / (want + 1)));
      for (k = k0; k <= k1; k++) {
        if (mults.length === 1 && (k - k0) % stride) continue;
        for (m = 0; m < mults.length; m++) {
          var v = mults[m] * Math.pow(10, k);
          if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(parseFloat(v.toPrecision(6)));
        }
      }
      return out;
    }
    var raw = (hi / 2 - lo / 2) * 2 / want, p = Math.pow(10, Math.floor(Math.log10(raw))), step = p;
    [1, 2, 5, 10].some(function (f) { step = f * p; return f * p >= raw * 0.75; });
    for (var t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9 && out.length < 20; t += step) {
      out.push(Math.abs(t) < step * 1e-9 ? 0 : parseFloat(t.toPrecision(6)));
    }
    return out;
  }

  /* ---------------------------------------------------------------- the parameter view */

  // One parameter placeholder: builds its DOM once, then draw(start, end) shows rows [start, end).
  function paramView(el, key, meta, axis, column, iConfig, configs, singleRow, digits) {
    var scale = makeScale(axis);
    var nBands = configs ? configs.labels.length : 1;
    var bandH = configs ? configs.band : ROW_H;
    var height = nBands * bandH;
    var profile = meta.profile || null;
    var fullH = height + (profile ? PROFILE_H : 0);  // the canvas: the strips, then the profile band
    var width = PLOT_W + 2 * EDGE;
    var dpr = window.devicePixelRatio || 1;

    el.textContent = "";
    var chart = document.createElement("span");
    chart.className = "gpviz-chart";
    chart.setAttribute("role", "img");
    el.appendChild(chart);

    if (configs) {
      // one element per band (class gpviz-band-label), sized by the container's --band variable
      var labels = document.createElement("span");
      labels.className = "gpviz-band-labels";
      labels.style.height = height + "px";
      labels.style.setProperty("--band", bandH + "px");
      labels.style.fontSize = Math.min(10, Math.max(7, bandH - 1)) + "px";
      labels.setAttribute("title", configs.labels.join("\n"));
      var every = Math.max(1, Math.ceil(9 / bandH));
      configs.labels.forEach(function (text, i) {
        var lab = document.createElement("span");
        lab.className = "gpviz-band-label";
        if (i % every === 0) lab.textContent = text;
        // the band's verdict counts (meta.bands[i] = [share held at the prior's mode, "n = 40: ..."])
        var band = meta.bands ? meta.bands[i] : null;
        if (band) {
          lab.dataset.held = String(band[0]);
          lab.setAttribute("title", band[1]);
          if (band[0] > 0) lab.classList.add("gpviz-band-held");
        }
        labels.appendChild(lab);
      });
      chart.appendChild(labels);
    }

    // axis end labels: beside a single strip; under a stack of bands (so they never read as band labels)
    var lo = document.createElement("span");
    lo.className = "gpviz-axis-lo";
    lo.textContent = fmt(axis.lo);
    var hi = document.createElement("span");
    hi.className = "gpviz-axis-hi";
    hi.textContent = fmt(axis.hi);

    var canvas = document.createElement("canvas");
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(fullH * dpr);
    canvas.style.width = width + "px";
    canvas.style.height = fullH + "px";
    var tickValues = niceTicks(axis, 4);
    if (configs) {
      // under a stack of bands: a labelled tick row (a few round values, not just the two ends)
      var plotColumn = document.createElement("span");
      plotColumn.className = "gpviz-plot-column";
      plotColumn.appendChild(canvas);
      var row = document.createElement("span");
      row.className = "gpviz-tick-row";
      row.style.width = width + "px";
      var lastRight = -Infinity, shownTicks = [];
      tickValues.forEach(function (t) {
        var x = scale(t), text = fmt(t), half = text.length * 3;  // ~6 px per character at 10-11 px
        if (x - half < lastRight + 4) return;  // never two labels touching
        var lab = document.createElement("span");
        lab.className = "gpviz-tick";
        lab.textContent = text;
        lab.style.left = x + "px";
        row.appendChild(lab);
        lastRight = x + half;
        shownTicks.push(t);
      });
      if (!shownTicks.length) { row.appendChild(lo); row.appendChild(hi); row.classList.add("gpviz-tick-ends"); }
      row.dataset.ticks = shownTicks.join(",");
      plotColumn.appendChild(row);
      chart.appendChild(plotColumn);
    } else {
      chart.appendChild(lo);
      chart.appendChild(canvas);
      chart.appendChild(hi);
    }

    var valueText = document.createElement("span");
    valueText.className = "gpviz-value";
    chart.appendChild(valueText);
    var flagText = document.createElement("span");
    flagText.className = "gpviz-flag";
    chart.appendChild(flagText);
    // the power-scaling diagnosis (gpviz.prior_sensitivity), when the page has it: a badge when a component counts
    var psense = meta.psense || null;
    if (psense && psense[2]) {
      var badge = document.createElement("span");
      badge.className = "gpviz-psense";
      badge.textContent = psense[2] === "prior-data conflict" ? "\u2691 prior-data conflict" : "\u2691 strong prior";
      chart.appendChild(badge);
    }

    var ctx = canvas.getContext("2d");

    function background() {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, width, fullH);
      for (var i = 0; i < nBands; i++) {
        ctx.fillStyle = (i % 2) ? COLORS.stripAlt : COLORS.strip;
        ctx.fillRect(EDGE, i * bandH, PLOT_W, bandH);
        // a size band tinted by the share of its members held at the prior's mode (none: no tint)
        var held = meta.bands && meta.bands[i] ? meta.bands[i][0] : 0;
        if (held > 0) {
          ctx.fillStyle = "rgba(255, 170, 0, " + (0.10 + 0.45 * held).toFixed(3) + ")";
          ctx.fillRect(EDGE, i * bandH, PLOT_W, bandH);
        }
      }
      if (profile) {  // the "why here?" band: a lighter strip under the chart's own
        ctx.fillStyle = "#f7f7f7";
        ctx.fillRect(EDGE, height, PLOT_W, PROFILE_H);
      }
      // axis ends
      ctx.fillStyle = COLORS.zero;
      ctx.fillRect(EDGE - 1, 0, 1, fullH);
      ctx.fillRect(EDGE + PLOT_W, 0, 1, fullH);
      // decade ticks on a log axis, the zero line on a linear one
      ctx.fillStyle = COLORS.tick;
      tickValues.forEach(function (t) { ctx.fillRect(Math.round(scale(t)), 0, 1, fullH); });
      if (axis.kind !== "log" && axis.lo < 0 && axis.hi > 0) {
        ctx.fillStyle = COLORS.zero;
        ctx.fillRect(Math.round(scale(0)), 0, 1, fullH);
      }
      if (profile) drawProfile();
      // the prior's mode: a green line with a notch at the bottom (through the profile band too)
      if (meta.prior !== null && meta.prior !== undefined) {
        var pp = place(meta.prior, axis, scale);
        if (pp.kind === "ok") {
          ctx.fillStyle = COLORS.prior;
          ctx.fillRect(pp.x - 0.75, 0, 1.5, fullH);
          ctx.beginPath();
          ctx.moveTo(pp.x - 3.5, height);
          ctx.lineTo(pp.x + 3.5, height);
          ctx.lineTo(pp.x, height - 4);
          ctx.closePath();
          ctx.fill();
        }
      }
      // a constraint bound: a red bar where some value sits at it, else a dashed red line when it
      // falls inside the axis (an Interval's bounds are the axis ends themselves)
      [["lower", meta.mark_lower], ["upper", meta.mark_upper]].forEach(function (m) {
        var b = meta[m[0]];
        if (b === null || b === undefined || (axis.bounded && !m[1])) return;
        var pb = place(b, axis, scale);
        if (pb.kind !== "ok") return;
        ctx.fillStyle = COLORS.bad;
        if (m[1]) {
          ctx.fillRect(pb.x - 1, 0, 2, fullH);
        } else {
          var xb = Math.floor(pb.x);  // on whole pixels: a crisp 1 px dash, not a blur
          for (var yb = 0; yb < fullH; yb += 4) ctx.fillRect(xb, yb, 1, 2);
        }
      });
    }

    // Each member's log likelihood (blue), log prior (green) and their sum (black) along the axis, each from its
    // own peak (top of the band) down to PROFILE_DROP below it (bottom). The peaks' places go to the hover text.
    var profilePeaks = null;
    function profileSeries() {
      var out = [];
      profile.ll.forEach(function (ll, j) {
        var lp = profile.lp[j] || [];
        var sum = ll.map(function (v, i) { return (v === null || lp[i] === null || lp[i] === undefined) ? null : v + lp[i]; });
        out.push({ kind: "ll", v: ll, member: j }, { kind: "lp", v: lp, member: j }, { kind: "sum", v: sum, member: j });
      });
      return out;
    }
    function peakOf(v) {
      var best = -1;
      for (var i = 0; i < v.length; i++) if (v[i] !== null && (best < 0 || v[i] > v[best])) best = i;
      return best;
    }
    function drawProfile() {
      var top = height + 2, h = PROFILE_H - 4, xs = profile.x.map(function (v) { return place(v, axis, scale); });
      var members = profile.ll.length, curves = 0;
      profilePeaks = [];
      ctx.lineWidth = 1.2;
      profileSeries().forEach(function (c) {
        var at = peakOf(c.v);
        if (at < 0) return;
        var lowest = Math.min.apply(null, c.v.filter(function (v) { return v !== null; }));
        if (c.v[at] - lowest < 1e-9) return;  // constant (no prior on this axis): nothing to say
        var peak = c.v[at], open = false;
        if (c.member === 0) profilePeaks.push({ kind: c.kind, at: at, x: profile.x[at], n: c.v.length });
        ctx.globalAlpha = members > 1 ? Math.max(0.2, 1 / Math.sqrt(members)) : (c.kind === "sum" ? 1 : 0.85);
        ctx.strokeStyle = PROFILE_COLORS[c.kind];
        ctx.beginPath();
        for (var i = 0; i < c.v.length; i++) {
          if (c.v[i] === null || xs[i].kind !== "ok") { open = false; continue; }
          var y = top + Math.min(1, (peak - c.v[i]) / PROFILE_DROP) * h;
          if (open) ctx.lineTo(xs[i].x, y); else ctx.moveTo(xs[i].x, y);
          open = true;
        }
        ctx.stroke();
        curves++;
      });
      ctx.globalAlpha = 1;
      el.gpvizProfile = { curves: curves, peaks: profilePeaks, top: height, height: PROFILE_H };
      el.dataset.profile = String(curves);
    }
    function profileTip() {
      if (!profilePeaks || !profilePeaks.length) return "";
      var words = { ll: "likelihood", lp: "prior", sum: "their sum" };
      return "\nwhy here" + (profile.ll.length > 1 ? " (first member)" : "") + ": " + profilePeaks.map(function (p) {
        var end = p.at === 0 ? " (axis low end)" : (p.at === p.n - 1 ? " (axis high end)" : "");
        return words[p.kind] + " peaks at " + fmtValue(p.x) + end;
      }).join(", ");
    }

    function triangle(x, y, r, right) {
      ctx.beginPath();
      ctx.moveTo(x + (right ? r : -r), y);
      ctx.lineTo(x + (right ? -r : r), y - r);
      ctx.lineTo(x + (right ? -r : r), y + r);
      ctx.closePath();
      ctx.fill();
    }

    // `ghost`: a value drawn as a hollow ring that does not move (the explorer's fitted value), or null
    function draw(start, end, hl, ghost) {
      background();
      var n = Math.max(0, end - start);
      var xs = new Float64Array(n), ys = new Float64Array(n);
      var counts = { nan: 0, inf: 0, nonpos: 0, out: 0 };
      var drawn = 0;
      var alpha = n <= 1 ? 0.9 : Math.max(0.3, Math.min(0.6, 4 / Math.sqrt(n)));
      var shown = [];
      for (var i = 0; i < n; i++) {
        var v = column[start + i];
        var band = iConfig ? iConfig[start + i] : 0;
        var y = (band + 0.5) * bandH;
        var r = Math.max(1.2, Math.min(singleRow ? 3.5 : 2.8, bandH / 2 - 1));
        var p = place(v, axis, scale);
        xs[i] = p.x;
        ys[i] = y;
        if (p.kind === "nan") { counts.nan++; continue; }
        if (p.kind !== "ok") {
          counts[p.kind]++;
          ctx.globalAlpha = 1;
          ctx.fillStyle = COLORS.bad;
          triangle(p.x, y, Math.max(3.5, Math.min(5, bandH / 2)), p.x > EDGE);
          drawn++;
          continue;
        }
        ctx.globalAlpha = alpha;
        // one fill per dot (not one path for all): overlapping translucent dots darken, showing density
        ctx.fillStyle = (atBound(v, meta.lower) || atBound(v, meta.upper)) ? COLORS.bad : COLORS.dot;
        ctx.beginPath();
        ctx.arc(p.x, y, r, 0, 2 * Math.PI);
        ctx.fill();
        drawn++;
        shown.push(v);
      }
      ctx.globalAlpha = 1;
      el.gpvizGhostX = null;
      if (ghost !== null && ghost !== undefined) {
        var pg = place(ghost, axis, scale);
        if (pg.kind === "ok") {
          ctx.strokeStyle = COLORS.ghost;
          ctx.lineWidth = 1.5;
          ctx.beginPath();
          ctx.arc(pg.x, ((hl >= 0 && hl < n) ? ys[hl] : bandH / 2), Math.max(3, Math.min(4.5, bandH / 2)), 0, 2 * Math.PI);
          ctx.stroke();
          el.gpvizGhostX = pg.x;
        }
      }
      // the member under the pointer (in any chart of the figure): an orange ring in every chart
      el.gpvizHighlight = -1;
      if (hl >= 0 && hl < n && xs[hl] === xs[hl]) {
        ctx.strokeStyle = COLORS.highlight;
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(xs[hl], ys[hl], Math.max(3, Math.min(5, bandH / 2)), 0, 2 * Math.PI);
        ctx.stroke();
        el.gpvizHighlight = hl;
      }

      valueText.textContent = (n === 1) ? fmtValue(column[start], digits) : "";
      var flags = [];
      if (counts.nan) flags.push(counts.nan + " NaN");
      if (counts.inf) flags.push(counts.inf + " inf");
      if (counts.nonpos) flags.push(counts.nonpos + " \u2264 0 on log axis");
      if (counts.out) flags.push(counts.out + " off axis");
      if (n === 0) flags.push("no values");
      flagText.textContent = flags.length ? "\u26a0 " + flags.join(", ") : "";
      el.classList.toggle("gpviz-flagged", flags.length > 0);

      var tip = el.getAttribute("data-label") || key;  // the readable label (lengthscale[log_lr]); the key stays in data-key
      if (n === 1) tip += " = " + fmtValue(column[start], digits);
      else if (shown.length) {
        var sorted = shown.slice().sort(function (a, b) { return a - b; });
        tip += "\n" + n + " values: min " + fmtValue(sorted[0], digits) + ", median " +
          fmtValue(sorted[Math.floor(sorted.length / 2)], digits) + ", max " + fmtValue(sorted[sorted.length - 1], digits);
      }
      tip += "\naxis: " + (axis.kind === "log" ? "log" : "linear") + " " + fmt(axis.lo) + " .. " + fmt(axis.hi);
      if (meta.prior !== null && meta.prior !== undefined) tip += "\nprior mode: " + fmtValue(meta.prior);
      if (meta.lower !== null && meta.lower !== undefined) tip += "\nlower bound: " + fmtValue(meta.lower);
      if (meta.upper !== null && meta.upper !== undefined) tip += "\nupper bound: " + fmtValue(meta.upper);
      if (meta.held) tip += "\nheld at the prior's mode";
      if (meta.never) tip += "\nnever moved: the data carries no information about it: the optimizer left it where it started";
      if (profile) tip += profileTip();
      if (psense) {
        tip += "\npower-scaling sensitivity (gpviz.prior_sensitivity): prior " + psense[0] + ", likelihood " +
          psense[1] + " (threshold " + psense[4] + ")" + (psense[2] ? ": " + psense[2] : ": neither counts") +
          (psense[3] >= 0.7 ? "; Pareto k " + psense[3] + " \u2265 0.7: not reliable" : "");
      }
      if (meta.bands) {
        meta.bands.forEach(function (b) { if (b) tip += "\n" + b[1]; });
      }
      if (flags.length) tip += "\n" + flags.join(", ");
      chart.setAttribute("title", tip);
      chart.setAttribute("aria-label", tip);

      // test and tooling hooks (no user strings)
      el.gpvizXs = xs;  // CSS px from the canvas' left edge, one per row (NaN: not drawable)
      el.gpvizValues = column.slice(start, start + n);  // the values drawn, as the page decoded them
      el.gpvizYs = ys;
      el.gpvizCounts = counts;
      el.dataset.drawn = "1";
      el.dataset.points = String(drawn);
      el.dataset.flags = Object.keys(counts).filter(function (k) { return counts[k]; })
        .map(function (k) { return k + ":" + counts[k]; }).join(",") + (n === 0 ? (flags.length > 1 ? "," : "") + "empty" : "");
      canvas.dataset.plotLeft = String(EDGE);
      canvas.dataset.plotWidth = String(PLOT_W);
      el.gpvizTicks = tickValues;  // the axis' round values, each drawn as a grey line at scale(t)
      return counts;
    }

    // row offset (within the drawn rows) of the dot nearest to a pointer position, or -1
    function nearest(mx, my) {
      var xs = el.gpvizXs, ys = el.gpvizYs, best = -1, bestD = 36;
      if (!xs) return -1;
      for (var i = 0; i < xs.length; i++) {
        var dx = xs[i] - mx, dy = ys[i] - my, d = dx * dx + dy * dy;
        if (d < bestD) { bestD = d; best = i; }
      }
      return best;
    }

    return { draw: draw, el: el, canvas: canvas, nearest: nearest };
  }

  // One parameter's chart drawn into `el` from what a page's spec holds for it (spec.params[key], the axis it
  // names, the values of its rows: one per batch member): the chart model pages draw, for front ends that
  // bring their own data (the explorer widget, gpviz/static/explore.js). Returns {draw(values, hl, ghost):
  // redraws with new values, member hl ringed (-1: none) and a fixed hollow ring at `ghost` (null: none);
  // xOf(v): the CSS px of v from the canvas' left edge; valueAt(x): the axis value at CSS px x, kept on the
  // axis; canvas}.
  function chart(el, key, meta, axis, values) {
    var column = new Float64Array(values.length), scale = makeScale(axis);
    var view = paramView(el, key, meta, axis, column, null, null, values.length === 1, 3);
    function draw(vs, hl, ghost) {
      column.set(vs);
      view.draw(0, column.length, hl === undefined ? -1 : hl, ghost);
    }
    draw(values, -1, null);
    return {
      draw: draw, canvas: view.canvas,
      xOf: function (v) { return place(v, axis, scale).x; },
      valueAt: function (x) { return scale.invert(Math.max(EDGE, Math.min(EDGE + PLOT_W, x))); }
    };
  }

  function noDataView(el, key) {
    el.textContent = "";
    var flag = document.createElement("span");
    flag.className = "gpviz-flag";
    flag.textContent = "\u26a0 no data for " + key;
    el.appendChild(flag);
    el.classList.add("gpviz-flagged");
    return {
      draw: function () { el.dataset.drawn = "1"; el.dataset.points = "0"; el.dataset.flags = "missing"; },
      el: el
    };
  }

  /* ---------------------------------------------------------------- the loss chart of a fit trace */

  var LOSS_W = 560, LOSS_H = 200, LOSS_M = { left: 56, right: 12, top: 8, bottom: 30 };

  // The loss of every member against the timestep, drawn in the figure's ".gpviz-loss" element: one
  // line per member, a cursor at the step the slider shows, a ring where a member converged. Hovering
  // a line highlights that member everywhere (its dots in every chart ring); hovering a dot
  // highlights its line. spec: {t: column (timestep per point), v: column (loss), m: column (member per
  // point, sorted by member then timestep), members, converged: [timestep or null per member],
  // retries: [timestep where an attempt starts], label}.
  function lossView(holder, spec, table, onHover) {
    var ts = table[spec.t], vs = table[spec.v], ms = table[spec.m], n = spec.members;
    var starts = new Int32Array(n + 1), i, j;
    for (i = 0; i < ms.length; i++) starts[ms[i] + 1]++;
    for (j = 0; j < n; j++) starts[j + 1] += starts[j];
    var t0 = Infinity, t1 = -Infinity, v0 = Infinity, v1 = -Infinity;
    for (i = 0; i < ts.length; i++) {
      if (ts[i] < t0) t0 = ts[i];
      if (ts[i] > t1) t1 = ts[i];
      var v = vs[i];
      if (v === v && isFinite(v)) { if (v < v0) v0 = v; if (v > v1) v1 = v; }
    }
    if (!(t1 > t0)) { t0 -= 1; t1 += 1; }
    if (!(v1 > v0)) { var w = Math.abs(v0) * 0.05 || 1; v0 = (v0 === Infinity ? 0 : v0) - w; v1 = v0 + 2 * w; }
    var pad = (v1 - v0) * 0.05;
    v0 -= pad; v1 += pad;
    var pw = LOSS_W - LOSS_M.left - LOSS_M.right, ph = LOSS_H - LOSS_M.top - LOSS_M.bottom;
    function X(t) { return LOSS_M.left + (t - t0) / (t1 - t0) * pw; }
    function Y(v) { return LOSS_M.top + (v1 - v) / (v1 - v0) * ph; }
    var dpr = window.devicePixelRatio || 1;

    holder.textContent = "";
    var title = document.createElement("div");
    title.className = "gpviz-loss-title";
    title.textContent = spec.label;
    holder.appendChild(title);
    var box = document.createElement("div");
    box.className = "gpviz-loss-box";
    box.style.width = LOSS_W + "px";
    box.style.height = LOSS_H + "px";
    holder.appendChild(box);
    var canvas = document.createElement("canvas");
    canvas.width = Math.round(LOSS_W * dpr);
    canvas.height = Math.round(LOSS_H * dpr);
    canvas.style.width = LOSS_W + "px";
    canvas.style.height = LOSS_H + "px";
    box.appendChild(canvas);
    var cursor = document.createElement("div");
    cursor.className = "gpviz-loss-cursor";
    cursor.style.top = LOSS_M.top + "px";
    cursor.style.height = ph + "px";
    box.appendChild(cursor);
    var ctx = canvas.getContext("2d");

    function label(text, x, y, cls) {
      var e = document.createElement("span");
      e.className = cls;
      e.textContent = text;
      e.style.left = x + "px";
      e.style.top = y + "px";
      box.appendChild(e);
    }
    var xTicks = niceTicks({ kind: "linear", lo: t0, hi: t1 }, 6).filter(function (t) { return t === Math.round(t); });
    var yTicks = niceTicks({ kind: "linear", lo: v0, hi: v1 }, 4);
    xTicks.forEach(function (t) { label(fmt(t), X(t), LOSS_M.top + ph + 4, "gpviz-loss-xtick"); });
    yTicks.forEach(function (v) { label(fmt(v), LOSS_M.left - 6, Y(v), "gpviz-loss-ytick"); });
    label(spec.x_label || "timestep", LOSS_M.left + pw / 2, LOSS_H - 13, "gpviz-loss-xlabel");

    function color(j, a) {  // members told apart by hue, as in tracer.plot()
      var h = 250 - 200 * (n > 1 ? j / (n - 1) : 0);
      return "hsla(" + h + ", 55%, 42%, " + a + ")";
    }

    function line(j) {
      var first = true;
      ctx.beginPath();
      for (var i = starts[j]; i < starts[j + 1]; i++) {
        var v = vs[i];
        if (v !== v || !isFinite(v)) { first = true; continue; }
        if (first) ctx.moveTo(X(ts[i]), Y(v)); else ctx.lineTo(X(ts[i]), Y(v));
        first = false;
      }
      ctx.stroke();
    }

    // the loss of member j at timestep t (its last recorded value at or before t), or NaN
    function lossAt(j, t) {
      var a = starts[j], b = starts[j + 1] - 1, best = -1;
      while (a <= b) { var mid = (a + b) >> 1; if (ts[mid] <= t) { best = mid; a = mid + 1; } else b = mid - 1; }
      return best < 0 ? NaN : vs[best];
    }

    var hl = -1;
    function draw() {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, LOSS_W, LOSS_H);
      ctx.fillStyle = "#fafafa";
      ctx.fillRect(LOSS_M.left, LOSS_M.top, pw, ph);
      ctx.fillStyle = "#e2e2e2";
      yTicks.forEach(function (v) { ctx.fillRect(LOSS_M.left, Math.round(Y(v)), pw, 1); });
      xTicks.forEach(function (t) { ctx.fillRect(Math.round(X(t)), LOSS_M.top, 1, ph); });
      ctx.fillStyle = "#8a8a8a";
      ctx.fillRect(LOSS_M.left, LOSS_M.top + ph, pw, 1);
      ctx.fillRect(LOSS_M.left - 1, LOSS_M.top, 1, ph);
      (spec.retries || []).forEach(function (t) {  // a retry restarts the optimizer: dashed line
        var x = Math.floor(X(t - 0.5));
        for (var y = LOSS_M.top; y < LOSS_M.top + ph; y += 5) ctx.fillRect(x, y, 1, 3);
      });
      ctx.lineWidth = 1.2;
      for (var j = 0; j < n; j++) {
        if (j === hl) continue;
        ctx.strokeStyle = color(j, hl < 0 ? 0.8 : 0.25);
        line(j);
      }
      if (hl >= 0 && hl < n) {
        ctx.strokeStyle = COLORS.highlight;
        ctx.lineWidth = 2.5;
        line(hl);
      }
      // converged members: a ring on the line at the step the member converged by its own criterion
      (spec.converged || []).forEach(function (t, j) {
        if (t === null || t === undefined) return;
        var v = lossAt(j, t);
        if (v !== v) return;
        ctx.strokeStyle = j === hl ? COLORS.highlight : color(j, 0.95);
        ctx.fillStyle = "#fff";
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.arc(X(t), Y(v), 3, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      });
      holder.dataset.highlight = String(hl);
    }

    function setCursor(t) {
      var x = X(t);
      cursor.style.left = (x - 0.5) + "px";
      holder.gpvizCursorX = x;  // CSS px from the chart's left edge
      holder.dataset.cursorStep = String(t);
    }

    // member whose line passes nearest to a pointer position (within 8 px), or -1
    function nearest(mx, my) {
      if (mx < LOSS_M.left || mx > LOSS_M.left + pw) return -1;
      var t = t0 + (mx - LOSS_M.left) / pw * (t1 - t0), best = -1, bestD = 8;
      for (var j = 0; j < n; j++) {
        var v = lossAt(j, t);
        if (v !== v || !isFinite(v)) continue;
        var d = Math.abs(Y(v) - my);
        if (d < bestD) { bestD = d; best = j; }
      }
      return best;
    }
    canvas.addEventListener("mousemove", function (ev) {
      var r = canvas.getBoundingClientRect();
      var j = nearest(ev.clientX - r.left, ev.clientY - r.top);
      if (j >= 0) onHover(j);
    });
    canvas.addEventListener("mouseleave", function () { onHover(-1); });

    draw();
    setCursor(t1);
    // test and tooling hooks (no user strings): pixel position of member j's loss at timestep t
    holder.gpvizPoint = function (j, t) { return { x: X(t), y: Y(lossAt(j, t)) }; };
    holder.dataset.drawn = "1";
    return {
      highlight: function (j) { if (j !== hl) { hl = j; draw(); } },
      cursor: setCursor
    };
  }

  /* ---------------------------------------------------------------- mounting */

  // `decoded`: {table, loss, t0} when the columns (table, or null: read them here) or a fit's loss points
  // were decoded already (compact data inflates asynchronously)
  function mount(container, spec, decoded) {
    var t0 = decoded ? decoded.t0 : performance.now();
    // the note that says the charts are static pictures (each chart's picture goes with its placeholder below)
    container.querySelectorAll(".gpviz-static-note").forEach(function (n) { n.remove(); });
    var table = decoded && decoded.table ? decoded.table : spec.packed ? unpackColumns(container, spec.columns)
      : (window.r2p ? window.r2p.parseColumns : fastParseColumns)(spec.columns);
    var tParsed = performance.now();
    var iConfig = spec.configs ? table[spec.configs.column] : null;
    var placeholders = container.querySelectorAll(".gpviz-param");
    var views = [];
    var singleRow = spec.members === 1;
    placeholders.forEach(function (el) {
      var key = el.getAttribute("data-key");
      var meta = spec.params[key], column = table[key];
      try {
        views.push((meta && column)
          ? paramView(el, key, meta, spec.axes[meta.axis], column, iConfig, spec.configs, singleRow,
                      spec.packed === "compact" ? spec.columns.columns[key].digits : 3)
          : noDataView(el, key));
      } catch (err) {
        console.error("gpviz: cannot draw " + key + ": " + err);
      }
    });

    var tBuilt = performance.now();
    var summary = {
      mode: spec.mode, placeholders: placeholders.length, drawn: 0, flagged: [], step: null,
      rows: spec.n_rows, parse_ms: tParsed - t0, build_ms: tBuilt - tParsed
    };
    window.gpvizSummary = window.gpvizSummary || {};
    window.gpvizSummary[container.id] = summary;

    var drawnRows = [0, 0], hl = -1, pending = false;
    var hover = container.querySelector(".gpviz-hover");
    var loss = null, lossHolder = spec.loss ? container.querySelector(".gpviz-loss") : null;
    if (lossHolder && decoded && decoded.loss) {
      try {
        loss = lossView(lossHolder, spec.loss, decoded.loss, function (j) { setHighlight(j); });
      } catch (err) {
        console.error("gpviz: cannot draw the loss chart: " + err);
      }
    }

    function drawRows(start, end) {
      drawnRows = [start, end];
      var flagged = [];
      views.forEach(function (v) {
        var counts = v.draw(start, end, hl);
        if (counts && (counts.nan || counts.inf || counts.nonpos || counts.out || end <= start)) {
          flagged.push(v.el.getAttribute("data-key"));
        }
      });
      summary.drawn = container.querySelectorAll('.gpviz-param[data-drawn="1"]').length;
      summary.flagged = flagged;
      summary.highlight = hl;
      if (hover) hover.textContent = hl < 0 ? "" : rowLabel(start + hl, hl);
      if (loss) loss.highlight(hl);
    }

    // "member 3" / "n = 40, member 3": the row's member in plain words (spec.row_members: i_model per row)
    function rowLabel(row, offset) {
      var member = spec.row_members ? spec.row_members[row] : offset;
      var named = spec.member_names && spec.member_names[member];
      var text = (spec.member || "member") + " " + (named ? "'" + named + "'" : member);  // "MCMC sample 3", "output 'yield'"
      if (iConfig && spec.configs) text = spec.configs.labels[iConfig[row]] + ", " + text;
      return "\u25ef " + text;
    }

    function setHighlight(i) {
      if (i === hl) return;
      hl = i;
      if (pending) return;
      pending = true;
      requestAnimationFrame(function () { pending = false; drawRows(drawnRows[0], drawnRows[1]); });
    }

    views.forEach(function (v) {
      if (!v.canvas) return;
      v.canvas.addEventListener("mousemove", function (ev) {
        var r = v.canvas.getBoundingClientRect();
        var i = v.nearest(ev.clientX - r.left, ev.clientY - r.top);
        if (i >= 0) setHighlight(i);
      });
      v.canvas.addEventListener("mouseleave", function () { setHighlight(-1); });
    });

    if (spec.mode === "timeline") {
      mountTimeline(container, spec, drawRows, summary, loss);
    } else {
      drawRows(0, spec.n_rows);
    }
    container.setAttribute("data-drawn", "1");
    summary.draw_ms = performance.now() - tBuilt;
    summary.ms = performance.now() - t0;
    window.gpvizDrawnAt = performance.now();
    // the first frame with the drawn canvases gets style, layout and raster after the next animation
    // frame callback; the one after that starts once it was produced: "painted" (benchmarks read it)
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { window.gpvizPaintedAt = summary.painted_at = performance.now(); });
    });
    return summary;
  }

  // The smallest part of a d3 selection that rows2prose's timeControl calls on the selection it is
  // given (each, datum, select, property, style, text; one node; select() hands the datum down as
  // d3 does). Inside, timeControl uses its own bundled d3, so pages need no global d3.min.js (280 KB).
  function oneNodeSelection(node) {
    function value(v) { return typeof v === "function" ? v.call(node, node && node.__data__) : v; }
    var sel = {
      node: function () { return node; },
      each: function (fn) { if (node) fn.call(node, node.__data__, 0, [node]); return sel; },
      datum: function (d) {
        if (!arguments.length) return node ? node.__data__ : undefined;
        if (node) node.__data__ = d;
        return sel;
      },
      select: function (q) {
        var child = node ? node.querySelector(q) : null;
        if (child && node && "__data__" in node) child.__data__ = node.__data__;
        return oneNodeSelection(child);
      },
      property: function (name, v) { if (node) node[name] = value(v); return sel; },
      style: function (name, v) { if (node) node.style.setProperty(name, value(v)); return sel; },
      text: function (v) { if (node) node.textContent = value(v); return sel; },
      call: function (fn) { fn(sel); return sel; }
    };
    return sel;
  }

  // Playback speeds (steps per slider unit; rows2prose's player moves 5 units per second).
  var SPEEDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
  var PLAY_SECONDS = 40;  // the default speed plays the whole fit in at most this long

  // The fit trace: rows2prose's timeControl (slider, play, pause, restart), fed with timesteps sorted
  // in Python. The step state is gpviz's own (rows2prose's hiddenTimeState needs a global d3); it
  // keeps hiddenTimeState's hook, `.timeState` element's `_r2pState.selectTimestep(v)` (v in slider
  // units). A speed control maps one slider unit to `speed` steps: rows2prose's player advances
  // 5 units per second, so 1,000 steps play in 200 s at 1x and in 40 s at 5x; the slider stays
  // fractional, so scrubbing reaches every step at any speed. Tools and tests can call
  // `container.gpvizShowStep(i)` (i: an index into the steps) and `container.gpvizSetSpeed(s)`.
  // `loss`: the loss chart (its cursor follows the step drawn), or null.
  function mountTimeline(container, spec, drawRows, summary, loss) {
    var steps = spec.steps, starts = spec.step_starts;
    var stateHolder = container.querySelector(".gpviz-time-state");
    var controlHolder = container.querySelector(".gpviz-time");
    if (!steps.length) {
      drawRows(0, 0);
      return;
    }
    var last = steps.length - 1;
    var speed = SPEEDS.filter(function (x) { return x * PLAY_SECONDS * 5 >= last; })[0] || SPEEDS[SPEEDS.length - 1];
    var units = [];  // what rows2prose's slider runs over: one entry per slider unit
    function makeUnits() {
      units = [];
      for (var u = 0; u * speed < last; u++) units.push(steps[u * speed]);
      units.push(steps[last]);
    }
    var shown = -1, position = 0;
    var label = null;
    function renderStep(i) {
      if (i === shown) return;
      shown = i;
      drawRows(starts[i], starts[i + 1]);
      summary.step = steps[i];
      container.setAttribute("data-step", String(steps[i]));
      if (loss) loss.cursor(steps[i]);
    }
    // `units` is a fresh array made from JSON: rows2prose never sees (nor sorts) a column buffer
    var control = r2p.timeControl().prefix(spec.step_prefix).onupdate(function (v) { state.selectTimestep(v); });
    var selection = window.d3 ? d3.select(controlHolder) : oneNodeSelection(controlHolder);
    function renderTime(v) {
      position = v;
      selection.datum({ sortedUniqueTimesteps: units, index: v }).call(control);
      // rows2prose gives every slider the same DOM id; drop it (several figures share a page)
      controlHolder.querySelectorAll("#timestep").forEach(function (e) { e.removeAttribute("id"); });
      // its label names the slider unit's first step: name the step drawn
      label = label || controlHolder.querySelector(".slider_text");
      if (label) label.textContent = spec.step_prefix + " " + steps[shown];
    }
    var timeState = document.createElement("span");
    timeState.className = "timeState";
    stateHolder.appendChild(timeState);
    var state = timeState._r2pState = {
      selectTimestep: function (v) {  // v: a (fractional) slider position, as the slider gives it
        var u = Math.max(0, Math.min(units.length - 1, v));
        renderStep(Math.max(0, Math.min(last, Math.floor(u * speed + 1e-9))));
        renderTime(u);
      }
    };
    container.gpvizShowStep = function (i) {
      var k = Math.max(0, Math.min(last, Math.floor(i)));
      renderStep(k);
      renderTime(k / speed);
    };

    var speedHolder = document.createElement("label");
    speedHolder.className = "gpviz-speed";
    speedHolder.appendChild(document.createTextNode("speed "));
    var select = document.createElement("select");
    SPEEDS.filter(function (x) { return x === 1 || x <= last; }).forEach(function (x) {
      var opt = document.createElement("option");
      opt.value = String(x);
      opt.textContent = x + "\u00d7 (" + 5 * x + " steps/s)";
      select.appendChild(opt);
    });
    select.value = String(speed);
    speedHolder.appendChild(select);
    controlHolder.parentNode.insertBefore(speedHolder, controlHolder.nextSibling);
    function setSpeed(x) {
      var at = shown;
      speed = Math.max(1, Math.floor(+x) || 1);
      select.value = String(speed);
      makeUnits();
      summary.speed = speed;
      container.setAttribute("data-speed", String(speed));
      renderTime(at / speed);  // the same step, at the new scale
    }
    select.addEventListener("change", function () { setSpeed(select.value); });
    container.gpvizSetSpeed = setSpeed;

    makeUnits();
    container.setAttribute("data-steps", String(steps.length));
    summary.speed = speed;
    container.setAttribute("data-speed", String(speed));
    renderStep(last);  // the fit's end first, as rows2prose does
    renderTime(units.length - 1);
  }

  function mountById(id, spec) {
    // the same figure may be displayed twice on a page: take the first one not yet mounted
    var nodes = document.querySelectorAll(".gpviz-figure");
    for (var i = 0; i < nodes.length; i++) {
      if (nodes[i].id === id && !nodes[i].gpvizMounted) {
        nodes[i].gpvizMounted = true;
        var node = nodes[i];
        var failed = function (err) {
          console.error("gpviz: figure " + id + " failed: " + (err && err.stack || err));
          return null;
        };
        var t0 = performance.now();
        var lossTable = spec.loss && spec.loss.columns
          ? unpackCompact(node, spec.loss.columns, "script.gpviz-loss-data") : null;
        if (spec.packed === "compact" || lossTable) {
          var columns = spec.packed === "compact" ? unpackCompact(node, spec.columns) : null;
          return Promise.all([columns, lossTable]).then(function (got) {
            return mount(node, spec, { table: got[0], loss: got[1], t0: t0 });
          }).catch(failed);
        }
        try {
          return mount(node, spec);
        } catch (err) {
          return failed(err);
        }
      }
    }
    return null;
  }

  // Mount calls that ran before this script (a notebook output shown before the one carrying gpviz.js)
  // wait in window.gpvizQueue; each returns true once it mounted, false while something is still missing
  // (a trace waits for rows2prose's time control too, whose bundle calls drain() when it arrives).
  function drainQueue() {
    var q = window.gpvizQueue || [];
    window.gpvizQueue = [];
    var waiting = q.filter(function (f) { return f() === false; });
    window.gpvizQueue = window.gpvizQueue.concat(waiting);
  }

  window.gpviz = {
    version: VERSION, mount: mount, mountById: mountById, drain: drainQueue, parseColumns: fastParseColumns, unpackColumns: unpackColumns,
    unpackCompact: unpackCompact, inflate: inflate, fmtValue: fmtValue,
    decodeBase64: decodeBase64, decodeBase64Fallback: decodeBase64Fallback, fmt: fmt, niceTicks: niceTicks,
    chart: chart
  };
  drainQueue();
})();

/* ---------------------------------------------------------------- held-out points of a sweep's folds */
// A sweep page carries, per dot, the data row its fold held out (script.gpviz-heldout: names, index per
// row, rows by index; gpviz/html/below.py heldout_html). Hovering a dot shows that row by feature name in
// a small box by the pointer. Reads only what mount() leaves on each placeholder (el.gpvizXs, el.gpvizYs:
// the dot centres of the rows drawn), so it works for figures mounted at any time.
(function () {
  var shown = null;

  function payload(fig) {
    if (fig.gpvizHeldout === undefined) {
      var holder = fig.querySelector("script.gpviz-heldout");
      try { fig.gpvizHeldout = holder ? JSON.parse(holder.textContent) : null; } catch (err) {
        console.error("gpviz: cannot read the held-out points: " + err);
        fig.gpvizHeldout = null;
      }
    }
    return fig.gpvizHeldout;
  }

  function box(fig) {
    var t = fig.querySelector(".gpviz-heldout-tip");
    if (!t) {
      t = document.createElement("div");
      t.className = "gpviz-heldout-tip";
      t.style.cssText = "position:fixed;z-index:20;pointer-events:none;background:#fff;border:1px solid #999;" +
        "border-radius:3px;padding:2px 6px;font-size:12px;white-space:nowrap;display:none;" +
        "box-shadow:0 1px 3px rgba(0,0,0,0.2)";
      fig.appendChild(t);
    }
    return t;
  }

  function number(v) {  // 4 significant digits, as the influence table writes them
    if (v !== v || !isFinite(v)) return String(v);
    var a = Math.abs(v);
    return (a !== 0 && (a >= 1e5 || a < 1e-3)) ? v.toExponential(3).replace(/\.?0+e/, "e") : String(parseFloat(v.toPrecision(4)));
  }

  function hide() { if (shown) { shown.style.display = "none"; shown = null; } }

  document.addEventListener("mousemove", function (ev) {
    var canvas = ev.target;
    var el = canvas && canvas.tagName === "CANVAS" ? canvas.closest(".gpviz-param") : null;
    var fig = el ? el.closest(".gpviz-figure") : null;
    var data = fig ? payload(fig) : null;
    if (!data || !el.gpvizXs) { hide(); return; }
    var r = canvas.getBoundingClientRect(), mx = ev.clientX - r.left, my = ev.clientY - r.top;
    var xs = el.gpvizXs, ys = el.gpvizYs, best = -1, bestD = 36;  // within 6 px, as mount() rings a dot
    for (var i = 0; i < xs.length; i++) {
      var dx = xs[i] - mx, dy = ys[i] - my, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = i; }
    }
    if (best < 0 || best >= data.index.length) { hide(); return; }
    var index = data.index[best], row = data.rows[String(index)];
    var t = box(fig);
    t.textContent = "held out: row " + index + ": " + data.names.map(function (n, j) {
      return n + " = " + number(row[j]);
    }).join(", ");
    t.dataset.index = String(index);
    t.style.left = (ev.clientX + 14) + "px";
    t.style.top = (ev.clientY + 14) + "px";
    t.style.display = "block";
    if (shown && shown !== t) shown.style.display = "none";
    shown = t;
  });
})();
