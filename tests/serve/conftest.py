"""Shared, built-once models of the demo tests: an untrained MulNet (exactly class-isolated:
pixels of other classes do not depend on a class's code) and an untrained GroupDNet."""

import pytest

from smis_layers.models import build_architecture
from smis_layers.serve.engine import DemoEngine


@pytest.fixture(scope="session")
def mulnet_preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "mulnet"
    build_architecture("mulnet_shapes64", seed=0).save_to_preset(path)
    return path


@pytest.fixture(scope="session")
def groupdnet_preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("serve") / "groupdnet"
    build_architecture("groupdnet_shapes64", seed=0).save_to_preset(path)
    return path


@pytest.fixture(scope="session")
def mulnet_engine(mulnet_preset):
    from smis_layers.models import GroupDNet

    return DemoEngine(GroupDNet.from_preset(mulnet_preset))


@pytest.fixture(scope="session")
def groupdnet_engine(groupdnet_preset):
    from smis_layers.models import GroupDNet

    return DemoEngine(GroupDNet.from_preset(groupdnet_preset))
