// The page's logic without the DOM: formatting, the card, traffic splits, drift, live accuracy,
// answers (abstentions, ground truth; other tasks' values, labels and vectors; named outputs), the form of a
// tensor input (or of named inputs) and its checks, and the drawing canvas's pixels. app.mjs puts it on the page; logic.test.mjs tests it (node --test web/).

export const TOKEN_KEY = "model-server-api-token";
export const DRAW_MAX_SIDE = 64; // draw only on small grey inputs (clothes: 28x28): a pixel is still a visible square
export const TOP_CLASSES = 5;

/** The server's message from an error answer ({"error": "..."}), or what the status says; never a
 * programming language's exception name (plainMessage). */
export function errorMessage(status, text) {
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === "string" && body.error) return plainMessage(body.error) || STATUS_TEXT[status] || `The server refused the request (HTTP ${status}).`;
  } catch {
    // not JSON: a proxy's page, or nothing
  }
  const snippet = plainMessage(String(text || "").replace(/<[^>]*>/g, " ").replace(/\s+/g, " ").trim().slice(0, 200));
  return snippet ? `HTTP ${status}: ${snippet}` : `HTTP ${status}`;
}

const STATUS_TEXT = {
  400: "The server could not read the request.",
  422: "The server could not use this input.",
  500: "The server failed on this request; its log says why.",
  503: "The model cannot answer right now; try again in a moment.",
};

// A Python (or JavaScript) exception's class name: UnidentifiedImageError, ValueError, PIL.UnidentifiedImageError
const EXCEPTION_NAME = String.raw`(?:[A-Za-z_][\w]*\.)*[A-Z][A-Za-z0-9]*(?:Error|Exception|Warning)`;

/** A message without exception class names: "x (ValueError)" -> "x", "ValueError: bad" -> "bad";
 * a message that was only a class name becomes "" (the caller says something in words instead). */
export function plainMessage(message) {
  return String(message ?? "")
    .replace(new RegExp(String.raw`\s*\(${EXCEPTION_NAME}\)`, "g"), "")
    .replace(new RegExp(String.raw`(^|[:;,]\s*)${EXCEPTION_NAME}:\s*`, "g"), "$1") // "ValueError: detail"
    .replace(new RegExp(String.raw`(?:^|:\s*)${EXCEPTION_NAME}(?=\s*(?:[;,.]|$))`, "g"), "") // "detail: TimeoutError; more", "ValueError"
    .replace(/[:;,]\s*$/, "")
    .trim();
}

/** What went wrong with a request the page made, in words: the server's own message (an API error),
 * or what a failed fetch or an unreadable answer means. */
export function failureText(error) {
  if (error?.name === "TypeError" && /fetch|network|load failed/i.test(error.message ?? "")) return "The server could not be reached: check that it is running and try again.";
  if (error?.name === "SyntaxError") return "The server's answer could not be read.";
  return plainMessage(error?.message) || "Something went wrong; try again.";
}

/** The k most probable classes: [{classId, label, probability}], most probable first (ties: lower id first). */
export function topClasses(probabilities, labels, k = TOP_CLASSES) {
  return probabilities
    .map((probability, classId) => ({ classId, label: labels[classId] ?? `class ${classId}`, probability }))
    .sort((a, b) => b.probability - a.probability || a.classId - b.classId)
    .slice(0, k);
}

export function percent(share, digits = 1) {
  if (!Number.isFinite(share)) return "–";
  const value = share * 100;
  if (value > 0 && value < 10 ** -digits) return `<${(10 ** -digits).toFixed(digits)}%`;
  return `${value.toFixed(digits)}%`;
}

export function formatNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value ?? "–");
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e6 ? String(Number(value.toPrecision(4))) : value.toExponential(3);
}

/** Any value of a card as short text: numbers formatted, lists joined, objects as key=value. */
export function valueText(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.length ? value.map(valueText).join(", ") : "none";
  if (typeof value === "object") {
    const entries = Object.entries(value);
    return entries.length ? entries.map(([k, v]) => `${k}=${valueText(v)}`).join(", ") : "none";
  }
  return String(value);
}

