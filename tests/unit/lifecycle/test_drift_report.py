"""lifecycle/drift_report.py: the offline drift report from the service's data logs, per model and version."""

import datetime
import json

import bentoml
import numpy as np
import pytest
import yaml

from config import DriftThresholds
from lifecycle.drift_report import log_files, main, parse_line, read_records, render, window_bounds, window_reports
from lifecycle.reference import build_reference, feature_view
from lifecycle.slices import apply_shift
from tests.unit.cards import clothes_card, colour_card
from training.recipes.clothes import RECIPE, load_data

T0 = datetime.datetime(2026, 11, 25, 1, 0, 0)
WINDOW = 300
THRESHOLDS = DriftThresholds()  # p 0.001, PSI 0.2, min_samples 200
CARD = clothes_card(name="drift-clothes")


def synthetic_probabilities(labels: np.ndarray, seed: int) -> np.ndarray:
    """Softmax outputs of a plausible classifier: mostly right, with varied confidence."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (len(labels), 10))
    logits[np.arange(len(labels)), labels] += rng.uniform(1.0, 7.0, len(labels))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    fashion = load_data(allow_download=False)
    x, y = fashion.x_test[:1700, :, :, None], fashion.y_test[:1700]
    reference = build_reference(x[:500], synthetic_probabilities(y[:500], seed=1), CARD)
    clean = (x[500:1100], synthetic_probabilities(y[500:1100], seed=2))
    inverted = (apply_shift(RECIPE.shifts["inverted"], x[1100:1700]), synthetic_probabilities(y[1100:1700], seed=3))
    return reference, clean, inverted


def log_line(i: int, pixels: np.ndarray, probabilities: np.ndarray, version: str = "v1", model: str = CARD.name) -> str:
    """One record exactly as BentoML's DefaultMonitor writes it for serving/monitoring.py."""
    return json.dumps(
        {
            "model": model,
            "version": version,
            "pixels": np.clip(pixels, 0, 255).astype(np.uint8).ravel().tolist(),
            "mean_intensity": round(float(pixels.mean()), 3),
            "predicted_class": int(probabilities.argmax()),
            "confidence": round(float(probabilities.max()), 5),
            "timestamp": (T0 + datetime.timedelta(milliseconds=10 * i)).isoformat(),
            "request_id": str(i),
            "trace_id": "0",
        }
    )


def write_logs(log_dir, version, images, probabilities):
    """Two workers (even / odd records), each with a rotated .1 file and a live file, and 3 bad lines;
    records of another version and of another model (of another shape) among them."""
    data = log_dir / "predictions" / "data"
    data.mkdir(parents=True)
    schema = log_dir / "predictions" / "schema"
    schema.mkdir()
    (schema / "schema.0.log").write_text('{"meta_data": {}, "columns": []}\n')
    colour = np.zeros((32, 32, 3), np.uint8)
    for worker in (0, 1):
        lines = [log_line(i, images[i], probabilities[i], version) for i in range(worker, len(images), 2)]
        lines += [log_line(i, images[i], probabilities[i], "other") for i in range(worker, 20, 2)]  # another version's
        lines += [log_line(i, colour, probabilities[i][:3], version, model="colours") for i in range(worker, 20, 2)]  # another model's
        half = len(lines) // 2
        older, newer = lines[:half], lines[half:]
        if worker == 0:
            older.insert(3, "this is not json {")
            older.insert(7, json.dumps({**json.loads(older[6]), "pixels": [300] * 784}))  # out of range
        else:
            newer.append(newer[-1][:500])  # a line cut off mid-write
        (data / f"data.{worker}.log.1").write_text("\n".join(older) + "\n")
        (data / f"data.{worker}.log").write_text("\n".join(newer) + "\n\n")
    return data


