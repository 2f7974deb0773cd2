import json

import pytest
import yaml

from lifecycle.gate import Policy, decide, format_table, read_record, write_decision
from models.specs import CLASS_NAMES
from serving.settings import SettingsError, load_settings


def evaluation(overall=0.90, classes=0.90, shifts=0.50, **changes):
    result = {
        "overall": overall,
        "classes": {name: classes for name in CLASS_NAMES},
        "shifts": {name: shifts for name in ("brightness", "inverted", "occlusion")},
        "images": 10_000,
    }
    for key, value in changes.items():
        group, name = key.split("__")
        result[group][name.replace("_", " ") if group == "classes" else name] = value
    return result


def test_a_better_candidate_that_regresses_nowhere_is_promoted():
    decision = decide("v2", evaluation(overall=0.93, shifts=0.55), "v1", evaluation(), Policy())
    assert decision.accepted and decision.reasons == []
    assert decision.rows[0] == {"slice": "overall", "stable": 0.90, "candidate": 0.93, "delta": 0.03, "required": ">= +0.002", "ok": True}
    assert "PROMOTED: v2 replaces v1" in format_table(decision)


def test_too_small_an_improvement_is_refused():
    decision = decide("v2", evaluation(overall=0.901), "v1", evaluation(), Policy(min_improvement=0.002))
    assert not decision.accepted and decision.reasons[0].startswith("overall: 0.9010 vs 0.9000")


def test_a_regressing_class_or_shift_is_refused_with_its_name():
    candidate = evaluation(overall=0.95, shifts__occlusion=0.40, classes__Shirt=0.80)
    decision = decide("v2", candidate, "v1", evaluation(), Policy(max_class_regression=0.05, max_slice_regression=0.05))
    assert not decision.accepted
    assert [r.split(":")[0] + ":" + r.split(":")[1] for r in decision.reasons] == ["class:Shirt", "shift:occlusion"]
    assert "REFUSED" in format_table(decision) and "shift:occlusion" in format_table(decision)


def test_regressions_within_the_allowance_pass():
    candidate = evaluation(overall=0.95, shifts__occlusion=0.49, classes__Shirt=0.89)
    assert decide("v2", candidate, "v1", evaluation(), Policy(max_class_regression=0.02, max_slice_regression=0.02)).accepted


def test_the_record_keeps_every_decision_and_the_accepted_stable(tmp_path):
    record = tmp_path / "promotions.json"
    assert read_record(record) == {"stable": None, "decisions": []}
    write_decision(record, decide("v2", evaluation(overall=0.80), "v1", evaluation(), Policy()))
    assert read_record(record)["stable"] is None
    write_decision(record, decide("v2", evaluation(overall=0.95), "v1", evaluation(), Policy()))
    saved = json.loads(record.read_text())
    assert saved["stable"] == "v2" and [d["accepted"] for d in saved["decisions"]] == [False, True]
    assert saved["decisions"][1]["figures"][0]["candidate"] == 0.95 and saved["decisions"][1]["stable_before"] == "v1"


def config(tmp_path, record: str | None):
    section = {"versions": ["v1", "v2"], "aliases": {"stable": "v1", "latest": "v2"}}
    if record is not None:
        section["promotion"] = {"record": record, "min_improvement": 0.01}
    path = tmp_path / "configuration.yaml"
    path.write_text(yaml.safe_dump({"clothes": section}))
    return path


def test_the_served_stable_alias_follows_the_record(tmp_path):
    assert load_settings(config(tmp_path, "promotions.json")).resolve("stable") == "v1"  # no decision yet
    write_decision(tmp_path / "promotions.json", decide("v2", evaluation(overall=0.95), "v1", evaluation(), Policy()))
    settings = load_settings(config(tmp_path, "promotions.json"))
    assert settings.resolve("stable") == "v2" and settings.promotion.policy.min_improvement == 0.01
    assert load_settings(config(tmp_path, None)).resolve("stable") == "v1"  # no gate configured


def test_a_record_naming_an_unserved_version_is_a_configuration_error(tmp_path):
    (tmp_path / "promotions.json").write_text(json.dumps({"stable": "v9", "decisions": []}))
    with pytest.raises(SettingsError, match="promotion record"):
        load_settings(config(tmp_path, "promotions.json"))