/** Nested settings as rows [key, text]: {a: {b: 1}} -> [["a.b", "1"]]; lists stay one row. */
export function settingsRows(settings, prefix = "") {
  const rows = [];
  for (const [key, value] of Object.entries(settings ?? {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
      rows.push(...settingsRows(value, name));
    } else {
      rows.push([name, valueText(value)]);
    }
  }
  return rows;
}

export function isImageCard(card) {
  return card?.input?.kind === "image";
}

/** Drawing suits a small grey image input, drawn at the model's own resolution. */
export function canDraw(card) {
  if (!isImageCard(card)) return false;
  const [height, width, channels] = card.input.shape;
  return channels === 1 && height <= DRAW_MAX_SIDE && width <= DRAW_MAX_SIDE;
}

/** Inverting the levels is a choice for grey images only (light garments on black, or the reverse). */
export function canInvert(card) {
  if (!isImageCard(card)) return false;
  return card.input.shape[2] === 1 || card.preprocessing?.colour_mode === "L";
}

/** "28×28 grey image, values 0..255 (divided by 255)", "a tensor of 4 values" */
export function inputSummary(card) {
  const input = card?.input;
  if (!input) return "–";
  const range = input.value_range ? `values ${formatNumber(input.value_range[0])}..${formatNumber(input.value_range[1])}` : "any finite values";
  const scaling = input.divide_by ? ` (divided by ${formatNumber(input.divide_by)})` : "";
  if (input.kind === "image") {
    const [height, width, channels] = input.shape;
    return `${width}×${height} ${channels === 1 ? "grey" : "colour"} image, ${range}${scaling}`;
  }
  if (hasNamedInputs(card)) return `${plural(card.inputs.length, "named input")}: ${specsText(card.inputs)}`; // input.shape: their packed bytes, not a shape
  const names = input.names?.length ? ` (${input.names.join(", ")})` : "";
  return `a tensor of shape ${input.shape.join("×")}${names}, ${range}${scaling}`;
}

/** How an image file becomes the model's input, in words. */
export function preprocessingSummary(card) {
  const prep = card?.preprocessing;
  if (!prep) return "none: the model takes values, not image files";
  const mode = prep.colour_mode === "L" ? "converted to grey" : "converted to RGB colour";
  const aspect = { pad: "padded to the input's proportions with its border colour", crop: "centre-cropped to the input's proportions", stretch: "stretched" }[prep.aspect] ?? prep.aspect;
  const invert = prep.invert === "auto" ? "; inverted when its border is light" : "";
  return `${mode}, ${aspect}, resized (${prep.resize})${invert}`;
}

export function outputSummary(card) {
  const output = card?.output;
  if (!output) return "–";
  if (output.kind === "sigmoid") return `one sigmoid unit: the probability of “${output.positive_label}”`;
  if (output.kind === "multilabel") return `a sigmoid per label (${output.labels.length} labels): each label is given when its probability reaches its threshold`;
  if (output.kind === "regression") return `${plural(output.targets.length, "value")}: ${output.targets.map((t) => (t.unit ? `${t.name} (${t.unit})` : t.name)).join(", ")}`;
  if (output.kind === "embedding") return `an embedding of ${plural(sizeOf(output.shape), "value")}`;
  if (output.kind === "tensor") return `a tensor of shape ${shapeText(output.shape)}`;
  if (output.kind === "tensors") return `${plural(card.outputs?.length ?? 0, "named output")}: ${specsText(card.outputs)}`;
  return `softmax over ${output.labels.length} labels`;
}

/**
 * An alias's traffic as [{version, share}] with shares summing to 1, largest first.
 * Today an alias names one version ("v1"); a weighted alias maps versions to weights
 * ({"v1": 90, "v2": 10}), possibly under a `traffic` field ({"traffic": {...}}), or lists them
 * ([{"version": "v1", "weight": 90}, ...]).
 */
export function trafficSplit(target) {
  if (typeof target === "string") return [{ version: target, share: 1 }];
  if (!target || typeof target !== "object") return [];
  let weights = target;
  if (Array.isArray(target)) {
    weights = Object.fromEntries(target.map((t) => [t.version, t.weight ?? t.share ?? t.percent ?? 0]));
  } else if (target.traffic && typeof target.traffic === "object") {
    return trafficSplit(target.traffic);
  } else if (typeof target.version === "string" && Object.keys(target).every((k) => ["version", "weight"].includes(k))) {
    return [{ version: target.version, share: 1 }];
  }
  const entries = Object.entries(weights).filter(([, w]) => typeof w === "number" && Number.isFinite(w) && w > 0);
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  if (!total) return [];
  return entries.map(([version, w]) => ({ version, share: w / total })).sort((a, b) => b.share - a.share || a.version.localeCompare(b.version));
}

/** The aliases of a model listing as rows [{alias, split}]. */
export function aliasRows(listing) {
  return Object.entries(listing?.aliases ?? {}).map(([alias, target]) => ({ alias, split: trafficSplit(target) }));
}

/** "v1", or "v1 90% · v2 10%" */
export function splitText(split) {
  if (!split.length) return "–";
  if (split.length === 1) return split[0].version;
  return split.map((s) => `${s.version} ${percent(s.share, 0)}`).join(" · ");
}

/** A shadow setting ({alias, candidate, share}) in words, or "" without one. */
export function shadowText(shadow) {
  if (!shadow?.alias || !shadow?.candidate) return "";
  return `${percent(shadow.share ?? 0, 0)} of the requests through ${shadow.alias} also go to ${shadow.candidate} in the shadow (its answers are compared, never returned)`;
}

/** The version select's options: aliases first ("stable → v1"), then versions ("v1 (ready, onnxruntime)"). */
export function versionChoices(listing) {
  const choices = aliasRows(listing).map(({ alias, split }) => ({ value: alias, text: `${alias} → ${splitText(split)}` }));
  for (const v of listing?.versions ?? []) {
    const details = [v.status, v.engine].filter(Boolean).join(", ");
    choices.push({ value: v.version, text: details ? `${v.version} (${details})` : v.version });
  }
  return choices;
}

/** The slices of a card, worst first: [{slice, kind, name, accuracy, about, worst}]. */
export function sliceRows(slices) {
  if (!slices) return [];
  const about = slices.shift_specs ?? {};
  const rows = [
    ...Object.entries(slices.classes ?? {}).map(([name, accuracy]) => ({ slice: `class:${name}`, kind: "class", name, accuracy, about: "" })),
    ...Object.entries(slices.shifts ?? {}).map(([name, accuracy]) => ({ slice: `shift:${name}`, kind: "shift", name, accuracy, about: about[name]?.about ?? "" })),
  ];
  const worst = slices.worst?.slice;
  return rows
    .map((row) => ({ ...row, worst: row.slice === worst }))
    .sort((a, b) => a.accuracy - b.accuracy || a.slice.localeCompare(b.slice));
}

/** Whether a drift report judged its statistics: not while its window holds fewer predictions than
 * it needs (its verdict is then "too few predictions", and every statistic's drifted is false). */
export function driftJudged(drift) {
  const w = drift?.window;
  if (w && Number.isFinite(w.size) && Number.isFinite(w.min_samples) && w.size < w.min_samples) return false;
  return Boolean(drift) && drift.verdict !== "too few predictions";
}

/** A drift report's statistics as rows, drifted ones first; `status` is "yes", "no" or, before the
 * window holds enough predictions, "not judged yet". */
export function driftRows(drift) {
  const judged = driftJudged(drift);
  return Object.entries(drift?.statistics ?? {})
    .map(([name, s]) => {
      const drifted = judged && Boolean(s.drifted);
      return { name, test: s.test ?? "", value: s.value, pValue: s.p_value ?? null, threshold: s.threshold ?? null, drifted, judged, status: judged ? (drifted ? "yes" : "no") : "not judged yet" };
    })
    .sort((a, b) => Number(b.drifted) - Number(a.drifted) || a.name.localeCompare(b.name));
}

/** A statistic's threshold in words: a PSI's "> 0.2", a test's "p < 0.001". */
export function thresholdText(threshold) {
  if (typeof threshold === "number") return `> ${formatNumber(threshold)}`;
  if (threshold && typeof threshold === "object" && typeof threshold.p_value === "number" && Object.keys(threshold).length === 1) return `p < ${formatNumber(threshold.p_value)}`;
  return valueText(threshold);
}

/** The drift report's first line after its verdict: "clothes v1; drifted: no" (or "not judged yet"). */
export function driftSummary(drift) {
  const judged = driftJudged(drift);
  return `${drift.model} ${drift.version}; drifted: ${judged ? (drift.drifted ? "yes" : "no") : "not judged yet"}`;
}

/** What a model's held-out examples are called: "images" for a model of images, "examples" for any other
 * (a tabular model's rows). Without a card, a classifier's report is taken to be of images. */
export function heldOutNoun(card, drift = null) {
  if (card?.input?.kind) return card.input.kind === "image" ? "images" : "examples";
  return isRegressionDrift(drift) ? "examples" : "images";
}

/** Where the reference statistics come from, in words. */
export function referenceText(drift, card = null) {
  return `reference: ${formatNumber(drift?.reference_images)} held-out ${heldOutNoun(card, drift)} (the evaluation set, never trained on)`;
}

export function windowText(drift) {
  const w = drift?.window;
  if (!w) return "";
  return `${formatNumber(w.size)} of ${formatNumber(w.capacity)} recent examples in the window (at least ${formatNumber(w.min_samples)} needed); ${formatNumber(w.predictions_seen)} predictions seen`;
}

// --- a regressor's drift: GET /models/<name>/<version>/drift answers a RegressionDriftReport ----------------
// Its statistics: the inputs' (mean_intensity_ks, intensity_psi with a value range), a KS test per input
// (input_ks[<input>]) and per target's predicted values (predicted_value_ks[<target>]), each family's
// p-values Bonferroni-adjusted (the row's correction); drifted_inputs and drifted_targets name what
// drifted; predicted_values summarises each target's predictions in the window and on the held-out examples.

/** Whether a drift report is a regressor's (its inputs and targets by name, its predicted values). */
export function isRegressionDrift(drift) {
  return Boolean(drift) && typeof drift.predicted_values === "object" && drift.predicted_values !== null && !Array.isArray(drift.predicted_values);
}

/** Whether the Drift tab has a report for a model: classifiers, regressors and multi-label taggers (each
 * label's probability watched as a regressor's target), on their numeric inputs (named inputs: those that
 * are not text and have a fixed shape, as one vector). */
export function hasDrift(card) {
  const watched = isOneClass(card) || isRegressor(card) || card?.output?.kind === "multilabel";
  return watched && (!hasNamedInputs(card) || card.inputs.some((spec) => spec.datatype !== "BYTES" && !isDynamic(spec)));
}

/** Why the Drift tab does not apply to a model, in words (null when it does). */
export function driftNotApplicableText(card) {
  if (!card || hasDrift(card)) return null;
  const named = hasNamedInputs(card) ? `, taking ${plural(card.inputs.length, "named input")} (${specsText(card.inputs)})` : "";
  return `Drift is monitored for classifiers (one label per example: softmax or sigmoid), regressors and multi-label taggers, on numeric inputs of a fixed shape: it does not apply to ${card.name} ${card.version}, ${taskText(card)}${named}.`;
}

const INPUT_STATISTICS = {
  mean_intensity_ks: "the mean of each example's values",
  intensity_psi: "the histogram of the input's values",
};

/** A family's correction in words: "p × 10 (Bonferroni)" for a family of 10 tests (one per input, or per
 * target); "" for a family of one test, whose p-value is as tested. */
export function correctionText(correction) {
  const tests = correction?.tests;
  if (!Number.isFinite(tests) || tests <= 1) return "";
  return `p × ${formatNumber(tests)} (${correction.method === "bonferroni" ? "Bonferroni" : correction.method})`;
}

/** A regressor's statistics as rows, drifted first, then the smallest p-value first (a PSI's after the
 * tests), then by name: {name, about, test, correction, value, pValue, threshold, drifted, judged, status}.
 * `about` says what the statistic tests ("input bmi", "target price (USD)"). */
export function regressionDriftRows(drift, card = null) {
  const targets = card?.output?.targets ?? [];
  return driftRows(drift)
    .map((row) => {
      const s = drift.statistics[row.name];
      const kind = typeof s.input === "string" ? "input" : typeof s.target === "string" ? "target" : null;
      const target = kind === "target" ? targets.find((t) => t.name === s.target) ?? { name: s.target, unit: drift.predicted_values?.[s.target]?.unit } : null;
      const about = kind === "input" ? `input ${s.input}` : kind === "target" ? `predictions of ${targetLabel(target)}` : INPUT_STATISTICS[row.name] ?? "";
      return { ...row, kind, about, correction: kind ? correctionText(s.correction) : "" };
    })
    .sort((a, b) => Number(b.drifted) - Number(a.drifted) || (a.pValue ?? 2) - (b.pValue ?? 2) || a.name.localeCompare(b.name));
}

/** Which inputs and targets drifted, in words: {inputs, targets}, each a list ("bmi", "bmi and bp"), "none",
 * or "not judged yet" before the window holds enough predictions; inputs that are not tested one by one
 * (an input of more than 64 values: only its mean is) say so. Targets with their units. */
export function driftedNames(drift, card = null) {
  if (!driftJudged(drift)) return { inputs: "not judged yet", targets: "not judged yet" };
  const targets = card?.output?.targets ?? [];
  const label = (name) => targetLabel(targets.find((t) => t.name === name) ?? { name, unit: drift.predicted_values?.[name]?.unit });
  const tested = Object.values(drift.statistics ?? {}).some((s) => typeof s.input === "string");
  const inputs = drift.drifted_inputs ?? [];
  const drifted = drift.drifted_targets ?? [];
  return {
    inputs: inputs.length ? listText(inputs) : (tested ? "none" : "none tested one by one (only the mean of each example's values)"),
    targets: drifted.length ? listText(drifted.map(label)) : "none",
  };
}

/** How a regressor's statistics are judged, in words: "A test drifts at p < 0.001 (a PSI above 0.2). ..." */
export function regressionDriftNote(rows) {
  const p = rows.find((r) => typeof r.threshold?.p_value === "number")?.threshold.p_value;
  const psi = rows.find((r) => typeof r.threshold === "number")?.threshold;
  const at = [p === undefined ? "" : `A test drifts at p < ${formatNumber(p)}`, psi === undefined ? "" : `the PSI above ${formatNumber(psi)}`].filter(Boolean).join(", ");
  const families = rows.some((r) => r.kind)
    ? " The tests per input and per target are families: each p-value is multiplied by the number of tests in its family (Bonferroni, at most 1), so that a model of many inputs raises no more false alarms than a model of one."
    : "";
  return `${at ? `${at}.` : ""}${families}`.trim();
}

const SUMMARY = ["mean", "p10", "p50", "p90"];

/** Each target's predicted values, recent against held-out: [{name, label, rows: [[what, mean, p10, p50,
 * p90] x 3]}], the third row their difference (recent − held-out); "–" where the window has none yet. */
export function predictedValueRows(drift, card = null) {
  const targets = card?.output?.targets ?? [];
  const size = drift?.window?.size;
  const reference = drift?.reference_images;
  return Object.entries(drift?.predicted_values ?? {}).map(([name, values]) => {
    const target = targets.find((t) => t.name === name) ?? { name, unit: values.unit ?? null };
    const figure = (summary, key) => errorNumber(summary?.[key]);
    const difference = (key) => {
      const [w, r] = [values.window?.[key], values.reference?.[key]];
      return typeof w === "number" && typeof r === "number" ? signedNumber(w - r) : "–";
    };
    return {
      name,
      label: targetLabel(target),
      rows: [
        [`recent (${Number.isFinite(size) ? formatNumber(size) : "–"})`, ...SUMMARY.map((key) => figure(values.window, key))],
        [`held-out (${Number.isFinite(reference) ? formatNumber(reference) : "–"})`, ...SUMMARY.map((key) => figure(values.reference, key))],
        ["recent − held-out", ...SUMMARY.map(difference)],
      ],
    };
  });
}

/** The card's scalar metrics as rows [name, text] (per-class figures and the matrix go in their own tables). */
export function metricRows(metrics) {
  return Object.entries(metrics ?? {})
    .filter(([, v]) => typeof v === "number")
    .map(([name, v]) => [name.replaceAll("_", " "), Number.isInteger(v) ? formatNumber(v) : v.toFixed(4)]);
}

/** SVG polyline points for a series in a width x height box (y grows downwards). */
export function polylinePoints(values, width, height, low = Math.min(...values), high = Math.max(...values)) {
  if (!values.length) return "";
  const span = high - low || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  return values.map((v, i) => `${round2(i * step)},${round2(height - ((v - low) / span) * height)}`).join(" ");
}

function round2(x) {
  return Math.round(x * 100) / 100;
}

// --- the drawing canvas: levels 0..255, one per model pixel, light strokes on black ----------------

export function emptyLevels(width, height) {
  return new Uint8ClampedArray(width * height);
}

/** A soft round brush at (x, y) in pixel coordinates (pixel centres at +0.5): levels only grow. */
export function stamp(levels, width, height, x, y, radius) {
  const reach = Math.ceil(radius + 1);
  for (let row = Math.max(0, Math.floor(y - reach)); row <= Math.min(height - 1, Math.floor(y + reach)); row++) {
    for (let col = Math.max(0, Math.floor(x - reach)); col <= Math.min(width - 1, Math.floor(x + reach)); col++) {
      const distance = Math.hypot(col + 0.5 - x, row + 0.5 - y);
      const level = 255 * Math.min(1, Math.max(0, radius + 0.5 - distance));
      const i = row * width + col;
      if (level > levels[i]) levels[i] = level;
    }
  }
  return levels;
}

/** The brush along a segment, stamped every half pixel. */
export function stroke(levels, width, height, from, to, radius) {
  const steps = Math.max(1, Math.ceil(Math.hypot(to.x - from.x, to.y - from.y) * 2));
  for (let s = 0; s <= steps; s++) {
    stamp(levels, width, height, from.x + ((to.x - from.x) * s) / steps, from.y + ((to.y - from.y) * s) / steps, radius);
  }
  return levels;
}

/** A pointer's position on a canvas element (its bounding rect) in the model's pixels. */
export function pointToPixel(clientX, clientY, rect, width, height) {
  return { x: ((clientX - rect.left) / rect.width) * width, y: ((clientY - rect.top) / rect.height) * height };
}

/** The levels as the JSON rows a grey image takes: height rows of width integers. */
export function levelsToRows(levels, width, height) {
  const rows = [];
  for (let row = 0; row < height; row++) rows.push(Array.from(levels.subarray(row * width, (row + 1) * width)));
  return rows;
}

/** RGBA bytes for ImageData: each level as a grey pixel. */
export function levelsToRGBA(levels) {
  const rgba = new Uint8ClampedArray(levels.length * 4);
  for (let i = 0; i < levels.length; i++) {
    rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = levels[i];
    rgba[4 * i + 3] = 255;
  }
  return rgba;
}

export function isBlank(levels) {
  return levels.every((level) => level === 0);
}

// --- the address: #model/version/section ------------------------------------------------------

/** The sections about the model, each a tab (its panel: #panel-<section>); the first is the default. */
export const SECTIONS = ["card", "slices", "drift", "live", "versions", "replicas", "report"];

/** "#clothes/stable/drift" -> {model, version, section}; a section alone ("#drift") is a section when it
 * is one and no model has its name (`models`: the served models' names, when known). */
export function parseHash(hash, models = []) {
  const parts = decodeURIComponent(String(hash || "").replace(/^#/, "")).split("/");
  if (parts.length === 1 && SECTIONS.includes(parts[0]) && !models.includes(parts[0])) return { model: "", version: "", section: parts[0] };
  const [model = "", version = "", section = ""] = parts;
  return { model, version, section: SECTIONS.includes(section) ? section : "" };
}

/** The address of a choice: the default section is left out ("#clothes/stable"). */
export function makeHash(model, version, section = SECTIONS[0]) {
  const tail = section && section !== SECTIONS[0] ? `/${encodeURIComponent(section)}` : "";
  return `#${encodeURIComponent(model)}/${encodeURIComponent(version)}${tail}`;
}

/** The tab a key moves to in a tablist of `count` tabs (arrows wrap, Home and End), or null for another key. */
export function tabAfterKey(index, key, count) {
  if (key === "ArrowRight" || key === "ArrowDown") return (index + 1) % count;
  if (key === "ArrowLeft" || key === "ArrowUp") return (index - 1 + count) % count;
  if (key === "Home") return 0;
  if (key === "End") return count - 1;
  return null;
}

// --- the API token, kept for this browser session only (sessionStorage) ------------------------------

export function tokenStore(storage, key = TOKEN_KEY) {
  return {
    get: () => {
      try {
        return storage?.getItem(key) || null;
      } catch {
        return null;
      }
    },
    set: (token) => storage?.setItem(key, token),
    clear: () => storage?.removeItem(key),
  };
}

/** Request headers with the token, when there is one. */
export function withToken(headers, token) {
  return token ? { ...headers, Authorization: `Bearer ${token}` } : { ...headers };
}

/** Class shares in the drift window against the reference (predictions on held-out images): [{label, window, reference}]. */
export function classShareRows(drift, labels) {
  const shares = drift?.class_shares;
  if (!shares) return [];
  return (shares.reference ?? []).map((reference, i) => ({ label: labels?.[i] ?? `class ${i}`, window: shares.window?.[i] ?? null, reference }));
}

/** The fleet table of one model (GET /fleet): each replica's applied generation, whether it serves the
 * desired state, its health, what it serves of the model, and what it could not apply. */
export function fleetRows(status, model) {
  return status.replicas.map((r) => ({
    replica: r.replica,
    generation: `${r.generation} of ${status.generation}`,
    sync: r.in_sync ? "in sync" : (r.generation < status.generation ? "behind" : "diverging"),
    ready: r.ready === null || r.ready === undefined ? "–" : (r.ready ? "ready" : "not ready"),
    versions: Object.entries(r.models?.[model]?.versions ?? {}).map(([version, s]) => (s === "ready" ? version : `${version} (${s})`)).join(", ") || "–",
    drift: Object.entries(r.drift?.[model] ?? {}).map(([version, d]) => `${version}: ${d.verdict}`).join(", ") || "–",
    notes: [...Object.entries(r.failures ?? {}).map(([key, why]) => `${key}: ${why}`), ...(r.divergence ?? [])].join("; "),
  }));
}

/** One line per version of the fleet-wide drift of a model: its verdict over every replica's window. */
export function fleetDriftLines(status, model) {
  return Object.entries(status.drift?.[model] ?? {}).map(([version, d]) =>
    `${version}: ${d.verdict}, over ${d.replicas} ${d.replicas === 1 ? "replica" : "replicas"} (${formatNumber(d.window.size)} recent predictions)`);
}

// --- an answer: its label, or an abstention, and its out-of-distribution score ---------------------------

/** A prediction of an answer in words: {abstained, label, score, text}. An abstention has no label
 * (class_id and label null): the model declines, its input being unlike its held-out data. */
export function predictionSummary(prediction) {
  const score = typeof prediction?.ood_score === "number" && Number.isFinite(prediction.ood_score) ? prediction.ood_score : null;
  const abstained = prediction?.abstained === true || (prediction?.label === null && prediction?.class_id === null);
  const label = abstained ? null : (prediction?.label ?? null);
  return { abstained, label, score, text: abstained ? "no label (the model abstains)" : (label ?? "–") };
}

/** "The model abstains: this input looks unlike its held-out data (score 0.1)." */
export function abstentionText(score) {
  return `The model abstains: this input looks unlike its held-out data (score ${score === null || score === undefined ? "–" : formatNumber(score)}).`;
}

/** "Out-of-distribution score: 0.61 (higher: less like the held-out data)", or "" without one. */
export function oodText(score) {
  return typeof score === "number" && Number.isFinite(score) ? `Out-of-distribution score: ${formatNumber(score)} (higher: less like the held-out data).` : "";
}

/** The line under an answer: "Answered by clothes v1 (through stable) in 12 ms: Sneaker." */
export function answeredText(answer, choice, elapsedMs, card = null) {
  const through = choice !== answer.version ? ` (through ${choice})` : "";
  const what = card && !isOneClass(card) ? answerSummary(answer, card) : predictionSummary(answer.predictions?.[0]).text;
  return `Answered by ${answer.model} ${answer.version}${through} in ${Math.round(elapsedMs)} ms: ${what}.`;
}

// --- ground truth for an answer: POST /models/<name>/feedback ---------------------------------------------

/** The feedback call's body: the first example of request `requestId` has the true label `label`. */
export function feedbackBody(requestId, label) {
  return { feedback: [{ id: requestId, label }] };
}

/** The labels "no, it is ..." offers: every label but the one the model gave (all of them after an abstention). */
export function correctionChoices(labels, given) {
  return (labels ?? []).filter((label) => label !== given);
}

/** The feedback call's answer in words (FeedbackAnswer: accepted, joined, unknown ids). */
export function feedbackResultText(answer, label) {
  if (answer?.joined > 0) return `Joined: the server counts “${label}” as this answer's true label in its live accuracy.`;
  return "Not joined: no worker of this server remembers answering this request (too old, or answered by another replica).";
}

// --- live accuracy: GET /models/<name>/<version>/live ----------------------------------------------------------

/** "91.0% (95% interval 89.0–93.0%)", "–" without a value. */
export function intervalText(value, low, high) {
  if (typeof value !== "number") return "–";
  return `${percent(value)} (95% interval ${rangeText(low, high)})`;
}

/** "89.0–93.0%" */
export function rangeText(low, high) {
  if (typeof low !== "number" || typeof high !== "number") return "–";
  return `${(low * 100).toFixed(1)}–${percent(high)}`;
}

/** "12 of 13" */
export function countText(correct, examples) {
  return `${formatNumber(correct)} of ${formatNumber(examples)}`;
}

/** A window in words: 3600 -> "1 h", 90 -> "1.5 min", 45 -> "45 s". */
export function durationText(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  if (seconds >= 3600) return `${formatNumber(Number((seconds / 3600).toFixed(1)))} h`;
  if (seconds >= 60) return `${formatNumber(Number((seconds / 60).toFixed(1)))} min`;
  return `${formatNumber(seconds)} s`;
}

/** The live accuracy beside the held-out one: {live, offline, difference} texts, and whether there are examples. */
export function liveSummary(report) {
  const a = report?.accuracy ?? {};
  const offline = report?.offline?.accuracy;
  const has = Boolean(report?.examples) && typeof a.value === "number";
  let difference = "";
  if (has && typeof offline === "number") {
    const inside = a.low <= offline && offline <= a.high;
    difference = inside
      ? "The held-out accuracy is inside the live interval: no evidence the model does worse live."
      : (offline > a.high
        ? "The held-out accuracy is above the live interval: the model does worse on live traffic than on its held-out images."
        : "The held-out accuracy is below the live interval: the model does better on live traffic than on its held-out images.");
  }
  return {
    has,
    live: has ? percent(a.value) : "–",
    interval: has ? `95% interval ${rangeText(a.low, a.high)}` : "no examples with ground truth yet",
    counts: has ? `${countText(a.correct, a.examples)} right` : "",
    offline: typeof offline === "number" ? percent(offline) : "–",
    difference,
  };
}

/** Accuracy per alias or per slice ({name: {value, low, high, examples, correct}}): rows, worst first. */
export function proportionRows(groups) {
  return Object.entries(groups ?? {})
    .map(([name, p]) => ({ name, value: p.value, accuracy: percent(p.value ?? NaN), interval: rangeText(p.low, p.high), counts: countText(p.correct, p.examples) }))
    .sort((a, b) => (a.value ?? 2) - (b.value ?? 2) || a.name.localeCompare(b.name));
}

/** Recall per true class: rows [label, recall, interval, examples], classes with examples first, worst first. */
export function classRecallRows(classes) {
  return (classes ?? [])
    .map((c) => ({ label: c.label, value: c.recall, recall: percent(c.recall ?? NaN), interval: rangeText(c.low, c.high), examples: formatNumber(c.examples) }))
    .sort((a, b) => (a.value === null) - (b.value === null) || (a.value ?? 0) - (b.value ?? 0) || a.label.localeCompare(b.label));
}

/** Calibration bins as rows: confidence range, examples, mean confidence, accuracy, and their gap. */
export function calibrationRows(calibration) {
  return (calibration?.bins ?? []).map((b) => ({
    bin: `${percent(b.low, 0)}–${percent(b.high, 0)}`,
    examples: formatNumber(b.examples),
    confidence: percent(b.confidence),
    accuracy: percent(b.accuracy),
    gap: `${b.accuracy >= b.confidence ? "+" : "−"}${(Math.abs(b.accuracy - b.confidence) * 100).toFixed(1)} pt`,
  }));
}

/** "ECE 0.034: on average the confidence is 3.4 points from the accuracy" */
export function eceText(calibration) {
  const ece = calibration?.ece;
  if (typeof ece !== "number") return "No calibration yet: no examples with ground truth.";
  return `Expected calibration error ${formatNumber(Number(ece.toFixed(4)))}: weighted by examples, the confidence is ${(ece * 100).toFixed(1)} points away from the accuracy.`;
}

/** The series' bucket in seconds: the smallest gap between its points' starts (60 with one point). */
export function bucketSeconds(series, fallback = 60) {
  const gaps = (series ?? []).slice(1).map((p, i) => p.start - series[i].start).filter((gap) => gap > 0);
  return gaps.length ? Math.min(...gaps) : fallback;
}

/** "14:05" (local time) of an epoch in seconds; "14:05:09" with `seconds`. */
export function clockText(epochSeconds, seconds = false) {
  const d = new Date(epochSeconds * 1000);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}${seconds ? `:${two(d.getSeconds())}` : ""}`;
}

/**
 * The live accuracy's time series as a chart in a width x height box (y downwards), inside `pad`
 * ({top, right, bottom, left}): each point's position by its bucket's start in time and its accuracy,
 * its 95% interval as a band (a polygon over the highs, back under the lows), the held-out accuracy as a
 * line when given, and the y axis's ticks. The y axis spans 0..100% rounded out to tenths around what it shows.
 */
export function seriesChart(series, { width, height, pad = { top: 10, right: 12, bottom: 26, left: 46 }, offline = null, bucketSeconds = 60 }) {
  const points = (series ?? []).filter((p) => typeof p.value === "number");
  if (!points.length) return null;
  const shown = points.flatMap((p) => [p.value, p.low ?? p.value, p.high ?? p.value]);
  if (typeof offline === "number") shown.push(offline);
  const yLow = Math.max(0, Math.floor(Math.min(...shown) * 10 + 1e-9) / 10);
  const yHigh = Math.min(1, Math.ceil(Math.max(...shown) * 10 - 1e-9) / 10) || 1;
  const span = yHigh - yLow || 1;
  const first = points[0].start;
  const last = points.at(-1).start + bucketSeconds;
  const innerWidth = width - pad.left - pad.right;
  const innerHeight = height - pad.top - pad.bottom;
  const x = (t) => round2(pad.left + (points.length === 1 ? innerWidth / 2 : ((t - first) / (last - first)) * innerWidth));
  const y = (v) => round2(pad.top + (1 - (v - yLow) / span) * innerHeight);
  const centre = (p) => p.start + bucketSeconds / 2;
  const placed = points.map((p) => ({ x: x(points.length === 1 ? first : centre(p)), y: y(p.value), low: y(p.low ?? p.value), high: y(p.high ?? p.value), point: p }));
  const ticks = [];
  const step = span > 0.5 ? 0.2 : 0.1;
  for (let v = yLow; v <= yHigh + 1e-9; v += step) ticks.push({ y: y(v), text: percent(Math.round(v * 100) / 100, 0) });
  return {
    points: placed,
    line: placed.map((p) => `${p.x},${p.y}`).join(" "),
    band: [...placed.map((p) => `${p.x},${p.high}`), ...placed.slice().reverse().map((p) => `${p.x},${p.low}`)].join(" "),
    offlineY: typeof offline === "number" ? y(offline) : null,
    ticks,
    xLabels: [{ x: pad.left, text: clockText(first), anchor: "start" }, { x: width - pad.right, text: clockText(last), anchor: "end" }],
    yLow,
    yHigh,
  };
}

// --- rollouts: GET /models/<name>/rollouts (each alias's last one), and the admin routes that move them ---------

/** How often the page asks again while a rollout is running and its tab is shown. */
export const ROLLOUT_REFRESH_MS = 2000;
export const DEFAULT_STEPS = [5, 25, 50, 100];
const ROLLOUT_STATUS = { running: "Running", paused: "Paused", completed: "Completed", rolled_back: "Rolled back", aborted: "Aborted" };
const ROLLOUT_ACTION = { start: "started", advance: "advanced", complete: "completed", rollback: "rolled back", pause: "paused", resume: "resumed", abort: "aborted" };

/** A rollout's status in words: "Running", "Rolled back" (never "rolled_back"). */
export function rolloutStatusText(status) {
  return ROLLOUT_STATUS[status] ?? String(status ?? "–").replaceAll("_", " ");
}

/** An event's action in words: "advanced", "rolled back". */
export function rolloutActionText(action) {
  return ROLLOUT_ACTION[action] ?? String(action ?? "–").replaceAll("_", " ");
}

/** Whether a rollout can still move (pause, resume, abort): running or paused. */
export function rolloutActive(rollout) {
  return rollout?.status === "running" || rollout?.status === "paused";
}

/** The candidate's percentage of the alias's requests now: its last event's share (0 after a rollback or an abort). */
export function rolloutShare(rollout) {
  const last = rollout?.events?.at(-1);
  if (last && Number.isFinite(last.share)) return last.share;
  if (rollout?.status === "completed") return 100;
  if (rollout?.status === "rolled_back" || rollout?.status === "aborted") return 0;
  return rollout?.steps?.[rollout.step] ?? 0;
}

/** A rollout in one sentence: where it is, and who answers the alias's requests. */
export function rolloutLine(rollout) {
  const { alias, candidate, baseline, steps = [], step = 0, status } = rollout;
  const share = rolloutShare(rollout);
  const at = `step ${step + 1} of ${steps.length} (${steps[step]}%)`;
  const split = `${candidate} gets ${share}% of ${alias}'s requests, ${baseline} the other ${100 - share}%`;
  if (status === "running") return `Running, at ${at}: ${split}.`;
  if (status === "paused") return `Paused at ${at}: ${split}; no step advances and no gate is judged until it resumes.`;
  if (status === "completed") return `Completed: ${candidate} serves all of ${alias}'s requests (recorded as a promotion, which a rollback undoes).`;
  if (status === "rolled_back") return `Rolled back at ${at}: a gate broke, and ${alias} serves ${baseline} again.`;
  if (status === "aborted") return `Aborted at ${at}: ${alias} serves ${baseline} again.`;
  return `${rolloutStatusText(status)} at ${at}.`;
}

/** The steps as a list: [{share, text, state}], state "done", "current", "next", "broke" (rolled back
 * there) or "stopped" (aborted there); every step is done once completed. */
export function rolloutSteps(rollout) {
  const { steps = [], step = 0, status } = rollout ?? {};
  const here = { running: "current", paused: "current", rolled_back: "broke", aborted: "stopped" }[status] ?? "current";
  const words = { done: "done", current: status === "paused" ? "current, paused" : "current", next: "not reached", broke: "rolled back here", stopped: "aborted here" };
  return steps.map((share, i) => {
    const state = status === "completed" || i < step ? "done" : (i === step ? here : "next");
    return { share, text: `${share}%`, state, label: `${share}%: ${words[state]}` };
  });
}

/** A rollout's gates in words (a gate set to null is not judged). */
export function gatesText(gates) {
  const g = gates ?? {};
  const points = (x) => `${Number((x * 100).toFixed(2))}`;
  const parts = [];
  if (typeof g.max_error_rate === "number") parts.push(`failed requests at most ${points(g.max_error_rate)}%`);
  if (typeof g.max_p99_ms === "number") parts.push(`p99 latency at most ${formatNumber(g.max_p99_ms)} ms`);
  if (typeof g.max_accuracy_drop === "number" && g.min_labelled > 0) {
    parts.push(`live accuracy at most ${points(g.max_accuracy_drop)} points below the baseline's (judged over ${formatNumber(g.min_labelled)} labelled examples of each)`);
  } else {
    parts.push("live accuracy not judged (min_labelled 0)");
  }
  if (typeof g.max_ood_increase === "number") parts.push(`mean OOD score at most ${formatNumber(g.max_ood_increase)} above the baseline's`);
  if (typeof g.min_shadow_agreement === "number") {
    const share = typeof g.shadow_share === "number" ? `${points(g.shadow_share)}% of ` : "";
    parts.push(`the same answer as the baseline on at least ${points(g.min_shadow_agreement)}% of ${share}its requests, mirrored (judged over ${formatNumber(g.min_shadow_examples ?? 100)} examples per step)`);
  }
  return parts.join("; ");
}

/** What a step needs before it advances: "30 s and 100 requests of v2". */
export function advanceText(rollout) {
  return `${durationText(rollout.min_dwell_seconds)} and ${formatNumber(rollout.min_requests)} ${rollout.min_requests === 1 ? "request" : "requests"} of ${rollout.candidate} in the step, with no gate broken`;
}

/** Time since the rollout started: "+0 s", "+12.3 s", "+4.5 min", "+1.2 h". */
export function elapsedText(seconds) {
  if (!Number.isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  if (s >= 3600) return `+${Number((s / 3600).toFixed(1))} h`;
  if (s >= 60) return `+${Number((s / 60).toFixed(1))} min`;
  return `+${Number(s.toFixed(1))} s`;
}

const present = (v) => v !== null && v !== undefined;
const vsText = (value, baseline, format) => (present(value) ? (present(baseline) ? `${format(value)} vs ${format(baseline)}` : format(value)) : (present(baseline) ? `– vs ${format(baseline)}` : "–"));

/** The gate values an event was decided on, in words, each kept whole on one line: [{key, text}];
 * null values are left out (e.g. no accuracy before any labelled example). p99 is the upper edge of
 * the latency bucket holding it, hence "≤". */
export function gateValues(gates) {
  const g = gates ?? {};
  const ood = (v) => formatNumber(Number(v.toPrecision(3)));
  const items = [];
  if (present(g.requests)) items.push({ key: "requests", text: `${formatNumber(g.requests)} ${g.requests === 1 ? "request" : "requests"}` });
  if (present(g.error_rate)) items.push({ key: "error_rate", text: `error rate ${percent(g.error_rate, 2)}` });
  if (present(g.p99_ms)) items.push({ key: "p99_ms", text: `p99 ≤ ${formatNumber(g.p99_ms)} ms` });
  if (present(g.accuracy) || present(g.baseline_accuracy)) {
    items.push({ key: "accuracy", text: `accuracy ${vsText(g.accuracy, g.baseline_accuracy, (v) => percent(v))} (${formatNumber(g.labelled ?? 0)} labelled)` });
  }
  if (present(g.ood_mean) || present(g.baseline_ood_mean)) items.push({ key: "ood_mean", text: `OOD ${vsText(g.ood_mean, g.baseline_ood_mean, ood)}` });
  if (present(g.shadow_agreement)) items.push({ key: "shadow_agreement", text: `agreement ${percent(g.shadow_agreement)} (${formatNumber(g.shadow_examples ?? 0)} compared)` });
  if (present(g.dwell_seconds)) items.push({ key: "dwell_seconds", text: `after ${durationText(Number(g.dwell_seconds.toFixed(1)))} in the step` });
  return items;
}

/** A rollout's events as a timeline, oldest first: [{after, action, share, reason, gates, event}], times
 * from the first event, gates as gateValues (none for start, pause, resume, abort: nothing was judged). */
export function rolloutTimeline(rollout) {
  const events = rollout?.events ?? [];
  const start = events[0]?.time;
  return events.map((e) => ({
    after: elapsedText(e.time - start),
    action: rolloutActionText(e.action),
    share: `${e.share}%`,
    reason: e.reason ?? "",
    gates: gateValues(e.gates),
    event: e,
  }));
}

/** The rollouts shown: running and paused ones first, then the most recent. */
export function sortRollouts(rollouts) {
  const last = (r) => r.events?.at(-1)?.time ?? r.step_started ?? 0;
  return [...(rollouts ?? [])].sort((a, b) => Number(rolloutActive(b)) - Number(rolloutActive(a)) || last(b) - last(a) || a.alias.localeCompare(b.alias));
}

/** "5, 25, 50, 100" (or "5 25 50 100%") -> {steps}, or {error} in words: whole percentages, rising, ending at 100. */
export function parseSteps(text) {
  const parts = String(text ?? "").split(/[\s,;%]+/).filter(Boolean);
  const steps = parts.map(Number);
  const error = "Steps: whole percentages from 1 to 100, rising, ending at 100 (e.g. 5, 25, 50, 100).";
  if (!steps.length || steps.some((s) => !Number.isInteger(s) || s < 1 || s > 100)) return { error };
  if (steps.some((s, i) => i > 0 && s <= steps[i - 1]) || steps.at(-1) !== 100) return { error };
  return { steps };
}

/** The body of POST /models/<name>/rollouts (a RolloutPlan); empty numbers are left to the server's defaults. */
export function rolloutPlan({ alias, candidate, steps, minDwellSeconds, minRequests }) {
  const plan = { alias, candidate, steps };
  if (minDwellSeconds !== "" && minDwellSeconds !== null && minDwellSeconds !== undefined) plan.min_dwell_seconds = Number(minDwellSeconds);
  if (minRequests !== "" && minRequests !== null && minRequests !== undefined) plan.min_requests = Number(minRequests);
  return plan;
}

/** The aliases a rollout can start from: those serving one version (its baseline), [{alias, version}]. */
export function startableAliases(listing) {
  return Object.entries(listing?.aliases ?? {}).filter(([, target]) => typeof target === "string").map(([alias, version]) => ({ alias, version }));
}

/** The versions that can be a candidate for an alias now serving `baseline`: ready ones, not the baseline. */
export function candidateVersions(listing, baseline) {
  return (listing?.versions ?? []).filter((v) => v.version !== baseline && (v.status ?? "ready") === "ready").map((v) => v.version);
}

/** The curl that starts a rollout, for the empty state (the token as $TOKEN, never its value). */
export function rolloutCurl(origin, model, alias, candidate, withToken = false) {
  const auth = withToken ? ` -H "Authorization: Bearer $TOKEN"` : "";
  const plan = JSON.stringify({ alias, candidate, steps: DEFAULT_STEPS }).replaceAll(",", ", ").replaceAll(":", ": ");
  return `curl -X POST ${origin}/models/${model}/rollouts -H 'content-type: application/json'${auth} -d '${plan}'`;
}

/** An admin call's answer in words: what happened, or why not (the server's message, a 403 explained). */
export function rolloutActionResult(action, answer) {
  const through = `The rollout of ${answer.candidate} through ${answer.alias}`;
  if (action === "start") return `Started: ${answer.candidate} takes ${answer.steps[0]}% of ${answer.alias}'s requests (${answer.baseline} the rest).`;
  if (action === "abort") return `${through} is aborted: ${answer.alias} serves ${answer.baseline} again.`;
  return `${through} is ${rolloutActionText(action)}.`;
}

/** Why an admin call was refused, in words: a 403 means this server allows no admin operations from here. */
export function adminRefusal(status, message) {
  if (status === 403) return `Not allowed: ${message}.`;
  if (status === 401) return `Not allowed without the API token: ${message}.`;
  return `Not done: ${message}`;
}

// --- models of every task: one class, several labels, regression values, a vector ---------------------------
// A card's output.kind: softmax or sigmoid (one class per example), multilabel (labels past their
// thresholds), regression (targets with units), embedding or tensor (the values as they are). Its
// input.kind: image, or tensor (numbers in its shape, within value_range when it has one).

/** The most values a form of one field per value offers; a larger or multi-dimensional input is written as JSON. */
export const FORM_MAX_VALUES = 64;
/** How many of a vector's values an answer shows (the JSON has them all). */
export const VECTOR_SHOWN = 8;
const FLOAT32_MAX = 3.4028234663852886e38;

/** One class per example (softmax, sigmoid): what top classes, "Right?", OOD scores, slices, drift and live accuracy need. */
export function isOneClass(card) {
  const kind = card?.output?.kind;
  return kind === "softmax" || kind === "sigmoid";
}

/** "2×3"; "4" */
export function shapeText(shape) {
  return (shape ?? []).join("×");
}

export function sizeOf(shape) {
  return (shape ?? []).reduce((size, dim) => size * dim, 1);
}

const plural = (count, word) => `${formatNumber(count)} ${word}${count === 1 ? "" : "s"}`;
const capitalised = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** The card's task in words: "a regression model (2 targets: price in USD, area in m2)". */
export function taskText(card) {
  const output = card?.output ?? {};
  if (output.kind === "multilabel") return `a multi-label model (${plural(output.labels.length, "label")}, each given when its probability reaches its threshold)`;
  if (output.kind === "regression") {
    const targets = (output.targets ?? []).map((t) => (t.unit ? `${t.name} in ${t.unit}` : t.name)).join(", ");
    return `a regression model (${plural(output.targets.length, "target")}: ${targets})`;
  }
  if (output.kind === "embedding") return `an embedding model (vectors of ${plural(sizeOf(output.shape), "value")})`;
  if (output.kind === "tensor") return `a model answering a tensor of shape ${shapeText(output.shape)}`;
  if (output.kind === "tensors") return `a model answering ${plural(card.outputs?.length ?? 0, "named output")} (${specsText(card.outputs)})`;
  return `a one-class model (${plural(output.labels?.length ?? 0, "label")})`;
}

const NEEDS_CLASSES = {
  slices: "Slices measure the accuracy per class and under shifts of the held-out data",
  live: "Live accuracy counts the answers whose true label the server was told",
};

/** What a tab that needs classes (slices, live accuracy) says for a model of another task, in words; the
 * Drift tab's is driftNotApplicableText (classifiers and regressors). */
export function oneClassOnlyText(card, section) {
  const what = NEEDS_CLASSES[section] ?? "This section needs classes";
  const instead = section === "live" ? "; for a regression model this tab shows its live error instead" : "";
  return `${what}: it applies to one-class models (one label per example: softmax or sigmoid)${instead}. ${card.name} ${card.version} is ${taskText(card)}.`;
}

/** How the page takes a tensor input: one field per value (a 1-D input of at most FORM_MAX_VALUES),
 * or a JSON text box; null for an image. {mode, count, names, low, high, shape} */
export function tensorForm(card) {
  const input = card?.input;
  if (!input || input.kind === "image") return null;
  if (input.kind === "tensors") return hasNamedInputs(card) ? namedForm(card) : null;
  const shape = input.shape ?? [];
  const [low, high] = input.value_range ?? [null, null];
  if (shape.length === 1 && shape[0] <= FORM_MAX_VALUES) return { mode: "fields", count: shape[0], names: fieldNames(input, shape[0]), low, high, shape };
  return { mode: "json", count: sizeOf(shape), names: null, low, high, shape };
}

/** Each value's name: the card's own (input.names, one per value), or "value 1".."value n". */
export function fieldNames(input, count) {
  const names = input?.names;
  if (Array.isArray(names) && names.length === count && names.every((n) => typeof n === "string" && n.trim())) return names.map((n) => n.trim());
  return Array.from({ length: count }, (_, i) => `value ${i + 1}`);
}

/** What the form takes, in words: "4 numbers, each from 0 to 10", "a tensor of shape 2×3, any finite numbers". */
export function formText(form) {
  if (form.mode === "named") return `${plural(form.inputs.length, "named input")}: ${listText(form.inputs.map((f) => `${f.name} (${f.what})`))}`;
  const range = form.low !== null && form.high !== null ? `each from ${formatNumber(form.low)} to ${formatNumber(form.high)}` : "any finite values";
  if (form.mode === "fields") return `${plural(form.count, "number")}, ${range}`;
  return `a tensor of shape ${shapeText(form.shape)} (${plural(form.count, "number")}, ${range})`;
}

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;

/** A typed number: {value}, or {error: "empty" | "nan"}; a typographic minus (−) reads as "-". */
export function parseNumber(text) {
  const t = String(text ?? "").trim().replace(/^[−–]/, "-");
  if (!t) return { error: "empty" };
  if (!NUMBER.test(t)) return { error: "nan" };
  return { value: Number(t) };
}

const shown = (text) => {
  const t = String(text).trim();
  return t.length > 24 ? `${t.slice(0, 24)}…` : t;
};

/** One value checked against the form (its range, a 32-bit float's size): {value} or {error} naming it. */
export function checkValue(name, text, form = {}) {
  const who = capitalised(name);
  const parsed = typeof text === "number" ? { value: text } : parseNumber(text);
  if (parsed.error === "empty") return { error: `${who} is empty: type a number.` };
  if (parsed.error === "nan") return { error: `${who} is not a number: “${shown(text)}”.` };
  const { value } = parsed;
  const { low = null, high = null } = form;
  const range = low !== null && high !== null ? `: this model takes values from ${formatNumber(low)} to ${formatNumber(high)}.` : "";
  if (range && (!Number.isFinite(value) || value < low || value > high)) return { error: `${who} is ${Number.isFinite(value) ? formatNumber(value) : "too large"}${range}` };
  if (!Number.isFinite(value) || Math.abs(value) > FLOAT32_MAX) return { error: `${who} is too large: this model takes numbers up to about 3.4e38 in size.` };
  return { value };
}

/** The form's fields checked, in order: {values}, or {error, index} of the first wrong one. `bad[i]`:
 * the browser could not read field i as a number (its validity.badInput; its value is then ""). */
export function checkFields(texts, form, bad = []) {
  const values = [];
  for (let i = 0; i < form.count; i++) {
    if (bad[i]) return { error: `${capitalised(form.names[i])} is not a number.`, index: i };
    const checked = checkValue(form.names[i], texts[i] ?? "", form);
    if (checked.error) return { error: checked.error, index: i };
    values.push(checked.value);
  }
  return { values };
}

/** A pasted row ("1, 2.5 3", tab-separated, one line or one number per line) -> {values}, or {error}
 * in words (with the index of the wrong value when one is). */
export function parseRow(text, form) {
  const tokens = String(text ?? "").split(/[\s,;]+/).filter(Boolean);
  if (!tokens.length) return { error: `The row is empty: paste ${plural(form.count, "number")} separated by commas or spaces.` };
  if (tokens.length !== form.count) return { error: `This model takes ${plural(form.count, "value")}; the row has ${formatNumber(tokens.length)}.` };
  const values = [];
  for (let i = 0; i < tokens.length; i++) {
    const checked = checkValue(form.names[i], tokens[i], form);
    if (checked.error) return { error: checked.error, index: i };
    values.push(checked.value);
  }
  return { values };
}

/** The fields' texts as a row: "1, 2.5, 3". */
export function rowText(texts) {
  return texts.map((t) => String(t ?? "").trim()).join(", ");
}

/** Zeros in a shape, as the JSON box's placeholder ("[[0, 0, 0], [0, 0, 0]]"); "" for a large input. */
export function exampleJSON(shape, limit = FORM_MAX_VALUES) {
  if (sizeOf(shape) > limit) return "";
  const zeros = (dims) => (dims.length ? Array.from({ length: dims[0] }, () => zeros(dims.slice(1))) : 0);
  return JSON.stringify(zeros(shape)).replaceAll(",", ", ");
}

/** Nested lists' shape: {shape}, or {error} ("ragged", or "nan" with the path of what is not a number, or
 * not what `leaf` takes: a BYTES input's strings). */
function nestedShape(value, path = "", leaf = (v) => typeof v === "number") {
  if (leaf(value)) return { shape: [] };
  if (!Array.isArray(value)) return { error: "nan", path, value };
  let inner = null;
  for (let i = 0; i < value.length; i++) {
    const child = nestedShape(value[i], `${path}[${i}]`, leaf);
    if (child.error) return child;
    if (inner && inner.join() !== child.shape.join()) return { error: "ragged" };
    inner = child.shape;
  }
  return { shape: [value.length, ...(inner ?? [])] };
}

function flatten(value) {
  return Array.isArray(value) ? value.flatMap(flatten) : [value];
}

/** The position of flat index i in a shape: "[1][2]". */
function pathOf(i, shape) {
  const parts = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    parts.unshift(i % shape[d]);
    i = Math.floor(i / shape[d]);
  }
  return parts.map((p) => `[${p}]`).join("");
}

/** The JSON box's text -> {input} (nested lists in the card's shape), or {error} in words.
 * {"input": ...} is taken too (a body copied from a curl). */
export function parseTensorJSON(text, form) {
  const want = `a tensor of shape ${shapeText(form.shape)} as nested lists of numbers`;
  if (!String(text ?? "").trim()) return { error: `The box is empty: write ${want}.` };
  let data;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { error: `The text is not valid JSON (${plainMessage(error.message) || "it could not be read"}): write ${want}.` };
  }
  if (data && typeof data === "object" && !Array.isArray(data) && "input" in data) data = data.input;
  const found = nestedShape(data);
  if (found.error === "ragged") return { error: `The lists are not all of the same length: write ${want}.` };
  if (found.error) return { error: `Expected numbers only: ${found.path ? `${found.path} is` : "the text is"} ${shown(JSON.stringify(found.value) ?? String(found.value))}, not a number.` };
  if (found.shape.join() !== form.shape.join()) {
    return { error: `This model takes a tensor of shape ${shapeText(form.shape)}; the JSON has shape ${found.shape.length ? shapeText(found.shape) : "of a single number"}.` };
  }
  const values = flatten(data);
  for (let i = 0; i < values.length; i++) {
    const checked = checkValue(`the value at ${pathOf(i, form.shape)}`, values[i], form);
    if (checked.error) return { error: checked.error };
  }
  return { input: data };
}

// --- an answer of another task than one class --------------------------------------------------------------

/** A model's answered value: 6 significant digits (float32 holds about 7), large ones whole with
 * thousands separators, tiny ones with an exponent. */
export function valueNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value ?? "–");
  const size = Math.abs(value);
  if (size === 0) return "0";
  if (size >= 1e15 || size < 1e-4) return value.toExponential(4).replace(/\.?0+e/, "e");
  if (size >= 1e5) return Math.round(value).toLocaleString("en-US");
  return String(Number(value.toPrecision(6)));
}

