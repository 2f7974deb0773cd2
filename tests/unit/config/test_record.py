"""config/record.py: the promotion record, per model, written whole."""

import json

from config import PromotionRecord


def test_an_absent_record_has_no_decisions(tmp_path):
    record = PromotionRecord(tmp_path / "nowhere" / "promotions.json")
    assert record.read() == {"models": {}}
    assert record.of("clothes") == {"stable": None, "decisions": []} and record.stable("clothes") is None


def test_decisions_are_kept_per_model_and_only_a_given_stable_moves(tmp_path):
    path = tmp_path / "deploy" / "promotions.json"  # the directory is created
    record = PromotionRecord(path)
    record.append("clothes", {"candidate": "v2", "accepted": False})
    assert record.stable("clothes") is None
    entry = record.append("clothes", {"candidate": "v2", "accepted": True}, stable="v2")
    assert entry == {"stable": "v2", "decisions": [{"candidate": "v2", "accepted": False}, {"candidate": "v2", "accepted": True}]}
    record.append("shoes", {"candidate": "b", "accepted": True}, stable="b")
    record.append("clothes", {"candidate": "v3", "accepted": False})

    saved = json.loads(path.read_text())
    assert saved["models"]["clothes"]["stable"] == "v2" and len(saved["models"]["clothes"]["decisions"]) == 3
    assert saved["models"]["shoes"] == {"stable": "b", "decisions": [{"candidate": "b", "accepted": True}]}
    assert PromotionRecord(path).stable("shoes") == "b"
    assert [p.name for p in path.parent.iterdir()] == ["promotions.json"]  # no temporary file left behind


def test_other_top_level_keys_survive_an_append(tmp_path):
    path = tmp_path / "promotions.json"
    path.write_text(json.dumps({"note": "kept", "models": {"clothes": {"stable": "v1", "decisions": []}}}))
    PromotionRecord(path).append("clothes", {"candidate": "v2", "accepted": False})
    saved = json.loads(path.read_text())
    assert saved["note"] == "kept" and saved["models"]["clothes"]["stable"] == "v1"


def test_the_shipped_record_is_per_model():
    from config.settings import DEFAULT_PATH

    record = PromotionRecord(DEFAULT_PATH.parent / "deploy" / "promotions.json").read()
    assert set(record) == {"models"} and "clothes" in record["models"]
    clothes = record["models"]["clothes"]
    assert clothes["stable"] in (None, "v1", "v2") and all({"candidate", "accepted"} <= set(d) for d in clothes["decisions"])
