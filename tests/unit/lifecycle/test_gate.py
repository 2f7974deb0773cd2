"""lifecycle/gate.py: a candidate replaces the promoted version only if it is better and regresses nowhere;
every decision is recorded per model, and the record moves the served alias."""

import json

import yaml

from config import PromotionPolicy, PromotionRecord, load_config
from lifecycle.gate import decide, format_table, write_decision
from tests.unit.cards import CLOTHES_LABELS


def evaluation(overall=0.90, classes=0.90, shifts=0.50, **changes):
    result = {
        "overall": overall,
        "classes": {name: classes for name in CLOTHES_LABELS},
        "shifts": {name: shifts for name in ("brightness", "inverted", "occlusion")},
        "images": 10_000,
    }
    for key, value in changes.items():
        group, name = key.split("__")
        result[group][name.replace("_", " ") if group == "classes" else name] = value
    return result


def test_a_better_candidate_that_regresses_nowhere_is_promoted():
    decision = decide("clothes", "v2", evaluation(overall=0.93, shifts=0.55), "v1", evaluation(), PromotionPolicy())
    assert decision.accepted and decision.reasons == [] and decision.model == "clothes"
    assert decision.rows[0] == {"slice": "overall", "stable": 0.90, "candidate": 0.93, "delta": 0.03, "required": ">= +0.002", "ok": True}
    assert len(decision.rows) == 1 + 10 + 3
    assert "PROMOTED: clothes:v2 replaces v1 as stable (10,000 images)" in format_table(decision)


def test_too_small_an_improvement_is_refused():
    decision = decide("clothes", "v2", evaluation(overall=0.901), "v1", evaluation(), PromotionPolicy(min_improvement=0.002))
    assert not decision.accepted and decision.reasons[0].startswith("overall: 0.9010 vs 0.9000")


def test_a_regressing_class_or_shift_is_refused_with_its_name():
    candidate = evaluation(overall=0.95, shifts__occlusion=0.40, classes__Shirt=0.80)
    policy = PromotionPolicy(max_class_regression=0.05, max_slice_regression=0.05)
    decision = decide("clothes", "v2", candidate, "v1", evaluation(), policy)
    assert not decision.accepted
    assert [r.split(":")[0] + ":" + r.split(":")[1] for r in decision.reasons] == ["class:Shirt", "shift:occlusion"]
    assert "REFUSED: clothes:v2 does not replace v1" in format_table(decision) and "shift:occlusion" in format_table(decision)


def test_regressions_within_the_allowance_pass():
    candidate = evaluation(overall=0.95, shifts__occlusion=0.49, classes__Shirt=0.89)
    assert decide("clothes", "v2", candidate, "v1", evaluation(), PromotionPolicy(max_class_regression=0.02, max_slice_regression=0.02)).accepted


def test_the_policys_alias_names_what_moves():
    decision = decide("clothes", "v2", evaluation(overall=0.95), "v1", evaluation(), PromotionPolicy(alias="production"))
    assert "replaces v1 as production" in format_table(decision)
    assert "alias" not in decision.as_record()["policy"]


def test_the_record_keeps_every_decision_per_model_and_the_accepted_stable(tmp_path):
    record = PromotionRecord(tmp_path / "promotions.json")
    assert record.of("clothes") == {"stable": None, "decisions": []}
    write_decision(record, decide("clothes", "v2", evaluation(overall=0.80), "v1", evaluation(), PromotionPolicy()))
    assert record.stable("clothes") is None
    write_decision(record, decide("clothes", "v2", evaluation(overall=0.95), "v1", evaluation(), PromotionPolicy()))
    write_decision(record, decide("shoes", "b", evaluation(overall=0.50), "a", evaluation(), PromotionPolicy()))
    saved = json.loads((tmp_path / "promotions.json").read_text())["models"]
    assert saved["clothes"]["stable"] == "v2" and [d["accepted"] for d in saved["clothes"]["decisions"]] == [False, True]
    decision = saved["clothes"]["decisions"][1]
    assert decision["figures"][0]["candidate"] == 0.95 and decision["stable_before"] == "v1" and decision["candidate"] == "v2"
    assert decision["action"] == "promote" and decision["images"] == 10_000 and decision["policy"]["min_improvement"] == 0.002
    assert saved["shoes"]["stable"] is None and len(saved["shoes"]["decisions"]) == 1


def config(tmp_path, promotion: dict | None, record: str | None = "promotions.json"):
    model = {"versions": ["v1", "v2"], "aliases": {"stable": "v1", "latest": "v2"}}
    if promotion is not None:
        model["promotion"] = promotion
    sections = {"promotion_record": record} if record else {}
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump({"models": {"clothes": model}, **sections}))
    return path


def test_the_served_stable_alias_follows_the_record(tmp_path):
    assert load_config(config(tmp_path, {"min_improvement": 0.01})).models["clothes"].resolve("stable") == "v1"  # no decision yet
    loaded = load_config(config(tmp_path, {"min_improvement": 0.01}))
    write_decision(loaded.record(), decide("clothes", "v2", evaluation(overall=0.95), "v1", evaluation(), loaded.models["clothes"].promotion))
    clothes = load_config(config(tmp_path, {"min_improvement": 0.01})).models["clothes"]
    assert clothes.resolve("stable") == "v2" and clothes.promotion.min_improvement == 0.01
    assert load_config(config(tmp_path, None)).models["clothes"].resolve("stable") == "v1"  # no gate configured


def test_a_refused_candidate_leaves_the_alias(tmp_path):
    loaded = load_config(config(tmp_path, {}))
    write_decision(loaded.record(), decide("clothes", "v2", evaluation(overall=0.5), "v1", evaluation(), PromotionPolicy()))
    assert load_config(config(tmp_path, {})).models["clothes"].resolve("stable") == "v1"


def live(value: float, examples: int) -> dict:
    return {"accuracy": {"value": value, "examples": examples}}


def test_live_evidence_when_asked_needs_labelled_examples_of_both_and_no_loss_past_the_allowance():
    better = (evaluation(overall=0.93), "v1", evaluation(), PromotionPolicy())
    accepted = decide("clothes", "v2", *better, live={"v1": live(0.90, 300), "v2": live(0.89, 250)}, min_live_examples=200)
    assert accepted.accepted and accepted.rows[-1]["slice"] == "live:accuracy" and accepted.rows[-1]["delta"] == -0.01
    too_few = decide("clothes", "v2", *better, live={"v1": live(0.90, 300), "v2": live(0.95, 50)}, min_live_examples=200)
    assert not too_few.accepted and "(labelled: 300 / 50)" in too_few.reasons[0]
    worse = decide("clothes", "v2", *better, live={"v1": live(0.90, 300), "v2": live(0.85, 300)}, min_live_examples=200)
    assert not worse.accepted and worse.reasons[0].startswith("live:accuracy: 0.8500 vs 0.9000 (-0.0500)")
    assert not decide("clothes", "v2", *better, live={}, min_live_examples=1).accepted  # the server had no live report
    assert all(row["slice"] != "live:accuracy" for row in decide("clothes", "v2", *better).rows)
