// The page: choose a served model and version, try it with an image (a file, a drop, a paste or a
// drawing) or, for a model taking a tensor, with values (a field each, a pasted row, or JSON; a field per
// named input), read its answer as its task gives it (classes, values by target, labels against thresholds,
// a vector, named outputs), tell the server whether a one-class answer was right, and read its card,
// slices, drift, live accuracy, versions and rollouts (pausing, resuming, aborting and starting one where admin routes answer) and
// report. Everything it shows comes from the server's API (GET /models..., POST /models/<name>/<version>[/input.png]); logic.mjs holds the
// logic that needs no DOM. Text from the server is always set as text, never as HTML.
import * as L from "./logic.mjs";

const $ = (id) => document.getElementById(id);
const tokens = L.tokenStore(window.sessionStorage);
const state = {
  listing: null, // GET /models
  model: null,
  versions: null, // GET /models/<model>
  choice: null, // the version or alias chosen
  card: null, // GET /models/<model>/<choice>
  seq: 0, // the latest selection: answers for an older one are dropped
  drawing: null, // {width, height, levels, cursor}
  reportUrl: null,
  previewUrl: null,
  section: L.SECTIONS[0], // the tab shown about the model
  answer: null, // the answer shown: {model, requestId, label} for its "Right?" controls
  truth: null, // a regressor's answer shown: {model, requestId, rows} for its "True value?" control
  rollouts: null, // {model, json, list}: GET /models/<model>/rollouts as last shown
  rolloutTimer: null, // the next refresh while a rollout runs and the versions tab is shown
  form: null, // a tensor input's form (L.tensorForm): one field per value, a JSON box, or a field per named input
  rowEdited: false, // the pasted row, not the fields, was edited last: Send reads the row
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// --- the API, with the token when there is one -------------------------------------------------

let pendingToken = null;

/** fetch() with the token; on 401 ask for the token (once for every request waiting) and retry. */
async function api(path, options = {}) {
  for (;;) {
    const response = await fetch(path, { ...options, headers: L.withToken(options.headers ?? {}, tokens.get()) });
    if (response.status !== 401) return response;
    const message = L.errorMessage(401, await response.text());
    tokens.clear();
    updateTokenButton();
    const token = await askToken(message);
    if (!token) throw new ApiError(401, message);
  }
}

async function getJSON(path) {
  const response = await api(path);
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, L.errorMessage(response.status, text));
  return JSON.parse(text);
}

function askToken(reason) {
  if (!pendingToken) {
    pendingToken = new Promise((resolve) => {
      const dialog = $("token-dialog");
      const input = $("token");
      $("token-reason").textContent = `${reason}. The token is kept for this browser session only.`;
      input.value = "";
      const finish = (token) => {
        dialog.removeEventListener("close", onClose);
        $("token-form").removeEventListener("submit", onSubmit);
        $("token-cancel").removeEventListener("click", onCancel);
        if (dialog.open) dialog.close();
        pendingToken = null;
        if (token) tokens.set(token);
        updateTokenButton();
        resolve(token);
      };
      const onSubmit = (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (token) finish(token);
      };
      const onCancel = () => finish(null);
      const onClose = () => finish(null);
      $("token-form").addEventListener("submit", onSubmit);
      $("token-cancel").addEventListener("click", onCancel);
      dialog.addEventListener("close", onClose);
      dialog.showModal();
      input.focus();
    });
  }
  return pendingToken;
}

function updateTokenButton() {
  $("forget-token").hidden = !tokens.get();
  state.rollouts = null; // with another token (or none), the rollouts' answer says anew whether admin routes answer
}

// --- DOM helpers -----------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

/** A table in a box that scrolls sideways when it is wider than the page, and then says so: a hint
 * above it, shadows at the edges that hide more columns, and focus (so the keyboard can scroll it).
 * A cell is text, or a node (e.g. a name with a note under it). Columns: `numeric` ones right-aligned
 * and never split; `keep` ones never wrapped; `anywhere` ones (hashes, paths) may break inside a word. */
function table(caption, headers, rows, numeric = [], { keep = [], anywhere = [], ...attributes } = {}) {
  const kind = (i) => (numeric.includes(i) ? "n" : keep.includes(i) ? "keep" : anywhere.includes(i) ? "anywhere" : null);
  const cell = (tag, c, props) => (c instanceof Node ? el(tag, props, c) : el(tag, { ...props, text: c }));
  return scrollBox(el("table", attributes,
    el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { scope: "col", class: kind(i), text: h })))),
    el("tbody", {}, rows.map((row) => {
      const cells = row.cells ?? row;
      return el("tr", { class: row.class ?? null }, cells.map((c, i) => (i === 0
        ? cell("th", c, { scope: "row", class: kind(i) })
        : cell("td", c, { class: kind(i) }))));
    }))), caption);
}

const scrollWatch = new ResizeObserver((entries) => entries.forEach((entry) => markScrolling(entry.target)));
let tableCount = 0;

/** A table's box: its title (outside the part that scrolls, so it stays readable), the hint, the table. */
function scrollBox(tableNode, title) {
  const id = `table-title-${++tableCount}`;
  if (title) tableNode.setAttribute("aria-labelledby", id);
  const label = title || Array.from(tableNode.querySelectorAll("thead th"), (th) => th.textContent).filter(Boolean).join(", ");
  const wrap = el("div", { class: "table-wrap", role: "region", "aria-label": `Table: ${label}` }, tableNode);
  const box = el("div", { class: "table-box" },
    title ? el("p", { class: "table-title", id, text: title }) : null,
    el("p", { class: "scroll-hint", hidden: true, text: "Scroll sideways for more columns →" }),
    wrap);
  scrollWatch.observe(wrap);
  return box;
}

/** A table box that needs sideways scrolling shows its hint and takes focus; one that fits does neither. */
function markScrolling(wrap) {
  const scrolls = wrap.isConnected && wrap.scrollWidth > wrap.clientWidth + 1;
  wrap.classList.toggle("scrolls", scrolls);
  if (scrolls) wrap.tabIndex = 0;
  else wrap.removeAttribute("tabindex");
  wrap.previousElementSibling.hidden = !scrolls;
  if (!wrap.isConnected) scrollWatch.unobserve(wrap);
}

/** A name with a short note under it, in one cell. */
function noted(name, note) {
  return note ? el("span", {}, name, el("span", { class: "cell-note", text: note })) : name;
}

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== "").flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : String(v))]));
}

function show(id, message) {
  const node = $(id);
  node.textContent = message ?? "";
  node.hidden = !message;
}

function modelPath(...parts) {
  return ["", "models", ...parts].map((p, i) => (i < 2 ? p : encodeURIComponent(p))).join("/");
}

// --- choosing a model and a version --------------------------------------------------------------

async function start() {
  bindEvents();
  updateTokenButton();
  try {
    state.listing = await getJSON("/models");
  } catch (error) {
    show("load-error", `Cannot list the models: ${L.failureText(error)}`);
    return;
  }
  const select = $("model");
  select.replaceChildren(...state.listing.models.map((m) => el("option", { value: m.name, text: m.name })));
  select.disabled = false;
  if (!state.listing.models.length) {
    show("load-error", "This server serves no models.");
    return;
  }
  const wanted = L.parseHash(location.hash, state.listing.models.map((m) => m.name));
  const model = state.listing.models.some((m) => m.name === wanted.model) ? wanted.model : state.listing.models[0].name;
  if (wanted.section) selectSection(wanted.section, { scroll: true });
  await selectModel(model, wanted.version);
}

async function selectModel(name, version) {
  const seq = ++state.seq;
  state.model = name;
  $("model").value = name;
  show("load-error", "");
  let versions;
  try {
    versions = await getJSON(modelPath(name));
  } catch (error) {
    if (seq === state.seq) show("load-error", `Cannot list the versions of ${name}: ${L.failureText(error)}`);
    return;
  }
  if (seq !== state.seq) return;
  state.versions = versions;
  const choices = L.versionChoices(versions);
  const select = $("version");
  select.replaceChildren(...choices.map((c) => el("option", { value: c.value, text: c.text })));
  select.disabled = false;
  const choice = choices.some((c) => c.value === version) ? version : versions.default_version;
  renderVersions(versions);
  await selectVersion(choice);
}

async function selectVersion(choice) {
  const seq = ++state.seq;
  state.choice = choice;
  $("version").value = choice;
  updateHash();
  clearResult();
  resetReport();
  let card;
  try {
    card = await getJSON(modelPath(state.model, choice));
  } catch (error) {
    if (seq !== state.seq) return;
    state.card = null;
    show("load-error", `Cannot read the card of ${state.model} ${choice}: ${L.failureText(error)}`);
    $("card").replaceChildren();
    $("slices").replaceChildren();
    setUpTry(null);
    return;
  }
  if (seq !== state.seq) return;
  show("load-error", "");
  state.card = card;
  $("description").textContent = card.description;
  renderCard(card);
  renderSlices(card);
  setUpTry(card);
  $("refresh-drift").hidden = L.notApplicableText(card, "drift") !== null; // nothing to refresh: the tab says why
  $("refresh-live").hidden = !L.hasLive(card);
  nameLiveTab(card);
  $("drift").replaceChildren();
  loadSection();
}

/** The live tab is "Live error" for a regressor, "Live accuracy" otherwise: its tab, link, title and button say so. */
function nameLiveTab(card) {
  const name = L.liveTabText(card);
  for (const id of ["tab-live", "jump-live", "live-title"]) $(id).textContent = name;
  $("refresh-live").textContent = `Refresh the ${name.toLowerCase()}`;
}

