// The page's one script, no build step: it calls the gateway's Connect JSON endpoint, the same service as its gRPC
// port (proto JSON: camelCase fields, bytes as base64, 64-bit integers as strings).

const SERVICE = "/segmentation.v1.SegmentationService/";
const STAGES = [
  ["probeUs", "Probe: format, size and limits from the header"],
  ["decodeUs", "Decode"],
  ["resizeUs", "Resize to the model's input"],
  ["packUs", "Pack the tensor"],
  ["predictUs", "Predict at the model backend"],
  ["unpackUs", "Unpack the answer"],
  ["postprocessUs", "Mask back to the photo's size, statistics, the cut-out's edges"],
  ["encodeUs", "Encode the mask, overlay and cut-out"],
  ["totalUs", "Total"],
];
// Connect's codes, as a person would say them.
const HEADLINES = {
  invalid_argument: "The gateway refused the photo or the request",
  not_found: "The model or version is not served",
  unauthenticated: "This gateway needs a bearer token: enter it under “Access token”",
  permission_denied: "The access token is not allowed to make this call",
  failed_precondition: "The gateway or the model is not ready for this call",
  unimplemented: "This gateway does not offer this call: it may be an older version",
  resource_exhausted: "The gateway is busy or the upload is far too large",
  unavailable: "The model backend cannot be reached right now",
  deadline_exceeded: "The gateway ran out of time",
  internal: "The gateway failed",
};

const $ = (selector) => document.querySelector(selector);
const form = $("#segment-form");
const photoInput = $("#photo");
const dropZone = $("#drop-zone");
const modelSelect = $("#model");
const variantSelect = $("#variant");
const variantHint = $("#variant-hint");
const tokenInput = $("#token");
const cutoutBox = $("#cutout");
const edges = $("#edges");
const button = $("#segment");
const statusLine = $("#status");
const errorBox = $("#error");
const result = $("#result");
const urls = [];  // object URLs of the current result, revoked when the next one replaces it
const models = new Map();  // ListModels' answer by model name, for the variants of the chosen model

class CallError extends Error {
  constructor(code, message, httpStatus) {
    super(message);
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

async function call(method, request) {
  const headers = { "Content-Type": "application/json" };
  const token = tokenInput.value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(SERVICE + method, { method: "POST", headers, body: JSON.stringify(request) });
  } catch (error) {
    throw new CallError("unavailable", `the gateway could not be reached (${error.message})`, 0);
  }
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // an error page from something in between: its text is shown as it is
  }
  if (!response.ok) {
    throw new CallError(body?.code ?? "unknown", body?.message ?? (text.trim() || response.statusText), response.status);
  }
  return body;
}

// The PASCAL VOC colormap, as the gateway colours masks and overlays (service/mask/colormap.py).
function pascalColour(classId) {
  const rgb = [0, 0, 0];
  let id = classId;
  for (let shift = 7; shift >= 0; shift -= 1) {
    for (let channel = 0; channel < 3; channel += 1) rgb[channel] |= ((id >> channel) & 1) << shift;
    id >>= 3;
  }
  return `rgb(${rgb.join(", ")})`;
}

function pngUrl(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const url = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
  urls.push(url);
  return url;
}

// The error box stays in the page, empty when there is no error: screen readers announce a change of an alert's
// text, not always an alert that appears with its text.
function showError(error) {
  const headline = HEADLINES[error.code] ?? "The call failed";
  const where = error.httpStatus ? `HTTP ${error.httpStatus}, ${error.code}` : error.code;
  showProblem(`${headline} (${where}).`, error.message);
  if (error.code === "unauthenticated" || error.code === "permission_denied") $("#token-details").open = true;
}

function showProblem(headline, detail) {
  const strong = document.createElement("strong");
  strong.textContent = headline;
  errorBox.replaceChildren(strong, ` ${detail}`);
}

