"""Deprecated alias of `smis_layers.models.segmaps` (the module of label maps, segmaps and the
decoder's condition). Importing it warns; it goes in the next release."""

from smis_layers.models.segmaps import (  # noqa: F401
    DONT_CARE_LABELS,
    check_label_values,
    instance_edge_map,
    pair_with_instance_edges,
    prepare_segmap,
)
from smis_layers.utils.deprecation import moved_module

moved_module("smis_layers.models.masks", "smis_layers.models.segmaps")