function updateHash() {
  if (!state.model || !state.choice) return;
  const hash = L.makeHash(state.model, state.choice, state.section);
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

// --- the sections about the model: tabs ------------------------------------------------------------

/** Show one section (a tab and its panel), load what it shows, and keep it in the address. */
function selectSection(section, { focus = false, scroll = false } = {}) {
  if (!L.SECTIONS.includes(section)) return;
  state.section = section;
  for (const name of L.SECTIONS) {
    const selected = name === section;
    const tab = $(`tab-${name}`);
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`panel-${name}`).hidden = !selected;
  }
  if (focus) $(`tab-${section}`).focus();
  if (scroll) $("about").scrollIntoView({ block: "start" });
  updateHash();
  loadSection();
}

/** What the shown section needs from the server, asked when it is shown (drift, replicas, report). */
function loadSection() {
  if (!state.card) return;
  if (state.section === "drift") loadDrift();
  else if (state.section === "live") loadLive();
  else if (state.section === "report") loadReport();
  else if (state.section === "replicas") loadFleet();
  else if (state.section === "versions") loadRollouts();
}

function bindTabs() {
  for (const name of L.SECTIONS) {
    const tab = $(`tab-${name}`);
    tab.addEventListener("click", () => selectSection(name));
    tab.addEventListener("keydown", (event) => {
      const next = L.tabAfterKey(L.SECTIONS.indexOf(name), event.key, L.SECTIONS.length);
      if (next === null) return;
      event.preventDefault();
      selectSection(L.SECTIONS[next], { focus: true });
    });
  }
}

// --- trying the model ----------------------------------------------------------------------------

function setUpTry(card) {
  const image = L.isImageCard(card);
  $("image-inputs").hidden = !image;
  const form = card && !image ? L.tensorForm(card) : null;
  $("not-image").hidden = !form;
  $("values-form").hidden = !form;
  if (form) {
    const how = { fields: "type them below, or paste a row, then Send", json: "write it below as JSON, then Send", named: "type each below, then Send" }[form.mode];
    $("not-image").textContent = `${card.name} takes ${L.formText(form)}, not an image: ${how}.`;
    setUpValues(form);
  }
  state.form = form;
  $("invert-field").hidden = !L.canInvert(card); // grey images only: "inverting" a colour photo means nothing
  const draw = L.canDraw(card);
  $("draw").hidden = !draw;
  if (draw) setUpCanvas(card.input.shape[1], card.input.shape[0]);
  else state.drawing = null;
}

function clearResult() {
  $("result").hidden = true;
  show("try-error", "");
  show("values-error", "");
  setUpRight(null);
  setUpTruth(null);
}

// --- a model whose input is not an image: its values, typed, pasted as a row, or as JSON ----------------

/** The form of a tensor input: a number field per value (with the card's range as min and max) and a
 * row to paste, or a JSON box. Values typed for the same form (another version of the model) stay. */
function setUpValues(form) {
  const same = state.form && JSON.stringify(state.form) === JSON.stringify(form);
  const fields = form.mode === "fields";
  const named = form.mode === "named";
  $("values-fields").hidden = !fields;
  $("values-row-field").hidden = !fields;
  $("values-json-field").hidden = form.mode !== "json";
  $("named-inputs").hidden = !named;
  show("values-error", "");
  markInvalid(null, { focus: false });
  if (same) return;
  state.rowEdited = false;
  if (named) {
    $("named-legend").textContent = `Inputs (${form.inputs.length})`;
    $("named-fields").replaceChildren(...form.inputs.map((f) => {
      const id = `named-${f.index + 1}`;
      const attributes = { id, class: "named-input", "data-input": f.name, spellcheck: "false", autocomplete: "off", autocapitalize: "off", "aria-describedby": `${id}-hint` };
      return el("div", { class: "field named-field" },
        el("label", { for: id, text: f.label }),
        // a BYTES input's text: a box whose whole text (one value) or lines (several) are sent as typed
        f.lines ? el("textarea", { ...attributes, rows: f.text ? String(Math.min(Math.max(f.size, 2), 8)) : "3" }) : el("input", { ...attributes, type: "text" }),
        el("p", { id: `${id}-hint`, class: "hint", text: f.hint }));
    }));
  } else if (fields) {
    $("values-legend").textContent = `Values (${form.count})`;
    $("value-fields").replaceChildren(...form.names.map((name, i) => el("div", { class: "field value-field" },
      el("label", { for: `value-${i + 1}`, text: name }),
      el("input", { type: "number", id: `value-${i + 1}`, class: "value-input", step: "any", min: form.low ?? null, max: form.high ?? null, autocomplete: "off" }))));
    $("values-row").value = "";
  } else {
    const json = $("values-json");
    json.value = "";
    json.placeholder = L.exampleJSON(form.shape);
    $("values-json-hint").textContent = `Nested lists of numbers, ${L.shapeText(form.shape)} (the placeholder shows the shape); a body's {"input": ...} works too.`;
  }
}

function valueInputs() {
  return Array.from($("value-fields").querySelectorAll("input"));
}

function namedInputs() {
  return Array.from($("named-fields").querySelectorAll(".named-input"));
}

/** Mark the field (or the row, or the JSON box) a message (in `message`, an element's id) is about, and
 * focus it; clear every other mark. */
function markInvalid(target, { message = "values-error", focus = true } = {}) {
  for (const node of [...valueInputs(), ...namedInputs(), $("values-row"), $("values-json")]) {
    const wrong = node === target;
    if (wrong) {
      node.setAttribute("aria-invalid", "true");
      node.setAttribute("aria-errormessage", message);
    } else {
      node.removeAttribute("aria-invalid");
      node.removeAttribute("aria-errormessage");
    }
  }
  if (focus) target?.focus();
}

/** A row pasted or typed: when it reads as the model's values, they fill the fields. */
function rowChanged() {
  state.rowEdited = true;
  const parsed = L.parseRow($("values-row").value, state.form);
  if (parsed.error) return;
  valueInputs().forEach((input, i) => { input.value = String(parsed.values[i]); });
  show("values-error", "");
  markInvalid(null);
}

/** A field typed in: the row shows the fields, so it never disagrees with what Send sends. */
function fieldChanged() {
  state.rowEdited = false;
  $("values-row").value = L.rowText(valueInputs().map((input) => input.value));
  if (!$("values-error").hidden) {
    show("values-error", "");
    markInvalid(null);
  }
}

/** Send: the values checked here first (count, numbers, range), each problem said in words next to the form. */
async function sendValues(event) {
  event.preventDefault();
  const form = state.form;
  if (!form || !state.card) return;
  let checked;
  let target = null;
  if (form.mode === "named") {
    const fields = namedInputs();
    checked = L.namedBody(fields.map((field) => field.value), form);
    target = fields[checked.index ?? 0];
  } else if (form.mode === "json") {
    checked = L.parseTensorJSON($("values-json").value, form);
    target = $("values-json");
  } else if (state.rowEdited && $("values-row").value.trim()) {
    checked = L.parseRow($("values-row").value, form);
    target = $("values-row");
  } else {
    const inputs = valueInputs();
    checked = L.checkFields(inputs.map((input) => input.value), form, inputs.map((input) => input.validity.badInput));
    target = inputs[checked.index ?? 0];
  }
  if (checked.error) {
    $("result").hidden = true;
    show("try-error", "");
    show("values-error", checked.error);
    markInvalid(target);
    return;
  }
  show("values-error", "");
  markInvalid(null);
  const body = form.mode === "named" ? checked.body : { input: form.mode === "json" ? checked.input : checked.values };
  await classify(() => JSON.stringify(body), { "Content-Type": "application/json" }, () => {}, { image: false });
}

function showPreview(url, pixelated, caption) {
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = url.startsWith("blob:") ? url : null;
  $("sent-image-caption").textContent = caption;
  const img = $("sent-image");
  img.closest("figure").hidden = false;
  img.classList.toggle("pixelated", Boolean(pixelated));
  img.onerror = () => { img.closest("figure").hidden = true; };
  img.src = url;
}

async function classifyFile(file) {
  if (!state.card || !L.isImageCard(state.card)) return;
  const form = () => {
    const body = new FormData();
    body.append("image", file, file.name || "pasted-image");
    if (L.canInvert(state.card)) body.append("invert", $("invert").value);
    return body;
  };
  showPreview(URL.createObjectURL(file), false, file.name ? `Your file: ${file.name}` : "Your image");
  // Answered: the drawing, if any, is not what the answer is about any more.
  await classify(form, {}, clearDrawing);
}

function clearDrawing() {
  if (!state.drawing) return;
  state.drawing.levels.fill(0);
  paint();
}

async function classifyDrawing() {
  const d = state.drawing;
  if (!d) return;
  if (L.isBlank(d.levels)) {
    show("try-error", "The canvas is empty: draw something first.");
    $("result").hidden = true;
    return;
  }
  showPreview($("canvas").toDataURL("image/png"), true, "Your drawing");
  const body = () => JSON.stringify({ image: L.levelsToRows(d.levels, d.width, d.height) });
  await classify(body, { "Content-Type": "application/json" });
}

/** POST the example for a prediction, then for the image as the model sees it; `answered` runs once
 * the prediction is shown. The image given is shown beside the answer (showPreview, before this), so
 * an earlier drawing or file never stays next to a newer answer. */