// A file's size as a person reads it: bytes below a kilobyte, then KB, then MB.
function sizeText(bytes) {
  if (bytes < 1024) return bytes === 1 ? "1 byte" : `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

function clearError() {
  errorBox.replaceChildren();
}

async function loadModels() {
  try {
    const { models: list = [] } = await call("ListModels", {});
    const chosen = modelSelect.value;
    models.clear();
    for (const model of list) models.set(model.name, model);
    modelSelect.replaceChildren(
      ...list.map((model) => {
        const split = model.variants?.length ? ", with a traffic split" : "";
        const text = `${model.name}${model.isDefault ? " (default)" : ""}${split}`;
        return new Option(text, model.name, false, chosen ? model.name === chosen : Boolean(model.isDefault));
      }),
    );
    clearError();
  } catch (error) {
    showError(error);
  }
  fillVariants();
}

// What a variant calls, as ListModels says: the model at the backend and its version or version label.
function describeVariant(variant, model, totalWeight) {
  const weight = variant.weight ?? 0;
  const share = totalWeight ? Math.round((100 * weight) / totalWeight) : 0;
  const traffic = weight ? `weight ${weight}, ${share} % of the calls` : "weight 0, never chosen by the split";
  const version = variant.versionLabel
    ? `version label “${variant.versionLabel}”`
    : Number(variant.version ?? 0)
      ? `version ${variant.version}`
      : "latest version";
  const served = variant.servedName || model.servedName || model.name;
  const backend = variant.backend && variant.backend !== model.backend ? ` at ${variant.backend}` : "";
  return `${variant.name}: ${traffic} (${served} ${version}${backend})`;
}

function fillVariants() {
  const model = models.get(modelSelect.value);
  const variants = model?.variants ?? [];
  // A pick survives a reload of the list (a new token), not a change of model: it named the other model's variant.
  const kept = variantSelect.dataset.model === modelSelect.value ? variantSelect.value : "";
  variantSelect.dataset.model = modelSelect.value;
  const totalWeight = variants.reduce((sum, v) => sum + (v.weight ?? 0), 0);
  variantSelect.replaceChildren(
    new Option("Chosen by the split", ""),
    ...variants.map((v) => new Option(describeVariant(v, model, totalWeight), v.name, false, v.name === kept)),
  );
  // Kept in the page when there is nothing to pick, disabled, with the reason beside it.
  variantSelect.disabled = variants.length === 0;
  if (!model) {
    variantHint.textContent = "The variants appear once the model list has loaded.";
  } else if (!variants.length) {
    variantHint.textContent = `${model.name} has no traffic split: every call goes to the same model version.`;
  } else {
    variantHint.textContent =
      "The split sends each call to a variant, with a chance of its weight. Pick one to call it alone.";
  }
}

function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] ?? "");
    reader.onerror = () => reject(new CallError("invalid_argument", `the file could not be read (${reader.error})`, 0));
    reader.readAsDataURL(file);
  });
}

// A small class would round to "0.0 %", as if it were not there.
const percent = (fraction) => (fraction > 0 && fraction < 0.001 ? "< 0.1 %" : `${(100 * fraction).toFixed(1)} %`);
const describe = (classes) => classes.map((c) => `${c.label} ${percent(c.fraction ?? 0)}`).join(", ") || "no class";

function drawBoxes(classes, width, height) {
  const svg = $("#boxes");
  const ns = "http://www.w3.org/2000/svg";
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const fontSize = Math.max(12, Math.round(Math.max(width, height) / 35));
  for (const c of classes) {
    if (!c.classId) continue;  // class 0 is the background: its box is the whole photo
    const box = c.boundingBox ?? {};
    const group = document.createElementNS(ns, "g");
    group.dataset.classId = String(c.classId);
    const rect = document.createElementNS(ns, "rect");
    for (const [name, value] of Object.entries({ x: box.x ?? 0, y: box.y ?? 0, width: box.width ?? 0, height: box.height ?? 0 })) {
      rect.setAttribute(name, String(value));
    }
    rect.setAttribute("stroke", pascalColour(c.classId));
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String((box.x ?? 0) + fontSize / 4));
    label.setAttribute("y", String((box.y ?? 0) + fontSize));
    label.setAttribute("font-size", String(fontSize));
    label.textContent = c.label;
    group.append(rect, label);
    svg.append(group);
  }
}

function fillClasses(classes) {
  const body = $("#classes tbody");
  body.replaceChildren(
    ...classes.map((c) => {
      const row = document.createElement("tr");
      row.dataset.classId = String(c.classId ?? 0);
      const name = document.createElement("th");
      name.scope = "row";
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = pascalColour(c.classId ?? 0);
      // The swatch stays beside its label: a line break between them would leave a lone colour square.
      const named = document.createElement("span");
      named.className = "nowrap";
      named.append(swatch, c.label);
      name.append(named);
      const box = c.boundingBox ?? {};
      const cells = [
        [percent(c.fraction ?? 0), "number"],
        [Number(c.pixelCount ?? 0).toLocaleString("en"), "number"],
        // Two unbreakable halves: on a narrow screen the size goes under the position, a number never splits.
        [[`${box.x ?? 0}, ${box.y ?? 0},`, `${box.width ?? 0} × ${box.height ?? 0}`], "box"],
      ].map(([content, className]) => {
        const cell = document.createElement("td");
        if (Array.isArray(content)) {
          const [position, size] = content.map((text) => {
            const part = document.createElement("span");
            part.className = "nowrap";
            part.textContent = text;
            return part;
          });
          cell.append(position, " ", size);
        } else {
          cell.textContent = content;
        }
        cell.className = className;
        return cell;
      });
      row.append(name, ...cells);
      // Pointing at a row, focusing it with the keyboard or tapping it (which focuses it) picks out its box on
      // the photo, until the pointer leaves and the focus moves on.
      row.tabIndex = 0;
      const why = new Set();  // "hover", "focus"
      const mark = (reason, on) => {
        why[on ? "add" : "delete"](reason);
        row.classList.toggle("active", why.size > 0);
        $(`#boxes g[data-class-id="${row.dataset.classId}"]`)?.classList.toggle("active", why.size > 0);
      };
      row.addEventListener("mouseenter", () => mark("hover", true));
      row.addEventListener("mouseleave", () => mark("hover", false));
      row.addEventListener("focus", () => mark("focus", true));
      row.addEventListener("blur", () => mark("focus", false));
      return row;
    }),
  );
}

