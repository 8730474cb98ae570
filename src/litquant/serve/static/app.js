// The draw-a-digit page: strokes on a black canvas, sent to POST /compare as a PNG while drawing.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const statusLine = document.getElementById("status");
let drawing = false;
let last = null;
let pending = false;
let again = false;

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  document.getElementById("label").textContent = "–";
  document.getElementById("results").innerHTML = "";
  document.getElementById("seen").removeAttribute("src");
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return { x: (event.clientX - box.left) * pad.width / box.width, y: (event.clientY - box.top) * pad.height / box.height };
}

function stroke(to) {
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 20;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(last.x, last.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
  last = to;
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  last = point(event);
  stroke(last);
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  stroke(point(event));
  send();
});
for (const name of ["pointerup", "pointercancel"]) {
  pad.addEventListener(name, () => { if (drawing) { drawing = false; send(); } });
}

// One request at a time; strokes made meanwhile are sent when it returns. The page's data-state is "busy" until
// the answer for the drawing as it is now is shown, then "idle".
function send() {
  document.body.dataset.state = "busy";
  if (pending) { again = true; return; }
  pending = true;
  pad.toBlob((blob) => post(blob, "pad.png"), "image/png");
}

async function post(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  try {
    const response = await fetch("/compare", { method: "POST", body: form });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    show(body);
    statusLine.textContent = "";
  } catch (err) {
    statusLine.textContent = "Error: " + err.message;
  } finally {
    pending = false;
    if (again) { again = false; send(); } else { document.body.dataset.state = "idle"; }
  }
}

function show(body) {
  document.getElementById("seen").src = body.input;
  const results = document.getElementById("results");
  results.innerHTML = "";
  const answers = Object.values(body.results);
  document.getElementById("label").textContent = answers.length ? answers[0].label : "–";
  for (const answer of answers) {
    const top = answer.probabilities.map((p, digit) => [digit, p]).sort((a, b) => b[1] - a[1]).slice(0, 3);
    const box = document.createElement("div");
    box.className = "model";
    box.dataset.model = answer.model;
    box.dataset.label = answer.label;
    const title = document.createElement("h2");
    title.textContent = `${answer.model}: ${answer.label}`;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `${answer.latency_ms.toFixed(1)} ms on the server (model ${answer.inference_ms.toFixed(1)} ms)`;
    box.append(title, meta);
    for (const [digit, p] of top) {
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.innerHTML = `<span class="digit">${digit}</span><span class="track"><span class="fill"></span></span>` +
        `<span class="value">${(100 * p).toFixed(1)}%</span>`;
      bar.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
      box.append(bar);
    }
    results.append(box);
  }
}

document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) post(file, file.name);
});

async function listModels() {
  try {
    const body = await (await fetch("/models")).json();
    statusLine.textContent = "Models: " + body.models.map((m) => m.name).join(", ");
  } catch (err) {
    statusLine.textContent = "The server does not answer: " + err.message;
  }
}

clearPad();
listModels();