async function classify(makeBody, headers, answered = () => {}, { image = true } = {}) {
  const seq = state.seq;
  const { model, choice, card } = state;
  const base = modelPath(model, choice);
  setBusy(true);
  show("try-error", "");
  try {
    const started = performance.now();
    const response = await api(base, { method: "POST", body: makeBody(), headers });
    const text = await response.text();
    const elapsed = performance.now() - started;
    if (seq !== state.seq) return;
    if (!response.ok) {
      $("result").hidden = true;
      const message = L.errorMessage(response.status, text);
      show("try-error", message);
      const named = L.namedFieldOfError(message, state.form); // the named input the server's words are about
      if (named >= 0) markInvalid(namedInputs()[named], { message: "try-error", focus: false });
      return;
    }
    const answer = JSON.parse(text);
    renderPrediction(answer, card, choice, elapsed, response.headers.get("X-Request-Id"));
    answered();
    if (!image) return; // values: nothing to show as the model sees it
    const seen = await api(`${base}/input.png`, { method: "POST", body: makeBody(), headers });
    if (seq !== state.seq) return;
    const img = $("model-image");
    if (seen.ok) {
      if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(await seen.blob());
      img.hidden = false;
      const [height, width] = card.input.shape;
      $("model-image-caption").textContent = `As the model sees it (${width}×${height})`;
    } else {
      img.hidden = true;
      $("model-image-caption").textContent = `Cannot show it as the model sees it: ${L.errorMessage(seen.status, await seen.text())}`;
    }
    if (state.section === "drift") loadDrift();
  } catch (error) {
    if (seq === state.seq) {
      $("result").hidden = true;
      show("try-error", L.failureText(error));
    }
  } finally {
    setBusy(false);
  }
}

function setBusy(busy) {
  $("try").setAttribute("aria-busy", String(busy));
  for (const id of ["classify-drawing", "file", "values-send"]) $(id).disabled = busy;
}

function renderPrediction(answer, card, choice, elapsed, requestId) {
  const oneClass = L.isOneClass(card);
  $("seen").hidden = !L.isImageCard(card);
  $("answer-classes").hidden = !oneClass;
  $("answer-task").hidden = oneClass;
  $("answered").textContent = L.answeredText(answer, choice, elapsed, card);
  if (!oneClass) {
    // Another task: no top classes, no "Right?", no OOD score or abstention (those are one-class models').
    $("answer-task").replaceChildren(...taskAnswer(answer, card));
    show("abstained", "");
    show("ood", "");
    setUpRight(null);
    const regressor = L.isRegressor(card) && requestId;
    setUpTruth(regressor ? { model: answer.model, requestId, rows: L.regressionRows(card, answer.predictions?.[0], answer.result?.[0]) } : null);
  } else {
    setUpTruth(null);
    renderClasses(answer, card, requestId);
  }
  $("result").hidden = false;
  $("result").scrollIntoView({ block: "nearest" });
}

/** The answer of a model of another task: values by target, every label against its threshold, or a vector. */
function taskAnswer(answer, card) {
  if (L.hasNamedOutputs(card)) return namedAnswer(answer, card);
  const prediction = answer.predictions?.[0];
  const row = answer.result?.[0];
  const kind = card.output.kind;
  if (kind === "regression") {
    const rows = L.regressionRows(card, prediction, row);
    return [el("h3", { text: "Values" }), table(null, ["target", "value", "unit"],
      rows.map((r) => [r.name, el("span", { class: "answer-value", "data-value": String(r.value), title: String(r.value), text: r.text }), r.unit || "–"]), [1], { id: "values-table" })];
  }
  if (kind === "multilabel") {
    const rows = L.multilabelRows(card, prediction, row);
    return [
      el("h3", { text: "Labels" }),
      el("p", { id: "tags-given", class: "given-line", text: L.givenText(rows) }),
      el("ol", { id: "tags", class: "bars tags", "aria-label": "Every label's probability against its threshold" }, rows.map((r) => {
        const fill = el("div", { class: "fill" });
        fill.style.width = `${Math.max(0, Math.min(1, r.probability)) * 100}%`;
        const mark = el("span", { class: "threshold", title: `threshold ${r.thresholdText}` });
        mark.style.left = `${Math.max(0, Math.min(1, r.threshold)) * 100}%`;
        return el("li", { class: r.given ? "given" : null, "data-label": r.label, "data-probability": String(r.probability), "data-threshold": String(r.threshold), title: r.description },
          el("span", { class: "label" }, r.given ? el("span", { class: "tick", "aria-hidden": "true", text: "✓ " }) : "", r.label),
          el("div", { class: "track", "aria-hidden": "true" }, fill, mark),
          el("span", { class: "value" }, r.text, el("span", { class: "visually-hidden", text: `, threshold ${r.thresholdText}: ${r.given ? "given" : "not given"}` })));
      })),
      el("p", { class: "note", text: "A bar is the label's probability, its mark the label's threshold: a label is given when its bar reaches the mark." }),
    ];
  }
  const summary = L.vectorSummary(card, row);
  const json = el("textarea", { id: "vector-json", class: "vector-json", readonly: true, rows: "4", spellcheck: "false", "aria-label": "Every value of the answer, as JSON" });
  json.value = summary.json;
  const copy = el("button", { type: "button", id: "copy-json", text: "Copy the values as JSON" });
  copy.addEventListener("click", () => copyJSON(summary));
  return [
    el("h3", { text: kind === "embedding" ? "Embedding" : "Tensor" }),
    el("p", { id: "vector-title", text: summary.title }),
    table(null, ["index", "value"], summary.first.map((f) => [f.index, el("span", { class: "answer-value", "data-value": String(f.value), title: String(f.value), text: f.text })]), [0, 1], { id: "vector-table" }),
    summary.norm === null ? "" : el("p", { id: "vector-norm", text: `Length (L2 norm): ${L.valueNumber(summary.norm)}` }),
    el("div", { class: "buttons" }, copy, el("span", { id: "copy-answer", class: "note", role: "status" })),
    el("details", {}, el("summary", { text: "Every value as JSON" }), json),
  ];
}

/** The answer of a model of several named outputs: each by its name, datatype and shape, with its values. */
function namedAnswer(answer, card) {
  const json = el("textarea", { id: "outputs-json", class: "vector-json", readonly: true, rows: "4", spellcheck: "false", "aria-label": "Every output of the answer, as JSON" });
  json.value = JSON.stringify(answer.result);
  return [
    el("h3", { text: "Outputs" }),
    ...L.namedOutputs(card, answer).map((o) => el("section", { class: "named-output", "data-output": o.name, "aria-label": `Output ${o.name}` },
      el("h4", { text: o.label }),
      o.missing
        ? el("p", { class: "note", text: `${o.name} is not in the answer.` })
        : table(null, ["index", "value"], o.values.map((v) => [v.index, el("span", { class: "answer-value", "data-value": String(v.value), title: String(v.value), text: v.text })]), [0, 1], { class: "named-output-table" }),
      o.more > 0 ? el("p", { class: "note", text: `and ${L.formatNumber(o.more)} more (every value is in the JSON below)` }) : "")),
    el("details", {}, el("summary", { text: "Every value as JSON" }), json),
  ];
}

/** Copy a vector's values as JSON: the clipboard API, else the selected text box (a page not served over https). */
async function copyJSON(summary) {
  const out = $("copy-answer");
  const count = `${L.formatNumber(summary.size)} ${summary.size === 1 ? "value" : "values"}`;
  try {
    if (!navigator.clipboard?.writeText) throw new Error("no clipboard here");
    await navigator.clipboard.writeText(summary.json);
    out.textContent = `Copied ${count} as JSON.`;
  } catch {
    const box = $("vector-json");
    box.closest("details").open = true;
    box.focus();
    box.select();
    out.textContent = document.execCommand("copy") ? `Copied ${count} as JSON.` : "This browser would not copy: the values are selected below, copy them with Ctrl+C (⌘C).";
  }
}

function renderClasses(answer, card, requestId) {
  const probabilities = answer.result[0];
  const rows = L.topClasses(probabilities, card.output.labels);
  $("classes").replaceChildren(...rows.map((row) => {
    const fill = el("div", { class: "fill" });
    fill.style.width = `${Math.max(0, Math.min(1, row.probability)) * 100}%`;
    return el("li", {},
      el("span", { class: "label", text: row.label }),
      el("div", { class: "track", "aria-hidden": "true" }, fill),
      el("span", { class: "value", text: L.percent(row.probability) }));
  }));
  const first = L.predictionSummary(answer.predictions?.[0]);
  show("abstained", first.abstained ? L.abstentionText(first.score) : "");
  show("ood", first.abstained ? "" : L.oodText(first.score));
  setUpRight(requestId ? { model: answer.model, requestId, label: first.label, labels: card.output.labels } : null);
}

// --- "Right?": the answer's ground truth, by its request id -------------------------------------------

function setUpRight(answer) {
  state.answer = answer;
  $("right").hidden = !answer;
  $("right-answer").textContent = "";
  if (!answer) return;
  $("right-yes").hidden = answer.label === null; // an abstention gave no label to confirm
  $("right-yes").textContent = answer.label === null ? "Yes" : `Yes, it is ${answer.label}`;
  $("right-label").replaceChildren(...L.correctionChoices(answer.labels, answer.label).map((label) => el("option", { value: label, text: label })));
  $("right-label").previousElementSibling.textContent = answer.label === null ? "It is" : "No, it is";
  for (const id of ["right-yes", "right-send"]) $(id).disabled = false;
}

async function sendRight(label) {
  const answer = state.answer;
  if (!answer || label === null || label === undefined) return;
  const out = $("right-answer");
  for (const id of ["right-yes", "right-send"]) $(id).disabled = true;
  out.textContent = "Sending…";
  try {
    const response = await api(`${modelPath(answer.model)}/feedback`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(L.feedbackBody(answer.requestId, label)),
    });
    const text = await response.text();
    if (state.answer !== answer) return;
    out.textContent = response.ok ? L.feedbackResultText(JSON.parse(text), label) : `Not sent: ${L.errorMessage(response.status, text)}`;
    if (response.ok && state.section === "live") loadLive();
  } catch (error) {
    if (state.answer === answer) out.textContent = `Not sent: ${L.failureText(error)}`;
  } finally {
    if (state.answer === answer) for (const id of ["right-yes", "right-send"]) $(id).disabled = false;
  }
}

// --- "True value?": a regressor's answer's ground truth, by its request id ------------------------------------