function fillTimings(timing) {
  $("#timings tbody").replaceChildren(
    ...STAGES.map(([key, name]) => {
      const row = document.createElement("tr");
      const stage = document.createElement("th");
      stage.scope = "row";
      stage.textContent = name;
      const ms = document.createElement("td");
      ms.className = "number";
      const milliseconds = Number(timing[key] ?? 0) / 1000;
      ms.textContent = milliseconds.toFixed(milliseconds < 1 ? 2 : 1);
      row.append(stage, ms);
      if (key === "totalUs") row.className = "total";
      return row;
    }),
  );
}

function fillSummary(answer, file, picked) {
  const model = answer.model ?? {};
  const how = model.variant === picked ? "picked above" : "chosen by the split";
  const facts = [
    ["Photo", `${file.name}, ${answer.imageWidth ?? 0} × ${answer.imageHeight ?? 0} pixels`],
    ["Model", model.name ?? ""],
    ["Version", model.version ?? ""],
    ["Variant", model.variant ? `${model.variant} (${how})` : "none (this model has no traffic split)"],
  ];
  const list = document.createElement("dl");
  for (const [term, value] of facts) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    dd.dataset.fact = term.toLowerCase();
    list.append(dt, dd);
  }
  $("#summary").replaceChildren(list);
}

// The cut-out, when one was asked for: the picture on its checkerboard, and a link that saves it under the photo's
// name.
function showCutout(cutout, file) {
  const figure = $("#cutout-figure");
  figure.hidden = !cutout;
  if (!cutout) return;
  const url = pngUrl(cutout.image ?? "");
  const view = $("#cutout-view");
  view.src = url;
  const box = cutout.box ?? {};
  const place = `${box.width ?? 0} × ${box.height ?? 0} pixels at ${box.x ?? 0}, ${box.y ?? 0} in the photo`;
  const subject = Number(cutout.subjectPixels ?? 0);
  view.alt = subject
    ? `The subject of ${file.name} cut out, ${place}`
    : `${file.name} has no subject to cut out: every pixel is background`;
  $("#cutout-caption").textContent = subject
    ? `Cut-out (${place}), on a checkerboard where it is transparent.`
    : "Cut-out: no class but the background was found, so nothing is opaque.";
  const link = $("#cutout-download");
  link.href = url;
  link.download = `${file.name.replace(/\.[^.]+$/, "")}-cutout.png`;
}

function clearResult() {
  result.hidden = true;
  for (const url of urls.splice(0)) URL.revokeObjectURL(url);
}