def test_log_files_are_read_oldest_first(tmp_path):
    data = tmp_path / "predictions" / "data"
    data.mkdir(parents=True)
    for name in ("data.0.log", "data.0.log.1", "data.0.log.2", "data.0.log.10", "data.1.log"):
        (data / name).write_text("")
    assert [p.name for p in log_files(tmp_path)] == ["data.0.log.10", "data.0.log.2", "data.0.log.1", "data.0.log", "data.1.log"]
    assert log_files(tmp_path / "elsewhere") == []


def test_reads_rotated_logs_of_all_workers_in_time_order(tmp_path, data):
    _, (images, probabilities), _ = data
    write_logs(tmp_path, "v1", images, probabilities)
    records, skipped = read_records(tmp_path, CARD)
    assert skipped == 3  # other models' records are not counted
    assert [r["request_id"] for r in records] == [str(i) for i in range(len(images))]
    np.testing.assert_array_equal(np.stack([r["pixels"] for r in records]), images.reshape(len(images), -1))
    np.testing.assert_array_equal([r["predicted_class"] for r in records], probabilities.argmax(axis=1))


def test_window_bounds_keep_a_partial_window_only_with_enough_records():
    assert window_bounds(700, 300, 200) == [(0, 300), (300, 600)]
    assert window_bounds(800, 300, 200) == [(0, 300), (300, 600), (600, 800)]
    assert window_bounds(150, 300, 200) == [(0, 150)]  # the only window: shown, with no verdict
    assert window_bounds(0, 300, 200) == []


def test_clean_traffic_does_not_drift_and_inverted_images_do(tmp_path, data):
    reference, clean, inverted = data
    images = np.concatenate([clean[0], inverted[0]])
    probabilities = np.concatenate([clean[1], inverted[1]])
    write_logs(tmp_path, "v1", images, probabilities)
    records, _ = read_records(tmp_path, CARD)

    reports = window_reports(records, reference, WINDOW, THRESHOLDS, CARD)

    assert [r["verdict"] for r in reports] == ["no drift", "no drift", "drift", "drift"]
    assert [r["rows"] for r in reports] == [[0, 300], [300, 600], [600, 900], [900, 1200]]
    assert reports[0]["start"] == "2026-11-25 01:00:00.000" and reports[0]["window"]["size"] == WINDOW
    for report in reports[2:]:
        assert report["statistics"]["intensity_psi"]["drifted"] and report["statistics"]["mean_intensity_ks"]["drifted"]


def test_too_few_records_give_no_verdict(tmp_path, data):
    reference, _, (images, probabilities) = data
    write_logs(tmp_path, "v1", images[:100], probabilities[:100])
    records, _ = read_records(tmp_path, CARD)
    reports = window_reports(records, reference, WINDOW, THRESHOLDS, CARD)
    assert len(reports) == 1 and reports[0]["verdict"] == "too few predictions" and not reports[0]["drifted"]


def test_render_the_report_page(tmp_path, data):
    reference, clean, inverted = data
    write_logs(tmp_path, "v1", np.concatenate([clean[0], inverted[0]]), np.concatenate([clean[1], inverted[1]]))
    records, _ = read_records(tmp_path, CARD)
    reports = window_reports(records, reference, WINDOW, THRESHOLDS, CARD)
    html = render(CARD, records, reports, reference, THRESHOLDS, skipped=3)
    assert html.count("<img") == 5 and "drift-clothes:v1 drift report" in html
    assert "class='n worst'" in html and "3 unparsable log lines skipped" in html
    few = window_reports(records[:100], reference, WINDOW, THRESHOLDS, CARD)
    assert "too few predictions" in render(CARD, records[:100], few, reference, THRESHOLDS)


def test_parse_line_takes_only_this_models_well_formed_records():
    probabilities = synthetic_probabilities(np.array([4]), seed=0)[0]
    line = log_line(0, np.zeros((28, 28, 1)), probabilities)
    assert parse_line(line, CARD)["predicted_class"] == int(probabilities.argmax())
    assert parse_line(log_line(0, np.zeros((28, 28, 1)), probabilities, model="colours"), CARD) is None
    row = json.loads(line)
    for change in ({"pixels": [1] * 10}, {"pixels": [300] * 784}, {"predicted_class": 10}, {"confidence": 1.5}, {"timestamp": "yesterday"}):
        assert parse_line(json.dumps({**row, **change}), CARD) is None
    assert parse_line("", CARD) is None and parse_line("[]", CARD) is None