/** The control under a regressor's answer: a number field per target (its unit in its label) and Send. */
function setUpTruth(truth) {
  state.truth = truth;
  $("truth").hidden = !truth;
  $("truth-answer").textContent = "";
  show("truth-error", "");
  if (!truth) {
    $("truth-fields").replaceChildren();
    return;
  }
  $("truth-fields").replaceChildren(...truth.rows.map((r, i) => el("span", { class: "truth-field" },
    el("label", { for: `truth-${i + 1}`, text: r.unit ? `${r.name} (${r.unit})` : r.name }),
    el("input", { type: "number", id: `truth-${i + 1}`, class: "truth-input", step: "any", autocomplete: "off", inputmode: "decimal" }))));
  $("truth-send").disabled = false;
}

function truthInputs() {
  return Array.from($("truth-fields").querySelectorAll("input"));
}

/** Send the true values (checked here first, each problem said in words with its field marked), then
 * say what joined; the live tab, when shown, follows. */
async function sendTruth(event) {
  event.preventDefault();
  const truth = state.truth;
  if (!truth) return;
  const inputs = truthInputs();
  const bad = inputs.findIndex((input) => input.validity.badInput);
  const checked = bad >= 0 ? { error: `The true ${truth.rows[bad].name} is not a number.`, index: bad } : L.checkTruth(inputs.map((input) => input.value), truth.rows);
  inputs.forEach((input, i) => {
    if (checked.error && i === checked.index) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-errormessage", "truth-error");
    } else {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-errormessage");
    }
  });
  if (checked.error) {
    show("truth-error", checked.error);
    $("truth-answer").textContent = "";
    inputs[checked.index]?.focus();
    return;
  }
  show("truth-error", "");
  const out = $("truth-answer");
  $("truth-send").disabled = true;
  out.textContent = "Sending…";
  try {
    const response = await api(`${modelPath(truth.model)}/feedback`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(L.truthBody(truth.requestId, checked.values)),
    });
    const text = await response.text();
    if (state.truth !== truth) return;
    out.textContent = response.ok ? L.truthResultText(JSON.parse(text), truth.rows, checked.values) : `Not sent: ${L.errorMessage(response.status, text)}`;
    if (response.ok && state.section === "live") loadLive();
  } catch (error) {
    if (state.truth === truth) out.textContent = `Not sent: ${L.failureText(error)}`;
  } finally {
    if (state.truth === truth) $("truth-send").disabled = false;
  }
}

// --- the drawing canvas --------------------------------------------------------------------------

