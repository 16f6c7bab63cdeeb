"""Deprecated alias of `smis_layers.utils.validation`, where the argument, shape and value
checks moved (they validate arguments; they are not ops). Importing it warns; it goes in the
next release."""

from smis_layers.utils.deprecation import moved_module
from smis_layers.utils.validation import *  # noqa: F403
from smis_layers.utils.validation import IMAGE_RANGE_TOLERANCE  # noqa: F401

moved_module("smis_layers.ops.checks", "smis_layers.utils.validation")
