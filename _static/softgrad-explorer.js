// softgrad book: the figure the reader can move (chapter 4, "Move the logits yourself").
// Sliders for the logits z, the temperature T and the smoothing eps, and a choice of the target class c,
// redraw three panels in SVG, with no kernel and no network:
//   p = softmax(z / T), with the smoothed target y = (1 - eps) e_c + eps / n drawn as outlines;
//   the Jacobian dp/dz = (diag(p) - p p^T) / T as a heatmap;
//   the gradient dL/dz = (p - y) / T of L = -sum_k y_k log p_k.
// Each drawn number is also kept in a data-value attribute (full precision), which tests/test_browser.py
// compares with what softgrad computes for the slider values. Jupyter Book loads every script in _static/.
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const BLUE = "#0072B2"; // the book's palette (softgrad.plotting.PALETTE)
  const VERMILION = "#D55E00";

  // ---------------------------------------------------------------- the numbers, as the book derives them
  const logSoftmax = (u) => {
    const m = Math.max(...u); // subtract the maximum: no exponent is positive (chapter 1)
    const s = u.reduce((acc, v) => acc + Math.exp(v - m), 0);
    return u.map((v) => v - m - Math.log(s));
  };
  const compute = (z, T, eps, c) => {
    const n = z.length;
    const logp = logSoftmax(z.map((v) => v / T));
    const p = logp.map(Math.exp);
    const y = p.map((_, k) => (k === c ? 1 - eps : 0) + eps / n);
    const jac = p.map((pi, i) => p.map((pj, j) => ((i === j ? pi : 0) - pi * pj) / T));
    const grad = p.map((pk, k) => (pk - y[k]) / T);
    const loss = -y.reduce((acc, yk, k) => acc + yk * logp[k], 0);
    return { p, y, jac, grad, loss };
  };

  // ---------------------------------------------------------------- drawing
  const el = (name, attrs = {}, parent = null) => {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  };
  const text = (parent, x, y, str, attrs = {}) => {
    const t = el("text", { x, y, "font-size": 12, fill: "#222", ...attrs }, parent);
    t.textContent = str;
    return t;
  };
  const fmt = (v) => (Math.abs(v) < 5e-3 ? "0" : v.toFixed(2));
  const W = 240;
  const H = 200;
  const panel = (title, name) => {
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "sg-explorer-panel", role: "img",
      "data-panel": name });
    text(svg, W / 2, 16, title, { "text-anchor": "middle", "font-size": 13, "font-weight": "bold" });
    return svg;
  };

  // vertical bars of values in [lo, hi] on a zero line, one per class
  const bars = (svg, values, lo, hi, color, cls, outline = null) => {
    const n = values.length;
    const left = 30, right = W - 8, top = 28, bottom = H - 26;
    const yOf = (v) => top + ((hi - v) / (hi - lo)) * (bottom - top);
    const slot = (right - left) / n;
    el("line", { x1: left, x2: right, y1: yOf(0), y2: yOf(0), stroke: "#444" }, svg);
    text(svg, left - 4, yOf(hi) + 4, hi.toFixed(2), { "text-anchor": "end", "font-size": 10 });
    text(svg, left - 4, yOf(lo) + 4, lo.toFixed(2), { "text-anchor": "end", "font-size": 10 });
    values.forEach((v, k) => {
      const x = left + k * slot + slot * 0.18;
      const w = slot * 0.64;
      const y0 = yOf(Math.max(v, 0)), y1 = yOf(Math.min(v, 0));
      el("rect", { x, y: y0, width: w, height: Math.max(y1 - y0, 0.5), fill: color, class: cls,
        "data-index": k, "data-value": String(v) }, svg);
      if (outline) {
        const t0 = yOf(Math.max(outline[k], 0)), t1 = yOf(Math.min(outline[k], 0));
        el("rect", { x, y: t0, width: w, height: Math.max(t1 - t0, 0.5), fill: "none", stroke: "#000",
          "stroke-width": 1.5, "stroke-dasharray": "4 2", class: "sg-target", "data-index": k,
          "data-value": String(outline[k]) }, svg);
      }
      const ty = v >= 0 ? y0 - 3 : y1 + 11;
      text(svg, x + w / 2, ty, fmt(v), { "text-anchor": "middle", "font-size": 10 });
      text(svg, x + w / 2, H - 10, `z${k}`, { "text-anchor": "middle", "font-size": 11 });
    });
  };

  // a diverging heatmap: orange for positive, blue for negative, white at 0; light enough for black text
  const heat = (v, scale) => {
    const t = Math.min(Math.abs(v) / scale, 1);
    const [r, g, b] = v >= 0 ? [253, 174, 97] : [116, 173, 209];
    const mix = (a) => Math.round(255 + (a - 255) * t);
    return `rgb(${mix(r)}, ${mix(g)}, ${mix(b)})`;
  };
  const heatmap = (svg, jac, T) => {
    const n = jac.length;
    const size = Math.min(W - 40, H - 50) / n;
    const left = (W - size * n) / 2 + 6, top = 28;
    const scale = 0.25 / T; // the largest entry a softmax Jacobian can have, p(1 - p) <= 1/4, over T
    jac.forEach((row, i) => row.forEach((v, j) => {
      el("rect", { x: left + j * size, y: top + i * size, width: size, height: size, fill: heat(v, scale),
        stroke: "#fff", class: "sg-jacobian", "data-row": i, "data-col": j, "data-value": String(v) }, svg);
      text(svg, left + (j + 0.5) * size, top + (i + 0.5) * size + 4, fmt(v),
        { "text-anchor": "middle", "font-size": 10 });
    }));
    for (let k = 0; k < n; k++) {
      text(svg, left - 4, top + (k + 0.5) * size + 4, `p${k}`, { "text-anchor": "end", "font-size": 10 });
      text(svg, left + (k + 0.5) * size, top + n * size + 13, `z${k}`, { "text-anchor": "middle", "font-size": 10 });
    }
  };

  // ---------------------------------------------------------------- the controls
  let counter = 0;
  const slider = (form, id, labelHtml, min, max, step, value) => {
    const row = document.createElement("div");
    row.className = "sg-explorer-control";
    const label = document.createElement("label");
    label.htmlFor = id;
    label.innerHTML = labelHtml;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", id, min, max, step, value });
    const out = document.createElement("output");
    out.htmlFor = id;
    out.value = Number(value).toFixed(2);
    input.addEventListener("input", () => { out.value = Number(input.value).toFixed(2); });
    row.append(label, input, out);
    form.appendChild(row);
    return input;
  };

  const setup = (root) => {
    const id = `sg-explorer-${++counter}`;
    const z0 = JSON.parse(root.dataset.logits);
    const n = z0.length;
    root.textContent = ""; // the fallback text is for a notebook without the book's scripts
    const form = document.createElement("form");
    form.className = "sg-explorer-controls";
    form.addEventListener("submit", (e) => e.preventDefault());
    const zs = z0.map((v, k) => slider(form, `${id}-z${k}`, `logit z<sub>${k}</sub>`, -5, 5, 0.1, v));
    const tInput = slider(form, `${id}-T`, "temperature T", 0.2, 5, 0.05, root.dataset.temperature);
    const eInput = slider(form, `${id}-eps`, "smoothing ε", 0, 0.5, 0.01, root.dataset.smoothing);
    const row = document.createElement("div");
    row.className = "sg-explorer-control";
    const label = document.createElement("label");
    label.htmlFor = `${id}-target`;
    label.textContent = "target class c";
    const select = document.createElement("select");
    select.id = `${id}-target`;
    for (let k = 0; k < n; k++) select.add(new Option(String(k), String(k)));
    select.value = root.dataset.target;
    row.append(label, select);
    form.appendChild(row);

    const panels = document.createElement("div");
    panels.className = "sg-explorer-panels";
    const lossLine = document.createElement("p");
    lossLine.className = "sg-explorer-loss";
    lossLine.setAttribute("aria-live", "polite");
    root.append(form, panels, lossLine);

    const draw = () => {
      const z = zs.map((s) => Number(s.value));
      const T = Number(tInput.value), eps = Number(eInput.value), c = Number(select.value);
      const r = compute(z, T, eps, c);
      panels.textContent = "";
      const pPanel = panel("p = softmax(z / T)", "p");
      bars(pPanel, r.p, 0, 1, BLUE, "sg-p", r.y);
      const jPanel = panel("Jacobian ∂p/∂z", "jacobian");
      heatmap(jPanel, r.jac, T);
      const R = Math.max(0.25, ...r.grad.map(Math.abs)) * 1.15;
      const gPanel = panel("gradient (p − y) / T", "grad");
      bars(gPanel, r.grad, -R, R, VERMILION, "sg-grad");
      const list = (v) => v.map((x) => x.toFixed(3)).join(", ");
      pPanel.setAttribute("aria-label", `Bar chart of the probabilities p = (${list(r.p)}), with the ` +
        `smoothed target y = (${list(r.y)}) as dashed outlines.`);
      jPanel.setAttribute("aria-label", `Heatmap of the ${n} by ${n} Jacobian dp/dz: diagonal ` +
        `(${list(r.jac.map((row, i) => row[i]))}), every row summing to zero.`);
      gPanel.setAttribute("aria-label", `Bar chart of the gradient (p - y) / T = (${list(r.grad)}), ` +
        "which sums to zero.");
      panels.append(pPanel, jPanel, gPanel);
      lossLine.innerHTML = "";
      const lossOut = document.createElement("output");
      lossOut.className = "sg-loss";
      lossOut.dataset.value = String(r.loss);
      lossOut.value = r.loss.toFixed(4);
      lossLine.append("cross-entropy loss L = ", lossOut,
        `; the gradient's entries sum to ${fmt(r.grad.reduce((a, b) => a + b, 0))}.`);
    };
    form.addEventListener("input", draw);
    form.addEventListener("change", draw);
    draw();
  };

  document.addEventListener("DOMContentLoaded", () => {
    for (const root of document.querySelectorAll(".sg-explorer[data-logits]")) setup(root);
  });
})();