/** "35%", "33.3%": a threshold or a probability to a tenth of a point, without a trailing ".0". */
export function shareText(share) {
  return Number.isFinite(share) ? `${Number((share * 100).toFixed(1))}%` : "–";
}

/** A regressor's answer: [{name, unit, value, text}] in the card's order of targets (the prediction's
 * values by target, or the result's row). */
export function regressionRows(card, prediction, row) {
  return (card?.output?.targets ?? []).map((target, i) => {
    const value = prediction?.values?.[target.name] ?? row?.[i];
    return { name: target.name, unit: target.unit ?? "", value, text: valueNumber(value) };
  });
}

/** A tagger's answer: every label in the card's order, [{label, probability, threshold, given, text,
 * thresholdText, description}]; given as the server says (prediction.labels), or past its threshold. */
export function multilabelRows(card, prediction, row) {
  const { labels = [], thresholds = [] } = card?.output ?? {};
  const given = Array.isArray(prediction?.labels) ? new Set(prediction.labels) : null;
  return labels.map((label, i) => {
    const probability = prediction?.scores?.[label] ?? row?.[i];
    const threshold = thresholds?.[i] ?? 0.5;
    const on = given ? given.has(label) : probability >= threshold;
    return {
      label, probability, threshold, given: on,
      text: percent(probability),
      thresholdText: shareText(threshold),
      description: `${label}: ${percent(probability)}, threshold ${shareText(threshold)}: ${on ? "given" : "not given"}`,
    };
  });
}

