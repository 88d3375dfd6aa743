"""RobertaConfig: roberta-base defaults, the config.json round trip, and field errors."""

import json
from pathlib import Path

import pytest

from minirobera.config import RobertaConfig

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "model"


def test_defaults_are_roberta_base(roberta_base_dir):
    """Not transformers' bare RobertaConfig() (eps 1e-12, 512 positions, 2 token types)."""
    on_disk = json.loads((roberta_base_dir / "config.json").read_text())
    defaults = RobertaConfig().to_dict()
    for key, value in on_disk.items():
        if key != "architectures":
            assert defaults[key] == value, key
    loaded = RobertaConfig.from_pretrained(roberta_base_dir)
    assert loaded.extra == {"architectures": ["RobertaForMaskedLM"]}
    assert loaded.layer_norm_eps == 1e-5 and loaded.max_position_embeddings == 514
    assert loaded.type_vocab_size == 1 and loaded.num_labels == 2


@pytest.mark.parametrize("name", ["a-RobertaForSequenceClassification",
                                  "c-RobertaForSequenceClassification",
                                  "b-RobertaForCausalLM", "c-RobertaForTokenClassification"])
def test_transformers_config_json_round_trips_unchanged(tmp_path, name):
    written = json.loads((FIXTURES / name / "safetensors" / "config.json").read_text())
    config = RobertaConfig.from_pretrained(FIXTURES / name / "safetensors")
    config.save_pretrained(tmp_path)
    again = json.loads((tmp_path / "config.json").read_text())
    for key, value in written.items():  # every field transformers wrote, with its value
        assert again[key] == value, key
    assert RobertaConfig.from_pretrained(tmp_path) == config


def test_unknown_fields_are_kept_and_written_back():
    d = {"id2label": {"0": "neg", "1": "pos", "2": "neu"}, "label2id": {"neg": 0, "pos": 1, "neu": 2},
         "problem_type": "single_label_classification", "is_decoder": True,
         "architectures": ["RobertaForSequenceClassification"], "classifier_dropout": 0.3,
         "use_cache": False, "my_field": {"nested": [1, 2]}}
    config = RobertaConfig.from_dict(d)
    assert config.num_labels == 3 and config.id2label[2] == "neu" and config.is_decoder
    out = config.to_dict()
    for key, value in d.items():
        assert out[key] == value, key
    assert config.extra == {"architectures": ["RobertaForSequenceClassification"],
                            "use_cache": False, "my_field": {"nested": [1, 2]}}


def test_num_labels_like_transformers():
    assert RobertaConfig(num_labels=4).id2label == {i: f"LABEL_{i}" for i in range(4)}
    assert RobertaConfig.from_dict({"num_labels": 1}).num_labels == 1
    assert RobertaConfig().num_labels == 2  # transformers' default


@pytest.mark.parametrize("kwargs,message", [
    (dict(hidden_size=10, num_attention_heads=3),
     r"hidden_size \(10\) must be a multiple of num_attention_heads \(3\)"),
    (dict(hidden_act="gelu_10"), r"hidden_act 'gelu_10' is not supported"),
    (dict(vocab_size=0), r"vocab_size must be at least 1, got 0"),
    (dict(num_hidden_layers=-1), r"num_hidden_layers must be at least 0"),
    (dict(intermediate_size=1.5), r"intermediate_size must be an integer, got 1.5"),
    (dict(num_attention_heads=True), r"num_attention_heads must be an integer"),
    (dict(layer_norm_eps=0.0), r"layer_norm_eps must be a positive number"),
    (dict(pad_token_id=50265), r"pad_token_id \(50265\) must be below vocab_size"),
    (dict(max_position_embeddings=2), r"max_position_embeddings \(2\) leaves no room"),
    (dict(problem_type="ranking"), r"problem_type 'ranking' must be None or one of"),
    (dict(num_labels=0), r"num_labels must be at least 1"),
    (dict(model_type="bert"), r"model_type is 'bert'"),
], ids=["heads", "act", "vocab", "layers", "float-size", "bool-size", "eps", "pad", "positions",
        "problem-type", "labels", "model-type"])
def test_impossible_values_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RobertaConfig(**kwargs)


def test_from_pretrained_rejects_other_model_types(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match=r"config.json describes a 'bert' model"):
        RobertaConfig.from_pretrained(tmp_path)


def test_from_pretrained_reports_bad_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config.json is not valid JSON"):
        RobertaConfig.from_pretrained(tmp_path)


def test_from_dict_needs_a_dict():
    with pytest.raises(TypeError, match="must be a dict"):
        RobertaConfig.from_dict([("hidden_size", 8)])
