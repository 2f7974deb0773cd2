"""The web page (web/, serving/protocols/page.py) in a real browser: Debian's Chromium driven by Playwright.

Against a `bentoml serve` of real models (``url``: the quickly trained clothes versions and the shipped
damage ones, trained from the vendored images): a real test image of each served image model is uploaded and its right label shown, a drawing is classified and shown
as the model sees it (and cleared once a file is answered), a non-image file shows the server's error in words (no
exception class), the card, slices, drift, live accuracy, versions and report each show in their tab (arrows
move between tabs, the address names the tab, a link opens it), the live accuracy tab shows what
``/live`` answers after labelled predictions (figures, the series drawn, the tables) and the page's own
"Right?" control adds one joined example, a rollout started with the page's form shows running with the
API's events, follows a pause made through the API by itself, and is paused, resumed and aborted from
the page (the alias then serves its baseline again), every control is reached with the keyboard, and at a
desktop and a phone size (a touch screen) no table cell overflows or splits a number, a table that scrolls
sideways says so and takes focus, the phone gets no paste hint, and screenshots are written to docs/
(docs/page-desktop.png, docs/page-phone.png, docs/page-live.png, docs/page-rollouts.png). Against a
server with the API token on (``guarded``): the page asks for the token once and keeps it for the
session only, and sends it with its feedback. Against an in-process server of fake runners (``fakes``):
the page follows any card (a colour sigmoid model, a one-class model whose input is not an image), shows a
weighted alias's traffic split, and an abstention (a model with ``ood.abstain_above``) as one, without a
label; models of other tasks taking a tensor (a regressor, a multi-label tagger, an embedding from a 2x3
input) get a form that sends what was typed, pasted or written as JSON, refuses invalid values in words,
and answers shown by task (values with units, labels against thresholds, a vector with its copy), at a
desktop and a phone size, reached with the keyboard (docs/page-multilabel.png, docs/page-values-phone.png). Against a
`bentoml serve` of Keras models of two named inputs made here and imported as users import them (``named``):
a field per named input sends {"input": {...}}, named outputs show the model's own predict() values, a value
the server refuses shows its words, and drift, slices and live accuracy say when they do not apply; a text classifier
(``page-sentiment``, a BYTES input) takes typed text, refuses a text past its bytes in words and answers its classes. Against a
`bentoml serve` of scikit-learn's diabetes regressor imported with ``--eval-data`` (``diabetes``): its Drift tab
shows its report before traffic, after in-distribution traffic and after traffic with bmi shifted, naming the
drifted input and target, its statistics and its predicted values against the held-out ones.

Chromium comes from Debian (`make chromium`); Playwright only drives it (``playwright install``
cannot download browsers here). Its background networking is off: the machine reaches no other host.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import re
import threading
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml
from PIL import Image
from playwright import sync_api as playwright_api
from playwright.sync_api import expect

from serving.protocols import page as page_routes
from tests.e2e.conftest import CLOTHES, DAMAGE, ROOT, Server, clothes, damage, free_port, ready_server, run_training, write_config
from tests.unit.serving.protocols.test_tasks import expected as tasks_expected

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 960}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = ROOT / "docs"
TIMEOUT = 30
WAIT_MS = 30_000
TOKEN = "page-e2e-token-" + "5" * 20
TOKEN_ENV = "MODEL_SERVER_PAGE_E2E_TOKEN"
DAMAGE_DIR = ROOT / "data" / "hurricane-damage"


# --- the servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def url(trained_versions, damage_versions, tmp_path_factory):
    """clothes (quickly trained) and damage (shipped): a grey and a colour model, as users serve them;
    admin routes open without a token (live.admin_without_token), for the page's rollout controls."""
    tmp = tmp_path_factory.mktemp("page")
    models = {CLOTHES: clothes(trained_versions, {"stable": "v1", "latest": "v2"}), DAMAGE: damage(damage_versions, {"stable": damage_versions[0]})}
    live = {**yaml.safe_load((ROOT / "configuration.yaml").read_text())["live"], "admin_without_token": True}
    with ready_server(write_config(tmp / "configuration.yaml", models, live=live), free_port(), tmp / "serve.log") as server:
        yield server.url


# --- the browser -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).is_file(), "Debian's Chromium is needed: make chromium (apt-get install chromium)"
    with playwright_api.sync_playwright() as p:
        # A fresh profile each launch (Playwright's temporary user-data dir), deleted at close.
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Tab:
    """One browser context and page on ``url``, recording every request and every script error."""

    def __init__(self, browser, url: str, **options):
        self.url = url
        self.context = browser.new_context(viewport=options.pop("viewport", DESKTOP), **options)
        self.context.set_default_timeout(WAIT_MS)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.page = self.context.new_page()
        self.watch(self.page)

    def watch(self, page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: self.errors.append(f"{page.url}: {message.text}") if message.type == "error" and "status of 4" not in message.text else None)

    def open(self, path: str = "/"):
        self.page.goto(self.url + path)
        return self.page

    def close(self) -> None:
        self.context.close()

    def assert_only_this_origin(self) -> None:
        elsewhere = [u for u in self.requests if not u.startswith((self.url + "/", "blob:", "data:"))]
        assert not elsewhere, elsewhere
        assert not self.errors, self.errors


@pytest.fixture
def tab(browser, url):
    tab = Tab(browser, url)
    yield tab
    tab.assert_only_this_origin()
    tab.close()


def wait_for_card(page, tag: str) -> None:
    expect(page.locator("#card dd").first).to_have_text(tag)


def choose(page, model: str, version: str, tag: str) -> None:
    """Select a model and a version once the page has settled on its first card."""
    page.wait_for_selector("#card dd", state="attached")  # the card's tab may not be the one shown
    if page.locator("#model").input_value() != model:
        page.select_option("#model", model)
        expect(page.locator("#card dd").first).to_have_text(re.compile(rf"^{re.escape(model)}:"))
    if page.locator("#version").input_value() != version:
        page.select_option("#version", version)
    wait_for_card(page, tag)


def upload(page, name: str, data: bytes, mime: str) -> None:
    page.set_input_files("#file", files=[{"name": name, "mimeType": mime, "buffer": data}])


