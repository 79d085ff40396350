// Attention editor page: paint an ABN's attention map, watch the prediction under it, save it.
// The map is edited at the size of the image the network sees and sent to the server as an 8-bit PNG.
// Every request carries the token of the page's own URL (the one the editor printed at start-up).
"use strict";

const ORDER_LABELS = {
  datalist: "datalist order",
  lowest_confidence: "lowest confidence first",
  largest_map_error: "largest map error first",
  random: "random",
};
const PREDICT_INTERVAL_MS = 120;
const TOKEN = new URLSearchParams(window.location.search).get("token") || "";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");

const state = {
  info: null,
  summaries: new Map(), // index -> summary from the server
  edits: new Map(), // index -> unsaved edited map (Float32Array)
  index: null,
  width: 0,
  height: 0,
  map: null, // Float32Array, the edited map in [0, 1]
  ownMap: null,
  imageLayer: document.createElement("canvas"),
  overlayLayer: document.createElement("canvas"),
  cursor: null,
  contour: new Path2D(),
  painting: false,
  last: null,
  inflight: false,
  pending: false,
  lastSent: 0,
  version: 0, // bumped on every edit, so that stale predictions are ignored
};

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

async function fetchJSON(url, options = {}) {
  const response = await fetch(url, { ...options, headers: { ...options.headers, "X-Editor-Token": TOKEN } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`cannot load ${url}`));
    // an <img> sends no headers: the token goes in the query
    image.src = `${url}?token=${encodeURIComponent(TOKEN)}&t=${Date.now()}`;
  });
}

function imageToMap(image, width, height) {
  const layer = document.createElement("canvas");
  layer.width = width;
  layer.height = height;
  const layerCtx = layer.getContext("2d");
  layerCtx.drawImage(image, 0, 0);
  const pixels = layerCtx.getImageData(0, 0, width, height).data;
  const map = new Float32Array(width * height);
  for (let i = 0; i < map.length; i++) map[i] = pixels[4 * i] / 255;
  return map;
}

function mapToPng(map, width, height) {
  const layer = document.createElement("canvas");
  layer.width = width;
  layer.height = height;
  const layerCtx = layer.getContext("2d");
  const image = layerCtx.createImageData(width, height);
  for (let i = 0; i < map.length; i++) {
    const v = Math.round(Math.min(1, Math.max(0, map[i])) * 255);
    image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = v;
    image.data[4 * i + 3] = 255;
  }
  layerCtx.putImageData(image, 0, 0);
  return new Promise((resolve) => layer.toBlob(resolve, "image/png"));
}

