// The page's logic without a browser: node --test web/
import assert from "node:assert/strict";
import { test } from "node:test";

import * as L from "./logic.mjs";

const grey = { name: "clothes", input: { kind: "image", shape: [28, 28, 1], value_range: [0, 255], divide_by: 255 }, preprocessing: { colour_mode: "L", aspect: "pad", resize: "lanczos", invert: "auto" }, output: { kind: "softmax", labels: ["a", "b", "c"] } };
const colour = { name: "damage", input: { kind: "image", shape: [128, 128, 3], value_range: [0, 255], divide_by: 255 }, preprocessing: { colour_mode: "RGB", aspect: "crop", resize: "bilinear", invert: "never" }, output: { kind: "sigmoid", labels: ["damage", "no_damage"], positive_label: "no_damage" } };
const tensor = { name: "vector", input: { kind: "tensor", shape: [4], value_range: null, divide_by: null }, preprocessing: null, output: { kind: "softmax", labels: ["x", "y"] } };

test("errorMessage shows the server's message, or the status and a short text", () => {
  assert.equal(L.errorMessage(422, '{"error": "image: not a decodable image (the formats read are PNG, JPEG)"}'), "image: not a decodable image (the formats read are PNG, JPEG)");
  // never an exception's class name: an older server said "(UnidentifiedImageError)"
  assert.equal(L.errorMessage(422, '{"error": "image: not a decodable image (UnidentifiedImageError)"}'), "image: not a decodable image");
  assert.equal(L.errorMessage(500, '{"error": "ValueError"}'), "The server failed on this request; its log says why.");
  assert.equal(L.errorMessage(418, '{"error": "KeyError"}'), "The server refused the request (HTTP 418).");
  assert.equal(L.errorMessage(502, "<html><body><h1>Bad gateway</h1></body></html>"), "HTTP 502: Bad gateway");
  assert.equal(L.errorMessage(500, ""), "HTTP 500");
  assert.equal(L.errorMessage(400, '{"detail": "x"}'), 'HTTP 400: {"detail": "x"}');
  assert.equal(L.errorMessage(503, "x".repeat(500)).length, "HTTP 503: ".length + 200);
});

test("plainMessage drops exception class names, failureText says what a failed request means", () => {
  assert.equal(L.plainMessage("runner unavailable: ConnectionRefusedError: [Errno 111] refused"), "runner unavailable: [Errno 111] refused");
  assert.equal(L.plainMessage("ValueError: bad shape"), "bad shape");
  assert.equal(L.plainMessage("x (PIL.UnidentifiedImageError)"), "x");
  assert.equal(L.plainMessage("the state backend is unreachable: TimeoutError; serving goes on"), "the state backend is unreachable; serving goes on");
  assert.equal(L.plainMessage("no Error here, nor in ValueErrors"), "no Error here, nor in ValueErrors");
  assert.equal(L.plainMessage(undefined), "");
  assert.equal(L.failureText(new TypeError("Failed to fetch")), "The server could not be reached: check that it is running and try again.");
  assert.equal(L.failureText(new SyntaxError("Unexpected token < in JSON at position 0")), "The server's answer could not be read.");
  assert.equal(L.failureText(new Error("missing API token")), "missing API token");
  assert.equal(L.failureText(new Error("TypeError")), "Something went wrong; try again.");
});

test("topClasses sorts by probability, keeps class ids, breaks ties by id and cuts at k", () => {
  const top = L.topClasses([0.1, 0.6, 0.1, 0.2], ["a", "b", "c", "d"], 3);
  assert.deepEqual(top, [
    { classId: 1, label: "b", probability: 0.6 },
    { classId: 3, label: "d", probability: 0.2 },
    { classId: 0, label: "a", probability: 0.1 },
  ]);
  assert.equal(L.topClasses([0.3, 0.7], ["damage", "no_damage"]).length, 2);
  assert.equal(L.topClasses([1], [])[0].label, "class 0");
});

test("percent and number formats", () => {
  assert.equal(L.percent(0.9312), "93.1%");
  assert.equal(L.percent(1), "100.0%");
  assert.equal(L.percent(0), "0.0%");
  assert.equal(L.percent(0.0001), "<0.1%");
  assert.equal(L.percent(0.25, 0), "25%");
  assert.equal(L.percent(NaN), "–");
  assert.equal(L.formatNumber(44426), "44,426");
  assert.equal(L.formatNumber(0.4715733), "0.4716");
  assert.equal(L.formatNumber(1.7881393432617188e-7), "1.788e-7");
  assert.equal(L.formatNumber(null), "–");
});

test("valueText and settingsRows flatten a card's nested settings", () => {
  assert.equal(L.valueText([]), "none");
  assert.equal(L.valueText(["flip", "shift"]), "flip, shift");
  assert.equal(L.valueText(false), "no");
  assert.equal(L.valueText({ p_value: 0.01 }), "p_value=0.01");
  assert.deepEqual(L.settingsRows({ epochs: 1, augment: [], optimizer: { name: "adam", beta: 0.9 }, empty: {} }), [
    ["epochs", "1"],
    ["augment", "none"],
    ["optimizer.name", "adam"],
    ["optimizer.beta", "0.9"],
    ["empty", "none"],
  ]);
  assert.deepEqual(L.settingsRows(null), []);
});

test("the card decides: drawing for small grey images only, no image inputs for tensors", () => {
  assert.equal(L.canDraw(grey), true);
  assert.equal(L.canDraw(colour), false);
  assert.equal(L.canDraw(tensor), false);
  assert.equal(L.canDraw({ ...grey, input: { ...grey.input, shape: [96, 96, 1] } }), false);
  assert.equal(L.canDraw(null), false);
  assert.equal(L.isImageCard(colour), true);
  assert.equal(L.isImageCard(tensor), false);
});

test("inverting the levels is offered for grey image cards only", () => {
  assert.equal(L.canInvert(grey), true);
  assert.equal(L.canInvert({ ...grey, input: { ...grey.input, shape: [96, 96, 1] } }), true); // too large to draw, still grey
  assert.equal(L.canInvert(colour), false); // satellite photos: "inverted" means nothing
  assert.equal(L.canInvert(tensor), false);
  assert.equal(L.canInvert(null), false);
});

test("summaries of input, preprocessing and output", () => {
  assert.equal(L.inputSummary(grey), "28×28 grey image, values 0..255 (divided by 255)");
  assert.equal(L.inputSummary(colour), "128×128 colour image, values 0..255 (divided by 255)");
  assert.equal(L.inputSummary({ ...grey, input: { ...grey.input, shape: [20, 30, 1] } }).startsWith("30×20"), true);
  assert.equal(L.inputSummary(tensor), "a tensor of shape 4, any finite values");
  assert.match(L.preprocessingSummary(grey), /grey, padded .* \(lanczos\); inverted when its border is light/);
  assert.match(L.preprocessingSummary(colour), /RGB colour, centre-cropped/);
  assert.match(L.preprocessingSummary(tensor), /^none/);
  assert.equal(L.outputSummary(grey), "softmax over 3 labels");
  assert.equal(L.outputSummary(colour), "one sigmoid unit: the probability of “no_damage”");
});

test("trafficSplit: a plain alias today, weighted aliases in any of their likely forms", () => {
  assert.deepEqual(L.trafficSplit("v1"), [{ version: "v1", share: 1 }]);
  assert.deepEqual(L.trafficSplit({ v1: 90, v2: 10 }), [{ version: "v1", share: 0.9 }, { version: "v2", share: 0.1 }]);
  assert.deepEqual(L.trafficSplit({ traffic: { v2: 1, v1: 3 } }), [{ version: "v1", share: 0.75 }, { version: "v2", share: 0.25 }]);
  assert.deepEqual(L.trafficSplit([{ version: "v1", weight: 50 }, { version: "v2", weight: 50 }]), [{ version: "v1", share: 0.5 }, { version: "v2", share: 0.5 }]);
  assert.deepEqual(L.trafficSplit({ version: "v3" }), [{ version: "v3", share: 1 }]);
  assert.deepEqual(L.trafficSplit({ v1: 0, v2: 5 }), [{ version: "v2", share: 1 }]);
  assert.deepEqual(L.trafficSplit({}), []);
  assert.deepEqual(L.trafficSplit(null), []);
  assert.equal(L.splitText(L.trafficSplit({ v1: 90, v2: 10 })), "v1 90% · v2 10%");
  assert.equal(L.splitText(L.trafficSplit("v1")), "v1");
  assert.equal(L.splitText([]), "–");
});

test("shadowText says where a share of an alias's traffic is mirrored", () => {
  assert.equal(L.shadowText({ alias: "stable", candidate: "v2", share: 0.1 }), "10% of the requests through stable also go to v2 in the shadow (its answers are compared, never returned)");
  assert.equal(L.shadowText(null), "");
  assert.equal(L.shadowText({}), "");
});

test("versionChoices lists aliases with their targets, then versions with status and engine", () => {
  const listing = {
    name: "clothes",
    versions: [
      { version: "v1", aliases: ["stable"], status: "ready", reason: null, engine: "onnxruntime" },
      { version: "v2", aliases: [], status: "loading", reason: "runner is loading", engine: null },
    ],
    aliases: { stable: "v1", canary: { v1: 90, v2: 10 } },
    default_version: "stable",
  };
  assert.deepEqual(L.versionChoices(listing), [
    { value: "stable", text: "stable → v1" },
    { value: "canary", text: "canary → v1 90% · v2 10%" },
    { value: "v1", text: "v1 (ready, onnxruntime)" },
    { value: "v2", text: "v2 (loading)" },
  ]);
  assert.deepEqual(L.aliasRows({}), []);
});

test("sliceRows: classes and shifts, worst first, the card's worst marked", () => {
  const slices = {
    overall: 0.8,
    classes: { a: 0.9, b: 0.5 },
    shifts: { inverted: 0.1, noise: 0.7 },
    shift_specs: { inverted: { kind: "inverted", about: "255 - level" } },
    worst: { slice: "shift:inverted", accuracy: 0.1 },
  };
  const rows = L.sliceRows(slices);
  assert.deepEqual(rows.map((r) => r.slice), ["shift:inverted", "class:b", "shift:noise", "class:a"]);
  assert.equal(rows[0].worst, true);
  assert.equal(rows[0].about, "255 - level");
  assert.equal(rows.filter((r) => r.worst).length, 1);
  assert.deepEqual(L.sliceRows(null), []);
});

test("drift rows, window text and class shares", () => {
  const drift = {
    window: { size: 250, capacity: 1000, min_samples: 200, predictions_seen: 300 },
    drifted: true,
    verdict: "drift",
    statistics: {
      mean_level: { test: "ks", value: 0.1, p_value: 0.5, threshold: { p_value: 0.01 }, drifted: false },
      class_shares: { test: "psi", value: 0.4, threshold: 0.2, drifted: true },
    },
    class_shares: { window: [0.5, 0.5], reference: [0.9, 0.1] },
  };
  const rows = L.driftRows(drift);
  assert.deepEqual(rows.map((r) => [r.name, r.drifted, r.pValue, r.status]), [["class_shares", true, null, "yes"], ["mean_level", false, 0.5, "no"]]);
  assert.equal(L.thresholdText(rows[1].threshold), "p < 0.01");
  assert.equal(L.thresholdText(rows[0].threshold), "> 0.2");
  assert.equal(L.thresholdText({ p_value: 0.01, other: 1 }), "p_value=0.01, other=1");
  assert.equal(L.driftJudged(drift), true);
  assert.equal(L.driftSummary({ ...drift, model: "clothes", version: "v1" }), "clothes v1; drifted: yes");
  assert.equal(L.referenceText({ reference_images: 3194 }), "reference: 3,194 held-out images (the evaluation set, never trained on)");
  assert.equal(L.windowText(drift), "250 of 1,000 recent examples in the window (at least 200 needed); 300 predictions seen");
  assert.deepEqual(L.classShareRows(drift, ["a", "b"]), [{ label: "a", window: 0.5, reference: 0.9 }, { label: "b", window: 0.5, reference: 0.1 }]);
  assert.deepEqual(L.driftRows({}), []);
  assert.deepEqual(L.classShareRows(null, []), []);
});

test("before the window holds enough predictions, no statistic is said to be drifted or not", () => {
  // What lifecycle/drift.py's report_of answers then: statistics computed, every drifted false.
  const early = {
    model: "damage",
    version: "v2",
    window: { size: 12, capacity: 1000, min_samples: 200, predictions_seen: 12 },
    drifted: false,
    verdict: "too few predictions",
    statistics: { confidence_ks: { test: "ks_2samp", value: 0.9, p_value: 3e-6, threshold: { p_value: 0.001 }, drifted: false } },
  };
  assert.equal(L.driftJudged(early), false);
  assert.deepEqual(L.driftRows(early).map((r) => [r.status, r.drifted, r.judged]), [["not judged yet", false, false]]);
  assert.equal(L.driftSummary(early), "damage v2; drifted: not judged yet");
  // the verdict alone decides when a report has no window (an older or pooled form)
  assert.equal(L.driftJudged({ verdict: "too few predictions", statistics: {} }), false);
  assert.equal(L.driftJudged({ verdict: "no drift" }), true);
  assert.equal(L.driftJudged(null), false);
});

test("metricRows keeps the scalar metrics", () => {
  assert.deepEqual(L.metricRows({ accuracy: 0.52401, test_images: 500, per_class: {}, confusion_matrix: [[1]] }), [["accuracy", "0.5240"], ["test images", "500"]]);
  assert.deepEqual(L.metricRows(null), []);
});