def wait_for_result(page) -> None:
    """The page's round trip is over (``#try`` not busy), its result shown and the image as the model
    sees it decoded. A decode can be cut short when the page swaps in the next image meanwhile (the
    previous answer's image is still there while a new one loads): then it is awaited again."""
    expect(page.locator("#try")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#model-image")).to_have_attribute("src", re.compile(r"^blob:"))
    # (wait_for_function would need eval: the page's policy refuses it)
    decoded = "() => document.getElementById('model-image').decode().then(() => true, () => false)"
    for _ in range(20):
        if page.evaluate(decoded):
            return
        page.wait_for_timeout(100)
    raise AssertionError("the image as the model sees it never decoded")


EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(Error|Exception|Warning)\b")


def bars(page) -> list[tuple[str, str]]:
    return [(li.locator(".label").inner_text(), li.locator(".value").inner_text()) for li in page.locator("#classes li").all()]


# --- real test images, and the label each one has ---------------------------------------------------------


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def fashion_mnist_examples(limit: int = 200):
    from training.recipes.clothes import LABELS, load_data

    data = load_data(allow_download=False)
    for i in range(limit):
        yield f"fashion-mnist-test-{i}.png", png(data.x_test[i]), "image/png", LABELS[int(data.y_test[i])]


def folder_examples(root: Path, per_label: int = 25):
    """Image files in one folder per label, alternating labels, as they are on disk."""
    labels = sorted(p.name for p in root.iterdir() if p.is_dir())
    files = {label: sorted((root / label).glob("*.jpeg"))[:per_label] for label in labels}
    for i in range(per_label):
        for label in labels:
            if i < len(files[label]):
                yield files[label][i].name, files[label][i].read_bytes(), "image/jpeg", label


# Real test images by model: a served image model missing here fails its test (add its source).
EXAMPLES = {
    "clothes": fashion_mnist_examples,
    "damage": lambda: folder_examples(DAMAGE_DIR),
}


def correctly_classified(url: str, model: str, version: str):
    """The first real example the served version labels rightly (asked through the API, as the page asks)."""
    source = EXAMPLES.get(model)
    assert source is not None, f"no real test images for served model {model!r}: add a source to EXAMPLES"
    for name, data, mime, label in source():
        answer = requests.post(f"{url}/models/{model}/{version}", files={"image": (name, data, mime)}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
        if answer.json()["predictions"][0]["label"] == label:
            return name, data, mime, label
    pytest.fail(f"{model} {version} labels none of its real test images rightly")


def live(url: str, version: str = "stable") -> dict:
    """GET /models/clothes/<version>/live: the server's own live accuracy."""
    answer = requests.get(f"{url}/models/{CLOTHES}/{version}/live", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_for_examples(url: str, at_least: int) -> dict:
    """/live once it holds ``at_least`` joined examples (a request's own labels join on the next pass)."""
    deadline = time.monotonic() + 15
    while True:
        report = live(url)
        if report["examples"] >= at_least:
            return report
        assert time.monotonic() < deadline, f"live accuracy holds {report['examples']} examples, not {at_least}"
        time.sleep(0.2)


def send_labelled(url: str, count: int, slice_name: str | None = None) -> dict:
    """``count`` real test images of clothes through stable, each with its true label (X-Label; X-Slice
    too when given): the server joins them itself. /live once they have joined."""
    before = live(url)["examples"]
    for name, data, mime, label in fashion_mnist_examples(count):
        headers = {"X-Label": label, **({"X-Slice": slice_name} if slice_name else {})}
        answer = requests.post(f"{url}/models/{CLOTHES}/stable", files={"image": (name, data, mime)}, headers=headers, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
    return wait_for_examples(url, before + count)


def js_percent(share: float) -> str:
    """A share as the page writes it (logic.mjs percent: toFixed(1), which rounds half up the float's exact value)."""
    return f"{Decimal(share * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


def js_range(low: float, high: float) -> str:
    return f"{Decimal(low * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)}–{js_percent(high)}"


def row_of(table, name: str):
    """The row of ``table`` whose header cell is ``name`` exactly."""
    return table.locator("tbody tr").filter(has=table.page.locator("th", has_text=re.compile(rf"^{re.escape(name)}$")))


def served_image_models(url: str) -> list[tuple[dict, dict]]:
    models = []
    for listed in requests.get(f"{url}/models", timeout=TIMEOUT).json()["models"]:
        card = requests.get(f"{url}/models/{listed['name']}/{listed['default_version']}", timeout=TIMEOUT).json()
        if card["input"]["kind"] == "image":
            models.append((listed, card))
    return models


# --- against real models -------------------------------------------------------------------------------


def test_a_real_test_image_of_each_model_gets_its_label(tab, url):
    page = tab.open()
    models = served_image_models(url)
    assert {listed["name"] for listed, _ in models} == {CLOTHES, DAMAGE}
    for listed, card in models:
        name, version = listed["name"], listed["default_version"]
        filename, data, mime, label = correctly_classified(url, name, version)
        choose(page, name, version, card["tag"])
        upload(page, filename, data, mime)
        wait_for_result(page)
        shown = bars(page)
        assert shown[0][0] == label, (name, filename, shown)
        assert len(shown) == min(5, len(card["output"]["labels"]))
        assert re.fullmatch(rf"Answered by {name} {card['version']}( \(through {version}\))? in \d+ ms: {re.escape(label)}\.", page.inner_text("#answered"))
        height, width, _ = card["input"]["shape"]
        size = page.evaluate("() => { const i = document.getElementById('model-image'); return [i.naturalWidth, i.naturalHeight]; }")
        assert size == [width, height], (name, size)
        expect(page.locator("#model-image-caption")).to_have_text(f"As the model sees it ({width}×{height})")


def test_an_alias_answers_with_the_version_it_names(tab, url):
    page = tab.open()
    listing = requests.get(f"{url}/models/{CLOTHES}", timeout=TIMEOUT).json()
    alias, version = next((a, v) for a, v in listing["aliases"].items() if v != listing["versions"][0]["version"])
    _, data, mime, label = correctly_classified(url, CLOTHES, alias)
    choose(page, CLOTHES, alias, f"{CLOTHES}:{version}")
    upload(page, "garment.png", data, mime)
    wait_for_result(page)
    assert page.inner_text("#answered").startswith(f"Answered by {CLOTHES} {version} (through {alias}) in ")
    assert page.url.endswith(f"#{CLOTHES}/{alias}")


def test_drawing_on_the_canvas_is_classified_as_drawn(tab, url):
    page = tab.open()
    wait_for_card(page, requests.get(f"{url}/models/{CLOTHES}/stable", timeout=TIMEOUT).json()["tag"])
    canvas = page.locator("#canvas")
    expect(canvas).to_be_visible()
    assert page.evaluate("() => [canvas.width, canvas.height]") == [28, 28]  # the model's resolution
    box = canvas.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    for column in (0.35, 0.65):  # two legs: a trouser, roughly
        page.mouse.move(x + w * column, y + h * 0.15)
        page.mouse.down()
        page.mouse.move(x + w * column, y + h * 0.85, steps=12)
        page.mouse.up()
    page.mouse.move(x + w * 0.35, y + h * 0.15)
    page.mouse.down()
    page.mouse.move(x + w * 0.65, y + h * 0.15, steps=6)
    page.mouse.up()
    lit = "() => Array.from(canvas.getContext('2d').getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 === 0 && v > 0).length"
    drawn = page.evaluate(lit)
    assert drawn > 40
    canvas.focus()  # the keyboard draws too: Shift+arrows paint as the cursor moves
    for _ in range(3):
        page.keyboard.press("Shift+ArrowDown")
    assert page.evaluate(lit) > drawn
    page.click("#classify-drawing")
    wait_for_result(page)
    compared = page.evaluate("""async () => {
        const seen = document.getElementById('model-image');
        await seen.decode();
        const copy = document.createElement('canvas');
        copy.width = seen.naturalWidth; copy.height = seen.naturalHeight;
        copy.getContext('2d').drawImage(seen, 0, 0);
        const a = copy.getContext('2d').getImageData(0, 0, 28, 28).data;
        const b = canvas.getContext('2d').getImageData(0, 0, 28, 28).data;
        const rows = [];
        for (let r = 0; r < 28; r++) { const row = []; for (let c = 0; c < 28; c++) row.push(b[4 * (r * 28 + c)]); rows.push(row); }
        return {same: a.every((v, i) => v === b[i]), rows};
    }""")
    assert compared["same"], "the image as the model sees it differs from the drawing"
    answer = requests.post(f"{url}/models/{CLOTHES}/stable", json={"image": compared["rows"]}, timeout=TIMEOUT).json()
    assert bars(page)[0][0] == answer["predictions"][0]["label"]
    expect(page.locator("#sent-image-caption")).to_have_text("Your drawing")

    # A file answered after the drawing: the drawing goes, so it never stands beside the file's answer.
    _, data, mime, label = correctly_classified(url, CLOTHES, "stable")
    upload(page, "garment.png", data, mime)
    wait_for_result(page)
    expect(page.locator("#sent-image-caption")).to_have_text("Your file: garment.png")
    assert bars(page)[0][0] == label
    assert page.evaluate(lit) == 0, "the old drawing stays beside the file's answer"

    canvas.focus()  # draw again
    page.keyboard.press("Shift+ArrowDown")
    assert page.evaluate(lit) > 0
    page.click("#clear-drawing")
    assert page.evaluate(lit) == 0
    page.click("#classify-drawing")
    expect(page.locator("#try-error")).to_have_text("The canvas is empty: draw something first.")
    expect(page.locator("#result")).to_be_hidden()


def test_a_file_that_is_not_an_image_shows_the_servers_message(tab, url):
    page = tab.open()
    wait_for_card(page, requests.get(f"{url}/models/{CLOTHES}/stable", timeout=TIMEOUT).json()["tag"])
    data = b"name,label\nshirt,6\n"
    expected = requests.post(f"{url}/models/{CLOTHES}/stable", files={"image": ("labels.csv", data, "text/csv")}, timeout=TIMEOUT)
    assert expected.status_code == 422
    upload(page, "labels.csv", data, "text/csv")
    expect(page.locator("#try-error")).to_have_text(expected.json()["error"])
    expect(page.locator("#result")).to_be_hidden()
    shown = page.inner_text("#try-error")
    assert "not a decodable image" in shown and not EXCEPTION_NAME.search(shown), shown  # words, not "UnidentifiedImageError"


def test_drop_and_paste_classify_too(tab, url):
    page = tab.open()
    wait_for_card(page, requests.get(f"{url}/models/{CLOTHES}/stable", timeout=TIMEOUT).json()["tag"])
    _, data, _, label = correctly_classified(url, CLOTHES, "stable")
    make_file = "bytes => { const t = new DataTransfer(); t.items.add(new File([new Uint8Array(bytes)], 'garment.png', {type: 'image/png'})); return t; }"
    transfer = page.evaluate_handle(make_file, list(data))
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    wait_for_result(page)
    assert bars(page)[0][0] == label
    page.evaluate("() => { document.getElementById('result').hidden = true; document.getElementById('model-image').removeAttribute('src'); }")
    page.evaluate(f"bytes => document.body.dispatchEvent(new ClipboardEvent('paste', {{clipboardData: ({make_file})(bytes), bubbles: true}}))", list(data))
    wait_for_result(page)
    assert bars(page)[0][0] == label


def test_card_slices_drift_versions_and_report(tab, url):
    page = tab.open()
    card = requests.get(f"{url}/models/{CLOTHES}/stable", timeout=TIMEOUT).json()
    wait_for_card(page, card["tag"])
    text = page.inner_text("#card")
    for fragment in (
        "28×28 grey image",
        f"{card['number_of_parameters']:,}",
        "Labels (10)",
        "T-shirt/top",
        "Ankle boot",
        "accuracy",
        f"{card['metrics']['accuracy']:.4f}",
        "epochs",
        str(card["training"]["batch_size"]),
        card["architecture"],
    ):
        assert fragment in text, fragment

    page.click("#tab-slices")
    expect(page.locator("#panel-slices")).to_be_visible()
    expect(page.locator("#panel-card")).to_be_hidden()
    assert page.url.endswith(f"#{CLOTHES}/stable/slices")
    worst = page.locator("#slices tr.worst")
    expect(worst).to_have_count(1)
    assert worst.inner_text().startswith(f"{card['slices']['worst']['slice']} (worst)")
    shift = next(name for name in card["slices"]["shifts"])  # a shift's description sits under its name
    expect(page.locator("#slices tr", has_text=f"shift:{shift}")).to_contain_text(card["slices"]["shift_specs"][shift]["about"])

    for _ in range(3):  # a few predictions: statistics are computed from two, judged from min_samples
        requests.post(f"{url}/models/{CLOTHES}/stable", json={"image": [[40 * (r % 5) for r in range(28)]] * 28}, timeout=TIMEOUT)
    page.click("#tab-drift")
    drift = requests.get(f"{url}/models/{CLOTHES}/stable/drift", timeout=TIMEOUT).json()
    expect(page.locator("#drift .verdict")).to_have_text(f"Verdict: {drift['verdict']}")
    note = page.inner_text("#drift .note")
    assert f"reference: {drift['reference_images']:,} held-out images" in note and "training" not in note, note
    statuses = [row.locator("td").last.inner_text() for row in page.locator("#drift tbody tr").all()[: len(drift["statistics"])]]
    if drift["verdict"] == "too few predictions":  # computed, but not judged: never "drifted: no"
        assert set(statuses) <= {"not judged yet"}, statuses
        expect(page.locator("#drift p").first).to_contain_text("drifted: not judged yet")

    page.click("#tab-versions")
    listing = requests.get(f"{url}/models/{CLOTHES}", timeout=TIMEOUT).json()
    for v in listing["versions"]:
        row = page.locator("#version-table tbody tr").filter(has=page.locator("th", has_text=re.compile(f"^{re.escape(v['version'])}$")))
        expect(row).to_contain_text(v["status"])
    for alias, target in listing["aliases"].items():
        expect(page.locator("#alias-table tbody tr", has_text=alias)).to_contain_text(target)

    page.click("#tab-replicas")
    fleet = requests.get(f"{url}/fleet", timeout=TIMEOUT).json()
    (replica,) = fleet["replicas"]  # one server: the local backend's one replica
    row = page.locator("#fleet tbody tr", has_text=replica["replica"])
    expect(row).to_contain_text(f"{replica['generation']} of {fleet['generation']}")
    expect(row).to_contain_text("in sync")
    for version in listing["versions"]:
        expect(row).to_contain_text(version["version"])

    page.click("#tab-report")
    report = page.frame_locator("#report")
    expect(report.locator("h1")).to_have_text(f"{card['tag']} evaluation report")
    with tab.context.expect_page() as opened:
        page.click("#report-open")
    new = opened.value
    tab.watch(new)
    new.wait_for_load_state()
    assert new.title() == f"{card['tag']} evaluation"
    new.close()


def test_the_live_accuracy_tab_shows_what_the_server_measured(tab, url):
    report = send_labelled(url, 8, slice_name="e2e-camera")
    assert report["accuracy"]["value"] is not None and report["series"], report
    page = tab.open(f"/#{CLOTHES}/stable/live")
    expect(page.locator("#tab-live")).to_have_attribute("aria-selected", "true")
    accuracy = report["accuracy"]
    expect(page.locator("#live-accuracy")).to_have_text(js_percent(accuracy["value"]))
    figure = page.locator("#live .figure").first
    expect(figure).to_contain_text(f"95% interval {js_range(accuracy['low'], accuracy['high'])}")
    expect(figure).to_contain_text(f"{accuracy['correct']:,} of {accuracy['examples']:,} right")
    expect(page.locator("#offline-accuracy")).to_have_text(js_percent(report["offline"]["accuracy"]))

    chart = page.locator("#live svg.live-chart")  # drawn: a point per bucket, the line through them, the band
    expect(chart.locator("circle.point")).to_have_count(len(report["series"]))
    assert chart.locator("polyline.line").get_attribute("points")
    assert len(chart.locator("polygon.band").get_attribute("points").split()) == 2 * len(report["series"])
    assert chart.get_attribute("role") == "img" and chart.get_attribute("aria-label")

    classes = page.get_by_role("table", name="Recall per true class, worst first")
    expect(classes.locator("tbody tr")).to_have_count(len(report["classes"]))
    for c in report["classes"]:
        expect(row_of(classes, c["label"])).to_contain_text(js_percent(c["recall"]) if c["examples"] else "–")
    ece = round(report["calibration"]["ece"], 4)
    expect(page.locator("#live")).to_contain_text(f"Expected calibration error {ece:g}")
    bins = page.get_by_role("table", name="Confidence against accuracy, per bin of confidence")
    expect(bins.locator("tbody tr")).to_have_count(len(report["calibration"]["bins"]))
    aliases = page.get_by_role("table", name="Per alias the requests came through")
    expect(row_of(aliases, "stable")).to_contain_text(js_percent(report["aliases"]["stable"]["value"]))
    slices = page.get_by_role("table", name="Per slice (X-Slice on the request)")
    camera = report["slices"]["e2e-camera"]
    expect(row_of(slices, "e2e-camera")).to_contain_text(f"{camera['correct']} of {camera['examples']}")
    for summary in page.locator("#panel-live details > summary").all():  # the series as a table, how to send ground truth
        summary.click()
    expect(page.locator("#live .live-help code").first).to_contain_text(f"POST /models/{CLOTHES}/feedback")
    check_layout(page, "desktop live")


def test_the_right_control_adds_one_joined_example(tab, url):
    page = tab.open(f"/#{CLOTHES}/stable/live")
    expect(page.locator("#live-accuracy")).to_be_visible()
    _, data, mime, label = correctly_classified(url, CLOTHES, "stable")
    labels = requests.get(f"{url}/models/{CLOTHES}/stable", timeout=TIMEOUT).json()["output"]["labels"]
    upload(page, "garment.png", data, mime)
    wait_for_result(page)
    right = page.get_by_role("group", name="Right?")
    expect(right).to_be_visible()
    expect(page.locator("#right-yes")).to_have_text(f"Yes, it is {label}")
    options = page.locator("#right-label option").all_inner_texts()
    assert label not in options and len(options) == len(labels) - 1, options
    before = live(url)
    truth = next(other for other in labels if other != label)  # the model is wrong here: a correction
    page.select_option("#right-label", truth)
    page.click("#right-send")
    expect(page.locator("#right-answer")).to_have_text(re.compile(rf"^Joined: .*“{re.escape(truth)}”"))
    after = live(url)
    assert after["examples"] == before["examples"] + 1
    assert after["accuracy"]["correct"] == before["accuracy"]["correct"]
    examples = lambda report: next(c["examples"] for c in report["classes"] if c["label"] == truth)  # noqa: E731
    assert examples(after) == examples(before) + 1
    # the tab shown follows: the live accuracy now counts it
    expect(page.locator("#live .figure").first).to_contain_text(f"of {after['examples']:,} right")
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=SCREENSHOTS / "page-live.png", full_page=True)


def rollouts_of(url: str) -> dict[str, dict]:
    """GET /models/clothes/rollouts: each alias's last rollout, by alias."""
    answer = requests.get(f"{url}/models/{CLOTHES}/rollouts", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return {r["alias"]: r for r in answer.json()["rollouts"]}


def wait_for_rollout(url: str, alias: str, done, what: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        rollout = rollouts_of(url).get(alias)
        if rollout is not None and done(rollout):
            return rollout
        assert time.monotonic() < deadline, f"{what}: {rollout}"
        time.sleep(0.2)


def js_fixed(value: float, digits: int) -> str:
    """Number(value.toFixed(digits)) as JavaScript writes it (half up on the float's exact value, no trailing zeros)."""
    text = str(Decimal(value).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP))
    return text.rstrip("0").rstrip(".") if "." in text else text


ACTIONS = {"start": "started", "advance": "advanced", "complete": "completed", "rollback": "rolled back", "pause": "paused", "resume": "resumed", "abort": "aborted"}


def expected_timeline(rollout: dict) -> list[list[str]]:
    """The timeline as the page should write it from the API's events: the time since the first event,
    the share, the action in words, its reason, and the candidate's requests (an event decided on gates)."""
    start = rollout["events"][0]["time"]
    rows = []
    for event in rollout["events"]:
        after = event["time"] - start
        assert after < 60, "the page would write minutes"
        requests_text = f"{event['gates']['requests']:,} request{'s' if event['gates']['requests'] != 1 else ''}" if "requests" in event["gates"] else "–"
        rows.append([f"+{js_fixed(after, 1)} s", f"{event['share']}%", ACTIONS[event["action"]], event["reason"], requests_text])
    return rows


def shown_timeline(page, alias: str) -> list[list[str]]:
    """The page's timeline of ``alias``, in the same terms."""
    timeline = page.locator(f"#rollout-{alias} table.rollout-timeline")
    assert [h.strip() for h in timeline.locator("thead th").all_inner_texts()] == ["after start", "share", "what happened", "gate values"]
    rows = []
    for row in timeline.locator("tbody tr").all():
        after, share, happened, gates = row.locator("th, td").all()
        requests_item = gates.locator("li.gate-requests")
        rows.append(
            [
                after.inner_text().strip(),
                share.inner_text().strip(),
                happened.locator("strong").inner_text().strip(),
                happened.locator(".cell-note").inner_text().strip(),
                requests_item.inner_text().strip() if requests_item.count() else gates.inner_text().strip(),
            ]
        )
    return rows


def test_a_rollout_started_from_the_page_shows_its_steps_and_events_and_aborts(tab, browser, url):
    """The Versions tab's rollouts: one started with the page's form (an hour's dwell: it stays at its
    first step) shows running at 5% with the API's events; paused through the API, the page, left alone,
    follows; resumed and aborted from the page, the API says so and the alias serves its baseline again."""
    alias, candidate, baseline = "latest", "v1", "v2"
    assert alias not in rollouts_of(url) or rollouts_of(url)[alias]["status"] not in ("running", "paused")
    page = tab.open(f"/#{CLOTHES}/stable/versions")
    expect(page.locator("#rollout-form")).to_be_visible()  # admin routes answer here (live.admin_without_token)
    expect(page.locator("#admin-note")).to_be_hidden()
    page.select_option("#rollout-alias", alias)
    page.select_option("#rollout-candidate", candidate)
    page.fill("#rollout-steps", "5, 25, 50, 100")
    page.fill("#rollout-dwell", "3600")
    page.fill("#rollout-requests", "100")
    page.click("#rollout-start")
    expect(page.locator("#rollout-form-answer")).to_have_text(f"Started: {candidate} takes 5% of {alias}'s requests ({baseline} the rest).")
    rollout = rollouts_of(url)[alias]
    assert (rollout["status"], rollout["step"], rollout["candidate"], rollout["baseline"], rollout["steps"]) == ("running", 0, candidate, baseline, [5, 25, 50, 100])
    assert (rollout["min_dwell_seconds"], rollout["min_requests"]) == (3600, 100)
    card = page.locator(f"#rollout-{alias}")
    expect(card.locator("h4 .badge")).to_have_text("Running")
    expect(card.locator(".rollout-line")).to_have_text(f"Running, at step 1 of 4 (5%): {candidate} gets 5% of {alias}'s requests, {baseline} the other 95%.")
    expect(card.locator(".steps [aria-current=step]")).to_contain_text("5%")
    expect(card.locator(".rollout-bar")).to_have_attribute("aria-label", f"{candidate} 5%, {baseline} 95%")
    expect(card).to_contain_text("1 h and 100 requests of v1 in the step")
    assert shown_timeline(page, alias) == expected_timeline(rollout)
    expect(row_of(page.locator("#alias-table"), alias)).to_contain_text(f"{baseline} 95% · {candidate} 5%")
    check_layout(page, "desktop rollouts")
    page.locator("#about").screenshot(path=SCREENSHOTS / "page-rollouts.png")

    phone = Tab(browser, url, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        small = phone.open(f"/#{CLOTHES}/stable/versions")
        expect(small.locator(f"#rollout-{alias} table.rollout-timeline tbody tr")).to_have_count(1)
        check_layout(small, "phone rollouts")  # a timeline wider than the screen scrolls in its box, and says so
        phone.assert_only_this_origin()
    finally:
        phone.close()

    # Paused through the API: the page asks again every 2 s while a rollout runs, and follows by itself.
    assert requests.post(f"{url}/models/{CLOTHES}/rollouts/{alias}/pause", timeout=TIMEOUT).status_code == 200
    expect(card.locator("h4 .badge")).to_have_text("Paused", timeout=10_000)
    expect(card.locator(".rollout-line")).to_contain_text("Paused at step 1 of 4 (5%)")
    card.get_by_role("button", name=f"Resume the rollout through {alias}").click()
    expect(page.locator("#rollout-answer")).to_have_text(f"The rollout of {candidate} through {alias} is resumed.")
    expect(card.locator("h4 .badge")).to_have_text("Running")
    assert rollouts_of(url)[alias]["status"] == "running"
    card.get_by_role("button", name=f"Pause the rollout through {alias}").click()
    expect(page.locator("#rollout-answer")).to_have_text(f"The rollout of {candidate} through {alias} is paused.")
    assert rollouts_of(url)[alias]["status"] == "paused"

    page.once("dialog", lambda dialog: dialog.accept())  # "Abort the rollout of v1 through latest? ..."
    card.get_by_role("button", name=f"Abort the rollout through {alias}").click()
    expect(page.locator("#rollout-answer")).to_have_text(f"The rollout of {candidate} through {alias} is aborted: {alias} serves {baseline} again.")
    rollout = rollouts_of(url)[alias]
    assert rollout["status"] == "aborted" and [e["action"] for e in rollout["events"]] == ["start", "pause", "resume", "pause", "abort"], rollout
    assert requests.get(f"{url}/models/{CLOTHES}", timeout=TIMEOUT).json()["aliases"][alias] == baseline
    image = {"image": [[40 * (r % 5) for r in range(28)]] * 28}
    for _ in range(8):  # the alias serves its baseline again, all of it
        answer = requests.post(f"{url}/models/{CLOTHES}/{alias}", json=image, timeout=TIMEOUT)
        assert answer.status_code == 200 and answer.json()["version"] == baseline, answer.text
    expect(card.locator("h4 .badge")).to_have_text("Aborted")
    expect(card.locator(".rollout-line")).to_have_text(f"Aborted at step 1 of 4 (5%): {alias} serves {baseline} again.")
    expect(card.locator(".steps .step-stopped")).to_contain_text("5%")
    expect(card.locator("button")).to_have_count(0)  # nothing left to pause or abort
    expect(card.locator("h4")).to_be_focused()
    assert shown_timeline(page, alias) == expected_timeline(rollout)
    expect(row_of(page.locator("#alias-table"), alias).locator("td").first).to_have_text(baseline)
    check_layout(page, "desktop rollouts, aborted")


def test_swagger_ui_is_at_docs(tab, url):
    page = tab.open("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Model server API")
    expect(page.locator(".swagger-ui .info .title")).to_be_visible()
    expect(page.locator('.opblock-summary-path[data-path="/models"]').first).to_be_visible()
    info = page.inner_text(".swagger-ui .info")
    assert ">>>" not in info and ".py" not in info and "GET /models" in info, info[:500]
    summaries = [s.strip() for s in page.locator(".opblock-summary-description").all_inner_texts()]
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(summaries) == len(paths) and all(summaries), [p for p, s in zip(paths, summaries, strict=False) if not s]  # every operation says what it does
    assert all(len(s) <= 90 for s in summaries), [s for s in summaries if len(s) > 90]
    page.locator('.opblock-summary-path[data-path="/classify"]').first.click()
    expect(page.locator(".opblock-description-wrapper").first).to_contain_text("client.classify(")
    expect(page.locator(f'.opblock-summary-path[data-path="/models/{CLOTHES}/{{version}}/input.png"]').first).to_be_visible()
    assert any(u.endswith("/docs.json") for u in tab.requests)
    assert "Swagger" not in requests.get(f"{url}/", timeout=TIMEOUT).text


def test_keyboard_reaches_every_control_and_every_control_has_a_name(tab, url):
    # Playwright turns Chromium's file-chooser interception on when the first listener is added; a key
    # press racing that switch opened no chooser event in 5 of 25 tries, so a listener is armed first.
    tab.page.on("filechooser", lambda chooser: None)
    page = tab.open()
    wait_for_card(page, requests.get(f"{url}/models/{CLOTHES}/stable", timeout=TIMEOUT).json()["tag"])
    unnamed = page.evaluate("""() => Array.from(document.querySelectorAll('input, select, button, canvas, iframe, a, summary'))
        .filter(e => !e.closest('[hidden]') && e.offsetParent !== null)
        .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label') || e.getAttribute('title') || e.textContent.trim()))
        .map(e => e.outerHTML.slice(0, 80))""")
    assert not unnamed, unnamed
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => { const e = document.activeElement; return e.id || (e.tagName === 'SUMMARY' ? e.textContent.trim() : e.tagName); }"))
    for control in (
        "model",
        "version",
        "file",
        "invert",
        "canvas",
        "brush",
        "classify-drawing",
        "clear-drawing",
        "tab-card",  # the tabs: one stop (the shown one); arrows move between them
    ):
        assert control in reached, (control, reached)
    assert not {"tab-slices", "tab-drift", "tab-report"} & set(reached), reached
    page.focus("#file")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")  # the hidden-looking file input opens its chooser from the keyboard
    assert chooser.value is not None


def test_tabs_move_with_the_arrows_and_the_address_names_the_tab(tab, url):
    page = tab.open(f"/#{CLOTHES}/stable/drift")  # a link to a section opens it
    expect(page.locator("#tab-drift")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-drift")).to_be_visible()
    expect(page.locator("#drift .verdict")).to_be_visible()
    expect(page.locator("#panel-card")).to_be_hidden()
    tabs = page.locator("[role=tablist] [role=tab]")
    expect(tabs).to_have_count(7)
    for one in tabs.all():  # each tab controls its panel, which is labelled by it
        panel = page.locator(f"#{one.get_attribute('aria-controls')}")
        assert panel.get_attribute("role") == "tabpanel" and panel.get_attribute("aria-labelledby") == one.get_attribute("id")
    assert [t.get_attribute("tabindex") for t in tabs.all()].count("0") <= 1  # one stop for Tab: the shown one

    page.focus("#tab-drift")
    for key, section in (("ArrowRight", "live"), ("ArrowRight", "versions"), ("End", "report"), ("Home", "card"), ("ArrowLeft", "report"), ("ArrowRight", "card")):
        page.keyboard.press(key)
        expect(page.locator(f"#tab-{section}")).to_be_focused()
        expect(page.locator(f"#tab-{section}")).to_have_attribute("aria-selected", "true")
        expect(page.locator(f"#panel-{section}")).to_be_visible()
        suffix = "" if section == "card" else f"/{section}"  # the first section is the address without one
        expect(page).to_have_url(re.compile(rf"#{CLOTHES}/stable{re.escape(suffix)}$"))
    page.keyboard.press("Tab")  # from the tabs into the shown panel
    expect(page.locator("#panel-card")).to_be_focused()

    page.click("#tab-report")
    expect(page.frame_locator("#report").locator("h1")).to_be_visible()
    page.click("#tab-slices")
    expect(page.locator("#slices tr.worst")).to_have_count(1)

    other = tab.context.new_page()  # a short anchor (#versions) works too, and the address becomes the full one
    tab.watch(other)
    other.goto(f"{url}/#versions")
    expect(other.locator("#panel-versions")).to_be_visible()
    expect(other.locator("#version-table")).to_be_visible()
    expect(other).to_have_url(re.compile(rf"#{CLOTHES}/stable/versions$"))
    other.close()


# Every visible table cell: none wider than its box, no number on two lines; a table box that scrolls
# sideways says so (a hint, shadows) and takes focus; the page itself never scrolls sideways. (A table
# the page has just drawn is measured once a frame has passed: its box learns its size from a ResizeObserver.)
LAYOUT = """async () => {
    await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));  // boxes are measured after layout
    const shown = (e) => e.checkVisibility();
    const cells = Array.from(document.querySelectorAll('td, th')).filter(shown);
    const lines = (c) => { const r = document.createRange(); r.selectNodeContents(c);
        return new Set(Array.from(r.getClientRects()).filter(x => x.width > 0).map(x => Math.round(x.top))).size; };
    const wraps = Array.from(document.querySelectorAll('.table-wrap')).filter(shown);
    const scrolling = wraps.filter(w => w.scrollWidth > w.clientWidth + 1);
    const cued = (w) => { const hint = w.parentElement.querySelector('.scroll-hint');
        return w.tabIndex === 0 && hint !== null && hint.checkVisibility() && hint.getBoundingClientRect().height > 0
            && getComputedStyle(w).backgroundImage.includes('gradient'); };
    return {
        cells: cells.length,
        overflowing: cells.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent.trim()),
        split: cells.filter(c => c.classList.contains('n') && lines(c) > 1).map(c => c.textContent.trim()),
        uncued: scrolling.filter(w => !cued(w)).map(w => w.getAttribute('aria-label')),
        scrolling: scrolling.length,
        sideways: document.documentElement.scrollWidth > window.innerWidth,
    };
}"""


def check_layout(page, where: str) -> dict:
    found = page.evaluate(LAYOUT)
    assert not found["overflowing"], f"{where}: text overflows its cell: {found['overflowing']}"
    assert not found["split"], f"{where}: a number split over two lines: {found['split']}"
    assert not found["uncued"], f"{where}: a table scrolls sideways without a cue: {found['uncued']}"
    assert not found["sideways"], f"{where}: the page scrolls sideways"
    return found


def test_layout_at_a_desktop_and_a_phone_size_and_the_screenshots(browser, url):
    _, data, mime, _ = correctly_classified(url, CLOTHES, "stable")
    tag = requests.get(f"{url}/models/{CLOTHES}/stable", timeout=TIMEOUT).json()["tag"]
    send_labelled(url, 3)  # drift statistics to show (computed from two predictions in the window), live accuracy too
    shots = {"desktop": (DESKTOP, {}), "phone": (PHONE, {"device_scale_factor": 2, "is_mobile": True, "has_touch": True})}
    for name, (viewport, options) in shots.items():
        tab = Tab(browser, url, viewport=viewport, **options)
        try:
            page = tab.open()
            wait_for_card(page, tag)
            upload(page, "garment.png", data, mime)
            wait_for_result(page)
            drop_zone = page.locator("#drop-zone")
            if name == "phone":  # a touch screen: nothing to paste or drop with
                expect(drop_zone).not_to_contain_text("Ctrl+V", use_inner_text=True)
                expect(page.locator(".hint.for-touch")).to_be_visible()
            else:
                expect(drop_zone).to_contain_text("paste one (Ctrl+V", use_inner_text=True)
            page.evaluate("() => window.scrollTo(0, 0)")
            try_box, about_box = page.locator("#try").bounding_box(), page.locator("#about").bounding_box()
            if name == "desktop":
                assert about_box["x"] >= try_box["x"] + try_box["width"], "desktop: two columns side by side"
                expect(page.locator("nav.jump")).to_be_hidden()  # the tabs are in sight: no links to them
                assert page.locator("#tab-report").bounding_box()["y"] < viewport["height"] / 2, "desktop: the sections' tabs in the first half screen"
                page.screenshot(path=SCREENSHOTS / "page-desktop.png")
            else:
                assert about_box["y"] >= try_box["y"] + try_box["height"], "phone: one column"
                expect(page.locator("nav.jump")).to_be_visible()

            found = {"cells": 0, "scrolling": 0}
            for section in ("card", "slices", "drift", "live", "versions", "replicas", "report"):
                if name == "phone":  # the links at the top jump to a section, shown in the window
                    page.evaluate("() => window.scrollTo(0, 0)")
                    page.click(f"nav.jump a[href='#{section}']")
                    expect(page.locator(f"#tab-{section}")).to_have_attribute("aria-selected", "true")
                    expect(page.locator(f"#panel-{section}")).to_be_in_viewport()
                else:
                    page.click(f"#tab-{section}")
                panel = page.locator(f"#panel-{section}")
                expect(panel).to_be_visible()
                ready = {
                    "drift": "#drift .verdict",
                    "live": "#live svg.live-chart circle",
                    "replicas": "#fleet tbody tr",
                    "versions": "#version-table",
                    "slices": "#slices tr.worst",
                }
                if section in ready:
                    expect(page.locator(ready[section]).first).to_be_visible()
                if section == "report":
                    expect(page.frame_locator("#report").locator("h1")).to_be_visible()
                if section in ("card", "live"):  # their folded tables too: per-class figures, the confusion matrix, the data, the series
                    for summary in panel.locator("details > summary").all():
                        summary.click()
                if section == "live":
                    chart = page.locator("#live svg.live-chart").bounding_box()
                    assert chart["x"] + chart["width"] <= viewport["width"], f"{name}: the live chart is wider than the screen"
                for key, value in check_layout(page, f"{name} {section}").items():
                    if key in found:
                        found[key] += value
            assert found["cells"] > 100, found
            if name == "phone":
                assert found["scrolling"] > 0, "the phone should have a table wider than the screen (the confusion matrix)"
                page.click("#tab-card")
                page.set_viewport_size({"width": viewport["width"], "height": 1500})  # not full_page: it drops the touch emulation
                page.evaluate("() => window.scrollTo(0, 0)")
                page.screenshot(path=SCREENSHOTS / "page-phone.png")
            tab.assert_only_this_origin()
        finally:
            tab.close()
    for name in ("desktop", "phone"):
        with Image.open(SCREENSHOTS / f"page-{name}.png") as shot:
            assert shot.width >= 390 and shot.height >= 800


def test_inverting_is_offered_for_grey_models_only(tab, url):
    page = tab.open()
    for listed, card in served_image_models(url):
        choose(page, listed["name"], listed["default_version"], card["tag"])
        grey = card["input"]["shape"][2] == 1
        (expect(page.locator("#invert")).to_be_visible if grey else expect(page.locator("#invert")).to_be_hidden)()
        assert grey == (listed["name"] == CLOTHES), listed["name"]  # damage: colour satellite photos, no invert


# --- with the API token on -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(trained_versions, tmp_path_factory):
    """The token required (read from TOKEN_ENV); serves v1 only."""
    tmp = tmp_path_factory.mktemp("page-guarded")
    config = write_config(tmp / "configuration.yaml", {CLOTHES: clothes(["v1"], {"stable": "v1"})}, security={"api_token_env": TOKEN_ENV})
    with pytest.MonkeyPatch.context() as env:
        env.setenv(TOKEN_ENV, TOKEN)
        server = Server(config, free_port(), tmp / "serve.log")
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.stop()


COUNT_DIALOGS = """window.__dialogs = [];
const showModal = HTMLDialogElement.prototype.showModal;
HTMLDialogElement.prototype.showModal = function () { window.__dialogs.push(this.id); return showModal.call(this); };"""


def page_files_open(url: str) -> bool:
    """Whether the deployment leaves the page's own files open with the token on (serving/paths.py)."""
    statuses = {path: requests.get(url + path, timeout=TIMEOUT).status_code for path in page_routes.STATIC_PATHS}
    assert set(statuses.values()) in ({200}, {401}), statuses  # all or none
    return set(statuses.values()) == {200}


def token_tab(browser, url: str) -> Tab:
    tab = Tab(browser, url)
    tab.context.add_init_script(COUNT_DIALOGS)
    if not page_files_open(url):
        # The page's own files are behind the token too: a browser cannot send it for them, so the
        # test stands in for an allow-list (or a proxy adding the header) for those files only.
        def with_token(route):
            route.continue_(headers={**route.request.headers, "authorization": f"Bearer {TOKEN}"})

        tab.context.route(lambda u: u.startswith(url) and u[len(url) :].split("?")[0] in page_routes.STATIC_PATHS, with_token)
    return tab


def test_the_page_asks_for_the_token_once_and_keeps_it_for_the_session(browser, guarded, url):
    assert requests.get(f"{guarded}/models", timeout=TIMEOUT).status_code == 401
    assert requests.get(f"{guarded}/docs", timeout=TIMEOUT).status_code == 401  # the API's description stays behind the token
    tab = token_tab(browser, guarded)
    try:
        page = tab.open()
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        expect(page.locator("#token-reason")).to_contain_text("missing API token")
        page.fill("#token", "not-the-token")
        page.keyboard.press("Enter")
        expect(page.locator("#token-reason")).to_contain_text("invalid API token")
        page.fill("#token", TOKEN)
        page.click("#token-submit")
        expect(dialog).to_be_hidden()
        wait_for_card(page, f"{CLOTHES}:v1")
        _, data, mime, label = correctly_classified(url, CLOTHES, "v1")  # the same model, v1, on the open server
        upload(page, "garment.png", data, mime)
        wait_for_result(page)
        page.click("#right-yes")  # the feedback call carries the token too
        expect(page.locator("#right-answer")).to_have_text(re.compile(r"^Joined: "))
        page.click("#tab-report")
        expect(page.frame_locator("#report").locator("h1")).to_have_text(f"{CLOTHES}:v1 evaluation report")
        page.click("#tab-drift")
        expect(page.locator("#drift .verdict")).to_be_visible()
        page.click("#tab-versions")  # with the token the rollout controls show; no rollout has run here
        expect(page.locator("#rollouts-empty")).to_have_text(re.compile(rf"^No rollout of {CLOTHES} yet\. "))
        expect(page.locator("#rollouts code")).to_contain_text(f"/models/{CLOTHES}/rollouts -H 'content-type: application/json' -H \"Authorization: Bearer $TOKEN\"")
        assert TOKEN not in page.inner_text("#rollouts")
        expect(page.locator("#rollout-form")).to_be_visible()
        assert page.evaluate("window.__dialogs") == ["token-dialog", "token-dialog"]  # missing, then invalid; never again
        assert page.evaluate("sessionStorage.getItem('model-server-api-token')") == TOKEN
        assert page.evaluate("localStorage.length") == 0
        assert not tab.context.cookies()

        page.reload()  # the same session: no question
        wait_for_card(page, f"{CLOTHES}:v1")
        assert page.evaluate("window.__dialogs") == []
        expect(page.locator("#forget-token")).to_be_visible()
        page.click("#forget-token")
        assert page.evaluate("sessionStorage.length") == 0
        tab.assert_only_this_origin()
    finally:
        tab.close()
    fresh = token_tab(browser, guarded)  # a new session asks again
    try:
        page = fresh.open()
        expect(page.locator("#token-dialog")).to_be_visible()
        page.click("#token-cancel")
        expect(page.locator("#load-error")).to_contain_text("Cannot list the models: missing API token")
    finally:
        fresh.close()


# --- any card: an in-process server of fake runners ---------------------------------------------------------


class AffineRunner:
    """A regressor's fake: unit j of an example is ``weights[j] * (the sum of its values) + offsets[j]``, in float32."""

    def __init__(self, weights: tuple[float, ...], offsets: tuple[float, ...]):
        self.weights, self.offsets = np.asarray(weights, np.float32), np.asarray(offsets, np.float32)

    def compute(self, values) -> np.ndarray:
        sums = np.asarray(values, np.float32).reshape(len(values), -1).sum(axis=1, keepdims=True, dtype=np.float32)
        return (sums * self.weights + self.offsets).astype(np.float32)

    async def predict(self, values: np.ndarray) -> np.ndarray:
        return self.compute(values)

    async def status(self) -> dict:
        return {"status": "ready", "reason": None}


HOUSE = AffineRunner((12345.678, 0.25), (100_000.0, 3.0))  # price in USD, area in m2
HOUSE_RANGE = (-10.0, 10.0)
TAGS = ("red", "round", "sweet")
TAG_THRESHOLDS = (0.5, 0.3, 0.75)
EMBEDDING_SIZE = 12
EMBEDDER_INPUT = (2, 3)  # two dimensions: the page offers a JSON box


def task_card(name: str, output, input_shape=(4,), value_range=None, names=None, metrics=None):
    """A card of another task than one class per example, with a tensor input (tests/unit/serving/protocols/test_tasks.py's)."""
    from models.card import InputSpec, ModelCard

    task = {"regression": "regression", "multilabel": "multilabel-classification", "embedding": "embedding"}[output.kind]
    return ModelCard(
        name=name,
        version="v1",
        description=f"{name} for the page's tests",
        task=task,
        input=InputSpec(kind="tensor", shape=input_shape, value_range=value_range, divide_by=None, names=names),
        preprocessing=None,
        output=output,
        architecture="fake",
        number_of_parameters=1,
        metrics=metrics,
        training={},
        data={"source": "tests"},
        framework_versions={},
    )


# The fed server's house: its input's values have names, and its card its held-out error per target.
HOUSE_NAMES = ("rooms", "floor area", "age", "distance")
HOUSE_METRICS = {
    "mae": 1250.1,
    "rmse": 1600.125,
    "per_target": {"price": {"mae": 2500.0, "rmse": 3200.0, "r2": 0.91}, "area": {"mae": 0.2, "rmse": 0.25, "r2": 0.88}},
    "test_examples": 200,
}


@contextlib.contextmanager
def fake_server(directory: Path, fed: bool):
    """The page's, the course's, feedback's and the admin routes over the unit tests' fakes, served by uvicorn on
    127.0.0.1 (see ``fakes``); ``fed``: with a real feedback journal, as serving/app.py gives every entry worker."""
    import uvicorn

    from config import load_config
    from models.card import OutputSpec, Target
    from serving.app import build
    from serving.feedback import Journal
    from serving.protocols import Router, admin, course, feedback
    from tests.unit.serving.conftest import FakeRunner, InProcess, make_card, not_found
    from tests.unit.serving.protocols.test_tasks import ValuesRunner

    path = directory / "configuration.yaml"
    settings = {
        "models": {
            "grey": {"versions": ["v1", "v2"], "aliases": {"stable": "v1", "canary": {"v1": 90, "v2": 10}}},
            "colour": {"versions": ["v1"]},
            "vector": {"versions": ["v1"]},
            # max_softmax needs no reference: a fake runner's 0.9 scores 0.1, past 0.05
            "wary": {"versions": ["v1"], "ood": {"score": "max_softmax", "abstain_above": 0.05}},
            "house": {"versions": ["v1"], **({"aliases": {"stable": "v1"}} if fed else {})},
            "tagger": {"versions": ["v1"]},
            "embedder": {"versions": ["v1"]},
        },
        "limits": {"max_body_bytes": 1_000_000, "max_batch_images": 8, "max_queue_images": 64, "body_timeout_seconds": 5},
    }
    if fed:  # a point of the live series per second, so that a few seconds of requests draw a line
        settings["feedback"] = {"series_seconds": 1, "join_seconds": 0.05}
    path.write_text(yaml.safe_dump(settings))
    config = load_config(path)
    house = OutputSpec(kind="regression", targets=(Target(name="price", unit="USD"), Target(name="area", unit="m2")))
    cards = {
        ("grey", "v1"): make_card("grey", "v1", labels=tuple("abcdefghij"), invert="auto"),
        ("grey", "v2"): make_card("grey", "v2", labels=tuple("abcdefghij"), invert="auto"),
        ("colour", "v1"): make_card("colour", "v1", shape=(32, 32, 3), labels=("damage", "no_damage"), kind="sigmoid"),
        ("vector", "v1"): make_card("vector", "v1", shape=(4,), labels=("x", "y", "z"), tensor=True),
        ("wary", "v1"): make_card("wary", "v1", labels=tuple("abcdefghij")),
        ("house", "v1"): task_card("house", house, value_range=HOUSE_RANGE, **({"names": HOUSE_NAMES, "metrics": HOUSE_METRICS} if fed else {})),
        ("tagger", "v1"): task_card("tagger", OutputSpec(kind="multilabel", labels=TAGS, thresholds=TAG_THRESHOLDS)),
        ("embedder", "v1"): task_card("embedder", OutputSpec(kind="embedding", shape=(EMBEDDING_SIZE,)), input_shape=EMBEDDER_INPUT),
    }
    runners = {key: FakeRunner(card.classes) for key, card in cards.items() if card.is_classifier}
    runners |= {("house", "v1"): HOUSE, ("tagger", "v1"): ValuesRunner(len(TAGS)), ("embedder", "v1"): ValuesRunner(EMBEDDING_SIZE)}
    served = InProcess(config, cards, runners=runners)
    served.registry.model("grey").shadow = {"alias": "stable", "candidate": "v2", "share": 0.25}
    journal = None
    if fed:
        journal = served.plane.journal = Journal(config.feedback, directory, labels_of=served.registry.labels_of, targets_of=served.registry.targets_of)
        journal.start()
    router = Router([*admin.routes(config), *feedback.routes(config), *course.routes(config), *page_routes.routes(config)])  # in serving/app.py's order
    app = build(not_found, config, plane=lambda: served.plane, router=router)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))

    def run():
        loop = asyncio.new_event_loop()
        loop.run_until_complete(served.probe())
        loop.run_until_complete(server.serve())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the in-process server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if journal is not None:
            journal.stop()


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    """The unit tests' fakes (grey 28x28, colour 32x32x3 sigmoid, a one-class model taking a tensor of 4, and
    wary: grey again, whose answers abstain) and models of other tasks, each taking a tensor: house (a regressor
    of two targets with units, its input in -10..10: AffineRunner), tagger (multi-label, three labels with their
    own thresholds) and embedder (an embedding of 12 from a 2x3 input), the last two answering test_tasks.py's
    ValuesRunner; grey has a weighted alias and a shadow. Feedback is off (no journal): feedback and /live
    answer 404. Admin operations are off (no token, no live.admin_without_token: 403), and there are no live
    versions (the rollouts answer 503)."""
    with fake_server(tmp_path_factory.mktemp("page-fakes"), fed=False) as url:
        yield url


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    """The same fakes with feedback on: a real journal joins ground truth (sent by request id, or carried by a
    request's X-Label) and /live answers a regressor's live error, a point of its series per second. Its house
    has an alias (stable), names for its input's values, and its held-out error per target in its card."""
    with fake_server(tmp_path_factory.mktemp("page-fed"), fed=True) as url:
        yield url


def test_the_page_follows_any_card(browser, fakes):
    tab = Tab(browser, fakes)
    try:
        page = tab.open("/#colour/v1")
        wait_for_card(page, "colour:v1")
        expect(page.locator("#file")).to_be_attached()
        expect(page.locator("#draw")).to_be_hidden()  # colour: no drawing
        expect(page.locator("#invert")).to_be_hidden()  # nor inverting
        assert "one sigmoid unit" in page.inner_text("#card")
        photo = np.zeros((40, 60, 3), dtype=np.uint8)
        photo[..., 2] = 200
        upload(page, "blue.png", png(photo), "image/png")
        wait_for_result(page)
        assert [label for label, _ in bars(page)] in (["damage", "no_damage"], ["no_damage", "damage"])
        assert page.evaluate("() => [document.getElementById('model-image').naturalWidth, document.getElementById('model-image').naturalHeight]") == [32, 32]

        choose(page, "vector", "v1", "vector:v1")  # one class per example, from a tensor: the form, then the classes
        expect(page.locator("#not-image")).to_have_text("vector takes 4 numbers, any finite values, not an image: type them below, or paste a row, then Send.")
        expect(page.locator("#image-inputs")).to_be_hidden()
        expect(page.locator("#result")).to_be_hidden()
        page.fill("#values-row", "1, 2, 3, 4")  # a row fills the fields
        assert [page.input_value(f"#value-{i}") for i in range(1, 5)] == ["1", "2", "3", "4"]
        with page.expect_request(lambda r: r.method == "POST" and r.url == f"{fakes}/models/vector/v1") as sent:
            page.click("#values-send")
        assert sent.value.post_data_json == {"input": [1, 2, 3, 4]}
        expect(page.locator("#answered")).to_have_text(re.compile(r"^Answered by vector v1 in \d+ ms: z\.$"))  # mean 2.5: class 2
        assert bars(page)[0] == ("z", "90.0%")
        expect(page.locator("#seen")).to_be_hidden()  # no image to show
        expect(page.get_by_role("group", name="Right?")).to_be_visible()  # a one-class answer may be right or wrong
        page.click("#tab-report")
        expect(page.locator("#report-status")).to_have_text("No report: vector:v1 has no evaluation report; retrain it, or import it with evaluation data")

        choose(page, "grey", "v1", "grey:v1")
        expect(page.locator("#draw")).to_be_visible()
        page.click("#tab-versions")
        canary = page.locator("#alias-table tr", has_text="canary")
        expect(canary).to_contain_text("v1 90% · v2 10%")
        expect(page.locator("#version option", has_text="canary")).to_have_text("canary → v1 90% · v2 10%")
        expect(page.locator("#shadow")).to_have_text("Shadow: 25% of the requests through stable also go to v2 in the shadow (its answers are compared, never returned).")
        # No rollouts here (no live versions), so no admin controls either: in the server's words
        expect(page.locator("#rollouts")).to_have_text("No rollouts: versions cannot change while serving here (no live versions)")
        expect(page.locator("#admin-note")).to_have_text(
            "Pausing, resuming, aborting and starting rollouts are admin operations, not available here: versions cannot change while serving here (no live versions)"
        )
        expect(page.locator("#rollout-form")).to_be_hidden()
        page.select_option("#version", "canary")  # a split answers with either version
        expect(page.locator("#card dd").first).to_have_text(re.compile(r"^grey:v[12]$"))
        upload(page, "grey.png", png(np.full((28, 28), 30, dtype=np.uint8)), "image/png")
        wait_for_result(page)
        expect(page.locator("#answered")).to_have_text(re.compile(r"^Answered by grey v[12] \(through canary\) in \d+ ms: a\.$"))
        tab.errors = [e for e in tab.errors if "status of 503" not in e]  # the browser logs the rollouts' 503: expected here
        tab.assert_only_this_origin()
    finally:
        tab.close()


def test_an_abstention_is_shown_as_one(browser, fakes):
    tab = Tab(browser, fakes)
    try:
        page = tab.open("/#wary/v1")
        wait_for_card(page, "wary:v1")
        image = png(np.full((28, 28), 30, dtype=np.uint8))
        (given,) = requests.post(f"{fakes}/models/wary/v1", files={"image": ("grey.png", image, "image/png")}, timeout=TIMEOUT).json()["predictions"]
        assert given["abstained"] is True and given["label"] is None and given["class_id"] is None and given["ood_score"] == 0.1, given
        upload(page, "grey.png", image, "image/png")
        wait_for_result(page)
        expect(page.locator("#abstained")).to_have_text("The model abstains: this input looks unlike its held-out data (score 0.1).")
        expect(page.locator("#answered")).to_have_text(re.compile(r"^Answered by wary v1 in \d+ ms: no label \(the model abstains\)\.$"))
        assert "null" not in page.inner_text("#result")
        assert len(bars(page)) == 5  # the probabilities still show
        expect(page.locator("#ood")).to_be_hidden()  # the abstention says the score
        expect(page.locator("#right-yes")).to_be_hidden()  # no label to confirm; the true one may still be told
        expect(page.locator("label[for=right-label]")).to_have_text("It is")
        expect(page.locator("#right-label option")).to_have_count(10)
        page.click("#right-send")  # feedback is off here: the server's answer, in words
        expect(page.locator("#right-answer")).to_have_text("Not sent: feedback is off (feedback.enabled in the configuration)")
        page.click("#tab-live")
        expect(page.locator("#live")).to_contain_text("No live accuracy: feedback is off")

        choose(page, "grey", "v1", "grey:v1")  # a model without a threshold: a label, no abstention
        upload(page, "grey.png", image, "image/png")
        wait_for_result(page)
        expect(page.locator("#abstained")).to_be_hidden()
        expect(page.locator("#answered")).to_have_text(re.compile(r": a\.$"))
        tab.assert_only_this_origin()
    finally:
        tab.close()


# --- models of other tasks: a form for their values, answers by task ------------------------------------------------


def js_value(value: float) -> str:
    """A model's answered value as the page writes it (logic.mjs valueNumber): 6 significant digits,
    from 1e5 whole with thousands separators (Math.round: half up)."""
    size = abs(value)
    assert 1e-4 <= size < 1e15 or size == 0, value  # (smaller and larger ones get an exponent: not used here)
    if size == 0:
        return "0"
    if size >= 1e5:
        return f"{math.floor(value + 0.5):,}"
    text = repr(float(f"{value:.6g}"))  # the shortest text of the rounded number, as JavaScript's String
    return text.removesuffix(".0")


def posts_to(tab: Tab, path: str) -> list:
    """The page's POSTs to ``path`` from now on (a live list)."""
    sent: list = []
    tab.page.on("request", lambda r: sent.append(r) if r.method == "POST" and r.url == tab.url + path else None)
    return sent


def send_values(page, url: str, path: str) -> dict:
    """Press Send and return the JSON body the page posted."""
    with page.expect_request(lambda r: r.method == "POST" and r.url == url + path) as sent:
        page.click("#values-send")
    return sent.value.post_data_json


def refused_before_sending(tab: Tab, field, path: str, value: str, message: str) -> list:
    """``value`` typed into a named input's ``field`` and sent: refused on the page in ``message``, the
    field marked and focused, no answer shown and nothing posted to ``path``; the page's POSTs to it from
    now on (posts_to)."""
    page, sent_posts = tab.page, posts_to(tab, path)
    field.fill(value)
    page.click("#values-send")
    expect(page.locator("#values-error")).to_have_text(message)
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#result")).to_be_hidden()
    assert not sent_posts
    return sent_posts


def no_one_class_extras(page) -> None:
    """No "Right?", no OOD score and no abstention under another task's answer; no top classes."""
    for part in ("#right", "#ood", "#abstained", "#answer-classes", "#seen"):
        expect(page.locator(part)).to_be_hidden()


def the_tabs_say_they_need_classes(tab: Tab, page, card: dict) -> None:
    """Slices and (but for a regressor, whose tab is its live error) live accuracy say they apply to one-class
    models, and drift (but for a regressor and a tagger, whose report the server has) that it is monitored for
    classifiers, regressors and taggers, without asking the server."""
    task = {
        "house": "a regression model (2 targets: price in USD, area in m2)",
        "tagger": "a multi-label model (3 labels, each given when its probability reaches its threshold)",
        "embedder": f"an embedding model (vectors of {EMBEDDING_SIZE} values)",
    }[card["name"]]
    regressor = card["output"]["kind"] == "regression"
    asked = len(tab.requests)
    sections = [("slices", "Slices measure the accuracy per class and under shifts of the held-out data", "")]
    if not regressor:
        sections.append(("live", "Live accuracy counts the answers whose true label the server was told", "; for a regression model this tab shows its live error instead"))
    for section, what, instead in sections:
        page.click(f"#tab-{section}")
        expect(page.locator(f"#{section}")).to_have_text(
            f"{what}: it applies to one-class models (one label per example: softmax or sigmoid){instead}. {card['name']} v1 is {task}."
        )
    watched = card["output"]["kind"] in ("regression", "multilabel")  # a tagger's drift: its labels' probabilities as targets
    page.click("#tab-drift")
    if watched:  # a regressor's or a tagger's drift, from the server: this fake has no reference, and the tab says so in the server's words
        expect(page.locator("#refresh-drift")).to_be_visible()
        expect(page.locator("#drift")).to_have_text(f"No drift statistics: {card['name']}:v1 has no reference statistics; retrain it, or import it with evaluation data")
    else:
        expect(page.locator("#drift")).to_have_text(
            f"Drift is monitored for classifiers (one label per example: softmax or sigmoid), regressors and multi-label taggers, on numeric inputs of a fixed shape: it does not apply to {card['name']} v1, {task}."
        )
        expect(page.locator("#refresh-drift")).to_be_hidden()
    expect(page.locator("#tab-live")).to_have_text("Live error" if regressor else "Live accuracy")
    page.click("#tab-live")
    if regressor:  # its live error, from the server: here feedback is off, and the tab says so in the server's words
        expect(page.locator("#refresh-live")).to_have_text("Refresh the live error")
        expect(page.locator("#live")).to_have_text("No live error: feedback is off (feedback.enabled in the configuration). This server records no answers for ground truth.")
    else:
        expect(page.locator("#refresh-live")).to_be_hidden()
    asked_for = [u for u in tab.requests[asked:] if u.endswith(("/drift", "/live"))]
    expected = [f"{tab.url}/models/{card['name']}/v1/drift"] if watched else []
    assert asked_for == expected + ([f"{tab.url}/models/{card['name']}/v1/live"] if regressor else []), tab.requests[asked:]
    page.click("#tab-card")


def test_a_regressor_takes_typed_values_and_answers_each_target_with_its_unit(browser, fakes):
    tab = Tab(browser, fakes)
    try:
        page = tab.open("/#house/v1")
        wait_for_card(page, "house:v1")
        card = requests.get(f"{fakes}/models/house/v1", timeout=TIMEOUT).json()
        expect(page.locator("#not-image")).to_have_text("house takes 4 numbers, each from -10 to 10, not an image: type them below, or paste a row, then Send.")
        fields = page.locator("#value-fields input")
        expect(fields).to_have_count(4)
        for i in range(1, 5):  # labelled, and the card's range is each field's min and max
            field = page.get_by_label(f"value {i}", exact=True)
            expect(field).to_have_attribute("type", "number")
            expect(field).to_have_attribute("min", "-10")
            expect(field).to_have_attribute("max", "10")
        expect(page.locator("#output-table")).to_contain_text("USD")  # the card lists the targets with their units
        assert "2 values: price (USD), area (m2)" in page.inner_text("#card")

        # Typed with the keyboard, field after field, and sent with Enter: the body holds what was typed.
        page.focus("#value-1")
        typed = ["1.5", "-2", "3.25", "4"]
        for i, text in enumerate(typed):
            page.keyboard.type(text)
            if i < len(typed) - 1:
                page.keyboard.press("Tab")
        expect(page.locator("#values-row")).to_have_value("1.5, -2, 3.25, 4")  # the row shows the fields
        with page.expect_request(lambda r: r.method == "POST" and r.url == f"{fakes}/models/house/v1") as sent:
            page.keyboard.press("Enter")
        assert sent.value.post_data_json == {"input": [1.5, -2, 3.25, 4]}
        (price, area) = HOUSE.compute([[1.5, -2, 3.25, 4]])[0].tolist()
        expect(page.locator("#answered")).to_have_text(
            re.compile(rf"^Answered by house v1 in \d+ ms: price {re.escape(js_value(price))} USD, area {re.escape(js_value(area))} m2\.$")
        )
        shown = page.locator("#values-table")
        assert [h.strip() for h in shown.locator("thead th").all_inner_texts()] == ["target", "value", "unit"]
        assert [[c.strip() for c in row.locator("th, td").all_inner_texts()] for row in shown.locator("tbody tr").all()] == [
            ["price", js_value(price), "USD"],
            ["area", js_value(area), "m2"],
        ]
        assert js_value(price) == "183,333" and js_value(area) == "4.6875", (price, area)  # whole with separators; 6 significant digits
        values = [float(v) for v in shown.locator(".answer-value").evaluate_all("nodes => nodes.map(n => n.dataset.value)")]
        assert values == [price, area]  # exactly the runner's float32 values, as the server sent them
        no_one_class_extras(page)
        expect(page.get_by_role("group", name="True value?")).to_be_visible()  # its true values may be told: here feedback is off
        page.get_by_label("price (USD)", exact=True).fill("180000")
        page.get_by_label("area (m2)", exact=True).fill("4.5")
        page.click("#truth-send")
        expect(page.locator("#truth-answer")).to_have_text("Not sent: feedback is off (feedback.enabled in the configuration)")
        check_layout(page, "desktop regression")

        # A row pasted: it fills the fields, and Send sends it.
        page.fill("#values-row", "0\t1\t-1\t10\n")
        assert [page.input_value(f"#value-{i}") for i in range(1, 5)] == ["0", "1", "-1", "10"]
        assert send_values(page, fakes, "/models/house/v1") == {"input": [0, 1, -1, 10]}
        (price, area) = HOUSE.compute([[0, 1, -1, 10]])[0].tolist()
        expect(page.locator("#values-table tbody tr").first).to_contain_text(js_value(price))

        # Invalid input gets a plain message on the page, and nothing is sent.
        sent = posts_to(tab, "/models/house/v1")
        page.fill("#value-2", "50")
        page.click("#values-send")
        expect(page.locator("#values-error")).to_have_text("Value 2 is 50: this model takes values from -10 to 10.")
        expect(page.locator("#value-2")).to_be_focused()
        expect(page.locator("#value-2")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#result")).to_be_hidden()
        page.fill("#value-2", "")
        page.click("#values-send")
        expect(page.locator("#values-error")).to_have_text("Value 2 is empty: type a number.")
        page.fill("#values-row", "1, two, 3, 4")
        page.click("#values-send")
        expect(page.locator("#values-error")).to_have_text("Value 2 is not a number: “two”.")
        expect(page.locator("#values-row")).to_be_focused()
        page.fill("#values-row", "1, 2, 3")
        page.locator("#values-row").blur()  # said once the row is left
        expect(page.locator("#values-error")).to_have_text("This model takes 4 values; the row has 3.")
        page.click("#values-send")
        expect(page.locator("#values-error")).to_have_text("This model takes 4 values; the row has 3.")
        assert not sent, [r.post_data for r in sent]

        # What the server refuses is said in its words (the body changed on its way, as a client could send it).
        page.fill("#values-row", "1, 2, 3, 4")
        expect(page.locator("#values-error")).to_be_hidden()
        page.route(f"{fakes}/models/house/v1", lambda route: route.continue_(post_data='{"input": [1, 2, 3]}'))
        refused = requests.post(f"{fakes}/models/house/v1", json={"input": [1, 2, 3]}, timeout=TIMEOUT)
        assert refused.status_code == 422
        page.click("#values-send")
        expect(page.locator("#try-error")).to_have_text(refused.json()["error"])
        expect(page.locator("#result")).to_be_hidden()
        page.unroute(f"{fakes}/models/house/v1")

        the_tabs_say_they_need_classes(tab, page, card)
        tab.errors = [e for e in tab.errors if "status of 503" not in e]  # the browser logs the rollouts' 503: expected here
        tab.assert_only_this_origin()
    finally:
        tab.close()


def test_a_tagger_shows_every_label_against_its_threshold(browser, fakes):
    tab = Tab(browser, fakes)
    try:
        page = tab.open("/#tagger/v1")
        wait_for_card(page, "tagger:v1")
        card = requests.get(f"{fakes}/models/tagger/v1", timeout=TIMEOUT).json()
        table = page.locator("#output-table")  # the card: each label with its threshold
        assert [[c.strip() for c in row.locator("th, td").all_inner_texts()] for row in table.locator("tbody tr").all()] == [
            [label, f"{threshold:.0%}"] for label, threshold in zip(TAGS, TAG_THRESHOLDS, strict=True)
        ]
        expect(page.locator("#value-fields input")).to_have_count(4)
        expect(page.locator("#value-1")).not_to_have_attribute("min", re.compile(".*"))  # no range: no min, no max
        for i, value in enumerate(["0.5", "0.25", "0.5", "0.25"], start=1):
            page.fill(f"#value-{i}", value)
        assert send_values(page, fakes, "/models/tagger/v1") == {"input": [0.5, 0.25, 0.5, 0.25]}
        scores = tasks_expected(np.array([[0.5, 0.25, 0.5, 0.25]]), len(TAGS))[0].tolist()
        given = [label for label, p, t in zip(TAGS, scores, TAG_THRESHOLDS, strict=True) if p >= t]
        assert given == ["red", "round"], scores  # sweet's 0.38 is under its 0.75
        expect(page.locator("#answered")).to_have_text(re.compile(rf"^Answered by tagger v1 in \d+ ms: {', '.join(given)}\.$"))
        expect(page.locator("#tags-given")).to_have_text(f"Given: {', '.join(given)}.")
        items = page.locator("#tags li")
        expect(items).to_have_count(len(TAGS))  # every label, in the card's order
        for item, label, p, threshold in zip(items.all(), TAGS, scores, TAG_THRESHOLDS, strict=True):
            expect(item.locator(".label")).to_have_text(("✓ " if label in given else "") + label)
            expect(item.locator(".value")).to_have_text(f"{js_percent(p)}, threshold {threshold:.0%}: {'given' if label in given else 'not given'}")
            assert (item.get_attribute("class") or "") == ("given" if label in given else "")
            track = item.locator(".track").evaluate(
                "n => { const r = n.getBoundingClientRect(); return {x: r.x + n.clientLeft, width: r.width - 2 * n.clientLeft, height: r.height}; }"
            )  # inside its border
            fill = item.locator(".fill").bounding_box()
            mark = item.locator(".threshold").bounding_box()
            assert fill["width"] == pytest.approx(track["width"] * p, abs=1.5), (label, fill, track)  # the bar is the probability
            assert mark["x"] + mark["width"] / 2 == pytest.approx(track["x"] + track["width"] * threshold, abs=1.5), (label, mark, track)  # the mark, its threshold
            assert mark["height"] > track["height"]  # it crosses the bar
        background = lambda selector: page.locator(selector).first.evaluate("n => getComputedStyle(n).backgroundColor")  # noqa: E731
        assert background("#tags li.given .fill") != background("#tags li:not(.given) .fill")  # the given ones stand out
        no_one_class_extras(page)
        check_layout(page, "desktop multilabel")
        page.locator("#try").screenshot(path=SCREENSHOTS / "page-multilabel.png")
        the_tabs_say_they_need_classes(tab, page, card)
        tab.errors = [e for e in tab.errors if "status of 503" not in e]
        tab.assert_only_this_origin()
    finally:
        tab.close()


def test_an_embedding_from_a_json_input_shows_its_size_and_first_values_and_copies(browser, fakes):
    tab = Tab(browser, fakes)
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=fakes)
    try:
        page = tab.open("/#embedder/v1")
        wait_for_card(page, "embedder:v1")
        card = requests.get(f"{fakes}/models/embedder/v1", timeout=TIMEOUT).json()
        expect(page.locator("#not-image")).to_have_text("embedder takes a tensor of shape 2×3 (6 numbers, any finite values), not an image: write it below as JSON, then Send.")
        expect(page.locator("#values-fields")).to_be_hidden()  # two dimensions: JSON, not fields
        expect(page.locator("#values-row")).to_be_hidden()
        expect(page.locator("#values-json")).to_have_attribute("placeholder", "[[0, 0, 0], [0, 0, 0]]")
        sent = posts_to(tab, "/models/embedder/v1")
        for text, message in (
            ("[[1, 2], [3, 4], [5, 6]]", "This model takes a tensor of shape 2×3; the JSON has shape 3×2."),
            ("[[1, 2, 3], [4, 5]]", "The lists are not all of the same length: write a tensor of shape 2×3 as nested lists of numbers."),
            ('[[1, "a", 3], [4, 5, 6]]', 'Expected numbers only: [0][1] is "a", not a number.'),
        ):
            page.fill("#values-json", text)
            page.click("#values-send")
            expect(page.locator("#values-error")).to_have_text(message)
            expect(page.locator("#values-json")).to_be_focused()
        page.fill("#values-json", "[1, 2")
        page.click("#values-send")
        expect(page.locator("#values-error")).to_have_text(re.compile(r"^The text is not valid JSON \(.+\): write a tensor of shape 2×3 as nested lists of numbers\.$"))
        assert not sent

        example = [[1, 2, 3], [0, 0.5, -1]]
        page.fill("#values-json", '{"input": [[1, 2, 3], [0, 0.5, -1]]}')  # a body copied from a curl works too
        expect(page.locator("#values-error")).to_be_hidden()
        assert send_values(page, fakes, "/models/embedder/v1") == {"input": example}
        vector = tasks_expected(np.array([example]), EMBEDDING_SIZE)[0].tolist()
        expect(page.locator("#answered")).to_have_text(re.compile(rf"^Answered by embedder v1 in \d+ ms: an embedding of {EMBEDDING_SIZE} values\.$"))
        expect(page.locator("#vector-title")).to_have_text(f"An embedding of {EMBEDDING_SIZE} values; the first 8:")
        rows = [[c.strip() for c in row.locator("th, td").all_inner_texts()] for row in page.locator("#vector-table tbody tr").all()]
        assert rows == [[str(i), js_value(v)] for i, v in enumerate(vector[:8])], rows
        assert [float(v) for v in page.locator("#vector-table .answer-value").evaluate_all("nodes => nodes.map(n => n.dataset.value)")] == pytest.approx(vector[:8], abs=1e-6)
        norm = float(np.sqrt(np.sum(np.square(np.asarray(vector, np.float64)))))
        expect(page.locator("#vector-norm")).to_have_text(f"Length (L2 norm): {js_value(norm)}")
        no_one_class_extras(page)

        page.click("#copy-json")
        expect(page.locator("#copy-answer")).to_have_text(f"Copied {EMBEDDING_SIZE} values as JSON.")
        copied = page.evaluate("() => navigator.clipboard.readText()")
        assert json.loads(copied) == pytest.approx(vector, abs=1e-6)
        page.click("#result details > summary")
        assert json.loads(page.input_value("#vector-json")) == json.loads(copied)  # every value, as JSON, on the page too
        check_layout(page, "desktop embedding")
        the_tabs_say_they_need_classes(tab, page, card)
        tab.errors = [e for e in tab.errors if "status of 503" not in e]
        tab.assert_only_this_origin()
    finally:
        tab.close()


def test_the_values_forms_and_answers_fit_a_phone_and_the_keyboard_reaches_them(browser, fakes):
    tab = Tab(browser, fakes, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = tab.open("/#house/v1")
        wait_for_card(page, "house:v1")
        form = page.locator("#values-form").bounding_box()
        assert form["x"] >= 0 and form["x"] + form["width"] <= PHONE["width"], form
        for field in page.locator("#value-fields input").all():  # each field whole, in the form
            box = field.bounding_box()
            assert box["x"] >= form["x"] and box["x"] + box["width"] <= form["x"] + form["width"] + 0.5, box
        page.fill("#values-row", "9.5 9.5 9.5 9.5")
        assert send_values(page, fakes, "/models/house/v1") == {"input": [9.5, 9.5, 9.5, 9.5]}
        (price, _) = HOUSE.compute([[9.5] * 4])[0].tolist()
        expect(page.locator("#values-table tbody tr").first).to_contain_text(js_value(price))
        check_layout(page, "phone regression")
        page.locator("#try").screenshot(path=SCREENSHOTS / "page-values-phone.png")

        choose(page, "tagger", "v1", "tagger:v1")
        page.fill("#values-row", "4, 0, 0, 0")
        send_values(page, fakes, "/models/tagger/v1")
        expect(page.locator("#tags li.given")).to_have_count(len(TAGS))  # sigmoid(4 - j) reaches every threshold
        check_layout(page, "phone multilabel")
        for item in page.locator("#tags li").all():
            box = item.bounding_box()
            assert box["x"] + box["width"] <= PHONE["width"], box

        choose(page, "embedder", "v1", "embedder:v1")
        page.fill("#values-json", "[[0, 0, 0], [0, 0, 1]]")
        send_values(page, fakes, "/models/embedder/v1")
        expect(page.locator("#vector-table tbody tr")).to_have_count(8)
        check_layout(page, "phone embedding")
        tab.errors = [e for e in tab.errors if "status of 503" not in e]
        tab.assert_only_this_origin()
    finally:
        tab.close()

    tab = Tab(browser, fakes)  # the keyboard reaches every control of the form and of the answers
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=fakes)
    try:
        page = tab.open("/#house/v1")
        wait_for_card(page, "house:v1")
        page.focus("#version")
        reached = []
        for _ in range(8):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("() => document.activeElement.id"))
        assert reached[:7] == ["value-1", "value-2", "value-3", "value-4", "values-row", "values-send", "tab-card"], reached
        choose(page, "embedder", "v1", "embedder:v1")
        page.focus("#values-json")
        page.keyboard.type("[[1, 1, 1], [1, 1, 1]]")
        page.keyboard.press("Tab")
        expect(page.locator("#values-send")).to_be_focused()
        with page.expect_request(lambda r: r.method == "POST" and r.url == f"{fakes}/models/embedder/v1"):
            page.keyboard.press("Enter")
        expect(page.locator("#vector-table")).to_be_visible()
        page.focus("#values-send")
        reached = []
        for _ in range(6):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("() => { const e = document.activeElement; return e.id || e.tagName; }"))
        assert "copy-json" in reached and "SUMMARY" in reached, reached
        page.focus("#copy-json")
        page.keyboard.press("Enter")
        expect(page.locator("#copy-answer")).to_have_text(f"Copied {EMBEDDING_SIZE} values as JSON.")
        tab.errors = [e for e in tab.errors if "status of 503" not in e]
        tab.assert_only_this_origin()
    finally:
        tab.close()


# --- a regressor's live error: against the fakes with feedback on (``fed``) ------------------------------------


def js_error(value: float) -> str:
    """An error figure as the page writes it (logic.mjs errorNumber): 4 significant digits, from 1,000 whole
    with thousands separators (Math.round: half up)."""
    size = abs(value)
    assert 1e-4 <= size < 1e15 or size == 0, value
    if size == 0:
        return "0"
    exact = Decimal(value)  # toPrecision(4) rounds the float's exact value, a tie away from zero
    rounded = float(exact.quantize(Decimal(1).scaleb(exact.adjusted() - 3), ROUND_HALF_UP))
    if abs(rounded) >= 1000:
        return f"{math.floor(value + 0.5):,}"
    return repr(rounded).removesuffix(".0")


def js_signed(value: float) -> str:
    text = js_error(abs(value))
    return "0" if text == "0" else ("−" if value < 0 else "+") + text


def js_error_range(interval: dict, unit: str) -> str:
    """A MAE's or RMSE's 95% interval as the page writes it: never below 0 (an error is not negative)."""
    return f"{js_error(max(0.0, interval['low']))}–{js_error(interval['high'])} {unit}"


def house_live(url: str, version: str = "v1") -> dict:
    answer = requests.get(f"{url}/models/house/{version}/live", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return answer.json()


def send_house_labelled(url: str, groups: int = 4, per_group: int = 6) -> dict:
    """Labelled requests to house, each carrying its true values (X-Label: price;area), ``per_group`` a
    second over ``groups`` seconds (the fed server's series has a point per second): half through its alias
    stable, a slice each (north, south). The truth: price off by a spread of 3,000 USD, area 0.3 m2 too
    small (the model's answers above it: a bias) with a little noise. /live once they have all joined."""
    rng = np.random.default_rng(7)
    before = house_live(url)["examples"]
    for group in range(groups):
        for index in range(per_group):
            row = rng.uniform(-2, 2, 4).round(2).tolist()
            price, area = HOUSE.compute([row])[0].tolist()
            truth = (price + float(rng.normal(0, 3000)), area - 0.3 + float(rng.normal(0, 0.05)))
            through = "stable" if index % 2 else "v1"
            headers = {"X-Label": f"{truth[0]!r};{truth[1]!r}", "X-Slice": ("north", "south")[index % 3 == 0]}
            answer = requests.post(f"{url}/models/house/{through}", json={"input": row}, headers=headers, timeout=TIMEOUT)
            assert answer.status_code == 200, answer.text
        if group < groups - 1:
            time.sleep(1.05)
    deadline = time.monotonic() + 15
    while (report := house_live(url))["examples"] < before + groups * per_group:
        assert time.monotonic() < deadline, f"house's live error holds {report['examples']} examples, not {before + groups * per_group}"
        time.sleep(0.2)
    return report


def target_section(page, name: str):
    return page.locator(f'#live .target-error[data-target="{name}"]')


def check_live_error(page, report: dict, card: dict) -> None:
    """The live error tab shows /live's figures: per target MAE, RMSE (95% intervals, unit), bias and examples,
    beside the card's held-out error; the summary's count."""
    count = lambda n, word: f"{n:,} {word}{'' if n == 1 else 's'}"  # noqa: E731
    whose = "its" if report["examples"] == 1 else "their"
    expect(page.locator("#live-error-summary")).to_contain_text(f"house v1: {count(report['examples'], 'answer')} with {whose} true values")
    for target in report["targets"]:
        name, unit = target["name"], target["unit"]
        section = target_section(page, name)
        expect(section.locator("h4")).to_have_text(f"{name} ({unit}) · {count(target['examples'], 'example')}")
        mae, rmse = section.locator(".figure.mae"), section.locator(".figure.rmse")
        expect(mae.locator(".figure-value")).to_have_text(f"{js_error(target['mae']['value'])} {unit}")
        expect(rmse.locator(".figure-value")).to_have_text(f"{js_error(target['rmse']['value'])} {unit}")
        if target["examples"] > 1:
            expect(mae).to_contain_text(f"95% interval {js_error_range(target['mae'], unit)}")
            expect(rmse).to_contain_text(f"95% interval {js_error_range(target['rmse'], unit)}")
        else:  # (this test alone: the one example the control sent)
            expect(mae).to_contain_text("no interval from one example")
        expect(section.locator(".figure.bias .figure-value")).to_have_text(f"{js_signed(target['bias'])} {unit}")
        held_out = card["metrics"]["per_target"][name]
        expect(mae).to_contain_text(f"held-out: {js_error(held_out['mae'])} {unit}")
        expect(rmse).to_contain_text(f"held-out: {js_error(held_out['rmse'])} {unit}")


def test_a_regressors_live_error_tab_shows_what_the_server_measured(browser, fed):
    card = requests.get(f"{fed}/models/house/v1", timeout=TIMEOUT).json()
    assert card["metrics"]["per_target"] and card["input"]["names"] == list(HOUSE_NAMES)
    tab = Tab(browser, fed)
    try:
        page = tab.open("/#house/v1/live")
        expect(page.locator("#tab-live")).to_have_text("Live error")
        expect(page.locator("#tab-live")).to_have_attribute("aria-selected", "true")
        # Before any true value: the figures are "–", and the tab says how to send some.
        empty = house_live(fed)
        assert empty["examples"] == 0 and empty["series"] == [], empty
        expect(page.locator("#live-error-summary")).to_contain_text("no answer with its true values yet")
        expect(target_section(page, "price").locator(".figure.mae .figure-value")).to_have_text("–")
        expect(target_section(page, "price").locator(".figure.mae")).to_contain_text("held-out: 2,500 USD")
        help_text = page.locator("#live .live-help")
        expect(help_text).to_contain_text("No answer has a known true value yet.")
        expect(help_text).to_contain_text("under “True value?”")
        expect(help_text.locator("code").first).to_have_text('POST /models/house/feedback {"feedback": [{"id": "<X-Request-Id of the answer>", "value": [<price>, <area>]}]}')
        expect(help_text.locator("code").nth(1)).to_have_text("X-Label: <price>;<area>")

        report = send_house_labelled(fed)
        assert report["examples"] == 24 and len(report["series"]) >= 3, report
        page.click("#refresh-live")
        check_live_error(page, report, card)
        area = next(t for t in report["targets"] if t["name"] == "area")
        assert area["mae"]["low"] > card["metrics"]["per_target"]["area"]["mae"]  # 0.3 m2 off live against 0.2 held out
        expect(target_section(page, "area").locator(".comparison")).to_have_text(
            "The held-out MAE is below the live interval: the model errs more on live traffic than on its held-out data."
        )
        expect(target_section(page, "area").locator(".figure.bias")).to_contain_text("the answers are above the truth on average")

        # The chart: a panel per unit, a line per target through a point per second, its held-out MAE dashed, a legend.
        chart = page.locator("#live svg.error-chart")
        assert chart.get_attribute("role") == "img" and "a line per target" in chart.get_attribute("aria-label")
        expect(chart.locator("path.line")).to_have_count(2)
        expect(chart.locator("line.offline")).to_have_count(2)
        expect(chart.locator("text.panel-title")).to_have_text(["MAE of price (USD)", "MAE of area (m2)"])
        for target in ("price", "area"):
            values = [point["mae"][target] for point in report["series"]]
            path = chart.locator(f'path.line[data-target="{target}"]').get_attribute("d")
            assert path.startswith("M") and path.count("L") == len(values) - 1, path  # one unbroken line through every point
            points = chart.locator(f'circle.point[data-target="{target}"]')
            expect(points).to_have_count(len(values))
            ys = [float(y) for y in points.evaluate_all("nodes => nodes.map(n => n.getAttribute('cy'))")]
            xs = [float(x) for x in points.evaluate_all("nodes => nodes.map(n => n.getAttribute('cx'))")]
            assert xs == sorted(xs) and len(set(xs)) == len(xs), xs  # in time order
            order = lambda seq: sorted(range(len(seq)), key=lambda i: seq[i])  # noqa: E731
            assert order(values) == order([-y for y in ys]), (values, ys)  # a larger MAE is higher up
        colours = {t: chart.locator(f'path.line[data-target="{t}"]').evaluate("n => getComputedStyle(n).stroke") for t in ("price", "area")}
        assert colours["price"] != colours["area"], colours
        legend = page.locator("#live .error-legend li[data-target]")
        expect(legend).to_have_text(["price (USD)", "area (m2)"])
        page.click("#live .live-series details > summary")
        series = page.locator("#live .live-series table")
        expect(series.locator("tbody tr")).to_have_count(len(report["series"]))
        shown = [[c.strip() for c in row.locator("td").all_inner_texts()] for row in series.locator("tbody tr").all()]
        assert shown == [[js_error(p["mae"]["price"]), js_error(p["mae"]["area"]), f"{p['examples']:,}"] for p in report["series"]], shown

        # Per alias and per slice: a row per name and target, the unit in the target's cell.
        def rows(title):
            table = page.get_by_role("table", name=title)
            return [[c.strip() for c in row.locator("th, td").all_inner_texts()] for row in table.locator("tbody tr").all()]

        def expected(groups):
            return [
                [
                    name,
                    f"{target} ({unit})",
                    js_error(e["mae"]["value"]),
                    f"{js_error(max(0.0, e['mae']['low']))}–{js_error(e['mae']['high'])}",
                    js_error(e["rmse"]["value"]),
                    js_signed(e["bias"]),
                    f"{e['examples']:,}",
                ]
                for name in sorted(groups)
                for target, unit in (("price", "USD"), ("area", "m2"))
                for e in [groups[name][target]]
            ]

        assert set(report["aliases"]) == {"stable"} and set(report["slices"]) == {"north", "south"}, report
        assert rows("Per alias the requests came through") == expected(report["aliases"])
        assert rows("Per slice (X-Slice on the request)") == expected(report["slices"])
        page.click("#live > details > summary")  # how to send true values
        expect(page.locator("#live > details .live-help code").first).to_contain_text('"value": [<price>, <area>]')
        check_layout(page, "desktop live error")
        box = chart.bounding_box()
        assert box["x"] + box["width"] <= DESKTOP["width"], box
        tab.errors = [e for e in tab.errors if "status of 503" not in e]
        tab.assert_only_this_origin()
    finally:
        tab.close()


def test_the_true_value_control_posts_feedback_that_joins_and_fits_a_phone(browser, fed):
    tab = Tab(browser, fed)
    try:
        page = tab.open("/#house/v1/live")
        expect(page.locator("#tab-live")).to_have_attribute("aria-selected", "true")
        # The card's names label the form's fields (input.names), and the checks name them too.
        for i, name in enumerate(HOUSE_NAMES, start=1):
            expect(page.get_by_label(name, exact=True)).to_have_attribute("id", f"value-{i}")
        page.click("#tab-card")
        expect(page.locator("#card")).to_contain_text(f"a tensor of shape 4 ({', '.join(HOUSE_NAMES)}), values -10..10")
        page.click("#tab-live")
        page.fill("#values-row", "1, 50, 3, 4")
        page.click("#values-send")
        expect(page.locator("#values-error")).to_have_text("Floor area is 50: this model takes values from -10 to 10.")

        row = [1.5, -2, 0.25, 1]
        page.fill("#values-row", ", ".join(map(str, row)))
        with page.expect_response(lambda r: r.request.method == "POST" and r.url == f"{fed}/models/house/v1") as answered:
            page.click("#values-send")
        request_id = answered.value.headers["x-request-id"]
        assert request_id, answered.value.headers
        (price, area) = HOUSE.compute([row])[0].tolist()
        truth = page.get_by_role("group", name="True value?")
        expect(truth).to_be_visible()
        expect(page.locator("#right")).to_be_hidden()
        before = house_live(fed)

        # Checked first, in words, with the field marked and focused; nothing is sent.
        sent = posts_to(tab, "/models/house/feedback")
        page.click("#truth-send")
        expect(page.locator("#truth-error")).to_have_text("The true price is empty: type a number.")
        expect(page.locator("#truth-1")).to_be_focused()
        expect(page.locator("#truth-1")).to_have_attribute("aria-invalid", "true")
        assert not sent

        # Typed with the keyboard and sent with Enter: posted by the answer's request id; what joined is said.
        true_price, true_area = 180000, 4.25
        page.keyboard.type(str(true_price))
        page.keyboard.press("Tab")
        expect(page.get_by_label("area (m2)", exact=True)).to_be_focused()
        page.keyboard.type(str(true_area))
        page.keyboard.press("Tab")
        expect(page.locator("#truth-send")).to_be_focused()
        with page.expect_request(lambda r: r.method == "POST" and r.url == f"{fed}/models/house/feedback") as posted:
            page.keyboard.press("Enter")
        assert posted.value.post_data_json == {"feedback": [{"id": request_id, "value": [true_price, true_area]}]}
        expect(page.locator("#truth-error")).to_be_hidden()
        expect(page.locator("#truth-answer")).to_have_text(
            f"Joined: the server counts price {js_value(true_price)} USD, area {js_value(true_area)} m2 as this answer's true values in its live error"
            f" (this answer's error, answered − true: price {js_signed(price - true_price)} USD, area {js_signed(area - true_area)} m2)."
        )
        after = house_live(fed)
        assert after["examples"] == before["examples"] + 1, (before["examples"], after["examples"])
        card = requests.get(f"{fed}/models/house/v1", timeout=TIMEOUT).json()
        check_live_error(page, after, card)  # the tab shown follows: it counts the new example
        page.locator("#try").scroll_into_view_if_needed()
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=SCREENSHOTS / "page-live-error.png", full_page=True)
        tab.errors = [e for e in tab.errors if "status of 503" not in e]
        tab.assert_only_this_origin()
    finally:
        tab.close()

    tab = Tab(browser, fed, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = tab.open("/#house/v1")
        wait_for_card(page, "house:v1")
        page.fill("#values-row", "0 0 0 0")
        send_values(page, fed, "/models/house/v1")
        form = page.locator("#truth").bounding_box()
        assert form["x"] >= 0 and form["x"] + form["width"] <= PHONE["width"], form
        for field in page.locator("#truth input, #truth button").all():  # each control whole, inside the answer
            box = field.bounding_box()
            assert box["x"] >= form["x"] - 0.5 and box["x"] + box["width"] <= form["x"] + form["width"] + 0.5, box
        check_layout(page, "phone true value")
        page.evaluate("() => window.scrollTo(0, 0)")
        page.click("nav.jump a[href='#live']")
        expect(page.locator("nav.jump a[href='#live']")).to_have_text("Live error")
        expect(page.locator("#panel-live")).to_be_in_viewport()
        expect(page.locator("#live svg.error-chart path.line")).to_have_count(2)
        for summary in page.locator("#panel-live details > summary").all():
            summary.click()
        chart = page.locator("#live svg.error-chart").bounding_box()
        assert chart["x"] >= 0 and chart["x"] + chart["width"] <= PHONE["width"], chart
        for section in page.locator("#live .target-error").all():
            box = section.bounding_box()
            assert box["x"] + box["width"] <= PHONE["width"], box
        overflowing = page.locator("#live .figure").evaluate_all("nodes => nodes.filter(n => n.scrollWidth > n.clientWidth + 1).map(n => n.textContent)")
        assert not overflowing, overflowing  # each figure's text inside its box
        check_layout(page, "phone live error")
        page.set_viewport_size({"width": PHONE["width"], "height": 1500})  # not full_page: it drops the touch emulation
        page.locator("#panel-live").evaluate("n => n.scrollIntoView()")
        page.screenshot(path=SCREENSHOTS / "page-live-error-phone.png")
        # The keyboard reaches the refresh button and every folded table of the tab.
        page.focus("#tab-live")
        reached = []
        for _ in range(12):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("() => { const e = document.activeElement; return e.id || (e.tagName === 'SUMMARY' ? e.textContent.trim() : e.tagName); }"))
        for control in ("panel-live", "refresh-live", "The series as a table", "How to send true values"):
            assert control in reached, (control, reached)
        tab.errors = [e for e in tab.errors if "status of 503" not in e]
        tab.assert_only_this_origin()
    finally:
        tab.close()


# --- a model of several named inputs and outputs: real Keras models, imported as users import them -------------

NAMED_FEATURES = [0.5, -1.25, 2.0, 3.5]
NAMED_COUNTS = [1, 7, 3]
PAIR_LABELS = ("cat", "dog", "fox")
TWIN, PAIR = "page-twin", "page-pair"  # names of their own in the session's store (test_named_tensors.py has a pair)
SENTIMENT = "page-sentiment"  # (test_named_tensors.py has a sentiment)
STEPS = "page-steps"  # a sequence of any length up to STEPS_BOUND (test_dynamic_shapes.py has a steps)
STEPS_BOUND = 12


def two_input_models(directory: Path) -> dict:
    """twin: "features" (float32, 4) and "counts" (int64, 3, through an Embedding(10, 2) and Flatten) in, "kind"
    (softmax of 3) and "size" (Dense 2) out; pair: the same inputs, one softmax over three labels. Saved as .keras."""
    import keras

    keras.utils.set_random_seed(11)
    features = keras.Input((4,), name="features", dtype="float32")
    counts = keras.Input((3,), name="counts", dtype="int64")
    joined = keras.layers.Concatenate()([features, keras.layers.Flatten()(keras.layers.Embedding(10, 2)(counts))])
    hidden = keras.layers.Dense(8, activation="relu")(joined)
    kind = keras.layers.Dense(3, activation="softmax", name="kind")(hidden)
    size = keras.layers.Dense(2, name="size")(hidden)
    models = {
        "twin": keras.Model(inputs=[features, counts], outputs=[kind, size], name="twin"),
        "pair": keras.Model(inputs=[features, counts], outputs=keras.layers.Dense(3, activation="softmax", name="animal")(joined), name="pair"),
    }
    for name, model in models.items():
        model.save(directory / f"{name}.keras")
    return models


def predicted(model, features: list[float], counts: list[int]) -> dict[str, np.ndarray]:
    """The model's own predict() of one example, by output name."""
    answers = model.predict({"features": np.asarray([features], np.float32), "counts": np.asarray([counts], np.int64)}, verbose=0)
    answers = answers if isinstance(answers, list) else [answers]
    return {name: np.asarray(answer)[0] for name, answer in zip(model.output_names, answers, strict=True)}


def sentiment_model(directory: Path):
    """A scikit-learn text pipeline (TfidfVectorizer, LogisticRegression; labels neg and pos) saved with joblib:
    one string per example ("text" BYTES [1] once imported)."""
    import joblib
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    reviews = ["good film great acting", "bad plot awful", "great good fine", "awful bad terrible", "Café naïve charm good", "boring bad"] * 3
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(reviews, ["pos", "neg", "pos", "neg", "pos", "neg"] * 3)
    joblib.dump(pipeline, directory / "sentiment.joblib")
    return pipeline


def steps_model(directory: Path):
    """A Keras classifier of a sequence of any length: "steps" (float32, [None, 3]) through Dense and
    GlobalAveragePooling1D to a softmax over PAIR_LABELS. Saved as .keras."""
    import keras

    keras.utils.set_random_seed(12)
    sequence = keras.Input((None, 3), name="steps")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Dense(8, activation="tanh")(sequence))
    model = keras.Model(sequence, keras.layers.Dense(3, activation="softmax")(pooled), name="steps")
    model.save(directory / "steps.keras")
    return model


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """A `bentoml serve` of twin and pair (two_input_models, served as page-twin and page-pair), of a text classifier (sentiment_model,
    as page-sentiment: "text" BYTES [1], at most 64 bytes) and of a sequence classifier (steps_model, as page-steps: "steps" FP32
    [-1, 3], up to STEPS_BOUND steps), each imported with `train_and_save.py import` (twin with --task tensor: every
    output by its name; pair with its labels; sentiment with --max-bytes 64). Yields the URL and the models (Keras, the scikit-learn pipeline)."""
    tmp = tmp_path_factory.mktemp("page-named")
    models = {**two_input_models(tmp), "sentiment": sentiment_model(tmp), "steps": steps_model(tmp)}
    for file, name, args in (
        ("twin.keras", TWIN, ["--task", "tensor"]),
        ("pair.keras", PAIR, ["--labels", ",".join(PAIR_LABELS)]),
        ("sentiment.joblib", SENTIMENT, ["--trust-pickle", "--max-bytes", "64"]),
        ("steps.keras", STEPS, ["--labels", ",".join(PAIR_LABELS), "--max-dim", str(STEPS_BOUND)]),
    ):
        result = run_training("import", str(tmp / file), "--name", name, "--version", "v1", "--force", *args)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr[-3000:]}"
    config = write_config(tmp / "configuration.yaml", {name: {"versions": ["v1"]} for name in (TWIN, PAIR, SENTIMENT, STEPS)})
    with ready_server(config, free_port(), tmp / "serve.log") as server:
        yield server.url, models