// A perceptual blue-to-yellow ramp (viridis-like), 5 stops, linearly interpolated.
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colour(v) {
  const x = Math.min(1, Math.max(0, v)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const t = x - i;
  return RAMP[i].map((c, k) => c + t * (RAMP[i + 1][k] - c));
}

function renderOverlay() {
  const { width, height, map } = state;
  const opacity = parseFloat($("opacity").value);
  const layerCtx = state.overlayLayer.getContext("2d");
  const image = layerCtx.createImageData(width, height);
  for (let i = 0; i < map.length; i++) {
    const [r, g, b] = colour(map[i]);
    image.data[4 * i] = r;
    image.data[4 * i + 1] = g;
    image.data[4 * i + 2] = b;
    image.data[4 * i + 3] = Math.round(255 * opacity * (0.25 + 0.75 * map[i]));
  }
  layerCtx.putImageData(image, 0, 0);
  state.contour = contour();
}

// Outline of the region a save keeps (map >= 0.5): the pixel edges between kept and dropped pixels.
function contour() {
  const { width, height, map } = state;
  const sx = canvas.width / width;
  const sy = canvas.height / height;
  const path = new Path2D();
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inside = map[y * width + x] >= 0.5;
      if (x + 1 < width && inside !== map[y * width + x + 1] >= 0.5) {
        path.moveTo((x + 1) * sx, y * sy);
        path.lineTo((x + 1) * sx, (y + 1) * sy);
      }
      if (y + 1 < height && inside !== map[(y + 1) * width + x] >= 0.5) {
        path.moveTo(x * sx, (y + 1) * sy);
        path.lineTo((x + 1) * sx, (y + 1) * sy);
      }
    }
  }
  return path;
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (state.map === null) return;
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(state.imageLayer, 0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(state.overlayLayer, 0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = "#ffffff";
  ctx.lineWidth = 2;
  ctx.stroke(state.contour);
  if (state.cursor) {
    const scale = canvas.width / state.width;
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(state.cursor.x, state.cursor.y, parseFloat($("size").value) * scale, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

function redraw() {
  renderOverlay();
  draw();
}

// One dab of the brush at (cx, cy) in map pixels, with a smooth fall-off to its rim.
function dab(cx, cy) {
  const { width, height, map } = state;
  const radius = parseFloat($("size").value);
  const strength = parseFloat($("strength").value);
  const mode = document.querySelector("input[name=mode]:checked").value;
  const x0 = Math.max(0, Math.floor(cx - radius));
  const x1 = Math.min(width - 1, Math.ceil(cx + radius));
  const y0 = Math.max(0, Math.floor(cy - radius));
  const y1 = Math.min(height - 1, Math.ceil(cy + radius));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy) / radius;
      if (d > 1) continue;
      const i = y * width + x;
      const weight = 1 - d * d;
      if (mode === "erase") map[i] = 0;
      else if (mode === "raise") map[i] = Math.min(1, map[i] + strength * weight);
      else map[i] = Math.max(0, map[i] - strength * weight);
    }
  }
}

function toMapCoordinates(event) {
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * canvas.width;
  const y = ((event.clientY - rect.top) / rect.height) * canvas.height;
  return { canvas: { x, y }, map: { x: (x / canvas.width) * state.width, y: (y / canvas.height) * state.height } };
}

function stroke(to) {
  const from = state.last || to;
  const spacing = Math.max(0.5, parseFloat($("size").value) / 3);
  const steps = Math.max(1, Math.ceil(Math.hypot(to.x - from.x, to.y - from.y) / spacing));
  for (let s = 1; s <= steps; s++) {
    dab(from.x + ((to.x - from.x) * s) / steps, from.y + ((to.y - from.y) * s) / steps);
  }
  state.last = to;
  state.edits.set(state.index, state.map);
  state.version++;
  markUnsaved();
}

function markUnsaved() {
  const row = document.querySelector(`#samples tr[data-index="${state.index}"] td.saved`);
  if (row) row.textContent = "edited";
  setStatus("edited, not saved");
}

canvas.addEventListener("pointerdown", (event) => {
  if (state.map === null) return;
  canvas.setPointerCapture(event.pointerId);
  state.painting = true;
  state.last = null;
  const point = toMapCoordinates(event);
  state.cursor = point.canvas;
  stroke(point.map);
  redraw();
  requestPrediction();
});

canvas.addEventListener("pointermove", (event) => {
  const point = toMapCoordinates(event);
  state.cursor = point.canvas;
  if (state.painting) {
    stroke(point.map);
    renderOverlay();
    if (Date.now() - state.lastSent > PREDICT_INTERVAL_MS) requestPrediction();
  }
  draw();
});

function endStroke() {
  if (!state.painting) return;
  state.painting = false;
  state.last = null;
  requestPrediction();
}

canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);
canvas.addEventListener("pointerleave", () => {
  state.cursor = null;
  draw();
});

async function requestPrediction() {
  if (state.map === null) return;
  if (state.inflight) {
    state.pending = true;
    return;
  }
  state.inflight = true;
  state.lastSent = Date.now();
  const index = state.index;
  const version = state.version;
  try {
    const body = await mapToPng(state.map, state.width, state.height);
    const prediction = await fetchJSON(`/api/samples/${index}/predict`, {
      method: "POST",
      headers: { "Content-Type": "image/png" },
      body,
    });
    if (index === state.index) showPrediction("edited", prediction);
  } catch (error) {
    setStatus(`prediction failed: ${error.message}`, true);
  } finally {
    state.inflight = false;
    if (state.pending || (index === state.index && version !== state.version)) {
      state.pending = false;
      requestPrediction();
    }
  }
}

function showPrediction(which, prediction) {
  const names = state.info.class_names;
  const rows = $("predictions").querySelector("tbody").rows;
  names.forEach((_, k) => {
    rows[k].cells[which === "own" ? 1 : 2].textContent = prediction.probs[k].toFixed(3);
  });
  const cell = $(which === "own" ? "own-pred" : "edited-pred");
  cell.textContent = `${prediction.pred_name} (${prediction.confidence.toFixed(3)})`;
  if (which === "edited") {
    const own = state.summaries.get(state.index);
    cell.classList.toggle("changed", own !== undefined && own.pred !== prediction.pred);
  }
}