/** The labels given, in words: "Given: red, round." or that none reaches its threshold. */
export function givenText(rows) {
  const given = rows.filter((r) => r.given).map((r) => r.label);
  return given.length ? `Given: ${given.join(", ")}.` : "No label given: none reaches its threshold.";
}

/** An embedding's or a tensor's answer: its size, its first values ([{index, text, value}]), an
 * embedding's length (L2 norm), and the whole as JSON. */
export function vectorSummary(card, row, limit = VECTOR_SHOWN) {
  const values = flatten(row ?? []);
  const output = card?.output ?? {};
  const shape = output.shape ?? [values.length];
  const first = values.slice(0, limit).map((value, i) => ({ index: shape.length > 1 ? pathOf(i, shape) : String(i), value, text: valueNumber(value) }));
  let squares = 0;
  for (const v of values) squares += v * v;
  const what = output.kind === "embedding" ? `An embedding of ${plural(values.length, "value")}` : `A tensor of shape ${shapeText(shape)} (${plural(values.length, "value")})`;
  return {
    size: values.length,
    shape,
    first,
    norm: output.kind === "embedding" ? Math.sqrt(squares) : null,
    title: values.length > first.length ? `${what}; the first ${first.length}:` : `${what}:`,
    json: JSON.stringify(row),
  };
}