test("polylinePoints spans the box, y downwards", () => {
  assert.equal(L.polylinePoints([0, 1, 2], 100, 10), "0,10 50,5 100,0");
  assert.equal(L.polylinePoints([3, 3], 10, 10), "0,10 10,10");
  assert.equal(L.polylinePoints([], 10, 10), "");
  assert.equal(L.polylinePoints([1, 2], 10, 10, 0, 4), "0,7.5 10,5");
});

test("drawing: a stamp lights the pixels under the brush only, fully at its centre", () => {
  const levels = L.emptyLevels(28, 28);
  L.stamp(levels, 28, 28, 14.5, 14.5, 1);
  assert.equal(levels[14 * 28 + 14], 255);
  assert.ok(levels[14 * 28 + 15] > 0);
  assert.equal(levels[0], 0);
  assert.equal(levels[14 * 28 + 18], 0);
  L.stamp(levels, 28, 28, -5, -5, 1); // off the canvas: nothing, no error
  L.stamp(levels, 28, 28, 0.5, 0.5, 1);
  assert.equal(levels[0], 255);
});

test("drawing: a stroke is continuous and levels never decrease", () => {
  const levels = L.emptyLevels(10, 10);
  L.stroke(levels, 10, 10, { x: 0.5, y: 5.5 }, { x: 9.5, y: 5.5 }, 0.5);
  for (let col = 0; col < 10; col++) assert.equal(levels[5 * 10 + col], 255, `column ${col}`);
  assert.equal(levels[0], 0);
  const before = Array.from(levels);
  L.stamp(levels, 10, 10, 5.5, 6.5, 0.2);
  levels.forEach((level, i) => assert.ok(level >= before[i]));
});

test("drawing: rows for JSON, RGBA for the canvas, blank check, pointer mapping", () => {
  const levels = L.emptyLevels(3, 2);
  assert.equal(L.isBlank(levels), true);
  levels[4] = 200;
  assert.equal(L.isBlank(levels), false);
  assert.deepEqual(L.levelsToRows(levels, 3, 2), [[0, 0, 0], [0, 200, 0]]);
  const rgba = L.levelsToRGBA(levels);
  assert.equal(rgba.length, 24);
  assert.deepEqual(Array.from(rgba.subarray(16, 20)), [200, 200, 200, 255]);
  assert.deepEqual(L.pointToPixel(150, 80, { left: 10, top: 10, width: 280, height: 280 }, 28, 28), { x: 14, y: 7 });
});

test("the address holds the model, the version and the section shown", () => {
  assert.deepEqual(L.parseHash("#clothes/stable"), { model: "clothes", version: "stable", section: "" });
  assert.deepEqual(L.parseHash(""), { model: "", version: "", section: "" });
  assert.deepEqual(L.parseHash("#damage"), { model: "damage", version: "", section: "" });
  assert.deepEqual(L.parseHash("#clothes/stable/drift"), { model: "clothes", version: "stable", section: "drift" });
  assert.deepEqual(L.parseHash("#clothes/stable/nonsense"), { model: "clothes", version: "stable", section: "" });
  assert.deepEqual(L.parseHash("#slices"), { model: "", version: "", section: "slices" }); // an anchor to a section
  assert.deepEqual(L.parseHash("#slices", ["slices"]), { model: "slices", version: "", section: "" }); // unless a model has its name
  assert.deepEqual(L.parseHash("#try"), { model: "try", version: "", section: "" }); // not a section: the page ignores it
  assert.equal(L.makeHash("clothes", "v1"), "#clothes/v1");
  assert.equal(L.makeHash("clothes", "v1", "card"), "#clothes/v1"); // the first section is the default
  assert.equal(L.makeHash("clothes", "v1", "report"), "#clothes/v1/report");
  assert.deepEqual(L.parseHash(L.makeHash("a.b", "v-1", "versions")), { model: "a.b", version: "v-1", section: "versions" });
  assert.equal(L.SECTIONS[0], "card");
});

test("tabs: arrows move and wrap, Home and End jump, other keys do nothing", () => {
  assert.equal(L.tabAfterKey(0, "ArrowRight", 6), 1);
  assert.equal(L.tabAfterKey(5, "ArrowRight", 6), 0);
  assert.equal(L.tabAfterKey(0, "ArrowLeft", 6), 5);
  assert.equal(L.tabAfterKey(2, "ArrowDown", 6), 3);
  assert.equal(L.tabAfterKey(2, "ArrowUp", 6), 1);
  assert.equal(L.tabAfterKey(3, "Home", 6), 0);
  assert.equal(L.tabAfterKey(3, "End", 6), 5);
  assert.equal(L.tabAfterKey(3, "Enter", 6), null);
});

test("the token is kept in the given storage, and sent as a bearer header", () => {
  const memory = new Map();
  const storage = { getItem: (k) => memory.get(k) ?? null, setItem: (k, v) => memory.set(k, v), removeItem: (k) => memory.delete(k) };
  const store = L.tokenStore(storage);
  assert.equal(store.get(), null);
  store.set("s3cret");
  assert.equal(memory.get(L.TOKEN_KEY), "s3cret");
  assert.equal(store.get(), "s3cret");
  store.clear();
  assert.equal(store.get(), null);
  const broken = L.tokenStore({ getItem: () => { throw new Error("denied"); } });
  assert.equal(broken.get(), null);
  assert.deepEqual(L.withToken({ "Content-Type": "application/json" }, "t"), { "Content-Type": "application/json", Authorization: "Bearer t" });
  assert.deepEqual(L.withToken({}, null), {});
});

test("fleetRows and fleetDriftLines describe each replica and the fleet-wide drift of one model", () => {
  const status = {
    generation: 7,
    replicas: [
      { replica: "a", generation: 7, in_sync: true, ready: true, models: { clothes: { versions: { v1: "ready", v3: "ready" } } }, failures: {}, divergence: [], drift: { clothes: { v1: { verdict: "no drift", window: 900 } } } },
      { replica: "b", generation: 6, in_sync: false, ready: true, models: { clothes: { versions: { v1: "ready", v3: "loading" } } }, failures: {}, divergence: [] },
      { replica: "c", generation: 7, in_sync: false, ready: false, models: {}, failures: { "clothes:v3": "no free runner" }, divergence: ["clothes alias stable -> v3: v3 not served here"] },
    ],
    drift: { clothes: { v1: { replicas: 2, verdict: "no drift", window: { size: 1500 } }, v3: { replicas: 1, verdict: "too few predictions", window: { size: 20 } } } },
  };
  assert.deepEqual(L.fleetRows(status, "clothes"), [
    { replica: "a", generation: "7 of 7", sync: "in sync", ready: "ready", versions: "v1, v3", drift: "v1: no drift", notes: "" },
    { replica: "b", generation: "6 of 7", sync: "behind", ready: "ready", versions: "v1, v3 (loading)", drift: "–", notes: "" },
    { replica: "c", generation: "7 of 7", sync: "diverging", ready: "not ready", versions: "–", drift: "–", notes: "clothes:v3: no free runner; clothes alias stable -> v3: v3 not served here" },
  ]);
  assert.deepEqual(L.fleetDriftLines(status, "clothes"), ["v1: no drift, over 2 replicas (1,500 recent predictions)", "v3: too few predictions, over 1 replica (20 recent predictions)"]);
  assert.deepEqual(L.fleetDriftLines(status, "damage"), []);
});

test("an answer: its label, or an abstention with its score; a null label is never shown as text", () => {
  const given = { class_id: 7, label: "Sneaker", confidence: 0.9, ood_score: 0.61, abstained: false };
  assert.deepEqual(L.predictionSummary(given), { abstained: false, label: "Sneaker", score: 0.61, text: "Sneaker" });
  const abstained = { class_id: null, label: null, confidence: 0.9, ood_score: 0.1, abstained: true };
  assert.deepEqual(L.predictionSummary(abstained), { abstained: true, label: null, score: 0.1, text: "no label (the model abstains)" });
  assert.equal(L.predictionSummary({ class_id: null, label: null, confidence: 0.5 }).abstained, true); // no flag, still no label
  assert.deepEqual(L.predictionSummary({ class_id: 1, label: "b", confidence: 0.5 }), { abstained: false, label: "b", score: null, text: "b" }); // an older server: no score
  assert.equal(L.abstentionText(0.1), "The model abstains: this input looks unlike its held-out data (score 0.1).");
  assert.equal(L.abstentionText(null), "The model abstains: this input looks unlike its held-out data (score –).");
  assert.equal(L.oodText(0.612345), "Out-of-distribution score: 0.6123 (higher: less like the held-out data).");
  assert.equal(L.oodText(undefined), "");
  const answer = { model: "clothes", version: "v1", predictions: [given] };
  assert.equal(L.answeredText(answer, "stable", 12.4), "Answered by clothes v1 (through stable) in 12 ms: Sneaker.");
  assert.equal(L.answeredText({ ...answer, predictions: [abstained] }, "v1", 3), "Answered by clothes v1 in 3 ms: no label (the model abstains).");
});

test("ground truth for an answer: the feedback body, the labels offered, the server's answer in words", () => {
  assert.deepEqual(L.feedbackBody("3f2a", "Bag"), { feedback: [{ id: "3f2a", label: "Bag" }] });
  assert.deepEqual(L.correctionChoices(["a", "b", "c"], "b"), ["a", "c"]);
  assert.deepEqual(L.correctionChoices(["a", "b"], null), ["a", "b"]); // after an abstention: any label
  assert.match(L.feedbackResultText({ accepted: 1, joined: 1, unknown: [], unknown_ids: 0 }, "Bag"), /^Joined: .*“Bag”/);
  assert.match(L.feedbackResultText({ accepted: 1, joined: 0, unknown: ["x"], unknown_ids: 1 }, "Bag"), /^Not joined: /);
});

const live = {
  model: "clothes", version: "v1", offline: { accuracy: 0.85 }, window_seconds: 3600, examples: 20,
  accuracy: { value: 0.6, low: 0.3866, high: 0.7812, examples: 20, correct: 12 },
  classes: [
    { label: "Bag", recall: 1, low: 0.5, high: 1, examples: 3 },
    { label: "Coat", recall: null, low: null, high: null, examples: 0 },
    { label: "Shirt", recall: 0.25, low: 0.05, high: 0.7, examples: 4 },
  ],
  calibration: { ece: 0.3, bins: [{ low: 0.9, high: 1, examples: 20, confidence: 0.9, accuracy: 0.6 }] },
  aliases: { stable: { value: 0.7, low: 0.4, high: 0.9, examples: 10, correct: 7 }, canary: { value: 0.5, low: 0.2, high: 0.8, examples: 10, correct: 5 } },
  slices: {},
  series: [
    { start: 600, value: 0.5, low: 0.2, high: 0.8, examples: 10, correct: 5 },
    { start: 720, value: 0.7, low: 0.4, high: 0.9, examples: 10, correct: 7 },
  ],
  first: 601, last: 750,
};

test("live accuracy beside the held-out one, with its interval and what their difference says", () => {
  assert.deepEqual(L.liveSummary(live), {
    has: true, live: "60.0%", interval: "95% interval 38.7–78.1%", counts: "12 of 20 right", offline: "85.0%",
    difference: "The held-out accuracy is above the live interval: the model does worse on live traffic than on its held-out images.",
  });
  assert.match(L.liveSummary({ ...live, offline: { accuracy: 0.7 } }).difference, /inside the live interval/);
  const empty = L.liveSummary({ ...live, examples: 0, accuracy: { value: null, low: null, high: null, examples: 0, correct: 0 }, offline: { accuracy: null } });
  assert.deepEqual(empty, { has: false, live: "–", interval: "no examples with ground truth yet", counts: "", offline: "–", difference: "" });
  assert.equal(L.intervalText(0.6, 0.3866, 0.7812), "60.0% (95% interval 38.7–78.1%)");
  assert.equal(L.intervalText(null, null, null), "–");
  assert.equal(L.durationText(3600), "1 h");
  assert.equal(L.durationText(90), "1.5 min");
  assert.equal(L.durationText(45), "45 s");
});

test("live tables: classes and groups worst first, classes without examples last, calibration bins", () => {
  assert.deepEqual(L.classRecallRows(live.classes).map((c) => [c.label, c.recall, c.interval, c.examples]), [
    ["Shirt", "25.0%", "5.0–70.0%", "4"],
    ["Bag", "100.0%", "50.0–100.0%", "3"],
    ["Coat", "–", "–", "0"],
  ]);
  assert.deepEqual(L.proportionRows(live.aliases).map((r) => [r.name, r.accuracy, r.interval, r.counts]), [
    ["canary", "50.0%", "20.0–80.0%", "5 of 10"],
    ["stable", "70.0%", "40.0–90.0%", "7 of 10"],
  ]);
  assert.deepEqual(L.proportionRows({}), []);
  assert.deepEqual(L.calibrationRows(live.calibration), [{ bin: "90%–100%", examples: "20", confidence: "90.0%", accuracy: "60.0%", gap: "−30.0 pt" }]);
  assert.match(L.eceText(live.calibration), /^Expected calibration error 0\.3: .* 30\.0 points/);
  assert.match(L.eceText({ ece: null, bins: [] }), /^No calibration yet/);
});