def shown_outputs(page) -> dict[str, list[float]]:
    """Each named output's values as the page shows them (their exact values: data-value), by output name."""
    return {
        section.get_attribute("data-output"): [float(v) for v in section.locator(".answer-value").evaluate_all("nodes => nodes.map(n => n.dataset.value)")]
        for section in page.locator("#answer-task section.named-output").all()
    }


def test_named_inputs_are_a_field_each_and_named_outputs_show_the_models_own_values(browser, named):
    url, models = named
    tab = Tab(browser, url)
    try:
        page = tab.open(f"/#{TWIN}/v1")
        wait_for_card(page, f"{TWIN}:v1")
        expect(page.locator("#not-image")).to_have_text(
            f"{TWIN} takes 2 named inputs: features (4 numbers) and counts (3 whole numbers), not an image: type each below, then Send."
        )
        for part in ("#image-inputs", "#draw", "#values-fields", "#values-row-field", "#values-json-field"):
            expect(page.locator(part)).to_be_hidden()
        features, counts = page.get_by_label("features · FP32 [4]", exact=True), page.get_by_label("counts · INT64 [3]", exact=True)
        expect(features).to_have_accessible_description("4 numbers, separated by commas or spaces (or as a JSON list).")
        expect(counts).to_have_accessible_description("3 whole numbers, separated by commas or spaces (or as a JSON list).")
        # The card: each input and output by its name, datatype and shape; never the packed bytes as a shape
        card = requests.get(f"{url}/models/{TWIN}/v1", timeout=TIMEOUT).json()
        assert card["input"]["kind"] == "tensors" and card["output"]["kind"] == "tensors", card
        facts = dict(zip(page.locator("#card dl.facts dt").all_inner_texts(), page.locator("#card dl.facts dd").all_inner_texts(), strict=True))
        assert facts["Input"] == "2 named inputs: features FP32 [4], counts INT64 [3]", facts
        assert facts["Output"] == "2 named outputs: kind FP32 [3], size FP32 [2]", facts
        assert [row.locator("th, td").all_inner_texts() for row in page.locator("#inputs-table tbody tr").all()] == [["features", "FP32", "[4]"], ["counts", "INT64", "[3]"]]
        assert str(card["input"]["shape"][0]) not in page.inner_text("#card dl.facts")

        # A row in one field, JSON in the other, sent with Enter: {"input": {...}}; the answer is the model's own
        features.fill(", ".join(map(str, NAMED_FEATURES)))
        counts.fill(json.dumps(NAMED_COUNTS))
        with page.expect_request(lambda r: r.method == "POST" and r.url == f"{url}/models/{TWIN}/v1") as sent:
            counts.press("Enter")
        assert sent.value.post_data_json == {"input": {"features": NAMED_FEATURES, "counts": NAMED_COUNTS}}
        expect(page.locator("#result")).to_be_visible()
        expect(page.locator("#try")).to_have_attribute("aria-busy", "false")
        expected = predicted(models["twin"], NAMED_FEATURES, NAMED_COUNTS)
        shown = shown_outputs(page)
        assert list(shown) == ["kind", "size"], shown
        for name, values in expected.items():
            assert len(shown[name]) == values.size, (name, shown[name])
            np.testing.assert_allclose(shown[name], values.ravel(), rtol=0, atol=1e-5, err_msg=name)
        served = requests.post(f"{url}/models/{TWIN}/v1", json={"input": {"features": NAMED_FEATURES, "counts": NAMED_COUNTS}}, timeout=TIMEOUT).json()
        assert shown == {name: rows[0] for name, rows in served["result"].items()}  # exactly the server's numbers
        expect(page.locator("section.named-output[data-output=kind] h4")).to_have_text("kind · FP32 [3]")
        expect(page.locator("section.named-output[data-output=size] h4")).to_have_text("size · FP32 [2]")
        expect(page.locator("#answered")).to_have_text(re.compile(rf"^Answered by {TWIN} v1 in \d+ ms: 2 named outputs, kind \(3 values\) and size \(2 values\)\.$"))
        assert json.loads(page.locator("#outputs-json").input_value()) == served["result"]
        no_one_class_extras(page)
        expect(page.locator("#truth")).to_be_hidden()

        # Checked here first, in words naming the input, the field marked and focused: nothing is sent
        sent_posts = refused_before_sending(tab, counts, f"/models/{TWIN}/v1", "1, 7", "The input counts takes 3 whole numbers; the field has 2.")
        # What the datatype allows the server checks: 1.5 in an INT64 field is refused in its words, naming the field
        counts.fill("1.5, 7, 3")
        refused = requests.post(f"{url}/models/{TWIN}/v1", json={"input": {"features": NAMED_FEATURES, "counts": [1.5, 7, 3]}}, timeout=TIMEOUT)
        assert refused.status_code == 422 and "counts" in refused.json()["error"], refused.text
        page.click("#values-send")
        expect(page.locator("#try-error")).to_have_text(refused.json()["error"])
        expect(page.locator("#values-error")).to_be_hidden()
        expect(page.locator("#result")).to_be_hidden()
        expect(counts).to_have_attribute("aria-invalid", "true")
        expect(features).not_to_have_attribute("aria-invalid", "true")
        assert len(sent_posts) == 1

        # Slices and live accuracy need classes, drift a classifier or a regressor: they say so without asking the server
        asked = len(tab.requests)
        task = f"{TWIN} v1 is a model answering 2 named outputs (kind FP32 [3], size FP32 [2])."
        for section, what in (
            ("slices", "Slices measure the accuracy per class and under shifts of the held-out data"),
            ("live", "Live accuracy counts the answers whose true label the server was told"),
        ):
            page.click(f"#tab-{section}")
            expect(page.locator(f"#{section}")).to_contain_text(f"{what}: it applies to one-class models")
            expect(page.locator(f"#{section}")).to_contain_text(task)
        page.click("#tab-drift")
        expect(page.locator("#drift")).to_have_text(
            "Drift is monitored for classifiers (one label per example: softmax or sigmoid), regressors and multi-label taggers, on numeric inputs of a fixed shape:"
            f" it does not apply to {TWIN} v1, a model answering 2 named outputs (kind FP32 [3], size FP32 [2]), taking 2 named inputs (features FP32 [4], counts INT64 [3])."
        )
        for button in ("#refresh-drift", "#refresh-live"):
            expect(page.locator(button)).to_be_hidden()
        assert not [u for u in tab.requests[asked:] if u.endswith(("/drift", "/live", "/input.png"))], tab.requests[asked:]
        tab.assert_only_this_origin()  # and nothing thrown: no script error, no console error but the refused POST's own
    finally:
        tab.close()

    tab = Tab(browser, url, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:  # on a phone: the fields inside the form, the answer's tables within their cells, no sideways scrolling
        page = tab.open(f"/#{TWIN}/v1")
        wait_for_card(page, f"{TWIN}:v1")
        page.fill("#named-1", " ".join(map(str, NAMED_FEATURES)))
        page.fill("#named-2", " ".join(map(str, NAMED_COUNTS)))
        assert send_values(page, url, f"/models/{TWIN}/v1") == {"input": {"features": NAMED_FEATURES, "counts": NAMED_COUNTS}}
        expect(page.locator("section.named-output")).to_have_count(2)
        form = page.locator("#values-form").bounding_box()
        assert form["x"] >= 0 and form["x"] + form["width"] <= PHONE["width"], form
        for field in page.locator("#named-fields input").all():
            box = field.bounding_box()
            assert box["x"] >= form["x"] and box["x"] + box["width"] <= form["x"] + form["width"] + 0.5, box
        check_layout(page, "phone named outputs")
        tab.assert_only_this_origin()
    finally:
        tab.close()


def test_a_classifier_of_named_inputs_answers_its_classes_and_its_drift_asks_the_server(browser, named):
    url, models = named
    tab = Tab(browser, url)
    try:
        page = tab.open(f"/#{PAIR}/v1")
        wait_for_card(page, f"{PAIR}:v1")
        expect(page.locator("#named-fields label")).to_have_text(["features · FP32 [4]", "counts · INT64 [3]"])
        page.fill("#named-1", json.dumps(NAMED_FEATURES))
        page.fill("#named-2", ", ".join(map(str, NAMED_COUNTS)))
        assert send_values(page, url, f"/models/{PAIR}/v1") == {"input": {"features": NAMED_FEATURES, "counts": NAMED_COUNTS}}
        expect(page.locator("#result")).to_be_visible()
        (probabilities,) = predicted(models["pair"], NAMED_FEATURES, NAMED_COUNTS).values()
        order = np.argsort(-probabilities, kind="stable")
        assert bars(page) == [(PAIR_LABELS[i], js_percent(float(probabilities[i]))) for i in order]  # the ordinary answer
        expect(page.locator("#answered")).to_have_text(re.compile(rf"^Answered by {PAIR} v1 in \d+ ms: {PAIR_LABELS[order[0]]}\.$"))
        expect(page.locator("#answer-task")).to_be_hidden()
        expect(page.locator("#seen")).to_be_hidden()  # no image as the model sees it
        expect(page.get_by_role("group", name="Right?")).to_be_visible()  # one class per example: it may be right or wrong

        asked = len(tab.requests)
        page.click("#tab-drift")  # watched on its named inputs' numbers: imported without evaluation data, it has no reference, in the server's words
        expect(page.locator("#drift")).to_have_text(f"No drift statistics: {PAIR}:v1 has no reference statistics; retrain it, or import it with evaluation data")
        page.click("#tab-slices")
        expect(page.locator("#slices")).to_contain_text("the server evaluates models taking one input tensor")
        page.click("#tab-live")  # classes: its live accuracy, from the server
        expect(page.locator("#refresh-live")).to_be_visible()
        expect(page.locator("#live")).not_to_be_empty()
        asked_for = [u for u in tab.requests[asked:] if u.endswith(("/drift", "/live", "/input.png"))]
        assert asked_for == [f"{url}/models/{PAIR}/v1/drift", f"{url}/models/{PAIR}/v1/live"], tab.requests[asked:]
        tab.assert_only_this_origin()
    finally:
        tab.close()


def test_a_text_input_is_typed_checked_in_bytes_and_answered_with_the_models_classes(browser, named):
    """A BYTES input's field is a text box: what is typed (spaces, commas) goes as the one string; a text past max_bytes (in
    UTF-8: "é" is 2 bytes) is refused here in words naming it, nothing sent; the answer is the pipeline's own classes."""
    url, models = named
    tab = Tab(browser, url)
    try:
        page = tab.open(f"/#{SENTIMENT}/v1")
        wait_for_card(page, f"{SENTIMENT}:v1")
        expect(page.locator("#not-image")).to_have_text(f"{SENTIMENT} takes 1 named input: text (one text of up to 64 bytes), not an image: type each below, then Send.")
        assert [row.locator("th, td").all_inner_texts() for row in page.locator("#inputs-table tbody tr").all()] == [["text", "BYTES", "[1]"]]
        text = page.get_by_label("text · BYTES [1] · up to 64 bytes of text", exact=True)
        expect(text).to_have_js_property("tagName", "TEXTAREA")
        expect(text).to_have_accessible_description(
            "One text of up to 64 bytes: the whole field is the value, its spaces, commas and line breaks as typed (in UTF-8 an accented letter such as é takes 2 bytes)."
        )
        review = "Café naïve, good film"
        text.press_sequentially(review)  # typed, key by key
        assert send_values(page, url, f"/models/{SENTIMENT}/v1") == {"input": {"text": [review]}}
        expect(page.locator("#try")).to_have_attribute("aria-busy", "false")
        expect(page.locator("#result")).to_be_visible()
        (probabilities,) = models["sentiment"].predict_proba([review])
        labels = list(models["sentiment"].classes_)
        order = np.argsort(-probabilities, kind="stable")
        assert labels == ["neg", "pos"] and labels[order[0]] == "pos", (labels, probabilities)
        assert bars(page) == [(labels[i], js_percent(float(probabilities[i]))) for i in order]
        expect(page.locator("#answered")).to_have_text(re.compile(rf"^Answered by {SENTIMENT} v1 in \d+ ms: pos\.$"))

        refused_before_sending(tab, text, f"/models/{SENTIMENT}/v1", "é" * 33, "The input text is 66 bytes long in UTF-8: it takes up to 64 bytes.")  # 33 characters, 66 bytes
        text.fill("bad plot, boring")
        expect(text).not_to_have_attribute("aria-invalid", "true")
        assert send_values(page, url, f"/models/{SENTIMENT}/v1") == {"input": {"text": ["bad plot, boring"]}}
        expect(page.locator("#answered")).to_have_text(re.compile(rf"^Answered by {SENTIMENT} v1 in \d+ ms: neg\.$"))
        asked = len(tab.requests)
        page.click("#tab-drift")  # its one input is text: drift does not apply, said without asking the server
        expect(page.locator("#drift")).to_contain_text(
            f"regressors and multi-label taggers, on numeric inputs of a fixed shape: it does not apply to {SENTIMENT} v1, a one-class model (2 labels), taking 1 named input (text BYTES [1])"
        )
        assert not [u for u in tab.requests[asked:] if u.endswith("/drift")], tab.requests[asked:]
        tab.assert_only_this_origin()
    finally:
        tab.close()


def test_a_sequence_of_any_length_is_typed_as_json_checked_against_its_bound_and_answered_with_the_models_classes(browser, named):
    """An input of dynamic shape ([-1, 3], up to 12 steps): its field takes JSON nested lists of any length in
    its bounds, sent as typed; a sequence past the bound, or a row of numbers, is refused here in words; the
    answer is the model's own classes, whatever the length."""
    url, models = named
    tab = Tab(browser, url)
    try:
        page = tab.open(f"/#{STEPS}/v1")
        wait_for_card(page, f"{STEPS}:v1")
        what = f"numbers in shape [n, 3], n from 1 to {STEPS_BOUND}"
        expect(page.locator("#not-image")).to_have_text(f"{STEPS} takes 1 named input: steps ({what}), not an image: type each below, then Send.")
        assert [row.locator("th, td").all_inner_texts() for row in page.locator("#inputs-table tbody tr").all()] == [["steps", "FP32", f"[-1, 3], up to [{STEPS_BOUND}, 3]"]]
        steps = page.get_by_label(f"steps · FP32 [-1, 3] · up to [{STEPS_BOUND}, 3]", exact=True)
        expect(steps).to_have_js_property("tagName", "TEXTAREA")
        expect(steps).to_have_accessible_description(f"Numbers in shape [n, 3], n from 1 to {STEPS_BOUND}: JSON nested lists, such as [[0, 0, 0]].")
        for length in (2, STEPS_BOUND):
            sequence = np.round(np.random.default_rng(length).normal(0, 1, (length, 3)), 3).tolist()
            steps.fill(json.dumps(sequence))
            assert send_values(page, url, f"/models/{STEPS}/v1") == {"input": {"steps": sequence}}
            expect(page.locator("#try")).to_have_attribute("aria-busy", "false")
            (probabilities,) = models["steps"].predict(np.asarray([sequence], np.float32), verbose=0)
            order = np.argsort(-probabilities, kind="stable")
            assert bars(page) == [(PAIR_LABELS[i], js_percent(float(probabilities[i]))) for i in order], length
            expect(page.locator("#answered")).to_have_text(re.compile(rf"^Answered by {STEPS} v1 in \d+ ms: {PAIR_LABELS[order[0]]}\.$"))
        too_long = json.dumps([[0, 0, 0]] * (STEPS_BOUND + 1))
        refused_before_sending(tab, steps, f"/models/{STEPS}/v1", too_long, f"The input steps takes {what}; the field has shape [{STEPS_BOUND + 1}, 3].")
        refused_before_sending(tab, steps, f"/models/{STEPS}/v1", "1 2 3", f"The input steps takes {what}: type it as JSON nested lists.")
        refused_before_sending(tab, steps, f"/models/{STEPS}/v1", "[[1, 2]]", f"The input steps takes {what}; the field has shape [1, 2].")
        server = requests.post(f"{url}/models/{STEPS}/v1", json={"input": {"steps": [[0, 0, 0]] * (STEPS_BOUND + 1)}}, timeout=TIMEOUT)
        assert server.status_code == 422 and f"axis 1 of 1 to {STEPS_BOUND}" in server.json()["error"], server.text  # the server says it too
        asked = len(tab.requests)
        page.click("#tab-drift")  # its one input has a dynamic shape: drift does not apply, said without asking the server
        expect(page.locator("#drift")).to_contain_text(
            f"on numeric inputs of a fixed shape: it does not apply to {STEPS} v1, a one-class model (3 labels), taking 1 named input (steps FP32 [-1, 3])"
        )
        assert not [u for u in tab.requests[asked:] if u.endswith("/drift")], tab.requests[asked:]
        tab.assert_only_this_origin()
    finally:
        tab.close()


# --- a regressor's drift: scikit-learn's diabetes regressor, imported with --eval-data as users import it ----------

DIABETES = "page-diabetes"  # a name of its own in the session's store (test_regression_drift.py has a diabetes)
DRIFT_WINDOW = 400  # the drift window: a phase's examples fill it
DRIFT_PER_REQUEST = 20


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    """A `bentoml serve` of scikit-learn's diabetes regressor (a StandardScaler and LinearRegression pipeline fitted
    on the first 300 rows), imported with `--trust-pickle --targets progression --input-names ... --eval-data
    held.npz` (the last 142 rows: its drift reference), window 400. Yields the URL, the in-distribution examples
    (training rows resampled) and the shifted ones (bmi +2 standard deviations), each of a window and a request."""
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tmp = tmp_path_factory.mktemp("page-diabetes")
    data = load_diabetes()
    x, y = data.data, data.target
    joblib.dump(make_pipeline(StandardScaler(), LinearRegression()).fit(x[:300], y[:300]), tmp / "diabetes.joblib")
    np.savez(tmp / "held.npz", x=x[300:], y=y[300:])
    args = ["--trust-pickle", "--targets", "progression", "--input-names", ",".join(data.feature_names), "--eval-data", str(tmp / "held.npz")]
    result = run_training("import", str(tmp / "diabetes.joblib"), "--name", DIABETES, "--version", "v1", "--force", *args)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rng = np.random.default_rng(12)
    count = DRIFT_WINDOW + DRIFT_PER_REQUEST  # a window, and one request more once the gauges' refresh is due (see send_window)
    clean = x[rng.integers(0, 300, count)].astype(np.float32)
    shifted = x[rng.integers(0, 300, count)].astype(np.float32)
    shifted[:, data.feature_names.index("bmi")] += 2 * x[:, data.feature_names.index("bmi")].std()
    monitoring = {"window": DRIFT_WINDOW, "min_samples": 200, "refresh_seconds": 0.5}
    config = write_config(tmp / "configuration.yaml", {DIABETES: {"versions": ["v1"]}}, monitoring=monitoring)
    with ready_server(config, free_port(), tmp / "serve.log") as server:
        yield server.url, clean, shifted


def send_window(url: str, values: np.ndarray) -> None:
    """A window of examples in requests of 20 over one connection (one entry worker), then, once the gauges'
    refresh is due (refresh_seconds), one request more: its refresh publishes that worker's window to the other
    entry worker, whose report the page may get. Loopback only; 21 requests."""
    with requests.Session() as session:
        for start in range(0, DRIFT_WINDOW, DRIFT_PER_REQUEST):
            answer = session.post(f"{url}/models/{DIABETES}/v1", json={"inputs": values[start : start + DRIFT_PER_REQUEST].tolist()}, timeout=TIMEOUT)
            assert answer.status_code == 200, answer.text
        time.sleep(0.7)
        answer = session.post(f"{url}/models/{DIABETES}/v1", json={"inputs": values[DRIFT_WINDOW:].tolist()}, timeout=TIMEOUT)
        assert answer.status_code == 200, answer.text
    time.sleep(0.3)  # the refresh publishes on its own thread


def js_number(value: float) -> str:
    """A statistic as the page writes it (logic.mjs formatNumber): 4 significant digits, an exponent below 1e-3."""
    if value == 0 or value == int(value):
        return f"{int(value):,}"
    if 1e-3 <= abs(value) < 1e6:
        exact = Decimal(value)
        return repr(float(exact.quantize(Decimal(1).scaleb(exact.adjusted() - 3), ROUND_HALF_UP))).removesuffix(".0")
    mantissa, exponent = f"{value:.3e}".split("e")
    return f"{mantissa}e{int(exponent):+d}"


def shown_drift(page, url: str, until=lambda report: True, seconds: float = 15, more: np.ndarray | None = None) -> dict:
    """Refresh the Drift tab and return the report the page was answered (its own GET /drift); again,
    for up to ``seconds``, until a report satisfies ``until``: the entry worker that answers may not
    have been published the other's window yet (send_window), the later on a busy machine. A worker
    publishes only when a request finds its refresh due and none running (a slow first refresh made CI's
    last request of a window skip it), so each miss sends ``more`` examples of the same kind, on a new
    connection that may reach either worker."""
    deadline = time.monotonic() + seconds
    while True:
        with page.expect_response(lambda r: r.url == f"{url}/models/{DIABETES}/v1/drift") as answered:
            page.click("#refresh-drift")
        expect(page.locator("#drift")).not_to_have_attribute("aria-busy", "true")
        report = answered.value.json()
        if until(report) or time.monotonic() > deadline:
            return report
        if more is not None:
            answer = requests.post(f"{url}/models/{DIABETES}/v1", json={"inputs": more.tolist()}, timeout=TIMEOUT)
            assert answer.status_code == 200, answer.text
        time.sleep(0.3)


def check_predicted_values(page, report: dict) -> None:
    """The predicted values table: recent (the window) against held-out (the reference), and their difference."""
    values = report["predicted_values"]["progression"]
    summary = ("mean", "p10", "p50", "p90")
    recent = [js_error(values["window"][k]) if values["window"][k] is not None else "–" for k in summary]
    difference = [js_signed(values["window"][k] - values["reference"][k]) if values["window"][k] is not None else "–" for k in summary]
    table = page.locator("#drift table.predicted-values[data-target=progression]")
    assert [row.locator("th, td").all_inner_texts() for row in table.locator("tbody tr").all()] == [
        [f"recent ({report['window']['size']:,})", *recent],
        [f"held-out ({report['reference_images']:,})", *(js_error(values["reference"][k]) for k in summary)],
        ["recent − held-out", *difference],
    ]


def test_a_regressors_drift_tab_shows_its_report_and_names_the_drifted_input_and_target(browser, diabetes):
    url, clean, shifted = diabetes
    card = requests.get(f"{url}/models/{DIABETES}/v1", timeout=TIMEOUT).json()
    assert card["task"] == "regression" and card["input"]["kind"] == "tensor" and "bmi" in card["input"]["names"], card
    tab = Tab(browser, url)
    try:
        # Before any traffic: no verdict, nothing judged, the held-out predictions only
        page = tab.open(f"/#{DIABETES}/v1/drift")
        wait_for_card(page, f"{DIABETES}:v1")
        expect(page.locator("#drift .verdict")).to_have_text("Verdict: too few predictions")
        report = shown_drift(page, url)
        assert report["window"]["size"] == 0 and report["statistics"] == {}, report
        note = page.locator("#drift .note").first.inner_text()
        assert f"reference: {report['reference_images']:,} held-out examples (the evaluation set, never trained on)" in note and "image" not in note, note
        expect(page.locator("#drifted-inputs")).to_have_text("not judged yet")
        expect(page.locator("#drifted-targets")).to_have_text("not judged yet")
        expect(page.locator("#drift-statistics")).to_have_count(0)
        check_predicted_values(page, report)
        assert "image" not in page.inner_text("#drift")

        # A window of in-distribution examples: judged, no drift, nothing named
        send_window(url, clean)
        report = shown_drift(page, url, until=lambda r: r["window"]["size"] == DRIFT_WINDOW, more=clean[-DRIFT_PER_REQUEST:])
        assert report["window"]["size"] == DRIFT_WINDOW and report["verdict"] == "no drift", report["statistics"]
        expect(page.locator("#drift .verdict")).to_have_text("Verdict: no drift")
        expect(page.locator("#drift p").first).to_contain_text(f"{DIABETES} v1; drifted: no")
        expect(page.locator("#drifted-inputs")).to_have_text("none")
        expect(page.locator("#drifted-targets")).to_have_text("none")
        expect(page.locator("#drift-statistics tbody tr")).to_have_count(len(report["statistics"]))
        assert set(page.locator("#drift-statistics tbody tr td:last-child").all_inner_texts()) == {"no"}

        # A window with bmi shifted: drift, naming bmi and the target it moves; every statistic as the server said
        send_window(url, shifted)
        report = shown_drift(page, url, until=lambda r: r["verdict"] == "drift", more=shifted[-DRIFT_PER_REQUEST:])
        assert report["verdict"] == "drift" and report["drifted_inputs"] == ["bmi"] and "progression" in report["drifted_targets"], report["statistics"]
        expect(page.locator("#drift .verdict")).to_have_text("Verdict: drift")
        expect(page.locator("#drift .verdict")).to_have_class(re.compile(r"\bdrift\b"))
        expect(page.locator("#drift p").first).to_contain_text(f"{DIABETES} v1; drifted: yes")
        expect(page.locator("#drifted-inputs")).to_have_text("bmi")
        expect(page.locator("#drifted-targets")).to_have_text("progression")
        rows = [row.locator("th, td").all_inner_texts() for row in page.locator("#drift-statistics tbody tr").all()]
        expected = {}
        for name, s in report["statistics"].items():
            about = f"input {s['input']}" if "input" in s else (f"predictions of {s['target']}" if "target" in s else "the mean of each example's values")
            tests = (s.get("correction") or {}).get("tests", 1)
            test_text = f"{s['test']}\np × {tests} (Bonferroni)" if tests > 1 else s["test"]
            expected[name] = [f"{name}\n{about}", test_text, js_number(s["value"]), js_number(s["p_value"]), "yes" if s["drifted"] else "no"]
        assert sorted(rows) == sorted(expected.values()), rows
        assert [row[0].split("\n")[0] for row in rows[:2]] == ["input_ks[bmi]", "predicted_value_ks[progression]"], rows  # drifted first
        expect(page.locator("#drift-statistics tr.worst")).to_have_count(sum(s["drifted"] for s in report["statistics"].values()))
        expect(page.locator("#drift")).to_contain_text("A test drifts at p < 0.001.")
        check_predicted_values(page, report)
        assert report["predicted_values"]["progression"]["window"]["mean"] > report["predicted_values"]["progression"]["reference"]["mean"]  # bmi up: progression up
        assert "image" not in page.inner_text("#drift")
        check_layout(page, "desktop regressor drift")
        tab.assert_only_this_origin()
    finally:
        tab.close()

    tab = Tab(browser, url, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:  # on a phone: the names, the statistics and the predicted values fit or scroll with their cue
        page = tab.open(f"/#{DIABETES}/v1/drift")
        wait_for_card(page, f"{DIABETES}:v1")
        expect(page.locator("#drifted-inputs")).to_have_text("bmi")
        expect(page.locator("#drifted-targets")).to_have_text("progression")
        check_layout(page, "phone regressor drift")
        tab.assert_only_this_origin()
    finally:
        tab.close()
