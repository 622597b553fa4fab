"""Packaging that pyproject.toml cannot say: the top-level ``models/`` folder ships inside the
wheel as ``edge_ecg/models`` (package data read with importlib.resources), so an installed
``edge-ecg stream --simulate`` finds the int8 model while the repository keeps one copy of it."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["edge_ecg*", "firmware_harness*"]) + ["edge_ecg.models"],
    package_dir={"edge_ecg.models": "models"},
)
