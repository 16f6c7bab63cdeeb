"""Packaging beyond pyproject.toml: the top-level `zoo/` folder is installed as the
`smis_layers.zoo` package (preset folders as its data), as detectron2 ships its model zoo
configs."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["smis_layers*"]), "smis_layers.zoo"],
    package_dir={"smis_layers.zoo": "zoo"},
    package_data={
        "smis_layers.zoo": ["*/*.json", "*/*.h5", "*/*.md", "*/*.png", "*/code_prior.npz"]
    },
)
