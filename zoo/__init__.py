"""The smis-layers model zoo: one folder per preset, installed as `smis_layers.zoo`.

Load a preset with `smis_layers.models.from_preset("groupdnet_shapes64")` (or the model class's
`from_preset`); list them with `smis zoo list`. Each folder's README.md is its model card.
"""