def colour_records(tmp_path):
    """A colour 32x32x3 model's card, records, window reports and reference."""
    card = colour_card(name="drift-colours")
    rng = np.random.default_rng(8)
    images = rng.integers(0, 256, (400, 32, 32, 3)).astype(np.uint8)
    labels = rng.integers(0, 3, 400)
    probabilities = synthetic_probabilities(labels, seed=4)[:, :3]
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    reference = build_reference(images[:200], probabilities[:200], card)
    data = tmp_path / "predictions" / "data"
    data.mkdir(parents=True)
    views = feature_view(images[200:], card)
    lines = [log_line(i, views[i], probabilities[200 + i], model=card.name) for i in range(200)]
    (data / "data.0.log").write_text("\n".join(lines) + "\n")
    records, skipped = read_records(tmp_path, card)
    assert skipped == 0
    return card, records, window_reports(records, reference, 200, THRESHOLDS, card), reference


def test_a_colour_models_records_and_windows(tmp_path):
    """A colour 32x32x3 model: its records hold the feature view (3,072 values)."""
    card, records, reports, _ = colour_records(tmp_path)
    assert len(records) == 200 and records[0]["pixels"].shape == (32 * 32 * 3,)
    assert reports[0]["verdict"] == "no drift", reports[0]["statistics"]


def test_render_a_colour_models_report_page(tmp_path):
    card, records, reports, reference = colour_records(tmp_path)
    html = render(card, records, reports, reference, THRESHOLDS)
    assert "drift-colours:v1 drift report" in html and "GET /models/drift-colours/v1/drift" in html


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump({"models": {CARD.name: {"versions": ["v1"]}}, "monitoring": {"window": WINDOW, "min_samples": 200}}))
    monkeypatch.setenv("MODEL_SERVER_CONFIG", str(path))
    return path


def stored(version: str, reference: dict | None = None):
    """``CARD`` as <version> in the model store (no network: the report needs the card and the reference only)."""
    card = CARD.model_copy(update={"version": version})
    if not bentoml.models.list(card.tag):
        with bentoml.models.create(card.tag, metadata=card.to_metadata()) as model:
            if reference is not None:
                with open(model.path_of("reference.json"), "w") as f:
                    json.dump(reference, f)
    return card


def test_main_writes_the_html_report(tmp_path, data, config, capsys):
    reference, clean, inverted = data
    stored("v1")
    write_logs(tmp_path / "logs", "v1", np.concatenate([clean[0], inverted[0]]), np.concatenate([clean[1], inverted[1]]))
    (tmp_path / "reference.json").write_text(json.dumps(reference))
    out = tmp_path / "reports" / "drift-v1.html"

    code = main(["--model", CARD.name, "--version", "v1", "--logs", str(tmp_path / "logs"), "--reference", str(tmp_path / "reference.json"), "--out", str(out)])

    assert code == 0
    html = out.read_text()
    assert html.startswith("<!doctype html>") and "<img" in html and "<table>" in html and "data:image/png;base64," in html
    assert "drift-clothes:v1 drift report" in html
    assert capsys.readouterr().out.strip() == f"1200 records (3 unparsable lines skipped), 4 windows of {WINDOW}, 2 drifted (last: drift) -> {out}"


def test_main_takes_the_reference_from_the_model_store(tmp_path, data, config, capsys):
    reference, (images, probabilities), _ = data
    stored("drift-store", reference)
    write_logs(tmp_path / "logs", "drift-store", images, probabilities)
    out = tmp_path / "drift.html"

    assert main(["--model", CARD.name, "--version", "drift-store", "--logs", str(tmp_path / "logs"), "--out", str(out)]) == 0
    assert "model store drift-clothes:drift-store" in out.read_text()
    assert "2 windows of 300, 0 drifted (last: no drift)" in capsys.readouterr().out


