"""The model card and the demo say how long a preset trained, and from which preset a
fine-tuned one started (its steps are not the model's whole training)."""

import json
from types import SimpleNamespace

from smis_layers.model_card import training_length, write_model_card
from smis_layers.serve.app import _describe


def test_a_fine_tuned_run_names_the_preset_it_started_from():
    assert training_length({"completed_steps": 4800}) == "4800 steps"
    fine_tuned = {"completed_steps": 3600, "init_from": "groupdnet_shapes64"}
    assert training_length(fine_tuned) == (
        "3600 steps (fine-tuned from the preset `groupdnet_shapes64`)"
    )
    model = SimpleNamespace(image_size=(64, 64), num_classes=8, count_params=lambda: 1000)
    shown = _describe(model, {"training": {**fine_tuned, "data": "synthetic"}}, "mine")
    assert "for 3600 steps (fine-tuned from the preset `groupdnet_shapes64`)" in shown


def test_the_card_of_a_fine_tuned_preset_says_so(tmp_path):
    from smis_layers.models import build_architecture

    preset = tmp_path / "preset"
    build_architecture("mulnet_shapes64", seed=0).save_to_preset(preset)
    metadata_file = preset / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    training = {"completed_steps": 12, "batch_size": 2, "data": "synthetic"}
    metadata["training"] = {**training, "init_from": "mulnet_shapes64"}
    metadata_file.write_text(json.dumps(metadata))
    card = write_model_card(preset).read_text()
    assert "12 steps (fine-tuned from the preset `mulnet_shapes64`) at batch 2" in card
