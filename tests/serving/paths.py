"""Paths and request bodies shared by the serving tests and fixtures."""

import pathlib

HERE = pathlib.Path(__file__).parent
REPO = HERE.parents[1]
SERVING_DIR = REPO / "serving"
BATTERY = HERE / "battery.py"

# The exported models under test and the request bodies fed to each.
REQUESTS = {
    "classifier": ["classifier.json"],
    "gpt": ["gpt.json", "gpt_generate.json"],
    "translation": ["translation.json"],
}