def test_main_fails_without_records_or_reference(tmp_path, data, config, capsys):
    stored("v1")
    stored("no-reference")
    (tmp_path / "reference.json").write_text(json.dumps(data[0]))
    args = ["--model", CARD.name, "--version", "v1", "--logs", str(tmp_path / "logs"), "--out", str(tmp_path / "drift.html")]
    assert main([*args, "--reference", str(tmp_path / "reference.json")]) == 1
    assert "no records of drift-clothes:v1 in" in capsys.readouterr().err
    assert main([*args[:3], "absent", *args[4:]]) == 1  # drift-clothes:absent is in no model store
    assert "no reference: drift-clothes:absent is not in the model store" in capsys.readouterr().err
    assert main([*args[:3], "no-reference", *args[4:]]) == 1
    assert "drift-clothes:no-reference has no reference.json" in capsys.readouterr().err
    assert not (tmp_path / "drift.html").exists()


def test_main_reports_a_bad_configuration(tmp_path, monkeypatch, capsys):
    (tmp_path / "configuration.yaml").write_text("clothes: {versions: [v1]}\n")
    monkeypatch.setenv("MODEL_SERVER_CONFIG", str(tmp_path / "configuration.yaml"))
    assert main(["--model", CARD.name, "--version", "v1", "--logs", str(tmp_path)]) == 1
    assert "drift_report: " in capsys.readouterr().err


def test_reads_what_the_service_logs_through_bentoml_monitor(tmp_path, data, monkeypatch):
    from config import Monitoring
    from serving.monitoring import VersionMonitor

    reference, (images, probabilities), _ = data
    card = CARD.model_copy(update={"version": "log-test"})
    other = clothes_card(name="drift-other", version="log-test")
    monkeypatch.chdir(tmp_path)  # BentoML's default log_path, "monitoring", is relative to the working directory
    # BentoML keeps one monitor per name for the process, its log path fixed at its first record: an
    # earlier test's sampled prediction would have sent these records to that test's directory.
    from bentoml._internal.monitoring import api as monitoring_api

    monkeypatch.setattr(monitoring_api, "_MONITOR_INSTANCES", {})
    settings = Monitoring(window=1000, log_sample_rate=1.0, log_max_per_second=10_000)
    monitor = VersionMonitor(card, reference, settings)
    monitor.observe(images[:150], probabilities[:150])
    VersionMonitor(other, reference, settings).observe(images[:20], probabilities[:20])  # another model, the same log
    monitor.observe(images[150:250].astype(np.float32), probabilities[150:250])

    records, skipped = read_records(tmp_path / "monitoring", card)

    assert skipped == 0 and len(records) == 250
    np.testing.assert_array_equal(np.stack([r["pixels"] for r in records]), images[:250].reshape(250, -1))
    reports = window_reports(records, reference, 1000, THRESHOLDS, card)
    assert reports[0]["statistics"] == monitor.drift()["statistics"]  # the offline report agrees with /drift
    assert len(read_records(tmp_path / "monitoring", other)[0]) == 20


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5])
def test_the_data_log_samples_each_example_with_the_configured_rate(rate):
    """Geometric gaps between samples (one random draw per sample): the share sampled is the rate, over
    requests of any size, and the indices are the request's own."""
    from config import Monitoring
    from serving.monitoring import VersionMonitor

    monitor = VersionMonitor(CARD, None, Monitoring(log_sample_rate=rate))
    sizes = np.random.default_rng(3).integers(1, 65, 4000)
    picked = [monitor._sample(int(n)) for n in sizes]
    assert all(((p >= 0) & (p < n)).all() and len(set(p)) == len(p) for p, n in zip(picked, sizes, strict=True))
    share = sum(len(p) for p in picked) / sizes.sum()
    assert share == pytest.approx(rate, rel=0.1), share