test("the live series as a chart: points by time, the interval as a band, the held-out line, ticks", () => {
  assert.equal(L.bucketSeconds(live.series), 120);
  assert.equal(L.bucketSeconds(live.series.slice(0, 1)), 60);
  const pad = { top: 10, right: 10, bottom: 30, left: 50 };
  const chart = L.seriesChart(live.series, { width: 460, height: 240, pad, offline: 0.85, bucketSeconds: 120 });
  assert.equal(chart.yLow, 0.2); // rounded out to tenths around the lows, the highs and the held-out line
  assert.equal(chart.yHigh, 0.9);
  assert.deepEqual(chart.points.map((p) => [p.x, p.y]), [[150, 124.29], [350, 67.14]]); // bucket centres: 660 and 780 of 600..840
  assert.equal(chart.line, "150,124.29 350,67.14");
  assert.equal(chart.band, "150,38.57 350,10 350,152.86 150,210"); // over the highs, back under the lows
  assert.ok(chart.points.every((p) => p.high <= p.y && p.y <= p.low)); // the band holds each point
  assert.ok(Math.abs(chart.offlineY - (10 + (1 - (0.85 - 0.2) / 0.7) * 200)) < 0.01);
  assert.deepEqual(chart.ticks.map((t) => t.text), ["20%", "40%", "60%", "80%"]);
  assert.equal(chart.ticks[0].y, 210); // the bottom of the plot
  assert.deepEqual(chart.xLabels.map((l) => l.anchor), ["start", "end"]);
  assert.match(chart.xLabels[0].text, /^\d\d:\d\d$/);
  const one = L.seriesChart(live.series.slice(0, 1), { width: 460, height: 240, pad });
  assert.equal(one.points[0].x, 250); // one point: in the middle
  assert.equal(L.seriesChart([], { width: 450, height: 240 }), null);
  assert.equal(L.seriesChart([{ start: 0, value: null, low: null, high: null }], { width: 450, height: 240 }), null);
});

// A rollout as GET /models/<name>/rollouts gives it (serving/fleet/desired.py, gate values from serving/fleet/rollouts.py judge)
const gates = { max_error_rate: 0.01, max_p99_ms: null, max_accuracy_drop: 0.02, min_labelled: 0, max_ood_increase: null };
const judged = { requests: 120, baseline_requests: 2280, error_rate: 0.008333, baseline_error_rate: 0, p99_ms: 20, baseline_p99_ms: 10, ood_mean: 0.41234, baseline_ood_mean: 0.40111, dwell_seconds: 30.5, accuracy: 0.9, accuracy_high: 0.95, labelled: 40, baseline_accuracy: 0.92, baseline_labelled: 400 };
const rollout = {
  alias: "stable", candidate: "v2", baseline: "v1", steps: [5, 25, 50, 100], step: 1, status: "running", min_dwell_seconds: 30, min_requests: 100, gates, step_started: 1000.5,
  events: [
    { action: "start", step: 0, share: 5, reason: "v2 takes 5% of stable (from v1)", gates: {}, time: 970, generation: 3 },
    { action: "advance", step: 1, share: 25, reason: "gates held for 5%: 25% now", gates: judged, time: 1000.5, generation: 4 },
  ],
};