/** An answer in a few words, for the line under it: the label, the values by target, the labels given, the vector's size. */
export function answerSummary(answer, card) {
  const prediction = answer?.predictions?.[0];
  const row = answer?.result?.[0];
  const kind = card?.output?.kind;
  if (kind === "regression") return regressionRows(card, prediction, row).map((r) => `${r.name} ${r.text}${r.unit ? ` ${r.unit}` : ""}`).join(", ");
  if (kind === "multilabel") {
    const given = multilabelRows(card, prediction, row).filter((r) => r.given).map((r) => r.label);
    return given.length ? given.join(", ") : "no label (none reaches its threshold)";
  }
  if (kind === "embedding") return `an embedding of ${plural(flatten(row ?? []).length, "value")}`;
  if (kind === "tensor") return `a tensor of shape ${shapeText(card.output.shape)}`;
  if (kind === "tensors") return `${plural(card.outputs?.length ?? 0, "named output")}, ${listText(namedOutputs(card, answer).map((o) => `${o.name} (${o.missing ? "missing" : plural(o.size, "value")})`))}`;
  return predictionSummary(prediction).text;
}

/** The card's table of what the output holds, by task: a regressor's targets with their units, a
 * tagger's labels with their thresholds; null for other outputs. {title, headers, rows} */