def test_a_regressors_logged_predictions_give_the_live_reports_and_a_page(tmp_path, monkeypatch):
    """A regressor's sampled records (its inputs and predicted_values) through bentoml.monitor: the offline
    windows agree with GET /drift's, and the page shows every input's and target's test and the values."""
    from bentoml._internal.monitoring import api as monitoring_api

    from config import Monitoring
    from lifecycle.reference import build_regression_reference
    from serving.monitoring import VersionMonitor
    from tests.unit.cards import regression_card

    card = regression_card(name="drift-house", version="log-test")
    weights = np.array([[40_000.0, 2.0], [-1_000.0, 0.5], [-5_000.0, -1.0], [60_000.0, 0.1]])
    rng = np.random.default_rng(20)
    values = rng.normal([3, 30, 5, 4], [1, 10, 2, 1.5], (1000, 4)).astype(np.float32)
    values[700:, 3] += 1.5  # income up in the last 300
    predicted = (values @ weights).astype(np.float32)
    reference = json.loads(json.dumps(build_regression_reference(values[:400], predicted[:400], card)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(monitoring_api, "_MONITOR_INSTANCES", {})
    monitor = VersionMonitor(card, reference, Monitoring(window=300, log_sample_rate=1.0, log_max_per_second=10_000))
    predicted[450, 1] = np.nan  # logged as null, read back as NaN, left out of the test as live
    for start in range(400, 1000, 50):
        monitor.observe(values[start : start + 50], predicted[start : start + 50])

    records, skipped = read_records(tmp_path / "monitoring", card)

    assert skipped == 0 and len(records) == 600 and np.isnan(records[50]["predicted_values"][1])
    reports = window_reports(records, reference, 300, THRESHOLDS, card)
    assert [r["verdict"] for r in reports] == ["no drift", "drift"] and reports[1]["drifted_inputs"] == ["income"]
    assert reports[1]["statistics"] == monitor.drift()["statistics"]  # the offline report agrees with /drift
    html = render(card, records, reports, reference, THRESHOLDS, skipped=0)
    assert html.count("<img") == 2 and "input income KS" in html and "price KS" in html and "area KS" in html
    assert "held-out test examples" in html and "predicted class" not in html


def test_a_regressors_record_needs_a_value_per_target():
    from tests.unit.cards import regression_card

    card = regression_card(name="drift-house")
    row = {"model": card.name, "version": "v1", "pixels": [1, 2, 3, 4], "predicted_values": [1.5, None], "timestamp": T0.isoformat()}
    assert parse_line(json.dumps(row), card)["predicted_values"][0] == 1.5
    for change in ({"predicted_values": [1.5]}, {"predicted_values": "x"}, {"pixels": [1, 2]}):
        assert parse_line(json.dumps({**row, **change}), card) is None


def test_the_page_of_a_0_to_1_image_model_shows_its_images(tmp_path):
    """An image model taking 0..1 values: its logged views are 8-bit levels like any image's, and the
    mean images compare them with the reference on the same scale."""
    from lifecycle.drift_report import _mean_images

    card = clothes_card(name="drift-unit").model_copy(update={"input": clothes_card().input.model_copy(update={"value_range": (0.0, 1.0), "divide_by": None})})
    rng = np.random.default_rng(21)
    images = rng.beta(2, 5, (300, 28, 28, 1)).astype(np.float32)
    probabilities = synthetic_probabilities(rng.integers(0, 10, 300), seed=5)
    reference = build_reference(images[:100], probabilities[:100], card)
    views = feature_view(images[100:], card)
    records = [{"pixels": view} for view in views]
    figure = _mean_images(reference, records, card)
    window, expected, _ = (ax.images[0].get_array() for ax in figure.axes[:3])
    assert abs(float(window.mean()) - float(expected.mean())) < 0.01 and 0.2 < float(expected.mean()) < 0.35  # beta(2, 5): mean 2/7