async function showSample(index) {
  const summary = await fetchJSON(`/api/samples/${index}`);
  state.summaries.set(index, summary);
  const [image, ownMap, corrected] = await Promise.all([
    loadImage(`/api/samples/${index}/image.png`),
    loadImage(`/api/samples/${index}/map.png`),
    summary.corrected ? loadImage(`/api/samples/${index}/corrected.png`) : Promise.resolve(null),
  ]);
  state.index = index;
  state.width = summary.width;
  state.height = summary.height;
  for (const layer of [state.imageLayer, state.overlayLayer]) {
    layer.width = summary.width;
    layer.height = summary.height;
  }
  state.imageLayer.getContext("2d").drawImage(image, 0, 0);
  state.ownMap = imageToMap(ownMap, summary.width, summary.height);
  const start = corrected ? imageToMap(corrected, summary.width, summary.height) : state.ownMap.slice();
  state.map = state.edits.get(index) || start;
  state.version++;
  document.querySelectorAll("#samples tr.selected").forEach((row) => row.classList.remove("selected"));
  const row = document.querySelector(`#samples tr[data-index="${index}"]`);
  if (row) {
    row.classList.add("selected");
    row.scrollIntoView({ block: "nearest" });
  }
  $("sample-name").textContent = `${summary.index}: ${summary.name}`;
  $("label").textContent = summary.label_name ?? "unknown";
  showPrediction("own", summary);
  $("edited-pred").textContent = "…";
  setStatus(
    state.edits.has(index) ? "edited, not saved" : summary.corrected ? "showing the saved map" : "showing the model's map"
  );
  redraw();
  requestPrediction();
}

function sampleRow(summary) {
  const row = document.createElement("tr");
  row.dataset.index = summary.index;
  const cells = [
    summary.index,
    summary.name,
    summary.label_name ?? "",
    `${summary.pred_name} ${summary.confidence.toFixed(2)}`,
    summary.map_error === null ? "" : summary.map_error.toFixed(3),
    state.edits.has(summary.index) ? "edited" : summary.corrected ? "✓" : "",
  ];
  cells.forEach((text, k) => {
    const cell = row.insertCell();
    cell.textContent = text;
    if (k === cells.length - 1) cell.className = "saved";
  });
  row.addEventListener("click", () => showSample(summary.index).catch((e) => setStatus(e.message, true)));
  return row;
}

async function loadList() {
  const order = $("order").value;
  const summaries = await fetchJSON(`/api/samples?order=${encodeURIComponent(order)}`);
  const body = $("samples").querySelector("tbody");
  body.replaceChildren(...summaries.map((summary) => {
    state.summaries.set(summary.index, summary);
    return sampleRow(summary);
  }));
  const selected = body.querySelector(`tr[data-index="${state.index}"]`);
  if (selected) selected.classList.add("selected");
  return summaries;
}

async function save() {
  if (state.map === null) return;
  const index = state.index;
  const map = state.map;
  setStatus("saving…");
  try {
    const body = await mapToPng(map, state.width, state.height);
    const saved = await fetchJSON(`/api/samples/${index}/save`, {
      method: "POST",
      headers: { "Content-Type": "image/png" },
      body,
    });
    if (state.edits.get(index) === map) state.edits.delete(index);
    state.summaries.set(index, saved.sample);
    const row = document.querySelector(`#samples tr[data-index="${index}"]`);
    if (row) row.replaceWith(sampleRow(saved.sample));
    document.querySelector(`#samples tr[data-index="${state.index}"]`)?.classList.add("selected");
    const where = (path) => path.replace(`${state.info.output_dir}/`, "");
    setStatus(
      `saved ${where(saved.map)} (${(100 * saved.fraction_set).toFixed(1)} % of the image kept), ` +
      `listed in ${where(saved.datalist)}`
    );
  } catch (error) {
    setStatus(`save failed: ${error.message}`, true);
  }
}

$("save").addEventListener("click", save);
$("reset").addEventListener("click", () => {
  if (state.map === null) return;
  state.map = state.ownMap.slice();
  state.edits.set(state.index, state.map);
  state.version++;
  markUnsaved();
  redraw();
  requestPrediction();
});
$("opacity").addEventListener("input", redraw);
for (const id of ["size", "strength"]) {
  const update = () => { $(`${id}-out`).textContent = $(id).value; };
  $(id).addEventListener("input", update);
  update();
}
$("order").addEventListener("change", () => loadList().catch((e) => setStatus(e.message, true)));

async function start() {
  state.info = await fetchJSON("/api/info");
  $("dataset").textContent = `${state.info.n_samples} samples · saving to ${state.info.datalist}`;
  $("order").replaceChildren(...state.info.orders.map((order) => new Option(ORDER_LABELS[order] || order, order)));
  const tbody = $("predictions").querySelector("tbody");
  tbody.replaceChildren(...state.info.class_names.map((name) => {
    const row = document.createElement("tr");
    row.insertCell().textContent = name;
    row.insertCell().textContent = "-";
    row.insertCell().textContent = "-";
    return row;
  }));
  const summaries = await loadList();
  if (summaries.length) await showSample(summaries[0].index);
}

start().catch((error) => setStatus(error.message, true));