export function outputRows(card) {
  const output = card?.output ?? {};
  if (output.kind === "regression") return { title: `Targets (${output.targets.length})`, headers: ["target", "unit"], rows: output.targets.map((t) => [t.name, t.unit || "–"]) };
  if (output.kind === "multilabel") return { title: `Labels (${output.labels.length}) and their thresholds`, headers: ["label", "threshold"], rows: output.labels.map((label, i) => [label, shareText(output.thresholds?.[i])]) };
  if (hasNamedOutputs(card)) return { title: `Outputs (${card.outputs.length})`, headers: ["output", "datatype", "shape"], rows: specRows(card.outputs) };
  return null;
}

// --- a model of several named tensors -----------------------------------------------------------------------
// A card with input.kind "tensors" lists its named inputs (card.inputs: [{name, datatype, shape}]); its
// input.shape is then their packed bytes per example, never shown as a shape. One with output.kind
// "tensors" lists its named outputs (card.outputs), answered as {"result": {"<name>": [[...]], ...}}; without
// them its output is an ordinary one (e.g. softmax). The course route takes the inputs as JSON:
// {"input": {"<name>": <one example>, ...}}, or a batch {"inputs": {"<name>": [<example>, ...], ...}}.

/** Takes several named tensors (card.inputs). */
export function hasNamedInputs(card) {
  return card?.input?.kind === "tensors" && Array.isArray(card.inputs) && card.inputs.length > 0;
}

/** Answers several named tensors (card.outputs). */
export function hasNamedOutputs(card) {
  return card?.output?.kind === "tensors" && Array.isArray(card.outputs) && card.outputs.length > 0;
}

/** A named tensor's shape as the card writes it: "[3]", "[2, 3]", "[]" (one value per example), "[-1, 3]"
 * (a dynamic dimension: each request chooses its size). */
export function specShape(shape) {
  return `[${(shape ?? []).join(", ")}]`;
}

/** An input with dynamic dimensions besides the batch axis (-1 in its shape, bounded by max_shape). */
export function isDynamic(spec) {
  return (spec?.shape ?? []).includes(-1) && Array.isArray(spec.max_shape);
}

/** The smallest size of a dynamic input's dimension i: its min_shape's, else 1. */
function smallestSize(spec, i) {
  return spec.min_shape?.[i] ?? 1;
}

/** Whether one example's shape fits a spec: fixed dimensions equal, dynamic ones within their bounds (min_shape, else 1, to max_shape). */
export function fitsSpec(shape, spec) {
  return shape.length === spec.shape.length && shape.every((n, i) => (spec.shape[i] === -1 ? n >= smallestSize(spec, i) && n <= spec.max_shape[i] : n === spec.shape[i]));
}

const SIZE_NAMES = ["n", "m", "k", "l"];

/** A dynamic shape in words: "[n, 3], n from 1 to 64". */
function dynamicShapeText(spec) {
  const names = [];
  const dims = spec.shape.map((dim, i) => {
    if (dim !== -1) return dim;
    const name = SIZE_NAMES[names.length] ?? `d${names.length + 1}`;
    names.push(`${name} from ${formatNumber(smallestSize(spec, i))} to ${formatNumber(spec.max_shape[i])}`);
    return name;
  });
  return `[${dims.join(", ")}], ${listText(names)}`;
}

/** "counts · INT64 [3]": a named input's label; a BYTES one with its limit, "text · BYTES [1] · up to 64 bytes of text". */
export function specLabel(spec) {
  const limit = isText(spec) && spec.max_bytes != null ? ` · up to ${plural(spec.max_bytes, "byte")} of text` : "";
  const bound = isDynamic(spec) ? ` · up to ${specShape(spec.max_shape)}` : "";
  return `${spec.name} · ${spec.datatype} ${specShape(spec.shape)}${bound}${limit}`;
}

/** A named input of strings (BYTES: UTF-8 text, each value at most its max_bytes long). */
export function isText(spec) {
  return spec?.datatype === "BYTES";
}

/** "features FP32 [4], counts INT64 [3]" */
export function specsText(specs) {
  return (specs ?? []).map((s) => `${s.name} ${s.datatype} ${specShape(s.shape)}`).join(", ");
}

/** The card's table of named tensors: [name, datatype, shape] rows. */
export function specRows(specs) {
  return (specs ?? []).map((s) => [s.name, s.datatype, isDynamic(s) ? `${specShape(s.shape)}, up to ${specShape(s.max_shape)}` : specShape(s.shape)]);
}

/** The card's table of named inputs, or null for a model of one input. {title, headers, rows} */
export function inputRows(card) {
  return hasNamedInputs(card) ? { title: `Inputs (${card.inputs.length})`, headers: ["input", "datatype", "shape"], rows: specRows(card.inputs) } : null;
}

/** "a", "a and b", "a, b and c" */
function listText(items) {
  return items.length > 1 ? `${items.slice(0, -1).join(", ")} and ${items.at(-1)}` : (items[0] ?? "");
}

