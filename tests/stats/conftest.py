import json

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def stats_dir(shared_data):
    return shared_data("stats")


@pytest.fixture(scope="session")
def expected(stats_dir):
    return json.loads((stats_dir / "expected_values.json").read_text())


@pytest.fixture(scope="session")
def asah(stats_dir):
    return pd.read_csv(stats_dir / "aSAH.csv")