function setUpCanvas(width, height) {
  const canvas = $("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.setAttribute("aria-label", `Drawing area of ${width}×${height} pixels, light strokes on black, as the model's own input`);
  state.drawing = { width, height, levels: L.emptyLevels(width, height), cursor: { x: Math.floor(width / 2), y: Math.floor(height / 2) }, last: null };
  paint();
  placeCursor();
}

function paint() {
  const d = state.drawing;
  $("canvas").getContext("2d").putImageData(new ImageData(L.levelsToRGBA(d.levels), d.width, d.height), 0, 0);
}

function brush() {
  return Number($("brush").value);
}

function placeCursor() {
  const d = state.drawing;
  const cursor = $("cursor");
  cursor.style.left = `${(d.cursor.x / d.width) * 100}%`;
  cursor.style.top = `${(d.cursor.y / d.height) * 100}%`;
  cursor.style.width = `${100 / d.width}%`;
  cursor.style.height = `${100 / d.height}%`;
}

function bindCanvas() {
  const canvas = $("canvas");
  const at = (event) => L.pointToPixel(event.clientX, event.clientY, canvas.getBoundingClientRect(), state.drawing.width, state.drawing.height);
  canvas.addEventListener("pointerdown", (event) => {
    if (!state.drawing) return;
    canvas.setPointerCapture(event.pointerId);
    const d = state.drawing;
    d.last = at(event);
    L.stamp(d.levels, d.width, d.height, d.last.x, d.last.y, brush());
    paint();
  });
  canvas.addEventListener("pointermove", (event) => {
    const d = state.drawing;
    if (!d?.last) return;
    const point = at(event);
    L.stroke(d.levels, d.width, d.height, d.last, point, brush());
    d.last = point;
    paint();
  });
  const end = () => { if (state.drawing) state.drawing.last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("focus", () => { $("cursor").hidden = false; });
  canvas.addEventListener("blur", () => { $("cursor").hidden = true; });
  canvas.addEventListener("keydown", (event) => {
    const d = state.drawing;
    if (!d) return;
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const dot = () => { L.stamp(d.levels, d.width, d.height, d.cursor.x + 0.5, d.cursor.y + 0.5, brush()); paint(); };
    if (moves[event.key]) {
      const [dx, dy] = moves[event.key];
      d.cursor = { x: Math.min(d.width - 1, Math.max(0, d.cursor.x + dx)), y: Math.min(d.height - 1, Math.max(0, d.cursor.y + dy)) };
      placeCursor();
      if (event.shiftKey) dot();
    } else if (event.key === " " || event.key === "Enter") {
      dot();
    } else {
      return;
    }
    event.preventDefault();
  });
}

// --- understanding the model ---------------------------------------------------------------------

function renderCard(card) {
  const engines = Object.entries(card.engines ?? {}).map(([name, e]) => (e.verification ? `${name} (verified on ${L.formatNumber(e.verification.examples)} examples)` : name));
  const parts = [
    facts([
      ["Tag", card.tag],
      ["Created", card.created ? new Date(card.created).toLocaleString() : null],
      ["Task", card.task],
      ["Input", L.inputSummary(card)],
      ["Image files", L.preprocessingSummary(card)],
      ["Output", L.outputSummary(card)],
      ["Architecture", card.architecture],
      ["Parameters", L.formatNumber(card.number_of_parameters)],
      ["Aliases", card.aliases?.length ? card.aliases.join(", ") : "none"],
      ["Engines", engines.join(", ") || null],
      ["Frameworks", L.valueText(card.framework_versions)],
    ]),
  ];
  const inputs = L.inputRows(card); // a model of several named inputs
  if (inputs) parts.push(el("h3", { text: inputs.title }), table(null, inputs.headers, inputs.rows, [], { id: "inputs-table", keep: [2] }));
  const output = L.outputRows(card); // a regressor's targets and units, a tagger's thresholds, named outputs
  if (output) {
    parts.push(el("h3", { text: output.title }), table(null, output.headers, output.rows, card.output.kind === "multilabel" ? [1] : [], { id: "output-table" }));
  } else if (card.output.labels?.length) {
    parts.push(el("h3", { text: `Labels (${card.output.labels.length})` }), el("ul", { class: "labels" }, card.output.labels.map((label) => el("li", { text: label }))));
  }
  parts.push(el("h3", { text: "Metrics" }));
  if (card.metrics) {
    parts.push(table(null, ["metric", "value"], L.metricRows(card.metrics), [1]));
    const perClass = Object.entries(card.metrics.per_class ?? {});
    if (perClass.length) {
      parts.push(el("details", {}, el("summary", { text: "Per-class precision, recall and F1" }), table(null, ["label", "precision", "recall", "F1", "support"],
        perClass.map(([label, m]) => [label, L.formatNumber(m.precision), L.formatNumber(m.recall), L.formatNumber(m.f1), L.formatNumber(m.support)]), [1, 2, 3, 4])));
    }
    const matrix = card.metrics.confusion_matrix;
    if (Array.isArray(matrix) && matrix.length) {
      const labels = card.output.labels;
      parts.push(el("details", {}, el("summary", { text: "Confusion matrix (rows: true label, columns: predicted)" }),
        table(null, ["", ...labels], matrix.map((row, i) => [labels[i], ...row.map(String)]), labels.map((_, i) => i + 1))));
    }
  } else {
    parts.push(el("p", { class: "note", text: "No held-out evaluation: the model was imported without evaluation data." }));
  }
  parts.push(el("h3", { text: "Training" }), table(null, ["setting", "value"], L.settingsRows(card.training), [], { anywhere: [1] }));
  if (card.history && Object.keys(card.history).length) parts.push(historyCharts(card.history));
  parts.push(el("details", {}, el("summary", { text: "Data" }), table(null, ["field", "value"], L.settingsRows(card.data), [], { anywhere: [1] })));
  $("card").replaceChildren(...parts);
}

const SERIES_COLOURS = ["#2f7dd1", "#e8590c", "#2b8a3e", "#9c36b5"];

function historyCharts(history) {
  const groups = [
    ["Loss by epoch", Object.keys(history).filter((k) => k.includes("loss"))],
    ["Other figures by epoch", Object.keys(history).filter((k) => !k.includes("loss") && k !== "learning_rate")],
  ].filter(([, keys]) => keys.length && keys.some((k) => history[k].length > 1));
  return el("div", {}, groups.map(([title, keys]) => {
    const values = keys.flatMap((k) => history[k]);
    const low = Math.min(...values);
    const high = Math.max(...values);
    const chart = svg("svg", { class: "history", viewBox: "0 0 400 120", role: "img", "aria-label": `${title}: ${keys.map((k) => `${k} ${L.formatNumber(history[k].at(-1))} at the end`).join(", ")}` },
      ...keys.map((k, i) => svg("polyline", { points: L.polylinePoints(history[k], 400, 120, low, high), stroke: SERIES_COLOURS[i % SERIES_COLOURS.length] })));
    const legend = el("ul", { class: "legend" }, keys.map((k, i) => {
      const swatch = el("i", { "aria-hidden": "true" });
      swatch.style.background = SERIES_COLOURS[i % SERIES_COLOURS.length];
      return el("li", {}, swatch, `${k}: ${L.formatNumber(history[k].at(-1))}`);
    }));
    return el("figure", {}, el("figcaption", { text: `${title} (${L.formatNumber(low)} to ${L.formatNumber(high)})` }), chart, legend);
  }));
}

function renderSlices(card) {
  const not = L.notApplicableText(card, "slices");
  if (not) {
    $("slices").replaceChildren(el("p", { class: "note task-note", text: not }));
    return;
  }
  const rows = L.sliceRows(card.slices);
  if (!rows.length) {
    $("slices").replaceChildren(el("p", { class: "note", text: "No slice evaluation in this card." }));
    return;
  }
  const worst = card.slices.worst;
  $("slices").replaceChildren(
    el("p", { text: `Accuracy overall ${L.percent(card.slices.overall)} on ${L.formatNumber(card.slices.images)} held-out images; the worst slice: ${worst.slice} at ${L.percent(worst.accuracy)}.` }),
    table("Accuracy by class and under shifts, worst first", ["slice", "accuracy"],
      rows.map((r) => ({ cells: [noted(r.worst ? `${r.slice} (worst)` : r.slice, r.about), L.percent(r.accuracy)], class: r.worst ? "worst" : null })), [1]),
  );
}

async function loadDrift() {
  const seq = state.seq;
  const { model, choice } = state;
  if (!model || !choice) return;
  const not = L.notApplicableText(state.card, "drift"); // a classifier or a regressor, with numeric inputs: said without asking the server
  if (not) {
    $("drift").replaceChildren(el("p", { class: "note task-note", text: not }));
    return;
  }
  $("drift").setAttribute("aria-busy", "true");
  try {
    const drift = await getJSON(`${modelPath(model, choice)}/drift`);
    if (seq !== state.seq) return;
    if (L.isRegressionDrift(drift)) {
      renderRegressionDrift(drift, state.card);
      return;
    }
    const judged = L.driftJudged(drift);
    const shares = L.classShareRows(drift, state.card?.output?.labels);
    const rows = L.driftRows(drift);
    $("drift").replaceChildren(
      driftVerdict(drift),
      el("p", { class: "note", text: `${L.windowText(drift)}; ${L.referenceText(drift, state.card)}.` }),
      rows.length
        ? table(judged ? "Statistics, drifted first" : "Statistics so far, not judged until the window holds enough predictions", ["statistic", "value", "p-value", "threshold", "drifted"],
          rows.map((r) => ({ cells: [noted(r.name, r.test), L.formatNumber(r.value), r.pValue === null ? "–" : L.formatNumber(r.pValue), L.thresholdText(r.threshold), r.status], class: r.drifted ? "worst" : null })), [1, 2, 3], { keep: [4] })
        : noStatistics(),
      shares.length ? table(`Class shares: the version's recent predictions against its predictions on the held-out ${L.heldOutNoun(state.card, drift)}`, ["label", "recent", "held-out"],
        shares.map((s) => [s.label, s.window === null ? "–" : L.percent(s.window), L.percent(s.reference)]), [1, 2]) : "",
    );
  } catch (error) {
    if (seq === state.seq) $("drift").replaceChildren(el("p", { class: "note", text: `No drift statistics: ${L.failureText(error)}` }));
  } finally {
    $("drift").removeAttribute("aria-busy");
  }
}

/** "Verdict: drift (clothes v1; drifted: yes)", the verdict coloured when judged. */
function driftVerdict(drift) {
  const judged = L.driftJudged(drift);
  const verdictClass = judged && drift.drifted ? "verdict drift" : (drift.verdict === "no drift" ? "verdict ok" : "verdict");
  return el("p", {}, el("span", { class: verdictClass, text: `Verdict: ${drift.verdict}` }), ` (${L.driftSummary(drift)})`);
}

function noStatistics() {
  return el("p", { class: "note", text: "No statistics yet: they are computed once the window holds enough predictions." });
}

/** A regressor's drift report: the verdict, which inputs and targets drifted, its statistics (a KS test per
 * input and per target, each family's p-values adjusted) and each target's predicted values against the reference. */
function renderRegressionDrift(drift, card) {
  const judged = L.driftJudged(drift);
  const names = L.driftedNames(drift, card);
  const rows = L.regressionDriftRows(drift, card);
  $("drift").replaceChildren(
    driftVerdict(drift),
    el("p", { class: "note", text: `${L.windowText(drift)}; ${L.referenceText(drift, card)}.` }),
    el("dl", { class: "facts drifted-names" },
      el("dt", { text: "Drifted inputs" }), el("dd", { id: "drifted-inputs", class: judged && drift.drifted_inputs?.length ? "drifted" : null, text: names.inputs }),
      el("dt", { text: "Drifted targets" }), el("dd", { id: "drifted-targets", class: judged && drift.drifted_targets?.length ? "drifted" : null, text: names.targets })),
    rows.length
      ? table(judged ? "Statistics, drifted first, then the smallest p-value" : "Statistics so far, not judged until the window holds enough predictions", ["statistic", "test", "value", "p-value", "drifted"],
        rows.map((r) => ({ cells: [noted(r.name, r.about), noted(r.test, r.correction), L.formatNumber(r.value), r.pValue === null ? "–" : L.formatNumber(r.pValue), r.status], class: r.drifted ? "worst" : null })),
        [2, 3], { keep: [4], id: "drift-statistics" })
      : noStatistics(),
    rows.length ? el("p", { class: "note", text: L.regressionDriftNote(rows) }) : "",
    el("h4", { text: "Predicted values" }),
    ...L.predictedValueRows(drift, card).map((t) => table(`${t.label}: the version's recent predictions against its predictions on the held-out ${L.heldOutNoun(card, drift)}`,
      ["predictions", "mean", "p10", "p50", "p90"], t.rows, [1, 2, 3, 4], { "data-target": t.name, class: "predicted-values" })),
  );
}

// --- live accuracy: GET /models/<name>/<version>/live -----------------------------------------------

async function loadLive() {
  const seq = state.seq;
  const { model, choice, card } = state;
  if (!model || !choice) return;
  const not = L.notApplicableText(card, "live");
  if (not) {
    $("live").replaceChildren(el("p", { class: "note task-note", text: not }));
    return;
  }
  const what = L.isRegressor(card) ? "live error" : "live accuracy";
  $("live").setAttribute("aria-busy", "true");
  try {
    const report = await getJSON(`${modelPath(model, choice)}/live`);
    if (seq !== state.seq) return;
    if (report.task === "regression") renderLiveError(report, card);
    else renderLive(report, card);
  } catch (error) {
    if (seq !== state.seq) return;
    const off = error.status === 404 && /feedback/.test(error.message);
    $("live").replaceChildren(el("p", { class: "note", text: off
      ? `No ${what}: ${L.failureText(error)}. This server records no answers for ground truth.`
      : `No ${what}: ${L.failureText(error)}` }));
  } finally {
    $("live").removeAttribute("aria-busy");
  }
}

function renderLive(report, card) {
  const summary = L.liveSummary(report);
  const figure = (id, title, value, ...notes) => el("div", { class: "figure" },
    el("span", { class: "figure-title", text: title }),
    el("span", { class: "figure-value", id, text: value }),
    notes.filter(Boolean).map((note) => el("span", { class: "figure-note", text: note })));
  const versionText = report.version === state.choice ? report.version : `${report.version} (through ${state.choice})`;
  const parts = [
    el("div", { class: "figures" },
      figure("live-accuracy", "Live accuracy", summary.live, summary.interval, summary.counts),
      figure("offline-accuracy", "Held-out accuracy", summary.offline, "on the evaluation set, never trained on")),
    el("p", { class: "note", text: `${report.model} ${versionText}: predictions answered in the last ${L.durationText(report.window_seconds)} whose true label the server was told (feedback.window_seconds).` }),
  ];
  if (!summary.has) {
    parts.push(liveHelp(report.model, true, card));
    $("live").replaceChildren(...parts);
    return;
  }
  if (summary.difference) parts.push(el("p", { text: summary.difference }));
  parts.push(seriesFigure(report));
  const classes = L.classRecallRows(report.classes);
  parts.push(table("Recall per true class, worst first", ["true label", "recall", "95% interval", "examples"],
    classes.map((c) => [c.label, c.recall, c.interval, c.examples]), [1, 2, 3]));
  parts.push(el("h4", { text: "Calibration" }), el("p", { text: L.eceText(report.calibration) }));
  const bins = L.calibrationRows(report.calibration);
  if (bins.length) {
    parts.push(table("Confidence against accuracy, per bin of confidence", ["confidence", "examples", "mean confidence", "accuracy", "accuracy − confidence"],
      bins.map((b) => [b.bin, b.examples, b.confidence, b.accuracy, b.gap]), [1, 2, 3, 4], { keep: [0] }));
  }
  const groups = (title, rows, empty) => (rows.length
    ? table(title, ["name", "accuracy", "95% interval", "right"], rows.map((r) => [r.name, r.accuracy, r.interval, r.counts]), [1, 2, 3])
    : el("p", { class: "note", text: empty }));
  parts.push(groups("Per alias the requests came through", L.proportionRows(report.aliases), "No request came through an alias (by its version's name only)."));
  parts.push(groups("Per slice (X-Slice on the request)", L.proportionRows(report.slices),
    "No slices: a request with X-Slice: <name> (a name you choose, e.g. a client or a camera) is counted under that slice."));
  parts.push(el("details", {}, el("summary", { text: "How to send ground truth" }), liveHelp(report.model, false)));
  $("live").replaceChildren(...parts);
}

/** How a client tells the server the true labels (a regressor's: true values), in words and examples. */
function liveHelp(model, empty = true, card = null) {
  if (L.isRegressor(card)) return liveErrorHelp(model, empty, card);
  const id = state.answer?.requestId ?? "<X-Request-Id of the answer>";
  return el("div", { class: "live-help" },
    el("p", { text: `${empty ? "No answer has a known true label yet. " : ""}Tell the server the true labels, and this tab shows how often the model is right on live traffic:` }),
    el("ul", {},
      el("li", { text: "here: after an answer, under “Right?”, say yes or pick the true label;" }),
      el("li", {}, "after the fact, by the answer's request id (its X-Request-Id response header): ",
        el("code", { text: `POST /models/${model}/feedback {"feedback": [{"id": "${id}", "label": "<label>"}]}` })),
      el("li", {}, "with the request itself: ", el("code", { text: "X-Label: <label>" }), " (one label per example, comma-separated).")));
}

/** The accuracy per bucket of time with its 95% band and the held-out accuracy, as an SVG (its size in
 * CSS pixels: the text stays readable on a phone), and the same figures as a table under it. */
function seriesFigure(report) {
  const width = Math.max(280, Math.min(720, Math.round($("live").clientWidth || 600)));
  const height = 220;
  const offline = report.offline?.accuracy ?? null;
  const bucket = L.bucketSeconds(report.series);
  const chart = L.seriesChart(report.series, { width, height, offline, bucketSeconds: bucket });
  if (!chart) return el("p", { class: "note", text: "No time series yet." });
  const node = svg("svg", { class: "live-chart", viewBox: `0 0 ${width} ${height}`, width: String(width), height: String(height), role: "img",
    "aria-label": `Live accuracy over time: ${report.series.length} ${report.series.length === 1 ? "point" : "points"}, from ${L.percent(Math.min(...report.series.map((p) => p.value)))} to ${L.percent(Math.max(...report.series.map((p) => p.value)))}; the table below has the figures.` },
    ...chart.ticks.flatMap((t) => [
      svg("line", { class: "grid", x1: "46", x2: String(width - 12), y1: String(t.y), y2: String(t.y) }),
      svg("text", { class: "tick", x: "40", y: String(t.y + 4), "text-anchor": "end" }, t.text)]),
    svg("polygon", { class: "band", points: chart.band }),
    chart.offlineY === null ? "" : svg("line", { class: "offline", x1: "46", x2: String(width - 12), y1: String(chart.offlineY), y2: String(chart.offlineY) }),
    svg("polyline", { class: "line", points: chart.line }),
    ...chart.points.map((p) => svg("line", { class: "whisker", x1: String(p.x), x2: String(p.x), y1: String(p.high), y2: String(p.low) })),
    ...chart.points.map((p) => svg("circle", { class: "point", cx: String(p.x), cy: String(p.y), r: "3.5" },
      svg("title", {}, `${L.clockText(p.point.start)}: ${L.intervalText(p.point.value, p.point.low, p.point.high)}, ${L.countText(p.point.correct, p.point.examples)} right`))),
    ...chart.xLabels.map((l) => svg("text", { class: "tick", x: String(l.x), y: String(height - 6), "text-anchor": l.anchor }, l.text)));
  const legend = el("ul", { class: "legend" },
    el("li", {}, el("i", { class: "swatch-line", "aria-hidden": "true" }), "live accuracy"),
    el("li", {}, el("i", { class: "swatch-band", "aria-hidden": "true" }), "its 95% interval"),
    offline === null ? "" : el("li", {}, el("i", { class: "swatch-offline", "aria-hidden": "true" }), `held-out accuracy (${L.percent(offline)})`));
  const rows = report.series.map((p) => [L.clockText(p.start), L.percent(p.value), L.rangeText(p.low, p.high), L.countText(p.correct, p.examples)]);
  return el("figure", { class: "live-series" },
    el("figcaption", { text: `Accuracy per ${L.durationText(bucket)} of predictions (feedback.series_seconds)` }),
    node, legend,
    el("details", {}, el("summary", { text: "The series as a table" }), table(null, ["from", "accuracy", "95% interval", "right"], rows, [1, 2, 3])));
}

// --- a regressor's live error: the same route answers a RegressionLiveReport ------------------------------

function renderLiveError(report, card) {
  const summary = L.liveErrorSummary(report);
  const targets = card?.output?.targets?.length ? card.output.targets : report.targets;
  const rows = L.targetErrorRows(report, card);
  // A figure's number never splits; its unit may go to the next line in a narrow box.
  const figure = (kind, title, value, ...notes) => el("div", { class: `figure ${kind}` },
    el("span", { class: "figure-title", text: title }),
    el("span", { class: "figure-value" }, el("span", { class: "nowrap", text: value.split(" ")[0] }), value.includes(" ") ? ` ${value.slice(value.indexOf(" ") + 1)}` : ""),
    notes.filter(Boolean).map((note) => el("span", { class: "figure-note" }, note)));
  const whole = (before, text) => (text ? [before, el("span", { class: "nowrap", text })] : ""); // an interval never split
  const versionText = report.version === state.choice ? report.version : `${report.version} (through ${state.choice})`;
  const parts = [
    el("p", { id: "live-error-summary", class: "live-error-summary", text: `${report.model} ${versionText}: ${summary.text}, answered in the last ${L.durationText(report.window_seconds)} (feedback.window_seconds).` }),
    ...rows.map((r) => el("section", { class: "target-error", "data-target": r.name, "aria-label": `Live error of ${r.label}` },
      el("h4", {}, r.label, " ", el("span", { class: "target-examples", text: `· ${r.examplesText}` })),
      el("div", { class: "figures" },
        figure("mae", "Live MAE", r.mae, whole("95% interval ", r.maeInterval) || (r.examples ? "no interval from one example" : "no examples with true values yet"), whole("held-out: ", r.offlineMae)),
        figure("rmse", "Live RMSE", r.rmse, whole("95% interval ", r.rmseInterval), whole("held-out: ", r.offlineRmse)),
        figure("bias", "Bias (answered − true)", r.bias, r.examples ? r.biasNote.replace(/^[^:]*: /, "") : "")),
      r.comparison ? el("p", { class: "comparison", text: r.comparison }) : "")),
  ];
  if (!Object.keys(L.offlineErrors(card, report)).length) {
    parts.push(el("p", { class: "note", text: "No held-out error to compare with: the card has no MAE or RMSE per target (a model imported without evaluation data)." }));
  }
  if (!summary.has) {
    parts.push(liveHelp(report.model, true, card));
    $("live").replaceChildren(...parts);
    return;
  }
  parts.push(errorSeriesFigure(report, targets, card));
  const groups = (title, head, groupRows, empty) => (groupRows.length
    ? table(title, [head, "target", "MAE", "95% interval", "RMSE", "bias", "examples"],
      groupRows.map((r) => [r.group, r.label, r.mae, r.maeInterval || "–", r.rmse, r.bias, L.formatNumber(r.examples)]), [2, 3, 4, 5, 6])
    : el("p", { class: "note", text: empty }));
  parts.push(groups("Per alias the requests came through", "alias", L.errorGroupRows(report.aliases, targets), "No request came through an alias (by its version's name only)."));
  parts.push(groups("Per slice (X-Slice on the request)", "slice", L.errorGroupRows(report.slices, targets),
    "No slices: a request with X-Slice: <name> (a name you choose, e.g. a client or a region) is counted under that slice."));
  parts.push(el("details", {}, el("summary", { text: "How to send true values" }), liveHelp(report.model, false, card)));
  $("live").replaceChildren(...parts);
}

/** How a client tells the server a regressor's true values, in words and examples. */
function liveErrorHelp(model, empty, card) {
  const targets = card.output.targets;
  const id = state.truth?.requestId ?? "<X-Request-Id of the answer>";
  const value = targets.length === 1 ? `<${targets[0].name}>` : `[${targets.map((t) => `<${t.name}>`).join(", ")}]`;
  return el("div", { class: "live-help" },
    el("p", { text: `${empty ? "No answer has a known true value yet. " : ""}Tell the server the true values, and this tab shows how far the model's answers are from them on live traffic:` }),
    el("ul", {},
      el("li", { text: "here: after an answer, under “True value?”, type each target's true value and Send;" }),
      el("li", {}, "after the fact, by the answer's request id (its X-Request-Id response header): ",
        el("code", { text: `POST /models/${model}/feedback {"feedback": [{"id": "${id}", "value": ${value}}]}` })),
      el("li", {}, "with the request itself: ", el("code", { text: `X-Label: ${targets.map((t) => `<${t.name}>`).join(";")}` }),
        targets.length > 1 ? " (one value per target, separated by “;”; examples separated by commas)." : " (one value per example, comma-separated).")));
}

/** Each target's MAE per bucket of time: one panel per unit, a line per target, its held-out MAE dashed
 * (an SVG sized in CSS pixels at the column's width), a legend, and the figures as a table. */
function errorSeriesFigure(report, targets, card) {
  const width = Math.max(280, Math.min(720, Math.round($("live").clientWidth || 600)));
  const bucket = L.bucketSeconds(report.series);
  const offline = L.offlineErrors(card, report);
  const chart = L.errorSeriesChart(report.series, targets, { width, bucketSeconds: bucket, offline });
  if (!chart) return el("p", { class: "note", text: "No time series yet." });
  const colour = (index) => L.LINE_COLOURS[index % L.LINE_COLOURS.length];
  const lines = chart.panels.flatMap((p) => p.lines);
  const range = (line) => {
    const values = line.points.map((q) => q.value);
    return values.length ? `from ${L.errorNumber(Math.min(...values))} to ${L.errorNumber(Math.max(...values))}` : "no values";
  };
  const node = svg("svg", { class: "live-chart error-chart", viewBox: `0 0 ${chart.width} ${chart.height}`, width: String(chart.width), height: String(chart.height), role: "img",
    "aria-label": `MAE over time, a line per target: ${lines.map((l) => `${l.label} ${range(l)}`).join("; ")}; the table below has the figures.` },
    ...chart.panels.flatMap((panel) => [
      svg("text", { class: "panel-title", x: String(chart.left), y: String(panel.top - 8) }, panel.title),
      ...panel.ticks.flatMap((t) => [
        svg("line", { class: "grid", x1: String(chart.left), x2: String(chart.right), y1: String(t.y), y2: String(t.y) }),
        svg("text", { class: "tick", x: String(chart.left - 6), y: String(t.y + 4), "text-anchor": "end" }, t.text)]),
      ...panel.lines.filter((l) => l.offlineY !== null).map((l) => svg("line", { class: "offline", "data-target": l.name, x1: String(chart.left), x2: String(chart.right), y1: String(l.offlineY), y2: String(l.offlineY), style: `stroke: ${colour(l.index)}` })),
      ...panel.lines.map((l) => svg("path", { class: "line", "data-target": l.name, d: l.d, style: `stroke: ${colour(l.index)}` })),
      ...panel.lines.flatMap((l) => l.points.map((q) => svg("circle", { class: "point", "data-target": l.name, cx: String(q.x), cy: String(q.y), r: "3.5", style: `fill: ${colour(l.index)}` },
        svg("title", {}, `${L.clockText(q.start, bucket < 60)}: ${l.name} MAE ${L.withUnit(L.errorNumber(q.value), targets[l.index]?.unit)} over ${L.formatNumber(q.examples)} ${q.examples === 1 ? "example" : "examples"}`)))),
    ]),
    ...chart.xLabels.map((x) => svg("text", { class: "tick", x: String(x.x), y: String(chart.height - 6), "text-anchor": x.anchor }, x.text)));
  const swatch = (index, kind = "") => {
    const i = el("i", { class: kind, "aria-hidden": "true" });
    if (kind) i.style.borderTopColor = colour(index);
    else i.style.background = colour(index);
    return i;
  };
  const legend = el("ul", { class: "legend error-legend" },
    lines.map((l) => el("li", { "data-target": l.name }, swatch(l.index), `${l.label}`)),
    lines.filter((l) => l.offlineY !== null).map((l) => el("li", {}, swatch(l.index, "swatch-offline"), `held-out MAE of ${l.name} (${L.withUnit(L.errorNumber(offline[l.name].mae), targets[l.index]?.unit)})`)));
  const heads = ["from", ...targets.map((t) => `MAE of ${L.targetLabel(t)}`), "examples"];
  return el("figure", { class: "live-series" },
    el("figcaption", { text: `MAE per ${L.durationText(bucket)} of predictions (feedback.series_seconds)` }),
    node, legend,
    chart.hidden.length ? el("p", { class: "note", text: `Not drawn: ${chart.hidden.join(", ")} (the table has them).` }) : "",
    el("details", {}, el("summary", { text: "The series as a table" }), table(null, heads, L.errorSeriesRows(report.series, targets, bucket), heads.map((_, i) => i).slice(1))));
}

function renderVersions(listing) {
  const aliases = L.aliasRows(listing);
  const splitBar = (split) => {
    const bar = el("div", { class: "split", "aria-hidden": "true" }, split.map((s) => {
      const part = el("span", { text: `${s.version} ${L.percent(s.share, 0)}` });
      part.style.flex = `${s.share} 1 0`;
      return part;
    }));
    return el("div", {}, bar, el("span", { class: "visually-hidden", text: L.splitText(split) }));
  };
  const aliasTable = aliases.length
    ? scrollBox(el("table", { id: "alias-table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "alias" }), el("th", { scope: "col", text: "version(s)" }), el("th", { scope: "col", text: "traffic" }))),
      el("tbody", {}, aliases.map(({ alias, split }) => el("tr", {}, el("th", { scope: "row", text: alias }), el("td", { text: L.splitText(split) }), el("td", {}, splitBar(split)))))), "Aliases and their traffic")
    : el("p", { class: "note", text: "No aliases." });
  const versionTable = scrollBox(el("table", { id: "version-table" },
    el("thead", {}, el("tr", {}, ["version", "status", "engine", "aliases", "reason"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, listing.versions.map((v) => el("tr", {},
      el("th", { scope: "row", text: v.version }),
      el("td", { class: `status-${v.status}`, text: v.status }),
      el("td", { text: v.engine ?? "–" }),
      el("td", { text: v.aliases?.length ? v.aliases.join(", ") : "–" }),
      el("td", { text: v.reason ?? "" }))))), `Versions of ${listing.name}`);
  const shadow = L.shadowText(listing.shadow);
  $("versions").replaceChildren(
    el("p", { text: `Default: ${listing.default_version}.` }),
    versionTable,
    aliasTable,
    shadow ? el("p", { id: "shadow", text: `Shadow: ${shadow}.` }) : "",
    el("div", { class: "buttons" }, el("button", { type: "button", id: "refresh-versions", text: "Refresh the versions" })),
  );
  $("refresh-versions").addEventListener("click", () => {
    refreshVersions();
    loadRollouts();
  });
  fillRolloutForm(listing);
}

async function refreshVersions() {
  try {
    const listing = await getJSON(modelPath(state.model));
    if (listing.name === state.model) {
      state.versions = listing;
      renderVersions(listing);
    }
  } catch (error) {
    $("versions").prepend(el("p", { class: "error", role: "alert", text: L.failureText(error) }));
  }
}

// --- rollouts: GET /models/<name>/rollouts; pause, resume, abort and start are admin routes -------------

/** Show the model's rollouts (again only when they changed, so that focus and the form stay), and ask
 * again in ROLLOUT_REFRESH_MS while one runs and this tab is shown. */
async function loadRollouts() {
  clearTimeout(state.rolloutTimer);
  const model = state.model;
  if (!model || state.section !== "versions") return;
  const answer = await getJSON(`${modelPath(model)}/rollouts`).then((body) => ({ body }), (error) => ({ error }));
  if (model !== state.model) return;
  // The answer says whether this caller may call the admin routes (a token, or live.admin_without_token), and why not.
  const admin = answer.error ? { allowed: false, reason: L.failureText(answer.error) } : { allowed: answer.body.admin.allowed, reason: answer.body.admin.reason ?? "" };
  const json = answer.error ? `error:${answer.error.message}` : JSON.stringify(answer.body.rollouts);
  const changed = !state.rollouts || state.rollouts.model !== model || state.rollouts.json !== json || state.rollouts.admin !== admin.allowed;
  if (changed) {
    const before = state.rollouts?.model === model ? state.rollouts.json : null;
    state.rollouts = { model, json, admin: admin.allowed, list: answer.error ? [] : L.sortRollouts(answer.body.rollouts) };
    if (answer.error) {
      $("rollouts").replaceChildren(el("p", { class: "note", text: `No rollouts: ${L.failureText(answer.error)}` }));
    } else {
      renderRollouts(model, state.rollouts.list, admin.allowed);
      if (before !== null && !before.startsWith("error:")) refreshVersions(); // a step moved the alias's split
    }
  }
  $("admin-note").hidden = admin.allowed;
  $("admin-note").textContent = admin.allowed ? "" : `Pausing, resuming, aborting and starting rollouts are admin operations, not available here: ${admin.reason}`;
  $("rollout-form").hidden = !admin.allowed || Boolean(answer.error);
  if (state.rollouts.list.some((r) => r.status === "running") && state.section === "versions") {
    state.rolloutTimer = setTimeout(loadRollouts, L.ROLLOUT_REFRESH_MS);
  }
}

function renderRollouts(model, rollouts, admin) {
  if (!rollouts.length) {
    const start = L.startableAliases(state.versions)[0];
    const candidate = start ? (L.candidateVersions(state.versions, start.version)[0] ?? "<version>") : "<version>";
    $("rollouts").replaceChildren(
      el("p", { id: "rollouts-empty", text: `No rollout of ${model} yet. A rollout moves an alias to a candidate version step by step while its gates (failed requests, latency, live accuracy, OOD score) hold, and back to what it served at once when one breaks.` }),
      el("p", { class: "live-help" }, admin ? "Start one with the form below, or through the API: " : "Start one through the API (an admin operation): ", el("code", { text: L.rolloutCurl(location.origin, model, start?.alias ?? "stable", candidate, Boolean(tokens.get())) })),
    );
    return;
  }
  $("rollouts").replaceChildren(...rollouts.map((r) => rolloutCard(model, r, admin)));
}

function rolloutCard(model, rollout, admin) {
  const { alias, candidate, baseline } = rollout;
  const share = L.rolloutShare(rollout);
  const titleId = `rollout-title-${alias}`;
  const bar = el("div", { class: "split rollout-bar", role: "img", "aria-label": `${candidate} ${share}%, ${baseline} ${100 - share}%` },
    share > 0 ? el("span", { class: "candidate", text: `${candidate} ${share}%` }) : "",
    share < 100 ? el("span", { class: "baseline", text: `${baseline} ${100 - share}%` }) : "");
  for (const [part, value] of [[bar.querySelector(".candidate"), share], [bar.querySelector(".baseline"), 100 - share]]) if (part) part.style.flex = `${value} 1 0`;
  const steps = el("ol", { class: "steps", "aria-label": `Steps of the rollout through ${alias}` }, L.rolloutSteps(rollout).map((s) => el("li", {
    class: `step step-${s.state}`, "aria-current": s.state === "current" ? "step" : null, title: s.label,
  }, el("span", { "aria-hidden": "true", text: s.text }), el("span", { class: "visually-hidden", text: s.label }))));
  const timeline = L.rolloutTimeline(rollout);
  const buttons = admin && L.rolloutActive(rollout) ? el("div", { class: "buttons" },
    rollout.status === "running"
      ? el("button", { type: "button", class: "rollout-pause", "aria-label": `Pause the rollout through ${alias}`, text: "Pause" })
      : el("button", { type: "button", class: "rollout-resume", "aria-label": `Resume the rollout through ${alias}`, text: "Resume" }),
    el("button", { type: "button", class: "rollout-abort danger", "aria-label": `Abort the rollout through ${alias}`, text: "Abort" })) : "";
  const card = el("article", { class: `rollout rollout-${rollout.status}`, id: `rollout-${alias}`, "aria-labelledby": titleId },
    el("h4", { id: titleId, tabindex: "-1" }, `${alias}: ${candidate} replacing ${baseline} `, el("span", { class: `badge badge-${rollout.status}`, text: L.rolloutStatusText(rollout.status) })),
    el("p", { class: "rollout-line", text: L.rolloutLine(rollout) }),
    steps,
    bar,
    facts([
      ["A step advances after", L.advanceText(rollout)],
      ["Gates", L.gatesText(rollout.gates)],
      ["This step began", L.clockText(rollout.step_started)],
    ]),
    buttons,
    table(`Timeline of the rollout through ${alias}`, ["after start", "share", "what happened", "gate values"],
      timeline.map((r) => [r.after, r.share, noted(el("strong", { text: r.action }), r.reason),
        r.gates.length ? el("ul", { class: "gate-values" }, r.gates.map((g) => el("li", { class: `gate-${g.key}`, text: g.text }))) : "–"]),
      [0, 1], { class: "rollout-timeline" }));
  if (buttons) {
    buttons.querySelector(".rollout-pause")?.addEventListener("click", () => rolloutAction(model, rollout, "pause"));
    buttons.querySelector(".rollout-resume")?.addEventListener("click", () => rolloutAction(model, rollout, "resume"));
    buttons.querySelector(".rollout-abort").addEventListener("click", () => {
      if (window.confirm(`Abort the rollout of ${candidate} through ${alias}? ${alias} serves ${baseline} again at once.`)) rolloutAction(model, rollout, "abort");
    });
  }
  return card;
}

/** An admin call of the rollouts (start, pause, resume, abort); its answer, or why not, in words. */
async function rolloutCall(path, body, out, action) {
  out.textContent = "Sending…";
  try {
    const response = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const text = await response.text();
    if (!response.ok) {
      out.textContent = L.adminRefusal(response.status, L.errorMessage(response.status, text));
      return null;
    }
    const answer = JSON.parse(text);
    out.textContent = L.rolloutActionResult(action, answer);
    return answer;
  } catch (error) {
    out.textContent = `Not done: ${L.failureText(error)}`;
    return null;
  }
}

async function rolloutAction(model, rollout, action) {
  const card = $(`rollout-${rollout.alias}`);
  card?.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  const answer = await rolloutCall(`${modelPath(model)}/rollouts/${encodeURIComponent(rollout.alias)}/${action}`, {}, $("rollout-answer"), action);
  if (model !== state.model) return;
  card?.querySelectorAll("button").forEach((b) => { b.disabled = false; });
  if (answer) {
    await loadRollouts(); // and the versions, when it changed: the alias's split
    $(`rollout-title-${rollout.alias}`)?.focus(); // its buttons changed: focus stays on the rollout
  }
}

/** The form's choices from the model's listing: aliases serving one version, and the other ready versions. */
function fillRolloutForm(listing) {
  const aliasSelect = $("rollout-alias");
  const aliases = L.startableAliases(listing);
  const keptAlias = aliasSelect.value;
  aliasSelect.replaceChildren(...aliases.map((a) => el("option", { value: a.alias, text: `${a.alias} → ${a.version}` })));
  if (aliases.some((a) => a.alias === keptAlias)) aliasSelect.value = keptAlias;
  fillCandidates(listing);
  $("rollout-start").disabled = !aliases.length;
}

function fillCandidates(listing = state.versions) {
  const select = $("rollout-candidate");
  const kept = select.value;
  const baseline = L.startableAliases(listing).find((a) => a.alias === $("rollout-alias").value)?.version;
  const versions = L.candidateVersions(listing, baseline);
  select.replaceChildren(...versions.map((v) => el("option", { value: v, text: v })));
  if (versions.includes(kept)) select.value = kept;
}

async function startRollout(event) {
  event.preventDefault();
  const model = state.model;
  const out = $("rollout-form-answer");
  const parsed = L.parseSteps($("rollout-steps").value);
  if (parsed.error) {
    out.textContent = parsed.error;
    $("rollout-steps").focus();
    return;
  }
  const plan = L.rolloutPlan({ alias: $("rollout-alias").value, candidate: $("rollout-candidate").value, steps: parsed.steps,
    minDwellSeconds: $("rollout-dwell").value, minRequests: $("rollout-requests").value });
  $("rollout-start").disabled = true;
  const answer = await rolloutCall(`${modelPath(model)}/rollouts`, plan, out, "start");
  $("rollout-start").disabled = false;
  if (answer && model === state.model) await loadRollouts();
}

async function loadFleet() {
  const model = state.model;
  $("fleet").setAttribute("aria-busy", "true");
  try {
    const status = await getJSON("/fleet");
    const rows = L.fleetRows(status, model);
    const drift = L.fleetDriftLines(status, model);
    $("fleet").replaceChildren(
      el("p", { class: "note", text: `Desired state: generation ${status.generation}, in ${status.backend}. Every replica follows it.` }),
      table(`Replicas serving ${model}`, ["replica", "applied", "state", "health", "versions", "drift", "not applied here"],
        rows.map((r) => [r.replica, r.generation, r.sync, r.ready, r.versions, r.drift, r.notes || "–"])),
      drift.length ? el("p", {}, el("strong", { text: "Drift over every replica: " }), drift.join("; "), ".") : "",
    );
  } catch (error) {
    $("fleet").replaceChildren(el("p", { class: "note", text: `No fleet status: ${L.failureText(error)}` }));
  } finally {
    $("fleet").removeAttribute("aria-busy");
  }
}

function resetReport() {
  const frame = $("report");
  frame.hidden = true;
  frame.removeAttribute("srcdoc");
  $("report-open").hidden = true;
  if (state.reportUrl) URL.revokeObjectURL(state.reportUrl);
  state.reportUrl = null;
  $("report-status").textContent = "The report loads when this section is shown.";
}

async function loadReport() {
  const seq = state.seq;
  const { model, choice } = state;
  if (!model || !choice || state.reportUrl) return;
  $("report-status").textContent = "Loading the report…";
  try {
    const response = await api(`${modelPath(model, choice)}/report`);
    const text = await response.text();
    if (seq !== state.seq) return;
    if (!response.ok) {
      $("report-status").textContent = `No report: ${L.errorMessage(response.status, text)}`;
      return;
    }
    state.reportUrl = URL.createObjectURL(new Blob([text], { type: "text/html" }));
    const frame = $("report");
    frame.srcdoc = text; // sandboxed: no scripts, no access to this page
    frame.hidden = false;
    const link = $("report-open");
    link.href = state.reportUrl;
    link.hidden = false;
    $("report-status").textContent = `The evaluation report of ${model} ${choice}.`;
  } catch (error) {
    if (seq === state.seq) $("report-status").textContent = `No report: ${L.failureText(error)}`;
  }
}

// --- events ----------------------------------------------------------------------------------------

function firstFile(list) {
  return Array.from(list ?? []).find((item) => item instanceof File || item.kind === "file");
}

function bindEvents() {
  $("model").addEventListener("change", (event) => selectModel(event.target.value));
  $("version").addEventListener("change", (event) => selectVersion(event.target.value));
  window.addEventListener("hashchange", () => {
    const names = state.listing?.models.map((m) => m.name) ?? [];
    const { model, version, section } = L.parseHash(location.hash, names);
    const known = names.includes(model);
    if (!known && !section) {
      updateHash(); // another anchor (the skip link): the address keeps the choice
      return;
    }
    const wanted = section || L.SECTIONS[0]; // "#clothes/stable" is the first section's address
    if (wanted !== state.section || (section && !model)) selectSection(wanted, { scroll: Boolean(section) });
    if (known && (model !== state.model || version !== state.choice)) {
      if (model === state.model) selectVersion(version);
      else selectModel(model, version);
    }
  });
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) classifyFile(file);
    event.target.value = ""; // choosing the same file again classifies it again
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = firstFile(event.dataTransfer?.files);
    if (file) classifyFile(file);
  });
  document.addEventListener("paste", (event) => {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLTextAreaElement) return;
    const item = firstFile(event.clipboardData?.items);
    const file = item?.getAsFile ? item.getAsFile() : item;
    if (file && L.isImageCard(state.card)) {
      event.preventDefault();
      classifyFile(file);
    }
  });
  $("values-form").addEventListener("submit", sendValues);
  $("values-row").addEventListener("input", rowChanged);
  $("values-row").addEventListener("change", () => {
    const text = $("values-row").value;
    const parsed = text.trim() ? L.parseRow(text, state.form) : {};
    if (parsed.error) show("values-error", parsed.error); // said once the row is left, not while it is typed
  });
  $("value-fields").addEventListener("input", fieldChanged);
  $("named-fields").addEventListener("input", (event) => {
    if (event.target.getAttribute("aria-invalid") !== "true") return;
    show("values-error", "");
    markInvalid(null, { focus: false });
  });
  $("values-json").addEventListener("input", () => {
    if ($("values-error").hidden) return;
    show("values-error", "");
    markInvalid(null);
  });
  $("classify-drawing").addEventListener("click", classifyDrawing);
  $("clear-drawing").addEventListener("click", clearDrawing);
  bindCanvas();
  bindTabs();
  $("refresh-drift").addEventListener("click", loadDrift);
  $("refresh-fleet").addEventListener("click", loadFleet);
  $("refresh-live").addEventListener("click", loadLive);
  $("rollout-form").addEventListener("submit", startRollout);
  $("rollout-alias").addEventListener("change", () => fillCandidates());
  $("right-yes").addEventListener("click", () => sendRight(state.answer?.label));
  $("right-send").addEventListener("click", () => sendRight($("right-label").value));
  $("truth").addEventListener("submit", sendTruth);
  $("truth-fields").addEventListener("input", () => {
    if ($("truth-error").hidden) return;
    show("truth-error", "");
    truthInputs().forEach((input) => input.removeAttribute("aria-invalid"));
  });
  $("forget-token").addEventListener("click", () => {
    tokens.clear();
    updateTokenButton();
  });
}

start();