const WHOLE_TYPES = new Set(["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]);
// The largest finite value of each float type; whole numbers and their ranges the server checks (its words name the input).
const FLOAT_LIMITS = { FP16: [65504, "65504"], FP32: [FLOAT32_MAX, "about 3.4e38"], FP64: [Number.MAX_VALUE, "about 1.8e308"] };
/** Named inputs with more values than this per example, or more than one dimension, get a box of several lines. */
export const NAMED_LINE_VALUES = 16;

/** One example of a named input in words: "4 numbers", "3 whole numbers", "one number", "6 numbers in shape [2, 3]",
 * "2 values, each 1 or 0"; BYTES: "one text of up to 64 bytes", "3 texts of up to 16 bytes each". */
export function specWhat(spec) {
  if (isDynamic(spec)) return dynamicWhat(spec);
  const size = sizeOf(spec.shape);
  if (isText(spec)) {
    const limit = spec.max_bytes != null ? ` of up to ${plural(spec.max_bytes, "byte")}${size === 1 ? "" : " each"}` : "";
    return `${size === 1 ? "one text" : plural(size, "text")}${spec.shape.length > 1 ? ` in shape ${specShape(spec.shape)}` : ""}${limit}`;
  }
  const word = spec.datatype === "BOOL" ? "value" : WHOLE_TYPES.has(spec.datatype) ? "whole number" : "number";
  const count = size === 1 && !spec.shape.length ? `one ${word}` : plural(size, word);
  const bools = spec.datatype === "BOOL" ? (size === 1 ? ", 1 or 0 (true or false)" : ", each 1 or 0 (true or false)") : "";
  return `${count}${spec.shape.length > 1 ? ` in shape ${specShape(spec.shape)}` : ""}${bools}`;
}

/** A dynamic input's example in words: "1 to 64 whole numbers", "numbers in shape [n, 3], n from 1 to 64",
 * "1 to 8 texts of up to 64 bytes each". */
function dynamicWhat(spec) {
  const word = isText(spec) ? "text" : spec.datatype === "BOOL" ? "value" : WHOLE_TYPES.has(spec.datatype) ? "whole number" : "number";
  const limit = isText(spec) && spec.max_bytes != null ? ` of up to ${plural(spec.max_bytes, "byte")} each` : "";
  const bools = spec.datatype === "BOOL" ? ", each 1 or 0 (true or false)" : "";
  if (spec.shape.length === 1) return `${formatNumber(smallestSize(spec, 0))} to ${formatNumber(spec.max_shape[0])} ${word}s${limit}${bools}`;
  return `${word}s in shape ${dynamicShapeText(spec)}${limit}${bools}`;
}

/** The shape a field's text gives a dynamic input: {shape}; {error} in words; {} when the text is not
 * readable as lists (the fixed-shape parser then says why, against the bound). A one-dimensional input
 * also takes a row of numbers (or one text per line); others take JSON nested lists. */
function typedShape(text, spec) {
  const who = `The input ${spec.name}`;
  const what = specWhat(spec);
  const t = String(text ?? "");
  if (!t.trim()) return { error: `${who} is empty: type ${what}.` };
  const data = jsonList(t);
  let shape;
  if (data) {
    const found = nestedShape(isText(spec) ? data : booleansAsNumbers(data, spec), "", isText(spec) ? (v) => typeof v === "string" : undefined);
    if (found.error) return {};
    shape = found.shape;
  } else if (spec.shape.length !== 1) {
    return { error: `${who} takes ${what}: type it as JSON nested lists.` };
  } else if (isText(spec)) {
    const lines = t.split(/\r\n|\r|\n/);
    while (lines.length > 1 && !lines.at(-1)) lines.pop();
    shape = [lines.length];
  } else {
    shape = [t.trim().split(/[\s,;]+/).filter(Boolean).length];
  }
  if (!fitsSpec(shape, spec)) return { error: `${who} takes ${what}; the field has ${data ? `shape ${specShape(shape)}` : plural(shape[0], isText(spec) ? "line" : "value")}.` };
  return { shape };
}

/** A dynamic input's field read against the shape it was typed in (each request chooses its sizes). */
function parseDynamic(text, spec, parse) {
  const typed = typedShape(text, spec);
  if (typed.error) return { error: typed.error };
  const fixed = { ...spec, shape: typed.shape ?? spec.max_shape, max_shape: undefined, listed: Boolean(jsonList(String(text))) };
  if (isText(spec) && sizeOf(fixed.shape) === 1 && fixed.shape.length === 1 && !jsonList(String(text))) return parse(String(text).replace(/(\r\n|\r|\n)+$/, ""), fixed);
  const parsed = parse(text, fixed);
  return parsed.error ? { error: parsed.error.replace(`takes ${specWhat(fixed)}`, `takes ${specWhat(spec)}`) } : parsed;
}

/** How the page takes a model's named inputs: a field each, labelled with its name, datatype and shape.
 * `batch`: an input of one value per example (shape []) goes as a batch of one ({"inputs": ...}: the
 * course route reads {"input": ...}'s values as lists). */
export function namedForm(card) {
  const inputs = card.inputs.map((spec, i) => {
    if (isDynamic(spec)) {
      const hint = spec.shape.length === 1
        ? `${capitalised(specWhat(spec))}: ${isText(spec) ? "one per line, or a JSON list of strings" : "separated by commas or spaces (or as a JSON list)"}.`
        : `${capitalised(specWhat(spec))}: JSON nested lists, such as ${exampleJSON(spec.shape.map((dim, d) => (dim === -1 ? smallestSize(spec, d) : dim)))}.`;
      return {
        index: i, name: spec.name, datatype: spec.datatype, shape: [...spec.shape], max_shape: [...spec.max_shape], size: sizeOf(spec.max_shape),
        max_bytes: spec.max_bytes ?? null, label: specLabel(spec), what: specWhat(spec), hint, lines: true, text: isText(spec),
      };
    }
    const size = sizeOf(spec.shape);
    const multi = spec.shape.length > 1;
    if (isText(spec)) {
      return {
        index: i, name: spec.name, datatype: spec.datatype, shape: [...spec.shape], size, max_bytes: spec.max_bytes ?? null,
        label: specLabel(spec), what: specWhat(spec), hint: textHint(spec, size), lines: true, text: true,
      };
    }
    const how = !spec.shape.length
      ? "."
      : size === 1
        ? " (or as a JSON list)."
      : multi
        ? `: JSON nested lists${size <= FORM_MAX_VALUES ? ` such as ${exampleJSON(spec.shape)}` : ""}, or the ${plural(size, "value")} in a row, separated by commas.`
        : ", separated by commas or spaces (or as a JSON list).";
    return {
      index: i, name: spec.name, datatype: spec.datatype, shape: [...spec.shape], size,
      label: specLabel(spec), what: specWhat(spec), hint: `${capitalised(specWhat(spec))}${how}`,
      lines: multi || size > NAMED_LINE_VALUES,
    };
  });
  return { mode: "named", inputs, batch: inputs.some((f) => !f.shape.length) };
}

/** A BYTES input's hint: one text is the whole field as typed; several are one per line (or JSON strings). */
function textHint(spec, size) {
  const utf8 = spec.max_bytes != null ? " (in UTF-8 an accented letter such as é takes 2 bytes)" : "";
  if (size === 1) return `${capitalised(specWhat(spec))}: the whole field is the value, its spaces, commas and line breaks as typed${utf8}.`;
  const order = spec.shape.length > 1 ? ", row by row" : "";
  const example = size <= 4 ? ` such as ${JSON.stringify(reshape(Array.from({ length: size }, (_, i) => `text ${i + 1}`), spec.shape)).replaceAll(",", ", ")}` : "";
  return `${capitalised(specWhat(spec))}: one per line${order} (blank lines at the end are ignored), or a JSON list of strings${example}${utf8}.`;
}

const BOOLEAN_WORDS = { true: 1, false: 0 };

/** One named input's field checked against its spec: {value} (a number, or nested lists in its shape), or
 * {error} in words naming the input. It takes a row of numbers (commas, spaces, tabs or new lines) or JSON
 * (a list in its shape, or flat); a BOOL's true and false are sent as 1 and 0. Whether the numbers fit the
 * datatype (whole, in range) the server checks, in words naming the input. */
export function parseNamedValue(text, spec) {
  if (isDynamic(spec)) return parseDynamic(text, spec, parseNamedValue);
  if (isText(spec)) return parseNamedText(text, spec);
  const who = `The input ${spec.name}`;
  const what = specWhat(spec);
  const shaped = spec.shape.length > 1 ? what : `${what}, shape ${specShape(spec.shape)}`;
  const t = String(text ?? "").trim();
  if (!t) return { error: `${who} is empty: type ${what}.` };
  const size = sizeOf(spec.shape);
  let flat;
  let where = (i) => (spec.shape.length > 1 ? ` at ${pathOf(i, spec.shape)}` : size > 1 ? ` (value ${i + 1})` : "");
  if (/^[[{]/.test(t)) {
    let data;
    try {
      data = JSON.parse(t);
    } catch (error) {
      return { error: `${who} is not valid JSON (${plainMessage(error.message) || "it could not be read"}): type ${what}.` };
    }
    const found = nestedShape(booleansAsNumbers(data, spec));
    if (found.error === "ragged") return { error: `${who} has lists of different lengths: it takes ${shaped}.` };
    if (found.error) return { error: `${who} holds ${shown(JSON.stringify(found.value) ?? String(found.value))}${found.path ? ` at ${found.path}` : ""}, not a number.` };
    const flatOk = found.shape.length === 1 && found.shape[0] === size && spec.shape.length !== 1;
    if (found.shape.join() !== spec.shape.join() && !flatOk) {
      return { error: `${who} takes ${shaped}; the JSON has shape ${specShape(found.shape)}.` };
    }
    flat = flatten(booleansAsNumbers(data, spec));
    if (flatOk) where = (i) => ` (value ${i + 1})`;
  } else {
    const tokens = t.split(/[\s,;]+/).filter(Boolean);
    if (tokens.length !== size) return { error: `${who} takes ${what}; the field has ${formatNumber(tokens.length)}.` };
    flat = [];
    for (let i = 0; i < tokens.length; i++) {
      const word = tokens[i].toLowerCase();
      const parsed = spec.datatype === "BOOL" && word in BOOLEAN_WORDS ? { value: BOOLEAN_WORDS[word] } : parseNumber(tokens[i]);
      if (parsed.error) return { error: `${who} holds “${shown(tokens[i])}”${where(i)}, not a number.` };
      flat.push(parsed.value);
    }
  }
  for (let i = 0; i < flat.length; i++) {
    const value = flat[i];
    const [limit, limitText] = FLOAT_LIMITS[spec.datatype] ?? [Number.MAX_VALUE, null];
    if (!Number.isFinite(value) || Math.abs(value) > limit) return { error: `${who} holds a number too large${where(i)} for ${spec.datatype}${limitText ? ` (up to ${limitText} in size)` : ""}.` };
    if (Number.isInteger(value) && !Number.isSafeInteger(value) && WHOLE_TYPES.has(spec.datatype)) {
      return { error: `${who} holds a whole number too large to send exactly${where(i)}: a browser sends them up to 9,007,199,254,740,991 in size.` };
    }
  }
  return { value: reshape(flat, spec.shape) };
}

const UTF8 = new TextEncoder();
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A BYTES input's field: {value} (strings in its shape) or {error} naming the input. One text (shape [1]
 * or []) is the field's whole text as typed: spaces, commas and line breaks kept. Several are one per line
 * (row by row; blank lines at the end ignored), or JSON: a list of strings in the input's shape, or flat.
 * Each string's UTF-8 length is checked against max_bytes, as the server does. */
function parseNamedText(text, spec) {
  const who = `The input ${spec.name}`;
  const what = specWhat(spec);
  const size = sizeOf(spec.shape);
  const t = String(text ?? "");
  if (!t) return { error: `${who} is empty: type ${what}.` };
  let flat;
  let where = () => "";
  if (size === 1 && !spec.listed) {
    flat = [t];
  } else {
    const data = jsonList(t);
    if (data) {
      const found = nestedShape(data, "", (v) => typeof v === "string");
      const shaped = spec.shape.length > 1 ? what : `${what}, shape ${specShape(spec.shape)}`;
      if (found.error === "ragged") return { error: `${who} has lists of different lengths: it takes ${shaped}.` };
      if (found.error) return { error: `${who} holds ${shown(JSON.stringify(found.value) ?? String(found.value))}${found.path ? ` at ${found.path}` : ""}, not a string.` };
      const flatOk = found.shape.length === 1 && found.shape[0] === size && spec.shape.length !== 1;
      if (found.shape.join() !== spec.shape.join() && !flatOk) return { error: `${who} takes ${shaped}; the JSON has shape ${specShape(found.shape)}.` };
      flat = flatten(data);
      where = (i) => (spec.shape.length > 1 && !flatOk ? ` at ${pathOf(i, spec.shape)}` : ` (value ${i + 1})`);
    } else {
      flat = t.split(/\r\n|\r|\n/);
      while (flat.length > 1 && !flat.at(-1)) flat.pop();
      if (flat.length !== size) return { error: `${who} takes ${what}, one per line; the field has ${plural(flat.length, "line")}.` };
      where = (i) => ` (${spec.shape.length > 1 ? `${pathOf(i, spec.shape)}, ` : ""}line ${i + 1})`;
    }
  }
  for (let i = 0; i < flat.length; i++) {
    if (LONE_SURROGATE.test(flat[i])) return { error: `${who} holds half of a character (a lone surrogate)${where(i)}: it is not UTF-8 text.` };
    const bytes = UTF8.encode(flat[i]).length;
    if (spec.max_bytes == null || bytes <= spec.max_bytes) continue;
    const long = size === 1 ? `is ${plural(bytes, "byte")} long in UTF-8` : `holds a text of ${plural(bytes, "byte")} in UTF-8${where(i)}`;
    return { error: `${who} ${long}: it takes up to ${plural(spec.max_bytes, "byte")}${size === 1 ? "" : " each"}.` };
  }
  return { value: reshape(flat, spec.shape) };
}

/** The field's text as a JSON list, or null when it is not one (then it is read as lines). */
function jsonList(text) {
  if (!/^\s*\[/.test(text)) return null;
  try {
    const data = JSON.parse(text);
    return Array.isArray(data) ? data : null;
  } catch {
    return null;
  }
}

/** JSON true and false as 1 and 0 in a BOOL input (the course route reads its values as numbers). */
function booleansAsNumbers(value, spec) {
  if (spec.datatype !== "BOOL") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  return Array.isArray(value) ? value.map((v) => booleansAsNumbers(v, spec)) : value;
}

/** Flat values as nested lists in a shape ([] : the one value). */
function reshape(flat, shape) {
  if (!shape.length) return flat[0];
  const step = flat.length / shape[0];
  return Array.from({ length: shape[0] }, (_, i) => (shape.length === 1 ? flat[i] : reshape(flat.slice(i * step, (i + 1) * step), shape.slice(1))));
}

/** Every named input's field checked, in order: {body} to post as JSON ({"input": {"<name>": <example>}},
 * or a batch of one when an input has one value per example), or {error, index} of the first wrong one. */
export function namedBody(texts, form) {
  const values = {};
  for (const field of form.inputs) {
    const checked = parseNamedValue(texts[field.index], field);
    if (checked.error) return { error: checked.error, index: field.index };
    values[field.name] = checked.value;
  }
  if (form.batch) return { body: { inputs: Object.fromEntries(Object.entries(values).map(([name, value]) => [name, [value]])) } };
  return { body: { input: values } };
}

/** The field a server's error names ("input.counts: counts is INT64: ..."), as its index in the form; -1 for none. */
export function namedFieldOfError(message, form) {
  const text = String(message ?? "");
  if (form?.mode !== "named") return -1;
  return form.inputs.findIndex((f) => text.startsWith(`input.${f.name}:`) || text.startsWith(`inputs.${f.name}:`)); // a name may hold ":" and "."
}

/** How many of a named output's values an answer shows in its table (the JSON has them all). */
export const NAMED_SHOWN = 16;

/** A named-outputs answer ({"result": {"<name>": [<example>, ...]}}), its first example, output by output in
 * the card's order: [{name, label, datatype, shape, size, missing, values: [{index, value, text}], more}]. */
export function namedOutputs(card, answer, limit = NAMED_SHOWN) {
  const result = answer?.result && typeof answer.result === "object" && !Array.isArray(answer.result) ? answer.result : {};
  return (card?.outputs ?? []).map((spec) => {
    const example = Array.isArray(result[spec.name]) ? result[spec.name][0] : undefined;
    const values = example === undefined ? [] : flatten(example);
    const first = values.slice(0, limit).map((value, i) => ({ index: spec.shape.length > 1 ? pathOf(i, spec.shape) : String(i), value, text: valueNumber(value) }));
    return { name: spec.name, label: specLabel(spec), datatype: spec.datatype, shape: [...spec.shape], size: values.length, missing: example === undefined, values: first, more: values.length - first.length };
  });
}

/** What a tab says when it does not apply to a model, or null when it does: slices and live accuracy need
 * one class per example (live error: a regressor), drift a classifier or a regressor with numeric inputs, and
 * slices a held-out evaluation, which a model of named inputs has only when imported with evaluation data. */
export function notApplicableText(card, section) {
  if (!card) return null;
  if (section === "live") return hasLive(card) ? null : oneClassOnlyText(card, "live");
  if (section === "drift") return driftNotApplicableText(card);
  if (section !== "slices") return null;
  if (!isOneClass(card)) return oneClassOnlyText(card, section);
  if (!hasNamedInputs(card)) return null;
  const takes = `${card.name} ${card.version} takes ${plural(card.inputs.length, "named input")} (${specsText(card.inputs)})`;
  return card.slices ? null : `Slices measure the accuracy per class and under shifts of held-out data: the server evaluates models taking one input tensor. ${takes}, and no held-out evaluation.`;
}


// --- a regressor's live error: GET /models/<name>/<version>/live answers a RegressionLiveReport ---------------
// Per target: MAE and RMSE with their 95% intervals, the bias (mean of predicted − true), the examples;
// the same per alias and per slice, and each target's MAE per bucket of time. Ground truth comes by
// request id (POST /models/<name>/feedback {"feedback": [{"id", "value"}]}) or with the request (X-Label: 3.5;120).

export function isRegressor(card) {
  return card?.output?.kind === "regression";
}

/** Whether the Live tab has figures for a model: one-class models' live accuracy, a regressor's live error. */
export function hasLive(card) {
  return isOneClass(card) || isRegressor(card);
}

/** The Live tab's name for a model: "Live error" for a regressor, "Live accuracy" otherwise. */
export function liveTabText(card) {
  return isRegressor(card) ? "Live error" : "Live accuracy";
}

/** An error figure: 4 significant digits below 1,000, whole with thousands separators from 1,000, an
 * exponent for tiny or huge ones; "–" for none. */
export function errorNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  const size = Math.abs(value);
  if (size === 0) return "0";
  if (size >= 1e15 || size < 1e-4) return value.toExponential(3).replace(/\.?0+e/, "e");
  const rounded = Number(value.toPrecision(4));
  if (Math.abs(rounded) >= 1000) return Math.round(value).toLocaleString("en-US");
  return String(rounded);
}

/** A signed error figure: "+12.35", "−3.2" (a real minus), "0". */
export function signedNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  const text = errorNumber(Math.abs(value));
  if (text === "0") return "0";
  return `${value < 0 ? "−" : "+"}${text}`;
}

/** "1,234 USD", "0.5" (no unit), "–" */
export function withUnit(text, unit) {
  return unit && text !== "–" ? `${text} ${unit}` : text;
}

/** A target's name with its unit: "price (USD)", "progression". */
export function targetLabel(target) {
  return target?.unit ? `${target.name} (${target.unit})` : String(target?.name ?? "–");
}

/** A MAE's or an RMSE's 95% interval as text, "1,100–1,368 USD"; an error is never below 0, so a normal
 * approximation's lower bound under 0 shows as 0. Without bounds (one example): "". */
export function errorRangeText(interval, unit) {
  const low = interval?.low;
  const high = interval?.high;
  if (typeof low !== "number" || typeof high !== "number") return "";
  return withUnit(`${errorNumber(Math.max(0, low))}–${errorNumber(high)}`, unit);
}

/** The card's held-out MAE and RMSE of each target, {name: {mae, rmse}}: its metrics' per_target; a
 * model of one target may have them only as the report's `offline` (the means over its targets). The
 * means over several targets are not shown: they add up figures in different units. */
export function offlineErrors(card, report = null) {
  const targets = card?.output?.targets ?? [];
  const perTarget = card?.metrics?.per_target ?? {};
  const number = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const found = {};
  for (const target of targets) {
    const m = perTarget[target.name];
    let mae = number(m?.mae);
    let rmse = number(m?.rmse);
    if (mae === null && rmse === null && targets.length === 1) {
      mae = number(report?.offline?.mae ?? card?.metrics?.mae);
      rmse = number(report?.offline?.rmse ?? card?.metrics?.rmse);
    }
    if (mae !== null || rmse !== null) found[target.name] = { mae, rmse };
  }
  return found;
}

/** Where a held-out MAE stands against the live MAE's interval, in words; "" without both. */
export function errorComparison(offline, interval) {
  const { low, high } = interval ?? {};
  if (typeof offline !== "number" || typeof low !== "number" || typeof high !== "number") return "";
  if (offline >= Math.max(0, low) && offline <= high) return "The held-out MAE is inside the live interval: no evidence the model errs more on live traffic.";
  if (offline < low) return "The held-out MAE is below the live interval: the model errs more on live traffic than on its held-out data.";
  return "The held-out MAE is above the live interval: the model errs less on live traffic than on its held-out data.";
}

/** The bias (mean of predicted − true) in words: "+12.35 USD: the answers are above the truth on average". */
export function biasText(bias, unit) {
  if (typeof bias !== "number" || !Number.isFinite(bias)) return "–";
  const figure = withUnit(signedNumber(bias), unit);
  if (bias === 0) return `${figure}: no bias`;
  return `${figure}: the answers are ${bias > 0 ? "above" : "below"} the truth on average`;
}

/** One target's live error as the page shows it: figures with the unit, or without (`units` false: a
 * table whose target cell names the unit). */
function targetFigures(target, errors, offline, { units = true } = {}) {
  const unit = units ? (target.unit ?? "") : "";
  const mae = errors?.mae ?? {};
  const rmse = errors?.rmse ?? {};
  const examples = errors?.examples ?? 0;
  return {
    name: target.name,
    unit,
    label: targetLabel(target),
    examples,
    examplesText: plural(examples, "example"),
    mae: withUnit(errorNumber(mae.value), unit),
    maeValue: typeof mae.value === "number" ? mae.value : null,
    maeInterval: errorRangeText(mae, unit),
    rmse: withUnit(errorNumber(rmse.value), unit),
    rmseInterval: errorRangeText(rmse, unit),
    bias: withUnit(signedNumber(errors?.bias), unit),
    biasNote: biasText(errors?.bias, unit),
    offlineMae: offline && typeof offline.mae === "number" ? withUnit(errorNumber(offline.mae), unit) : null,
    offlineRmse: offline && typeof offline.rmse === "number" ? withUnit(errorNumber(offline.rmse), unit) : null,
    comparison: examples > 1 ? errorComparison(offline?.mae, mae) : "",
  };
}

/** Each target's live error, in the card's order of targets (the report's own targets when there is no
 * card), beside its held-out error: [{name, unit, label, examples, mae, maeInterval, rmse, rmseInterval,
 * bias, biasNote, offlineMae, offlineRmse, comparison}]. */
export function targetErrorRows(report, card = null) {
  const offline = offlineErrors(card, report);
  const live = Object.fromEntries((report?.targets ?? []).map((t) => [t.name, t]));
  const targets = card?.output?.targets?.length ? card.output.targets : (report?.targets ?? []);
  return targets.map((target) => targetFigures({ name: target.name, unit: target.unit ?? live[target.name]?.unit ?? "" }, live[target.name], offline[target.name]));
}

/** The live error per alias or per slice ({name: {target: {examples, mae, rmse, bias}}}): a row per name
 * and target, names in order, targets in the card's order. */
export function errorGroupRows(groups, targets) {
  const rows = [];
  for (const name of Object.keys(groups ?? {}).sort()) {
    const byTarget = groups[name] ?? {};
    const known = (targets ?? []).filter((t) => t.name in byTarget);
    const others = Object.keys(byTarget).filter((n) => !known.some((t) => t.name === n)).map((n) => ({ name: n, unit: "" }));
    for (const target of [...known, ...others]) rows.push({ group: name, ...targetFigures(target, byTarget[target.name], null, { units: false }) });
  }
  return rows;
}

/** The summary of a regressor's live error: whether it has examples, and in how many. */
export function liveErrorSummary(report) {
  const examples = report?.examples ?? 0;
  return { has: examples > 0, examples, text: examples ? `${plural(examples, "answer")} with ${examples === 1 ? "its" : "their"} true values` : "no answer with its true values yet" };
}

/** The body of POST /models/<name>/feedback for a regressor's answer: its first example's true values
 * (one number for a single target, else one per target in the card's order). */
export function truthBody(requestId, values) {
  return { feedback: [{ id: requestId, value: values.length === 1 ? values[0] : values }] };
}

/** The "True value?" fields checked: {values} (one per target), or {error, index} in words. */
export function checkTruth(texts, targets) {
  const values = [];
  for (let i = 0; i < targets.length; i++) {
    const checked = checkValue(`the true ${targets[i].name}`, texts[i] ?? "", {});
    if (checked.error) return { error: checked.error, index: i };
    values.push(checked.value);
  }
  return { values };
}

/** The feedback call's answer for true values, in words: what joined and this answer's error per target. */
export function truthResultText(answer, rows, values) {
  if (!(answer?.joined > 0)) return "Not joined: no worker of this server remembers answering this request (too old, or answered by another replica).";
  const given = rows.map((r, i) => `${r.name} ${withUnit(valueNumber(values[i]), r.unit)}`).join(", ");
  const errors = rows.map((r, i) => `${r.name} ${withUnit(signedNumber(r.value - values[i]), r.unit)}`).join(", ");
  return `Joined: the server counts ${given} as this answer's true ${rows.length === 1 ? "value" : "values"} in its live error (this answer's error, answered − true: ${errors}).`;
}

/** Colours of a chart's lines, one per target (SERIES_COLOURS in app.mjs uses the same). */
export const LINE_COLOURS = ["#2f7dd1", "#e8590c", "#2b8a3e", "#9c36b5", "#c2255c", "#0c8599"];
/** The most panels a live error chart draws (one per unit, or per target without a unit); the tables have every target. */
export const MAX_PANELS = 6;

/** A step for about `count` ticks up to `high`: 1, 2, 2.5 or 5 times a power of ten. */
export function niceStep(high, count = 4) {
  if (!(high > 0)) return 1;
  const raw = high / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((step) => step >= raw - 1e-12);
}

/** An axis tick: "0", "2.5", "750", "1,500", "15k", "1.5M". */
export function tickText(value) {
  const size = Math.abs(value);
  if (size === 0) return "0";
  if (size >= 1e6) return `${Number((value / 1e6).toPrecision(3))}M`;
  if (size >= 1e4) return `${Number((value / 1e3).toPrecision(3))}k`;
  if (size >= 1000) return Math.round(value).toLocaleString("en-US");
  return String(Number(value.toPrecision(3)));
}

/** The targets a chart's panels group: those sharing a unit share a panel (and its axis); a target
 * without a unit has a panel of its own (nothing says it is comparable with another). */
export function chartPanels(targets, limit = MAX_PANELS) {
  const panels = [];
  targets.forEach((target, index) => {
    const shared = target.unit ? panels.find((p) => p.unit === target.unit) : null;
    if (shared) shared.targets.push({ ...target, index });
    else panels.push({ unit: target.unit || "", targets: [{ ...target, index }] });
  });
  return { panels: panels.slice(0, limit), hidden: panels.slice(limit).flatMap((p) => p.targets.map((t) => t.name)) };
}

/**
 * A regressor's MAE per bucket of time as a chart in a box `width` wide: one panel per unit (targets
 * sharing a unit share its axis, from 0), stacked, each `panelHeight` high, over one time axis; in each a
 * line per target (an SVG path, broken where a bucket has no value), a point per bucket, and the
 * target's held-out MAE as a dashed line when known. Returns {width, height, panels: [{top, bottom,
 * title, ticks, lines: [{name, index, label, d, points, offlineY}]}], xLabels, hidden} or null without points.
 */
export function errorSeriesChart(series, targets, { width, panelHeight = 150, gap = 30, pad = { top: 22, right: 12, bottom: 26, left: 52 }, bucketSeconds = 60, offline = {} } = {}) {
  const points = (series ?? []).filter((p) => Object.values(p.mae ?? {}).some((v) => typeof v === "number"));
  if (!points.length || !targets?.length) return null;
  const { panels, hidden } = chartPanels(targets);
  const first = points[0].start;
  const last = points.at(-1).start + bucketSeconds;
  const innerWidth = width - pad.left - pad.right;
  const x = (t) => round2(pad.left + (points.length === 1 ? innerWidth / 2 : ((t - first) / (last - first)) * innerWidth));
  const seconds = bucketSeconds < 60;
  const placed = panels.map((panel, i) => {
    const top = pad.top + i * (panelHeight + gap);
    const bottom = top + panelHeight;
    const values = panel.targets.flatMap((t) => [...points.map((p) => p.mae?.[t.name]), offline[t.name]?.mae]).filter((v) => typeof v === "number" && Number.isFinite(v));
    const step = niceStep(Math.max(...values, 0));
    const high = Math.max(step, Math.ceil(Math.max(...values, 0) / step - 1e-9) * step);
    const y = (v) => round2(bottom - (v / high) * panelHeight);
    const ticks = [];
    for (let k = 0; k * step <= high + 1e-9 * high; k++) ticks.push({ y: y(k * step), text: tickText(k * step), value: k * step });
    const lines = panel.targets.map((t) => {
      const at = points.map((p) => ({ start: p.start, examples: p.examples, value: p.mae?.[t.name] }))
        .map((p) => ({ ...p, x: x(points.length === 1 ? first : p.start + bucketSeconds / 2), y: typeof p.value === "number" ? y(p.value) : null }));
      let d = "";
      let open = false;
      for (const p of at) {
        if (p.y === null) {
          open = false;
          continue;
        }
        d += `${d ? " " : ""}${open ? "L" : "M"}${p.x},${p.y}`;
        open = true;
      }
      const held = offline[t.name]?.mae;
      return { name: t.name, index: t.index, label: targetLabel(t), d, points: at.filter((p) => p.y !== null), offlineY: typeof held === "number" ? y(held) : null };
    });
    const title = panel.targets.length === 1 ? `MAE of ${targetLabel(panel.targets[0])}` : `MAE in ${panel.unit}: ${panel.targets.map((t) => t.name).join(", ")}`;
    return { top, bottom, title, unit: panel.unit, ticks, lines, high };
  });
  const height = pad.top + panels.length * panelHeight + (panels.length - 1) * gap + pad.bottom;
  return {
    width,
    height,
    panels: placed,
    xLabels: [{ x: pad.left, text: clockText(first, seconds), anchor: "start" }, { x: width - pad.right, text: clockText(last, seconds), anchor: "end" }],
    hidden,
    left: pad.left,
    right: width - pad.right,
  };
}

/** The live error's series as table rows: [from, each target's MAE (no unit: the header has it), examples]. */
export function errorSeriesRows(series, targets, bucketSeconds = 60) {
  return (series ?? []).map((p) => [clockText(p.start, bucketSeconds < 60), ...(targets ?? []).map((t) => errorNumber(p.mae?.[t.name])), formatNumber(p.examples)]);
}