function show(answer, file, picked) {
  clearResult();
  const classes = [...(answer.classes ?? [])].sort((a, b) => Number(b.pixelCount ?? 0) - Number(a.pixelCount ?? 0));
  const width = answer.imageWidth ?? 0;
  const height = answer.imageHeight ?? 0;
  const overlayUrl = pngUrl(answer.overlay ?? "");
  const found = describe(classes);

  const photo = $("#photo-view");
  // Browsers show JPEG, PNG, WebP, BMP and AVIF but not TIFF, and most not HEIC: then the photo is drawn from the
  // gateway's overlay (the photo tinted, oriented as the gateway saw it), and the boxes go on that.
  photo.onerror = () => {
    photo.onerror = null;
    photo.src = overlayUrl;
    const why = "this browser cannot show the file itself";
    photo.alt = `The photo ${file.name} as the gateway's overlay (${why}), with a box around each class: ${found}`;
  };
  const photoUrl = URL.createObjectURL(file);
  urls.push(photoUrl);
  photo.src = photoUrl;
  photo.alt = `The photo ${file.name}, with a box around each class found: ${found}`;
  $("#overlay").src = overlayUrl;
  $("#overlay").alt = `The photo with each class tinted in its colour: ${found}`;
  $("#mask").src = pngUrl(answer.mask?.data ?? "");
  $("#mask").alt = `The class mask, one colour per class: ${found}`;
  showCutout(answer.cutout, file);
  drawBoxes(classes, width, height);
  fillSummary(answer, file, picked);
  fillClasses(classes);
  fillTimings(answer.timing ?? {});
  result.hidden = false;
  return classes;
}

async function segment(event) {
  event.preventDefault();
  const file = photoInput.files?.[0];
  if (!file) {
    // Nothing was sent: not the gateway's refusal.
    showProblem("No photo chosen.", "Choose a photo first, or drop one on the photo field.");
    photoInput.focus();
    return;
  }
  clearError();
  button.disabled = true;
  result.setAttribute("aria-busy", "true");
  const model = modelSelect.value;
  const variant = variantSelect.disabled ? "" : variantSelect.value;
  const using = model ? ` with ${model}${variant ? `, variant ${variant}` : ""}` : "";
  statusLine.textContent = `Segmenting ${file.name}${using}…`;
  try {
    const request = { image: await readBase64(file), includeOverlay: true };
    if (model) request.model = variant ? { name: model, variant } : { name: model };
    if (cutoutBox.checked) {
      const edge = form.elements.edge.value;
      request.cutout = { edge, crop: true, cropMarginPercent: 5 };
    }
    const answer = await call("SegmentImage", request);
    const classes = show(answer, file, variant);
    const ms = (Number(answer.timing?.totalUs ?? 0) / 1000).toFixed(0);
    statusLine.textContent = `Done: ${classes.length} classes in ${file.name} (${describe(classes)}), ${ms} ms in the gateway.`;
  } catch (error) {
    // The result on the page is the previous photo's (or model's): left there, it would read as this call's.
    clearResult();
    statusLine.textContent = `${file.name} was not segmented.`;
    showError(error instanceof CallError ? error : new CallError("unknown", String(error), 0));
  } finally {
    button.disabled = false;
    result.removeAttribute("aria-busy");
  }
}

function choose(file) {
  const chosen = file ? `Chosen: ${file.name} (${sizeText(file.size)})` : "";
  $("#photo-name").textContent = chosen;
  // Through the status line (a live region) too: a dropped file gives no other sign to a screen reader.
  if (file) {
    statusLine.textContent = `${chosen}. Press “Segment” to segment it.`;
    clearError();
  }
}

photoInput.addEventListener("change", () => choose(photoInput.files?.[0]));
// dragenter and dragleave come in pairs for the zone and each child the pointer crosses: the zone is left only
// when every enter has had its leave.
let dragDepth = 0;
const dragEnded = () => {
  dragDepth = 0;
  dropZone.classList.remove("dragging");
};
dropZone.addEventListener("dragenter", (event) => {
  event.preventDefault();
  dragDepth += 1;
  dropZone.classList.add("dragging");
});
dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  event.stopPropagation();  // the document's handler below would refuse the drop
  if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
  dropZone.classList.add("dragging");
});
dropZone.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) dropZone.classList.remove("dragging");
});
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dragEnded();
  const files = event.dataTransfer?.files;
  if (files?.length) {
    photoInput.files = files;
    choose(files[0]);
  }
});
// A file dropped anywhere else would make the browser open it in place of the page (and lose the result).
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  if (event.dataTransfer) event.dataTransfer.dropEffect = "none";
});
document.addEventListener("drop", (event) => {
  event.preventDefault();
  dragEnded();
});
document.addEventListener("dragend", dragEnded);
modelSelect.addEventListener("change", fillVariants);
cutoutBox.addEventListener("change", () => {
  edges.disabled = !cutoutBox.checked;
});
form.addEventListener("submit", segment);
tokenInput.addEventListener("change", loadModels);
loadModels();