test("a rollout's status, share and line in words", () => {
  assert.deepEqual(["running", "paused", "completed", "rolled_back", "aborted", "odd_one"].map(L.rolloutStatusText), ["Running", "Paused", "Completed", "Rolled back", "Aborted", "odd one"]);
  assert.deepEqual(["start", "advance", "complete", "rollback", "pause", "resume", "abort"].map(L.rolloutActionText), ["started", "advanced", "completed", "rolled back", "paused", "resumed", "aborted"]);
  assert.equal(L.rolloutShare(rollout), 25);
  assert.equal(L.rolloutLine(rollout), "Running, at step 2 of 4 (25%): v2 gets 25% of stable's requests, v1 the other 75%.");
  const rolledBack = { ...rollout, status: "rolled_back", events: [...rollout.events, { action: "rollback", step: 1, share: 0, reason: "error rate 0.0312 > 0.01 over 320 requests", gates: judged, time: 1010, generation: 5 }] };
  assert.equal(L.rolloutShare(rolledBack), 0);
  assert.equal(L.rolloutLine(rolledBack), "Rolled back at step 2 of 4 (25%): a gate broke, and stable serves v1 again.");
  assert.match(L.rolloutLine({ ...rollout, status: "paused" }), /^Paused at step 2 of 4 \(25%\): .*until it resumes\.$/);
  assert.match(L.rolloutLine({ ...rollout, status: "completed", step: 3, events: [] }), /^Completed: v2 serves all of stable's requests/);
  assert.equal(L.rolloutShare({ ...rollout, status: "completed", events: [] }), 100);
  assert.equal(L.rolloutShare({ ...rollout, events: [] }), 25); // no event yet: its step's share
  assert.ok(L.rolloutActive(rollout) && L.rolloutActive({ status: "paused" }) && !L.rolloutActive({ status: "aborted" }));
});

test("a rollout's steps: done, current, not reached; where it broke or stopped", () => {
  assert.deepEqual(L.rolloutSteps(rollout).map((s) => [s.text, s.state]), [["5%", "done"], ["25%", "current"], ["50%", "next"], ["100%", "next"]]);
  assert.equal(L.rolloutSteps(rollout)[2].label, "50%: not reached");
  assert.deepEqual(L.rolloutSteps({ ...rollout, status: "rolled_back" }).map((s) => s.state), ["done", "broke", "next", "next"]);
  assert.deepEqual(L.rolloutSteps({ ...rollout, status: "aborted", step: 0 }).map((s) => s.label), ["5%: aborted here", "25%: not reached", "50%: not reached", "100%: not reached"]);
  assert.deepEqual(L.rolloutSteps({ ...rollout, status: "completed", step: 3 }).map((s) => s.state), ["done", "done", "done", "done"]);
  assert.equal(L.rolloutSteps({ ...rollout, status: "paused" })[1].label, "25%: current, paused");
});

test("a rollout's gates and what a step needs, in words", () => {
  assert.equal(L.gatesText(gates), "failed requests at most 1%; live accuracy not judged (min_labelled 0)");
  assert.equal(L.gatesText({ max_error_rate: 0.005, max_p99_ms: 50, max_accuracy_drop: 0.02, min_labelled: 200, max_ood_increase: 0.1 }),
    "failed requests at most 0.5%; p99 latency at most 50 ms; live accuracy at most 2 points below the baseline's (judged over 200 labelled examples of each); mean OOD score at most 0.1 above the baseline's");
  assert.equal(L.gatesText({ ...gates, min_shadow_agreement: 0.95, min_shadow_examples: 200, shadow_share: 0.2 }),
    "failed requests at most 1%; live accuracy not judged (min_labelled 0); the same answer as the baseline on at least 95% of 20% of its requests, mirrored (judged over 200 examples per step)");
  assert.equal(L.advanceText(rollout), "30 s and 100 requests of v2 in the step, with no gate broken");
  assert.equal(L.advanceText({ ...rollout, min_dwell_seconds: 3600, min_requests: 1 }), "1 h and 1 request of v2 in the step, with no gate broken");
});

test("a rollout's timeline: times from its start, actions in words, the gate values it was decided on", () => {
  assert.deepEqual([0, 12.34, 90, 5400, -1, NaN].map(L.elapsedText), ["+0 s", "+12.3 s", "+1.5 min", "+1.5 h", "+0 s", "–"]);
  const rows = L.rolloutTimeline(rollout);
  assert.deepEqual(rows.map((r) => [r.after, r.action, r.share, r.reason]), [
    ["+0 s", "started", "5%", "v2 takes 5% of stable (from v1)"],
    ["+30.5 s", "advanced", "25%", "gates held for 5%: 25% now"],
  ]);
  assert.deepEqual(rows[0].gates, []); // started: nothing judged
  assert.deepEqual(rows[1].gates.map((g) => g.text), ["120 requests", "error rate 0.83%", "p99 ≤ 20 ms", "accuracy 90.0% vs 92.0% (40 labelled)", "OOD 0.412 vs 0.401", "after 30.5 s in the step"]);
  // values may be null: left out, or "–" beside the baseline's
  assert.deepEqual(L.gateValues({ requests: 1, error_rate: 0, p99_ms: null, ood_mean: null, baseline_ood_mean: 0.2, accuracy: null, baseline_accuracy: null, labelled: 0 }).map((g) => g.text),
    ["1 request", "error rate 0.00%", "OOD – vs 0.2"]);
  assert.deepEqual(L.gateValues({ requests: 3, shadow_agreement: 0.912, shadow_examples: 250 }).map((g) => g.text), ["3 requests", "agreement 91.2% (250 compared)"]);
  assert.deepEqual(L.gateValues({}), []);
  assert.deepEqual(L.rolloutTimeline({ events: [] }), []);
});

test("rollouts sorted, steps parsed, the plan, the form's choices, the curl, admin answers in words", () => {
  const done = { ...rollout, alias: "legacy", status: "completed", events: [{ ...rollout.events[0], time: 5000 }] };
  assert.deepEqual(L.sortRollouts([done, rollout]).map((r) => r.alias), ["stable", "legacy"]); // the active one first
  assert.deepEqual(L.parseSteps("5, 25, 50, 100"), { steps: [5, 25, 50, 100] });
  assert.deepEqual(L.parseSteps(" 10% 100% "), { steps: [10, 100] });
  assert.deepEqual(L.parseSteps("100"), { steps: [100] });
  for (const bad of ["", "5, 25", "25, 5, 100", "0, 100", "5.5, 100", "5, 5, 100", "five, 100", "5, 101"]) assert.match(L.parseSteps(bad).error, /^Steps: whole percentages/, bad);
  assert.deepEqual(L.rolloutPlan({ alias: "stable", candidate: "v2", steps: [5, 100], minDwellSeconds: "60", minRequests: "" }), { alias: "stable", candidate: "v2", steps: [5, 100], min_dwell_seconds: 60 });
  const listing = { aliases: { stable: "v1", canary: { v1: 90, v2: 10 } }, versions: [{ version: "v1", status: "ready" }, { version: "v2", status: "ready" }, { version: "v3", status: "loading" }] };
  assert.deepEqual(L.startableAliases(listing), [{ alias: "stable", version: "v1" }]); // a split alias cannot start one
  assert.deepEqual(L.candidateVersions(listing, "v1"), ["v2"]);
  assert.equal(L.rolloutCurl("http://localhost:3000", "clothes", "stable", "v2"),
    `curl -X POST http://localhost:3000/models/clothes/rollouts -H 'content-type: application/json' -d '{"alias": "stable", "candidate": "v2", "steps": [5, 25, 50, 100]}'`);
  assert.match(L.rolloutCurl("http://x", "clothes", "stable", "v2", true), / -H "Authorization: Bearer \$TOKEN" -d /);
  const answer = { ...rollout, model: "clothes", generation: 6 };
  assert.equal(L.rolloutActionResult("start", answer), "Started: v2 takes 5% of stable's requests (v1 the rest).");
  assert.equal(L.rolloutActionResult("pause", answer), "The rollout of v2 through stable is paused.");
  assert.equal(L.rolloutActionResult("abort", answer), "The rollout of v2 through stable is aborted: stable serves v1 again.");
  const off = L.errorMessage(403, '{"error": "admin operations are off: configure an API token (security.api_token_env), or set live.admin_without_token"}');
  assert.equal(L.adminRefusal(403, off), "Not allowed: admin operations are off: configure an API token (security.api_token_env), or set live.admin_without_token.");
  assert.equal(L.adminRefusal(409, "clothes's stable has no running rollout"), "Not done: clothes's stable has no running rollout");
});

// --- models of every task --------------------------------------------------------------------------------

const tensorInput = (shape, range = null) => ({ kind: "tensor", shape, value_range: range, divide_by: null });
const house = { name: "house", version: "v1", input: tensorInput([4], [-10, 10]), preprocessing: null, output: { kind: "regression", labels: [], targets: [{ name: "price", unit: "USD" }, { name: "area", unit: null }] } };
const tagger = { name: "tagger", version: "v1", input: tensorInput([3]), preprocessing: null, output: { kind: "multilabel", labels: ["red", "round", "sweet"], thresholds: [0.5, 0.3, 0.75] } };
const embedder = { name: "embedder", version: "v2", input: tensorInput([2, 3]), preprocessing: null, output: { kind: "embedding", labels: [], shape: [10] } };
const tensorOut = { name: "raw", version: "v1", input: tensorInput([65]), preprocessing: null, output: { kind: "tensor", labels: [], shape: [2, 2] } };

test("isOneClass: softmax and sigmoid only; every other task is said in words", () => {
  assert.deepEqual([grey, colour, tensor, house, tagger, embedder, tensorOut, null].map(L.isOneClass), [true, true, true, false, false, false, false, false]);
  assert.equal(L.taskText(house), "a regression model (2 targets: price in USD, area)");
  assert.equal(L.taskText(tagger), "a multi-label model (3 labels, each given when its probability reaches its threshold)");
  assert.equal(L.taskText(embedder), "an embedding model (vectors of 10 values)");
  assert.equal(L.taskText(tensorOut), "a model answering a tensor of shape 2×2");
  assert.equal(L.oneClassOnlyText(tagger, "live"), "Live accuracy counts the answers whose true label the server was told: it applies to one-class models (one label per example: softmax or sigmoid); for a regression model this tab shows its live error instead. tagger v1 is a multi-label model (3 labels, each given when its probability reaches its threshold).");
  assert.equal(L.oneClassOnlyText(house, "slices"), "Slices measure the accuracy per class and under shifts of the held-out data: it applies to one-class models (one label per example: softmax or sigmoid). house v1 is a regression model (2 targets: price in USD, area).");
  assert.match(L.oneClassOnlyText(embedder, "slices"), /^Slices measure the accuracy per class .* embedder v2 is an embedding model \(vectors of 10 values\)\.$/);
  assert.equal(L.outputSummary(house), "2 values: price (USD), area");
  assert.equal(L.outputSummary(tagger), "a sigmoid per label (3 labels): each label is given when its probability reaches its threshold");
  assert.equal(L.outputSummary(embedder), "an embedding of 10 values");
  assert.equal(L.outputSummary(tensorOut), "a tensor of shape 2×2");
  assert.deepEqual(L.outputRows(house), { title: "Targets (2)", headers: ["target", "unit"], rows: [["price", "USD"], ["area", "–"]] });
  assert.deepEqual(L.outputRows(tagger).rows, [["red", "50%"], ["round", "30%"], ["sweet", "75%"]]);
  assert.equal(L.outputRows(grey), null);
});

test("tensorForm: a field per value for a 1-D input up to 64 values (range as min and max), JSON otherwise", () => {
  assert.equal(L.tensorForm(grey), null);
  assert.deepEqual(L.tensorForm(house), { mode: "fields", count: 4, names: ["value 1", "value 2", "value 3", "value 4"], low: -10, high: 10, shape: [4] });
  assert.deepEqual(L.tensorForm(tagger), { mode: "fields", count: 3, names: ["value 1", "value 2", "value 3"], low: null, high: null, shape: [3] });
  assert.equal(L.tensorForm({ ...tagger, input: tensorInput([64]) }).mode, "fields");
  assert.equal(L.tensorForm(tensorOut).mode, "json"); // 65 values
  assert.deepEqual(L.tensorForm(embedder), { mode: "json", count: 6, names: null, low: null, high: null, shape: [2, 3] });
  // names when the card has one per value, else numbered
  assert.deepEqual(L.fieldNames({ names: ["age", " bmi "] }, 2), ["age", "bmi"]);
  assert.deepEqual(L.fieldNames({ names: ["age"] }, 2), ["value 1", "value 2"]);
  assert.equal(L.formText(L.tensorForm(house)), "4 numbers, each from -10 to 10");
  assert.equal(L.formText(L.tensorForm(tagger)), "3 numbers, any finite values");
  assert.equal(L.formText(L.tensorForm(embedder)), "a tensor of shape 2×3 (6 numbers, any finite values)");
  assert.equal(L.exampleJSON([2, 3]), "[[0, 0, 0], [0, 0, 0]]");
  assert.equal(L.exampleJSON([65]), "");
});

test("the fields and a pasted row are checked in words: count, numbers, range, size", () => {
  const form = L.tensorForm(house);
  assert.deepEqual(L.checkFields(["1", " -2.5 ", "3e0", "−4"], form), { values: [1, -2.5, 3, -4] });
  assert.deepEqual(L.checkFields(["1", "", "3", "4"], form), { error: "Value 2 is empty: type a number.", index: 1 });
  assert.deepEqual(L.checkFields(["1", "2", "3", "4"], form, [false, false, true]), { error: "Value 3 is not a number.", index: 2 });
  assert.deepEqual(L.checkFields(["1", "2", "3", "11"], form), { error: "Value 4 is 11: this model takes values from -10 to 10.", index: 3 });
  assert.deepEqual(L.checkFields(["-10.5", "2", "3", "4"], form), { error: "Value 1 is -10.5: this model takes values from -10 to 10.", index: 0 });
  assert.deepEqual(L.parseRow("1, 2.5 3\t4\n", form), { values: [1, 2.5, 3, 4] });
  assert.deepEqual(L.parseRow("1\n2\n3\n4", form), { values: [1, 2, 3, 4] }); // a spreadsheet's column
  assert.deepEqual(L.parseRow("1, 2, 3", form), { error: "This model takes 4 values; the row has 3." });
  assert.deepEqual(L.parseRow("  ", form), { error: "The row is empty: paste 4 numbers separated by commas or spaces." });
  assert.deepEqual(L.parseRow("1, two, 3, 4", form), { error: "Value 2 is not a number: “two”.", index: 1 });
  assert.deepEqual(L.parseRow("1, 0x10, 3, 4", form).index, 1); // no hexadecimal, no Infinity
  assert.deepEqual(L.parseRow("1, 2, 3, 1e400", form), { error: "Value 4 is too large: this model takes values from -10 to 10.", index: 3 });
  const open = L.tensorForm(tagger);
  assert.deepEqual(L.parseRow("1, 1e39, 3", open), { error: "Value 2 is too large: this model takes numbers up to about 3.4e38 in size.", index: 1 });
  assert.deepEqual(L.parseRow("-1e30 0 .5", open), { values: [-1e30, 0, 0.5] });
  assert.equal(L.checkValue("value 1", "Infinity", open).error, "Value 1 is not a number: “Infinity”.");
  assert.equal(L.checkValue("value 1", "x".repeat(40), open).error, `Value 1 is not a number: “${"x".repeat(24)}…”.`);
  assert.equal(L.checkFields(["a", "b"], { ...open, count: 2, names: ["age", "bmi"] }).error, "Age is not a number: “a”.");
  assert.equal(L.rowText(["1", " 2 ", ""]), "1, 2, ");
});

test("parseTensorJSON takes nested lists in the card's shape, and says what is wrong in words", () => {
  const form = L.tensorForm(embedder);
  assert.deepEqual(L.parseTensorJSON("[[1, 2, 3], [4, 5, 6]]", form), { input: [[1, 2, 3], [4, 5, 6]] });
  assert.deepEqual(L.parseTensorJSON('{"input": [[1, 2, 3], [4, 5, 6.5]]}', form), { input: [[1, 2, 3], [4, 5, 6.5]] });
  assert.equal(L.parseTensorJSON("", form).error, "The box is empty: write a tensor of shape 2×3 as nested lists of numbers.");
  assert.match(L.parseTensorJSON("[1, 2", form).error, /^The text is not valid JSON \(.+\): write a tensor of shape 2×3 as nested lists of numbers\.$/);
  assert.equal(L.parseTensorJSON("[[1, 2], [3, 4], [5, 6]]", form).error, "This model takes a tensor of shape 2×3; the JSON has shape 3×2.");
  assert.equal(L.parseTensorJSON("[1, 2, 3, 4, 5, 6]", form).error, "This model takes a tensor of shape 2×3; the JSON has shape 6.");
  assert.equal(L.parseTensorJSON("7", form).error, "This model takes a tensor of shape 2×3; the JSON has shape of a single number.");
  assert.equal(L.parseTensorJSON("[[1, 2, 3], [4, 5]]", form).error, "The lists are not all of the same length: write a tensor of shape 2×3 as nested lists of numbers.");
  assert.equal(L.parseTensorJSON('[[1, "a", 3], [4, 5, 6]]', form).error, 'Expected numbers only: [0][1] is "a", not a number.');
  assert.equal(L.parseTensorJSON('[[1, 2, 3], [4, 5, null]]', form).error, "Expected numbers only: [1][2] is null, not a number.");
  assert.equal(L.parseTensorJSON("[[1, 2, 3], [4, 5, 1e39]]", form).error, "The value at [1][2] is too large: this model takes numbers up to about 3.4e38 in size.");
  const ranged = { ...form, low: 0, high: 1 };
  assert.equal(L.parseTensorJSON("[[0, 0.5, 1], [1, 2, 0]]", ranged).error, "The value at [1][1] is 2: this model takes values from 0 to 1.");
});

test("answers of other tasks: values by target, labels against thresholds, a vector's first values", () => {
  assert.deepEqual([0.7310585975646973, 0.5, -2, 123456.78, 1234567.89, -0.000012345, 1e20, 99999.95, 0.1 + 0.2, 0].map(L.valueNumber),
    ["0.731059", "0.5", "-2", "123,457", "1,234,568", "-1.2345e-5", "1e+20", "99999.9", "0.3", "0"]);
  assert.equal(L.valueNumber(null), "–");
  const values = { model: "house", version: "v1", result: [[0.7310585975646973, 0.5]], predictions: [{ values: { price: 0.7310585975646973, area: 0.5 } }] };
  assert.deepEqual(L.regressionRows(house, values.predictions[0], values.result[0]), [
    { name: "price", unit: "USD", value: 0.7310585975646973, text: "0.731059" },
    { name: "area", unit: "", value: 0.5, text: "0.5" },
  ]);
  assert.equal(L.regressionRows(house, null, [1, 2])[1].value, 2); // from the result's row when there is no reading
  assert.equal(L.answeredText(values, "v1", 8.2, house), "Answered by house v1 in 8 ms: price 0.731059 USD, area 0.5.");

  const tags = { model: "tagger", version: "v1", result: [[0.7, 0.3, 0.2]], predictions: [{ labels: ["red", "round"], scores: { red: 0.7, round: 0.3, sweet: 0.2 } }] };
  const rows = L.multilabelRows(tagger, tags.predictions[0], tags.result[0]);
  assert.deepEqual(rows.map((r) => [r.label, r.given, r.text, r.thresholdText]), [["red", true, "70.0%", "50%"], ["round", true, "30.0%", "30%"], ["sweet", false, "20.0%", "75%"]]);
  assert.equal(rows[2].description, "sweet: 20.0%, threshold 75%: not given");
  assert.equal(L.givenText(rows), "Given: red, round.");
  assert.equal(L.givenText(rows.map((r) => ({ ...r, given: false }))), "No label given: none reaches its threshold.");
  // without the server's reading, given is reaching the threshold
  assert.deepEqual(L.multilabelRows(tagger, null, [0.5, 0.29, 0.8]).map((r) => r.given), [true, false, true]);
  assert.equal(L.answeredText(tags, "stable", 3, tagger), "Answered by tagger v1 (through stable) in 3 ms: red, round.");
  assert.equal(L.answerSummary({ ...tags, predictions: [{ labels: [], scores: {} }] }, tagger), "no label (none reaches its threshold)");

  const vector = Array.from({ length: 10 }, (_, i) => i / 4);
  const summary = L.vectorSummary(embedder, vector);
  assert.equal(summary.size, 10);
  assert.equal(summary.title, "An embedding of 10 values; the first 8:");
  assert.deepEqual(summary.first.map((f) => [f.index, f.text]), [["0", "0"], ["1", "0.25"], ["2", "0.5"], ["3", "0.75"], ["4", "1"], ["5", "1.25"], ["6", "1.5"], ["7", "1.75"]]);
  assert.equal(summary.norm, Math.sqrt(vector.reduce((s, v) => s + v * v, 0)));
  assert.deepEqual(JSON.parse(summary.json), vector);
  assert.equal(L.answeredText({ model: "embedder", version: "v2", result: [vector], predictions: null }, "v2", 1, embedder), "Answered by embedder v2 in 1 ms: an embedding of 10 values.");
  const raw = L.vectorSummary(tensorOut, [[1, 2], [3, 4]]);
  assert.equal(raw.title, "A tensor of shape 2×2 (4 values):");
  assert.deepEqual(raw.first.map((f) => f.index), ["[0][0]", "[0][1]", "[1][0]", "[1][1]"]);
  assert.equal(raw.norm, null);
  // a one-class model's line is as before, card or not
  assert.equal(L.answeredText({ model: "clothes", version: "v1", result: [[0.9, 0.1]], predictions: [{ class_id: 0, label: "a", confidence: 0.9 }] }, "v1", 2, grey), "Answered by clothes v1 in 2 ms: a.");
});

// --- a regressor's live error -------------------------------------------------------------------------------

const valued = {
  ...house,
  input: { ...tensorInput([4], [-10, 10]), names: ["rooms", "floor area", "age", "distance"] },
  output: { kind: "regression", labels: [], targets: [{ name: "price", unit: "USD" }, { name: "area", unit: "m2" }, { name: "score", unit: null }] },
  metrics: { mae: 500.1, rmse: 700.2, per_target: { price: { mae: 1500, rmse: 2000, r2: 0.9 }, area: { mae: 0.2, rmse: 0.3, r2: 0.8 } }, test_examples: 100 },
};
const interval = (value, low, high) => ({ value, low, high });
const errorReport = {
  model: "house", version: "v1", task: "regression", offline: { mae: 500.1, rmse: 700.2 }, window_seconds: 3600, examples: 12,
  targets: [
    { name: "price", unit: "USD", examples: 12, mae: interval(1234.5678, -20.5, 2500.1), rmse: interval(1500.2, 0, 2600), bias: -300.4 },
    { name: "area", unit: "m2", examples: 12, mae: interval(0.25, 0.1, 0.4), rmse: interval(0.3, 0.12, 0.45), bias: 0.05 },
    { name: "score", unit: null, examples: 12, mae: interval(2, 1.5, 2.5), rmse: interval(2.2, 1.6, 2.7), bias: 0 },
  ],
  aliases: { stable: { area: { examples: 1, mae: interval(0.1, null, null), rmse: interval(0.1, null, null), bias: -0.1 }, price: { examples: 1, mae: interval(1000, null, null), rmse: interval(1000, null, null), bias: 1000 } } },
  slices: {},
  series: [
    { start: 1200, examples: 5, mae: { price: 1000, area: 0.1, score: 2 } },
    { start: 1260, examples: 4, mae: { price: 1800, area: null, score: 2.5 } },
    { start: 1380, examples: 3, mae: { price: 1200, area: 0.3, score: 1 } },
  ],
  first: 1200.5, last: 1399,
};

test("which tab has live figures, and what it is called", () => {
  assert.deepEqual([grey, colour, tensor, house, tagger, embedder, tensorOut].map(L.hasLive), [true, true, true, true, false, false, false]);
  assert.deepEqual([grey, house, tagger].map(L.liveTabText), ["Live accuracy", "Live error", "Live accuracy"]);
  assert.deepEqual([grey, house, null].map(L.isRegressor), [false, true, false]);
});

test("input names label the form's fields and the card's input", () => {
  const form = L.tensorForm(valued);
  assert.deepEqual(form.names, ["rooms", "floor area", "age", "distance"]);
  assert.deepEqual(L.checkFields(["1", "", "3", "4"], form), { error: "Floor area is empty: type a number.", index: 1 });
  assert.deepEqual(L.parseRow("1, 2, 3, 40", form), { error: "Distance is 40: this model takes values from -10 to 10.", index: 3 });
  assert.equal(L.inputSummary(valued), "a tensor of shape 4 (rooms, floor area, age, distance), values -10..10");
  assert.equal(L.inputSummary(house), "a tensor of shape 4, values -10..10");
});

test("error figures: 4 significant digits, whole with separators from 1,000, signs, units, intervals never below 0", () => {
  assert.deepEqual([1234.5678, 999.94, 999.96, 0.123456, 12.5, 0, -3.25, 183333.4, 0.00001234, null, NaN].map(L.errorNumber),
    ["1,235", "999.9", "1,000", "0.1235", "12.5", "0", "-3.25", "183,333", "1.234e-5", "–", "–"]);
  assert.deepEqual([-300.4, 0.05, 0, 1234.5].map(L.signedNumber), ["−300.4", "+0.05", "0", "+1,235"]);
  assert.equal(L.withUnit("1,235", "USD"), "1,235 USD");
  assert.equal(L.withUnit("–", "USD"), "–");
  assert.equal(L.withUnit("2", ""), "2");
  assert.equal(L.targetLabel({ name: "price", unit: "USD" }), "price (USD)");
  assert.equal(L.targetLabel({ name: "score", unit: null }), "score");
  assert.equal(L.errorRangeText(interval(5, -1.5, 11.5), "m2"), "0–11.5 m2"); // a normal approximation's bound under 0
  assert.equal(L.errorRangeText(interval(5, null, null), "m2"), ""); // one example: no interval
  assert.equal(L.biasText(-300.4, "USD"), "−300.4 USD: the answers are below the truth on average");
  assert.equal(L.biasText(0.05, ""), "+0.05: the answers are above the truth on average");
  assert.equal(L.biasText(0, "m2"), "0 m2: no bias");
  assert.equal(L.biasText(null, "m2"), "–");
});

test("held-out errors per target: the card's per_target, or the report's for a single target; never a mean over units", () => {
  assert.deepEqual(L.offlineErrors(valued, errorReport), { price: { mae: 1500, rmse: 2000 }, area: { mae: 0.2, rmse: 0.3 } });
  const single = { ...house, output: { kind: "regression", targets: [{ name: "progression", unit: null }] }, metrics: null };
  assert.deepEqual(L.offlineErrors(single, { offline: { mae: 40.5, rmse: 52 } }), { progression: { mae: 40.5, rmse: 52 } });
  assert.deepEqual(L.offlineErrors(single, { offline: { mae: null, rmse: null } }), {});
  assert.deepEqual(L.offlineErrors(house, { offline: { mae: 40.5, rmse: 52 } }), {}); // two targets: their mean adds USD to m2
  assert.equal(L.errorComparison(1500, interval(1234, -20, 2500)), "The held-out MAE is inside the live interval: no evidence the model errs more on live traffic.");
  assert.equal(L.errorComparison(0.05, interval(0.25, 0.1, 0.4)), "The held-out MAE is below the live interval: the model errs more on live traffic than on its held-out data.");
  assert.equal(L.errorComparison(0.5, interval(0.25, 0.1, 0.4)), "The held-out MAE is above the live interval: the model errs less on live traffic than on its held-out data.");
  assert.equal(L.errorComparison(null, interval(0.25, 0.1, 0.4)), "");
  assert.equal(L.errorComparison(0.5, interval(0.25, null, null)), "");
});

test("targetErrorRows: each target's live MAE and RMSE with intervals and unit, bias, examples, beside its held-out error", () => {
  const rows = L.targetErrorRows(errorReport, valued);
  assert.deepEqual(rows.map((r) => r.name), ["price", "area", "score"]);
  const [price, area, score] = rows;
  assert.equal(price.label, "price (USD)");
  assert.equal(price.mae, "1,235 USD");
  assert.equal(price.maeInterval, "0–2,500 USD");
  assert.equal(price.rmse, "1,500 USD");
  assert.equal(price.rmseInterval, "0–2,600 USD");
  assert.equal(price.bias, "−300.4 USD");
  assert.equal(price.examplesText, "12 examples");
  assert.equal(price.offlineMae, "1,500 USD");
  assert.equal(price.offlineRmse, "2,000 USD");
  assert.match(price.comparison, /inside the live interval/);
  assert.equal(area.mae, "0.25 m2");
  assert.equal(area.offlineMae, "0.2 m2");
  assert.match(area.comparison, /inside/);
  assert.equal(score.label, "score");
  assert.equal(score.mae, "2");
  assert.equal(score.bias, "0");
  assert.equal(score.offlineMae, null);
  assert.equal(score.comparison, "");
  // before any ground truth
  const none = L.targetErrorRows({ ...errorReport, examples: 0, targets: errorReport.targets.map((t) => ({ ...t, examples: 0, mae: interval(null, null, null), rmse: interval(null, null, null), bias: null })) }, valued);
  assert.deepEqual(none.map((r) => [r.mae, r.maeInterval, r.bias, r.examplesText]), [["–", "", "–", "0 examples"], ["–", "", "–", "0 examples"], ["–", "", "–", "0 examples"]]);
  assert.deepEqual(L.liveErrorSummary({ examples: 0 }), { has: false, examples: 0, text: "no answer with its true values yet" });
  assert.equal(L.liveErrorSummary(errorReport).text, "12 answers with their true values");
  assert.equal(L.liveErrorSummary({ examples: 1 }).text, "1 answer with its true values");
  // without a card, the report's own targets
  assert.deepEqual(L.targetErrorRows(errorReport).map((r) => r.label), ["price (USD)", "area (m2)", "score"]);
});

test("errorGroupRows: a row per alias or slice and target, the unit in the target's label, not in the figures", () => {
  const rows = L.errorGroupRows(errorReport.aliases, valued.output.targets);
  assert.deepEqual(rows.map((r) => [r.group, r.label, r.mae, r.maeInterval, r.rmse, r.bias, r.examples]), [
    ["stable", "price (USD)", "1,000", "", "1,000", "+1,000", 1],
    ["stable", "area (m2)", "0.1", "", "0.1", "−0.1", 1],
  ]);
  assert.deepEqual(L.errorGroupRows({}, valued.output.targets), []);
  assert.deepEqual(L.errorGroupRows({ b: { x: errorReport.targets[2] }, a: { x: errorReport.targets[2] } }, []).map((r) => [r.group, r.name]), [["a", "x"], ["b", "x"]]);
});

test("the True value? control: checked in words, posted by request id, what joined said with this answer's error", () => {
  const targets = valued.output.targets;
  assert.deepEqual(L.checkTruth(["180000", "4.5", "-1"], targets), { values: [180000, 4.5, -1] });
  assert.deepEqual(L.checkTruth(["180000", "", "1"], targets), { error: "The true area is empty: type a number.", index: 1 });
  assert.deepEqual(L.checkTruth(["lots", "1", "1"], targets), { error: "The true price is not a number: “lots”.", index: 0 });
  assert.deepEqual(L.checkTruth(["1", "1", "1e39"], targets).index, 2);
  assert.deepEqual(L.truthBody("r-1", [180000, 4.5]), { feedback: [{ id: "r-1", value: [180000, 4.5] }] });
  assert.deepEqual(L.truthBody("r-2", [3.5]), { feedback: [{ id: "r-2", value: 3.5 }] });
  const rows = [{ name: "price", unit: "USD", value: 183333.4 }, { name: "area", unit: "m2", value: 4.6875 }];
  assert.equal(L.truthResultText({ accepted: 1, joined: 1 }, rows, [180000, 4.5]),
    "Joined: the server counts price 180,000 USD, area 4.5 m2 as this answer's true values in its live error (this answer's error, answered − true: price +3,333 USD, area +0.1875 m2).");
  assert.equal(L.truthResultText({ accepted: 1, joined: 1 }, [{ name: "progression", unit: "", value: 100 }], [120]),
    "Joined: the server counts progression 120 as this answer's true value in its live error (this answer's error, answered − true: progression −20).");
  assert.match(L.truthResultText({ accepted: 1, joined: 0 }, rows, [1, 2]), /^Not joined: no worker of this server remembers/);
});

test("errorSeriesChart: a panel per unit, a line per target from 0, broken where a bucket has no value, held-out dashed", () => {
  assert.deepEqual(L.chartPanels(valued.output.targets).panels.map((p) => p.targets.map((t) => t.name)), [["price"], ["area"], ["score"]]);
  const shared = [{ name: "width", unit: "m" }, { name: "height", unit: "m" }, { name: "a", unit: null }, { name: "b", unit: "" }];
  assert.deepEqual(L.chartPanels(shared).panels.map((p) => p.targets.map((t) => [t.name, t.index])), [[["width", 0], ["height", 1]], [["a", 2]], [["b", 3]]]);
  assert.deepEqual(L.chartPanels(shared, 2).hidden, ["b"]);
  assert.deepEqual([0.3, 1800, 4, 0.07, 0].map((v) => L.niceStep(v)), [0.1, 500, 1, 0.02, 1]);
  assert.deepEqual([0, 0.25, 750, 1500, 15000, 2500000, 0.1 + 0.2].map(L.tickText), ["0", "0.25", "750", "1,500", "15k", "2.5M", "0.3"]);

  const pad = { top: 20, right: 10, bottom: 30, left: 50 };
  const offline = L.offlineErrors(valued, errorReport);
  const chart = L.errorSeriesChart(errorReport.series, valued.output.targets, { width: 450, panelHeight: 100, gap: 30, pad, bucketSeconds: 60, offline });
  assert.equal(chart.panels.length, 3);
  assert.equal(chart.height, 20 + 3 * 100 + 2 * 30 + 30);
  const [price, area, score] = chart.panels;
  assert.deepEqual([price.top, price.bottom, area.top, area.bottom, score.top], [20, 120, 150, 250, 280]);
  assert.equal(price.title, "MAE of price (USD)");
  assert.equal(score.title, "MAE of score");
  // price: values up to 1,800 and held-out 1,500: ticks of 500 up to 2,000; x by each bucket's centre over 1200..1440
  assert.deepEqual(price.ticks.map((t) => [t.text, t.y]), [["0", 120], ["500", 95], ["1,000", 70], ["1,500", 45], ["2,000", 20]]);
  const [line] = price.lines;
  assert.equal(line.name, "price");
  // (390 px wide from x = 50; each point at its bucket's centre: 1230, 1290 and 1410)
  assert.deepEqual(line.points.map((p) => [p.x, p.y]), [[98.75, 70], [196.25, 30], [391.25, 60]]);
  assert.equal(line.d, "M98.75,70 L196.25,30 L391.25,60");
  assert.equal(line.offlineY, 45);
  // area has no value in its second bucket: the line breaks there, two points
  assert.equal(area.lines[0].d, "M98.75,216.67 M391.25,150"); // its axis: 0 to 0.3
  assert.equal(area.lines[0].points.length, 2);
  assert.equal(score.lines[0].offlineY, null);
  assert.deepEqual(chart.xLabels.map((l) => [l.x, l.anchor]), [[50, "start"], [440, "end"]]);
  assert.equal(chart.xLabels[0].text, L.clockText(1200));

  // targets sharing a unit share a panel and its axis; one-second buckets say their seconds
  const both = L.errorSeriesChart([{ start: 10, examples: 1, mae: { width: 2, height: 4 } }, { start: 11, examples: 1, mae: { width: 3, height: 1 } }], shared.slice(0, 2), { width: 300, bucketSeconds: 1 });
  assert.equal(both.panels.length, 1);
  assert.equal(both.panels[0].title, "MAE in m: width, height");
  assert.deepEqual(both.panels[0].lines.map((l) => l.name), ["width", "height"]);
  assert.match(both.xLabels[0].text, /^\d\d:\d\d:\d\d$/);
  // one point: in the middle
  const one = L.errorSeriesChart(errorReport.series.slice(0, 1), valued.output.targets, { width: 450, pad, panelHeight: 100 });
  assert.equal(one.panels[0].lines[0].points[0].x, 50 + (450 - 60) / 2);
  assert.equal(L.errorSeriesChart([], valued.output.targets, { width: 450 }), null);
  assert.equal(L.errorSeriesChart([{ start: 0, examples: 0, mae: { price: null } }], valued.output.targets, { width: 450 }), null);
  assert.deepEqual(L.errorSeriesRows(errorReport.series.slice(0, 2), valued.output.targets), [
    [L.clockText(1200), "1,000", "0.1", "2", "5"],
    [L.clockText(1260), "1,800", "–", "2.5", "4"],
  ]);
});

// --- a model of several named inputs and outputs ------------------------------------------------------------

const namedInputs = [{ name: "features", datatype: "FP32", shape: [4] }, { name: "counts", datatype: "INT64", shape: [3] }];
const twin = {
  name: "twin", version: "v1", task: "tensors",
  input: { kind: "tensors", shape: [40], dtype: "uint8", value_range: null, divide_by: null }, inputs: namedInputs,
  output: { kind: "tensors", labels: [], shape: [20] }, outputs: [{ name: "kind", datatype: "FP32", shape: [3] }, { name: "size", datatype: "FP32", shape: [2] }],
};
const pair = { ...twin, name: "pair", task: "classification", output: { kind: "softmax", labels: ["cat", "dog", "fox"] }, outputs: undefined, slices: null };

test("named inputs and outputs: the card says each by its name, datatype and shape, never the packed bytes", () => {
  assert.equal(L.hasNamedInputs(twin), true);
  assert.equal(L.hasNamedOutputs(twin), true);
  assert.equal(L.hasNamedOutputs(pair), false);
  assert.equal(L.hasNamedInputs(tensor), false);
  assert.equal(L.hasNamedInputs({ ...twin, inputs: [] }), false);
  assert.equal(L.inputSummary(twin), "2 named inputs: features FP32 [4], counts INT64 [3]");
  assert.doesNotMatch(L.inputSummary(twin), /40/);
  assert.equal(L.outputSummary(twin), "2 named outputs: kind FP32 [3], size FP32 [2]");
  assert.equal(L.outputSummary(pair), "softmax over 3 labels");
  assert.equal(L.taskText(twin), "a model answering 2 named outputs (kind FP32 [3], size FP32 [2])");
  assert.deepEqual(L.inputRows(twin), { title: "Inputs (2)", headers: ["input", "datatype", "shape"], rows: [["features", "FP32", "[4]"], ["counts", "INT64", "[3]"]] });
  assert.equal(L.inputRows(tensor), null);
  assert.deepEqual(L.outputRows(twin), { title: "Outputs (2)", headers: ["output", "datatype", "shape"], rows: [["kind", "FP32", "[3]"], ["size", "FP32", "[2]"]] });
  assert.equal(L.outputRows(pair), null);
  assert.equal(L.specLabel(namedInputs[1]), "counts · INT64 [3]");
  assert.equal(L.specLabel({ name: "age", datatype: "FP32", shape: [] }), "age · FP32 []");
  assert.equal(L.specWhat({ name: "m", datatype: "FP64", shape: [2, 3] }), "6 numbers in shape [2, 3]");
  assert.equal(L.specWhat({ name: "on", datatype: "BOOL", shape: [2] }), "2 values, each 1 or 0 (true or false)");
  assert.equal(L.specWhat({ name: "age", datatype: "UINT8", shape: [] }), "one whole number");
});

test("namedForm: a field per named input, labelled, with a hint; one value per example goes as a batch of one", () => {
  const form = L.tensorForm(twin);
  assert.equal(form.mode, "named");
  assert.equal(form.batch, false);
  assert.deepEqual(form.inputs.map((f) => [f.label, f.hint, f.lines]), [
    ["features · FP32 [4]", "4 numbers, separated by commas or spaces (or as a JSON list).", false],
    ["counts · INT64 [3]", "3 whole numbers, separated by commas or spaces (or as a JSON list).", false],
  ]);
  assert.equal(L.formText(form), "2 named inputs: features (4 numbers) and counts (3 whole numbers)");
  const other = L.tensorForm({ ...twin, inputs: [{ name: "age", datatype: "FP32", shape: [] }, { name: "grid", datatype: "FP32", shape: [2, 2] }, { name: "long", datatype: "FP32", shape: [17] }] });
  assert.equal(other.batch, true);
  assert.deepEqual(other.inputs.map((f) => f.hint), [
    "One number.",
    "4 numbers in shape [2, 2]: JSON nested lists such as [[0, 0], [0, 0]], or the 4 values in a row, separated by commas.",
    "17 numbers, separated by commas or spaces (or as a JSON list).",
  ]);
  assert.deepEqual(other.inputs.map((f) => f.lines), [false, true, true]);
  assert.equal(L.formText(other), "3 named inputs: age (one number), grid (4 numbers in shape [2, 2]) and long (17 numbers)");
  assert.equal(L.tensorForm({ ...twin, inputs: undefined }), null); // a card without its inputs: no form rather than 40 byte fields
});

test("parseNamedValue: a row or JSON in the input's shape, or an error in words naming the input", () => {
  const [features, counts] = namedInputs;
  assert.deepEqual(L.parseNamedValue(" 1, -2.5 3e0\t−4 ", features), { value: [1, -2.5, 3, -4] });
  assert.deepEqual(L.parseNamedValue("[1, 2, 3, 4]", features), { value: [1, 2, 3, 4] });
  assert.deepEqual(L.parseNamedValue("", counts), { error: "The input counts is empty: type 3 whole numbers." });
  assert.deepEqual(L.parseNamedValue("1, 2", counts), { error: "The input counts takes 3 whole numbers; the field has 2." });
  assert.deepEqual(L.parseNamedValue("1, two, 3", counts), { error: "The input counts holds “two” (value 2), not a number." });
  assert.deepEqual(L.parseNamedValue("[1, 2]", counts), { error: "The input counts takes 3 whole numbers, shape [3]; the JSON has shape [2]." });
  assert.deepEqual(L.parseNamedValue("[1, 2,", counts).error.startsWith("The input counts is not valid JSON ("), true);
  assert.deepEqual(L.parseNamedValue('[1, "2", 3]', counts), { error: "The input counts holds \"2\" at [1], not a number." });
  assert.deepEqual(L.parseNamedValue("1, 2, 1e400", counts), { error: "The input counts holds a number too large (value 3) for INT64." });
  assert.deepEqual(L.parseNamedValue("1, 2, 3, 1e39", features), { error: "The input features holds a number too large (value 4) for FP32 (up to about 3.4e38 in size)." });
  assert.deepEqual(L.parseNamedValue("70000", { name: "h", datatype: "FP16", shape: [] }), { error: "The input h holds a number too large for FP16 (up to 65504 in size)." });
  assert.deepEqual(L.parseNamedValue("1, 2, 9007199254740993", counts), { error: "The input counts holds a whole number too large to send exactly (value 3): a browser sends them up to 9,007,199,254,740,991 in size." });
  // whole numbers and their range are the server's to check: 1.5 goes, and its words name the input
  assert.deepEqual(L.parseNamedValue("1.5, 2, 3", counts), { value: [1.5, 2, 3] });
  // shapes of several dimensions: nested lists, a flat JSON list or a row, reshaped
  const grid = { name: "grid", datatype: "FP32", shape: [2, 3] };
  assert.deepEqual(L.parseNamedValue("[[1, 2, 3], [4, 5, 6]]", grid), { value: [[1, 2, 3], [4, 5, 6]] });
  assert.deepEqual(L.parseNamedValue("[1, 2, 3, 4, 5, 6]", grid), { value: [[1, 2, 3], [4, 5, 6]] });
  assert.deepEqual(L.parseNamedValue("1 2 3 4 5 6", grid), { value: [[1, 2, 3], [4, 5, 6]] });
  assert.deepEqual(L.parseNamedValue("[[1, 2], [3, 4], [5, 6]]", grid), { error: "The input grid takes 6 numbers in shape [2, 3]; the JSON has shape [3, 2]." });
  assert.deepEqual(L.parseNamedValue("[[1, 2, 3], [4, 5]]", grid), { error: "The input grid has lists of different lengths: it takes 6 numbers in shape [2, 3]." });
  assert.deepEqual(L.parseNamedValue("[[1, 2, 3], [4, null, 6]]", grid), { error: "The input grid holds null at [1][1], not a number." });
  // one value per example; booleans as 1 and 0
  assert.deepEqual(L.parseNamedValue(" 42 ", { name: "age", datatype: "FP32", shape: [] }), { value: 42 });
  assert.deepEqual(L.parseNamedValue("1, 2", { name: "age", datatype: "FP32", shape: [] }), { error: "The input age takes one number; the field has 2." });
  const on = { name: "on", datatype: "BOOL", shape: [3] };
  assert.deepEqual(L.parseNamedValue("true, False 1", on), { value: [1, 0, 1] });
  assert.deepEqual(L.parseNamedValue("[true, false, 0]", on), { value: [1, 0, 0] });
  assert.deepEqual(L.parseNamedValue("yes, no, 1", on), { error: "The input on holds “yes” (value 1), not a number." });
});

test("namedBody builds {input: {...}} (a batch of one with a one-value input), or says the first wrong field", () => {
  const form = L.tensorForm(twin);
  assert.deepEqual(L.namedBody(["1, 2, 3, 4", "[1, 2, 3]"], form), { body: { input: { features: [1, 2, 3, 4], counts: [1, 2, 3] } } });
  assert.deepEqual(L.namedBody(["1, 2, 3, 4", ""], form), { error: "The input counts is empty: type 3 whole numbers.", index: 1 });
  assert.deepEqual(L.namedBody(["1, 2", "x"], form), { error: "The input features takes 4 numbers; the field has 2.", index: 0 });
  const scalar = L.tensorForm({ ...twin, inputs: [{ name: "age", datatype: "FP32", shape: [] }, namedInputs[1]] });
  assert.deepEqual(L.namedBody(["7", "1 2 3"], scalar), { body: { inputs: { age: [7], counts: [[1, 2, 3]] } } });
  // the server's words name the field: input.<name>: ..., also a name with ":" or "."
  assert.equal(L.namedFieldOfError("input.counts: counts is INT64: values must be whole numbers", form), 1);
  assert.equal(L.namedFieldOfError("inputs.features: features takes examples of shape [4]", form), 0);
  assert.equal(L.namedFieldOfError("inputs: missing 'counts' for model twin", form), -1);
  assert.equal(L.namedFieldOfError("input.counts: x", L.tensorForm(house)), -1);
  assert.equal(L.namedFieldOfError("input.a:b.c: x", L.tensorForm({ ...twin, inputs: [{ name: "a:b.c", datatype: "FP32", shape: [1] }] })), 0);
});

// BYTES inputs: text, each value's UTF-8 length at most the card's max_bytes (the sentiment and onnx-words cards of the e2e tests)
const sentiment = { ...pair, name: "sentiment", inputs: [{ name: "text", datatype: "BYTES", shape: [1], max_bytes: 64 }], output: { kind: "softmax", labels: ["neg", "pos"] } };
const words = { ...twin, name: "onnx-words", inputs: [{ name: "text", datatype: "BYTES", shape: [1], max_bytes: 16 }, { name: "x", datatype: "FP32", shape: [1] }] };

test("a BYTES input: labelled with its byte limit, a text box whose hint says how text is read", () => {
  const [text] = sentiment.inputs;
  assert.equal(L.isText(text), true);
  assert.equal(L.isText(namedInputs[0]), false);
  assert.equal(L.specLabel(text), "text · BYTES [1] · up to 64 bytes of text");
  assert.equal(L.specLabel({ name: "t", datatype: "BYTES", shape: [] }), "t · BYTES []"); // no limit on the card: none said
  assert.equal(L.specWhat(text), "one text of up to 64 bytes");
  assert.equal(L.specWhat({ name: "t", datatype: "BYTES", shape: [3], max_bytes: 4096 }), "3 texts of up to 4,096 bytes each");
  assert.equal(L.specWhat({ name: "t", datatype: "BYTES", shape: [2, 3] }), "6 texts in shape [2, 3]");
  const form = L.tensorForm(sentiment);
  assert.equal(form.batch, false);
  assert.deepEqual(form.inputs.map((f) => [f.label, f.hint, f.lines, f.text, f.max_bytes]), [[
    "text · BYTES [1] · up to 64 bytes of text",
    "One text of up to 64 bytes: the whole field is the value, its spaces, commas and line breaks as typed (in UTF-8 an accented letter such as é takes 2 bytes).",
    true, true, 64,
  ]]);
  assert.equal(L.formText(form), "1 named input: text (one text of up to 64 bytes)");
  const mixed = L.tensorForm(words);
  assert.deepEqual(mixed.inputs.map((f) => [f.label, f.lines, f.text ?? false]), [["text · BYTES [1] · up to 16 bytes of text", true, true], ["x · FP32 [1]", false, false]]);
  assert.equal(L.formText(mixed), "2 named inputs: text (one text of up to 16 bytes) and x (1 number)");
  const several = L.tensorForm({ ...twin, inputs: [{ name: "pair", datatype: "BYTES", shape: [2], max_bytes: 8 }, { name: "grid", datatype: "BYTES", shape: [2, 3] }] });
  assert.deepEqual(several.inputs.map((f) => f.hint), [
    '2 texts of up to 8 bytes each: one per line (blank lines at the end are ignored), or a JSON list of strings such as ["text 1", "text 2"] (in UTF-8 an accented letter such as é takes 2 bytes).',
    "6 texts in shape [2, 3]: one per line, row by row (blank lines at the end are ignored), or a JSON list of strings.",
  ]);
});

test("parseNamedValue of a BYTES input: the whole text, or one per line, or JSON strings; UTF-8 bytes against max_bytes", () => {
  const [text] = sentiment.inputs;
  // one text: the field as typed, spaces, commas, brackets and line breaks kept
  assert.deepEqual(L.parseNamedValue("good film", text), { value: ["good film"] });
  assert.deepEqual(L.parseNamedValue("  good, bad\nfilm  ", text), { value: ["  good, bad\nfilm  "] });
  assert.deepEqual(L.parseNamedValue('["not", "JSON here"]', text), { value: ['["not", "JSON here"]'] });
  assert.deepEqual(L.parseNamedValue("42", text), { value: ["42"] }); // a string, not a number
  assert.deepEqual(L.parseNamedValue("", text), { error: "The input text is empty: type one text of up to 64 bytes." });
  // bytes, not characters: "é" is 2 bytes of UTF-8, "€" 3, "😀" 4 (2 UTF-16 units)
  assert.deepEqual(L.parseNamedValue("é".repeat(32), text), { value: ["é".repeat(32)] });
  assert.deepEqual(L.parseNamedValue("é".repeat(33), text), { error: "The input text is 66 bytes long in UTF-8: it takes up to 64 bytes." });
  assert.deepEqual(L.parseNamedValue("a".repeat(64), text), { value: ["a".repeat(64)] });
  assert.deepEqual(L.parseNamedValue("a".repeat(65), text), { error: "The input text is 65 bytes long in UTF-8: it takes up to 64 bytes." });
  const short = { name: "w", datatype: "BYTES", shape: [1], max_bytes: 16 };
  assert.deepEqual(L.parseNamedValue("😀😀😀😀", short), { value: ["😀😀😀😀"] });
  assert.deepEqual(L.parseNamedValue("😀😀😀😀!", short).error, "The input w is 17 bytes long in UTF-8: it takes up to 16 bytes.");
  assert.deepEqual(L.parseNamedValue("€€€€€é", short).error, "The input w is 17 bytes long in UTF-8: it takes up to 16 bytes.");
  assert.deepEqual(L.parseNamedValue("a\uD800b", short), { error: "The input w holds half of a character (a lone surrogate): it is not UTF-8 text." });
  assert.deepEqual(L.parseNamedValue("x".repeat(5000), { name: "t", datatype: "BYTES", shape: [] }), { value: "x".repeat(5000) }); // no limit on the card
  // several: one per line (\r\n too; blank lines at the end ignored, empty ones inside kept), row by row
  const pair = { name: "pair", datatype: "BYTES", shape: [2], max_bytes: 5 }; // "café" is 5 bytes
  assert.deepEqual(L.parseNamedValue("a, b\r\ncafé\n\n", pair), { value: ["a, b", "café"] });
  assert.deepEqual(L.parseNamedValue("\nb", pair), { value: ["", "b"] });
  assert.deepEqual(L.parseNamedValue("a b c", pair), { error: "The input pair takes 2 texts of up to 5 bytes each, one per line; the field has 1 line." });
  assert.deepEqual(L.parseNamedValue("a\nb\nc", pair), { error: "The input pair takes 2 texts of up to 5 bytes each, one per line; the field has 3 lines." });
  assert.deepEqual(L.parseNamedValue("ok\ncafés", pair), { error: "The input pair holds a text of 6 bytes in UTF-8 (line 2): it takes up to 5 bytes each." });
  const grid = { name: "grid", datatype: "BYTES", shape: [2, 2], max_bytes: 2 };
  assert.deepEqual(L.parseNamedValue("a\nb\nc\nd", grid), { value: [["a", "b"], ["c", "d"]] });
  assert.deepEqual(L.parseNamedValue("a\nb\né\nabc", grid), { error: "The input grid holds a text of 3 bytes in UTF-8 ([1][1], line 4): it takes up to 2 bytes each." });
  // JSON strings, in the shape or flat: the way to send a line break or an empty last value
  assert.deepEqual(L.parseNamedValue('["a\\nb", ""]', pair), { value: ["a\nb", ""] });
  assert.deepEqual(L.parseNamedValue('[["a", "b"], ["c", "d"]]', grid), { value: [["a", "b"], ["c", "d"]] });
  assert.deepEqual(L.parseNamedValue('["a", "b", "c", "d"]', grid), { value: [["a", "b"], ["c", "d"]] });
  assert.deepEqual(L.parseNamedValue('["a", 2]', pair), { error: "The input pair holds 2 at [1], not a string." });
  assert.deepEqual(L.parseNamedValue('["a"]', pair), { error: "The input pair takes 2 texts of up to 5 bytes each, shape [2]; the JSON has shape [1]." });
  assert.deepEqual(L.parseNamedValue('[["a", "b"], ["c"]]', grid), { error: "The input grid has lists of different lengths: it takes 4 texts in shape [2, 2] of up to 2 bytes each." });
  assert.deepEqual(L.parseNamedValue('["ab", "cde"]', pair), { value: ["ab", "cde"] });
  assert.deepEqual(L.parseNamedValue('["a", "b", "c", "abc"]', grid), { error: "The input grid holds a text of 3 bytes in UTF-8 (value 4): it takes up to 2 bytes each." });
  assert.deepEqual(L.parseNamedValue('[["a", "b"], ["c", "abc"]]', grid), { error: "The input grid holds a text of 3 bytes in UTF-8 at [1][1]: it takes up to 2 bytes each." });
  // lines that are not JSON lists are lines, even when one starts with "["
  assert.deepEqual(L.parseNamedValue("[a\nb]", pair), { value: ["[a", "b]"] });
});

test("namedBody of BYTES inputs posts their strings; a text too long is said naming its field, nothing sent", () => {
  const form = L.tensorForm(sentiment);
  assert.deepEqual(L.namedBody(["good film"], form), { body: { input: { text: ["good film"] } } });
  assert.deepEqual(JSON.parse(JSON.stringify(L.namedBody(["Café naïve, “quoted”"], form).body)), { input: { text: ["Café naïve, “quoted”"] } });
  const mixed = L.tensorForm(words);
  assert.deepEqual(L.namedBody(["red", "0.25"], mixed), { body: { input: { text: ["red"], x: [0.25] } } });
  assert.deepEqual(L.namedBody(["vert", "1 2"], mixed), { error: "The input x takes 1 number; the field has 2.", index: 1 });
  assert.deepEqual(L.namedBody(["éééééééé!", "1"], mixed), { error: "The input text is 17 bytes long in UTF-8: it takes up to 16 bytes.", index: 0 });
  const scalar = L.tensorForm({ ...twin, inputs: [{ name: "t", datatype: "BYTES", shape: [], max_bytes: 8 }, { name: "pair", datatype: "BYTES", shape: [2], max_bytes: 8 }] });
  assert.deepEqual(L.namedBody(["one, two", "a\nb"], scalar), { body: { inputs: { t: ["one, two"], pair: [["a", "b"]] } } });
  // the server's own words about a text name its field too
  assert.equal(L.namedFieldOfError("input.text: text takes strings of at most 64 bytes; got one of 66", form), 0);
});

test("namedOutputs: each output of the answer's first example by name, its values in a short table", () => {
  const answer = { model: "twin", version: "v1", result: { kind: [[0.4938902258872986, 0.3102697432041168, 0.19583997130393982]], size: [[-1.2844761610031128, -0.9142163395881653]] }, predictions: null };
  const [kind, size] = L.namedOutputs(twin, answer);
  assert.equal(kind.label, "kind · FP32 [3]");
  assert.deepEqual(kind.values.map((v) => [v.index, v.value, v.text]), [["0", 0.4938902258872986, "0.49389"], ["1", 0.3102697432041168, "0.31027"], ["2", 0.19583997130393982, "0.19584"]]);
  assert.deepEqual([size.size, size.more, size.missing, size.values[1].text], [2, 0, false, "-0.914216"]);
  assert.equal(L.answerSummary(answer, twin), "2 named outputs, kind (3 values) and size (2 values)");
  assert.match(L.answeredText(answer, "v1", 12.3, twin), /^Answered by twin v1 in 12 ms: 2 named outputs, kind \(3 values\) and size \(2 values\)\.$/);
  // a missing output, a long one (the first NAMED_SHOWN shown), one of two dimensions (indices as paths)
  const card = { ...twin, outputs: [{ name: "grid", datatype: "FP32", shape: [2, 2] }, { name: "long", datatype: "FP32", shape: [20] }, { name: "gone", datatype: "FP32", shape: [1] }] };
  const [grid, long, gone] = L.namedOutputs(card, { result: { grid: [[[1, 2], [3, 4]]], long: [Array.from({ length: 20 }, (_, i) => i)] } });
  assert.deepEqual(grid.values.map((v) => v.index), ["[0][0]", "[0][1]", "[1][0]", "[1][1]"]);
  assert.deepEqual([long.values.length, long.more], [L.NAMED_SHOWN, 20 - L.NAMED_SHOWN]);
  assert.deepEqual([gone.missing, gone.values], [true, []]);
  assert.equal(L.answerSummary({ result: { grid: [[[1, 2], [3, 4]]] } }, card), "3 named outputs, grid (4 values), long (missing) and gone (missing)");
  assert.deepEqual(L.namedOutputs(twin, { result: [[1, 2]] }).map((o) => o.missing), [true, true]); // not an object of outputs
});

test("notApplicableText: drift needs a classifier or a regressor with numeric inputs, slices a held-out evaluation; tabs needing classes say so", () => {
  assert.equal(L.notApplicableText(pair, "drift"), null); // watched on its named inputs' numbers
  const words = { ...pair, name: "words", inputs: [{ name: "text", datatype: "BYTES", shape: [1], max_bytes: 64 }] };
  assert.equal(L.notApplicableText(words, "drift"), "Drift is monitored for classifiers (one label per example: softmax or sigmoid), regressors and multi-label taggers, on numeric inputs of a fixed shape: it does not apply to words v1, a one-class model (3 labels), taking 1 named input (text BYTES [1]).");
  assert.equal(L.notApplicableText(pair, "slices"), "Slices measure the accuracy per class and under shifts of held-out data: the server evaluates models taking one input tensor. pair v1 takes 2 named inputs (features FP32 [4], counts INT64 [3]), and no held-out evaluation.");
  assert.equal(L.notApplicableText(pair, "live"), null); // a classifier: its live accuracy, whatever its inputs
  assert.equal(L.notApplicableText(twin, "drift"), "Drift is monitored for classifiers (one label per example: softmax or sigmoid), regressors and multi-label taggers, on numeric inputs of a fixed shape: it does not apply to twin v1, a model answering 2 named outputs (kind FP32 [3], size FP32 [2]), taking 2 named inputs (features FP32 [4], counts INT64 [3]).");
  assert.equal(L.notApplicableText({ ...twin, name: "named-house", output: { kind: "regression", labels: [], targets: [{ name: "price", unit: "USD" }] }, outputs: undefined }, "drift"), null);
  assert.equal(L.notApplicableText(twin, "live"), "Live accuracy counts the answers whose true label the server was told: it applies to one-class models (one label per example: softmax or sigmoid); for a regression model this tab shows its live error instead. twin v1 is a model answering 2 named outputs (kind FP32 [3], size FP32 [2]).");
  assert.equal(L.notApplicableText(grey, "drift"), null);
  assert.equal(L.notApplicableText(grey, "slices"), null);
  assert.equal(L.notApplicableText(house, "live"), null);
  assert.equal(L.notApplicableText(tagger, "slices"), L.oneClassOnlyText(tagger, "slices"));
  assert.equal(L.notApplicableText(grey, "card"), null);
  assert.equal(L.notApplicableText(null, "drift"), null);
});

// --- a regressor's drift: what GET /drift answered for scikit-learn's diabetes regressor (imported with
// --eval-data, 142 held-out examples; 400 examples with bmi shifted by two SD), four of its ten inputs kept

const ks = (value, p_value, drifted, extra) => ({ test: "ks_2samp", value, p_value, threshold: { p_value: 0.001 }, drifted, ...extra });
const bonferroni = (tests) => ({ correction: { method: "bonferroni", tests } });
const diabetes = { name: "diabetes", version: "v1", input: { kind: "tensor", shape: [10], value_range: null, divide_by: null, names: ["age", "sex", "bmi", "bp"] }, preprocessing: null, output: { kind: "regression", labels: [], targets: [{ name: "progression", unit: null }] } };
const diabetesDrift = {
  model: "diabetes", version: "v1",
  window: { size: 400, capacity: 400, min_samples: 200, predictions_seen: 800 },
  drifted: true, verdict: "drift",
  statistics: {
    mean_intensity_ks: ks(0.073944, 0.588097145182814, false),
    "input_ks[age]": ks(0.130563, 0.5078552660680947, false, { ...bonferroni(10), input: "age" }),
    "input_ks[sex]": ks(0.026373, 1.0, false, { ...bonferroni(10), input: "sex" }),
    "input_ks[bmi]": ks(0.671268, 3.1383744743428505e-46, true, { ...bonferroni(10), input: "bmi" }),
    "input_ks[bp]": ks(0.075951, 1.0, false, { ...bonferroni(10), input: "bp" }),
    "predicted_value_ks[progression]": ks(0.287148, 3.70130542585902e-08, true, { ...bonferroni(1), target: "progression" }),
  },
  drifted_inputs: ["bmi"], drifted_targets: ["progression"],
  predicted_values: { progression: { unit: null, window: { mean: 202.435, p10: 131.103, p50: 201.353, p90: 286.676 }, reference: { mean: 159.273, p10: 86.172, p50: 159.649, p90: 235.535 } } },
  reference_images: 142,
};

test("drift applies to classifiers, regressors and taggers with numeric inputs; other tasks say so, naming the task", () => {
  assert.deepEqual([grey, colour, tensor, house, diabetes, tagger, embedder, tensorOut, pair, twin, null].map(L.hasDrift), [true, true, true, true, true, true, false, false, true, false, false]);
  assert.equal(L.notApplicableText(house, "drift"), null);
  assert.equal(L.notApplicableText(diabetes, "drift"), null);
  assert.equal(L.notApplicableText(house, "slices"), L.oneClassOnlyText(house, "slices")); // slices still need classes
  assert.equal(L.notApplicableText(tagger, "drift"), null); // each label's probability, watched as a regressor's target
  assert.equal(L.notApplicableText(embedder, "drift"), "Drift is monitored for classifiers (one label per example: softmax or sigmoid), regressors and multi-label taggers, on numeric inputs of a fixed shape: it does not apply to embedder v2, an embedding model (vectors of 10 values).");
  assert.match(L.notApplicableText(tensorOut, "drift"), /: it does not apply to raw v1, a model answering a tensor of shape 2×2\.$/);
  assert.equal(L.driftNotApplicableText(null), null);
});

test("a regressor's report: judged, its reference held-out examples (not images), what drifted by name", () => {
  assert.equal(L.isRegressionDrift(diabetesDrift), true);
  assert.equal(L.isRegressionDrift({ statistics: {}, class_shares: { window: [], reference: [] } }), false);
  assert.equal(L.isRegressionDrift(null), false);
  assert.equal(L.driftJudged(diabetesDrift), true);
  assert.equal(L.driftSummary(diabetesDrift), "diabetes v1; drifted: yes");
  assert.equal(L.windowText(diabetesDrift), "400 of 400 recent examples in the window (at least 200 needed); 800 predictions seen");
  assert.equal(L.referenceText(diabetesDrift, diabetes), "reference: 142 held-out examples (the evaluation set, never trained on)");
  assert.equal(L.referenceText(diabetesDrift), "reference: 142 held-out examples (the evaluation set, never trained on)"); // without its card: a regressor's report
  // a classifier's: images for a model of images (as before), examples for a model of a tensor
  assert.equal(L.referenceText({ reference_images: 3194 }, colour), "reference: 3,194 held-out images (the evaluation set, never trained on)");
  assert.equal(L.referenceText({ reference_images: 500 }, tensor), "reference: 500 held-out examples (the evaluation set, never trained on)");
  assert.deepEqual([L.heldOutNoun(grey), L.heldOutNoun(tensor), L.heldOutNoun(diabetes), L.heldOutNoun(null), L.heldOutNoun(null, diabetesDrift)], ["images", "examples", "examples", "images", "examples"]);
  assert.deepEqual(L.driftedNames(diabetesDrift, diabetes), { inputs: "bmi", targets: "progression" });
  assert.deepEqual(L.driftedNames({ ...diabetesDrift, drifted_inputs: ["bmi", "bp", "age"], drifted_targets: ["price", "area"] }, house), { inputs: "bmi, bp and age", targets: "price (USD) and area" });
  assert.deepEqual(L.driftedNames({ ...diabetesDrift, drifted: false, verdict: "no drift", drifted_inputs: [], drifted_targets: [] }, diabetes), { inputs: "none", targets: "none" });
  // an input of more than 64 values is not tested value by value: only its mean is
  const wide = { ...diabetesDrift, statistics: { mean_intensity_ks: diabetesDrift.statistics.mean_intensity_ks }, drifted_inputs: [], drifted_targets: [] };
  assert.deepEqual(L.driftedNames(wide, diabetes), { inputs: "none tested one by one (only the mean of each example's values)", targets: "none" });
});

test("a regressor's statistics: drifted first, then the smallest p-value; each says what it tests and how its p-value was adjusted", () => {
  const rows = L.regressionDriftRows(diabetesDrift, diabetes);
  assert.deepEqual(rows.map((r) => [r.name, r.status]), [
    ["input_ks[bmi]", "yes"], ["predicted_value_ks[progression]", "yes"], ["input_ks[age]", "no"], ["mean_intensity_ks", "no"], ["input_ks[bp]", "no"], ["input_ks[sex]", "no"],
  ]);
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  assert.deepEqual(byName["input_ks[bmi]"], {
    name: "input_ks[bmi]", test: "ks_2samp", value: 0.671268, pValue: 3.1383744743428505e-46, threshold: { p_value: 0.001 }, drifted: true, judged: true, status: "yes",
    kind: "input", about: "input bmi", correction: "p × 10 (Bonferroni)",
  });
  assert.deepEqual([byName["predicted_value_ks[progression]"].about, byName["predicted_value_ks[progression]"].correction, byName["predicted_value_ks[progression]"].kind], ["predictions of progression", "", "target"]); // one target: no adjustment
  assert.deepEqual([byName.mean_intensity_ks.about, byName.mean_intensity_ks.correction, byName.mean_intensity_ks.kind], ["the mean of each example's values", "", null]);
  // a target's unit from the card, or from the report without one
  const house2 = { ...diabetesDrift, statistics: { "predicted_value_ks[price]": ks(0.1, 0.5, false, { ...bonferroni(2), target: "price" }) }, predicted_values: { price: { unit: "USD", window: {}, reference: {} } } };
  assert.equal(L.regressionDriftRows(house2, house)[0].about, "predictions of price (USD)");
  assert.equal(L.regressionDriftRows(house2)[0].about, "predictions of price (USD)");
  assert.equal(L.regressionDriftRows(house2)[0].correction, "p × 2 (Bonferroni)");
  assert.equal(L.regressionDriftNote(rows), "A test drifts at p < 0.001. The tests per input and per target are families: each p-value is multiplied by the number of tests in its family (Bonferroni, at most 1), so that a model of many inputs raises no more false alarms than a model of one.");
  // a model with a value range has the intensity PSI too: after the tests, with its own threshold
  const psi = { ...diabetesDrift, statistics: { ...diabetesDrift.statistics, intensity_psi: { test: "psi", value: 0.05, threshold: 0.2, drifted: false } } };
  const withPsi = L.regressionDriftRows(psi, diabetes);
  assert.deepEqual([withPsi.at(-1).name, withPsi.at(-1).about, withPsi.at(-1).pValue], ["intensity_psi", "the histogram of the input's values", null]);
  assert.match(L.regressionDriftNote(withPsi), /^A test drifts at p < 0\.001, the PSI above 0\.2\. /);
  assert.deepEqual(L.regressionDriftRows({ ...diabetesDrift, statistics: {} }), []);
  assert.equal(L.correctionText(undefined), "");
  assert.equal(L.correctionText({ method: "bonferroni", tests: 1 }), "");
});

test("before the window holds enough, a regressor's statistics and names are not judged; its predicted values show what there is", () => {
  // What GET /drift answered after 100 of the 200 examples needed: computed, every drifted false.
  const early = {
    ...diabetesDrift, window: { size: 100, capacity: 400, min_samples: 200, predictions_seen: 100 }, drifted: false, verdict: "too few predictions",
    statistics: { "input_ks[bmi]": ks(0.138592, 1.0, false, { ...bonferroni(10), input: "bmi" }), "predicted_value_ks[progression]": ks(0.149296, 0.12997620252874487, false, { ...bonferroni(1), target: "progression" }) },
    drifted_inputs: [], drifted_targets: [],
  };
  assert.equal(L.driftSummary(early), "diabetes v1; drifted: not judged yet");
  assert.deepEqual(L.driftedNames(early, diabetes), { inputs: "not judged yet", targets: "not judged yet" });
  assert.deepEqual(L.regressionDriftRows(early, diabetes).map((r) => [r.name, r.status]), [["predicted_value_ks[progression]", "not judged yet"], ["input_ks[bmi]", "not judged yet"]]);
  // no traffic yet: the window's summary is null
  const none = { ...early, window: { ...early.window, size: 0, predictions_seen: 0 }, statistics: {}, predicted_values: { progression: { ...diabetesDrift.predicted_values.progression, window: { mean: null, p10: null, p50: null, p90: null } } } };
  assert.deepEqual(L.predictedValueRows(none, diabetes)[0].rows, [
    ["recent (0)", "–", "–", "–", "–"], ["held-out (142)", "159.3", "86.17", "159.6", "235.5"], ["recent − held-out", "–", "–", "–", "–"],
  ]);
});

test("each target's predicted values, recent against held-out: mean, p10, p50, p90 and their difference", () => {
  assert.deepEqual(L.predictedValueRows(diabetesDrift, diabetes), [{
    name: "progression", label: "progression",
    rows: [["recent (400)", "202.4", "131.1", "201.4", "286.7"], ["held-out (142)", "159.3", "86.17", "159.6", "235.5"], ["recent − held-out", "+43.16", "+44.93", "+41.7", "+51.14"]],
  }]);
  const house2 = { ...diabetesDrift, predicted_values: {
    price: { unit: "USD", window: { mean: 180000.5, p10: 90000, p50: 170000, p90: 260000 }, reference: { mean: 200000, p10: 100000, p50: 195000, p90: 300000 } },
    area: { unit: null, window: { mean: 4.25, p10: 1, p50: 4, p90: 8 }, reference: { mean: 4.5, p10: 1, p50: 4.5, p90: 8.5 } },
  } };
  const rows = L.predictedValueRows(house2, house);
  assert.deepEqual(rows.map((r) => [r.name, r.label]), [["price", "price (USD)"], ["area", "area"]]);
  assert.deepEqual(rows[0].rows[2], ["recent − held-out", "−20,000", "−10,000", "−25,000", "−40,000"]);
  assert.deepEqual(rows[1].rows[2], ["recent − held-out", "−0.25", "0", "−0.5", "−0.5"]);
  assert.deepEqual(L.predictedValueRows({}), []);
});

test("a dynamic input: its field takes any length in its bounds, in words naming the sizes", () => {
  const tokens = { name: "tokens", datatype: "INT64", shape: [-1], max_shape: [8] };
  const seq = { name: "seq", datatype: "FP32", shape: [-1, 3], max_shape: [5, 3], min_shape: [2, 3] };
  const words = { name: "words", datatype: "BYTES", shape: [-1], max_shape: [3], max_bytes: 8 };
  assert.ok(L.isDynamic(tokens) && !L.isDynamic({ name: "x", datatype: "FP32", shape: [3] }));
  assert.ok(L.fitsSpec([2, 3], seq) && L.fitsSpec([5, 3], seq) && !L.fitsSpec([1, 3], seq) && !L.fitsSpec([6, 3], seq) && !L.fitsSpec([3, 2], seq));
  assert.equal(L.specWhat(tokens), "1 to 8 whole numbers");
  assert.equal(L.specWhat(seq), "numbers in shape [n, 3], n from 2 to 5");
  assert.equal(L.specWhat(words), "1 to 3 texts of up to 8 bytes each");
  assert.equal(L.specLabel(seq), "seq · FP32 [-1, 3] · up to [5, 3]");
  assert.deepEqual(L.specRows([seq]), [["seq", "FP32", "[-1, 3], up to [5, 3]"]]);
  assert.deepEqual(L.parseNamedValue("1 2 3", tokens), { value: [1, 2, 3] });
  assert.deepEqual(L.parseNamedValue("[7]", tokens), { value: [7] });
  assert.deepEqual(L.parseNamedValue("1 2 3 4 5 6 7 8 9", tokens), { error: "The input tokens takes 1 to 8 whole numbers; the field has 9 values." });
  assert.deepEqual(L.parseNamedValue("  ", tokens), { error: "The input tokens is empty: type 1 to 8 whole numbers." });
  assert.deepEqual(L.parseNamedValue("[[1,2,3],[4,5,6]]", seq), { value: [[1, 2, 3], [4, 5, 6]] });
  assert.deepEqual(L.parseNamedValue("[[1,2,3]]", seq), { error: "The input seq takes numbers in shape [n, 3], n from 2 to 5; the field has shape [1, 3]." });
  assert.deepEqual(L.parseNamedValue("1 2 3 4 5 6", seq), { error: "The input seq takes numbers in shape [n, 3], n from 2 to 5: type it as JSON nested lists." });
  assert.deepEqual(L.parseNamedValue('[[1,2,"a"],[1,2,3]]', seq), { error: 'The input seq holds "a" at [0][2], not a number.' });
  assert.deepEqual(L.parseNamedValue("red\ngreen\n", words), { value: ["red", "green"] });
  assert.deepEqual(L.parseNamedValue("one", words), { value: ["one"] });
  assert.deepEqual(L.parseNamedValue('["a b", "c"]', words), { value: ["a b", "c"] });
  assert.deepEqual(L.parseNamedValue('["toolongtext!"]', words), { error: "The input words is 12 bytes long in UTF-8: it takes up to 8 bytes." });
  assert.deepEqual(L.parseNamedValue("a\nb\nc\nd", words), { error: "The input words takes 1 to 3 texts of up to 8 bytes each; the field has 4 lines." });
  const form = L.namedForm({ inputs: [seq, tokens] });
  assert.deepEqual(form.inputs.map((f) => [f.lines, f.size, f.hint]), [
    [true, 15, "Numbers in shape [n, 3], n from 2 to 5: JSON nested lists, such as [[0, 0, 0], [0, 0, 0]]."],
    [true, 8, "1 to 8 whole numbers: separated by commas or spaces (or as a JSON list)."],
  ]);
  assert.deepEqual(L.namedBody(["[[0,0,0],[1,1,1]]", "4 5"], form), { body: { input: { seq: [[0, 0, 0], [1, 1, 1]], tokens: [4, 5] } } });
  assert.equal(L.hasDrift({ output: { kind: "softmax", labels: ["a", "b"] }, input: { kind: "tensors" }, inputs: [seq] }), false);
});

test("namedOutputs shows a string output's values as their text", () => {
  const card = { outputs: [{ name: "name", datatype: "BYTES", shape: [1], max_bytes: 16 }, { name: "id", datatype: "INT64", shape: [1] }] };
  const [name, id] = L.namedOutputs(card, { result: { name: [["bleu"]], id: [[2]] } });
  assert.deepEqual(name.values, [{ index: "0", value: "bleu", text: "bleu" }]);
  assert.equal(name.label, "name · BYTES [1] · up to 16 bytes of text");
  assert.deepEqual(id.values, [{ index: "0", value: 2, text: "2" }]);
});
