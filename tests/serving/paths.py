"""Paths and request bodies shared by the serving tests and fixtures."""

import pathlib

HERE = pathlib.Path(__file__).parent
REPO = HERE.parents[1]
SERVING_DIR = REPO / "serving"
BATTERY = HERE / "battery.py"

# The exported models under test and the request bodies fed to each.
REQUESTS = {
    "classifier": ["classifier.json"],
    "gpt": ["gpt.json", "gpt_generate.json", "gpt_beam_search.json"],
    "translation": [
        "translation.json",
        "translation_generate.json",
        "translation_beam_search.json",
    ],
}

# The serving_default input given to `saved_model_cli run` for each model.
CLI_RUN_INPUTS = {
    "classifier": ("text", ["Blessed are the meek.", "Thus says Yahweh:"]),
    "gpt": ("prompt", ["In the beginning", "Jesus said"]),
    "translation": ("text", ["In the beginning.", "God is love."]),
}
