"""Settings models: the all-optional override sections mirror the models they override."""

from __future__ import annotations

import pytest

from epamnet.config.model import StreamOverrides, StreamSpec
from epamnet.config.train import TrainOverrides, TrainSettings


@pytest.mark.parametrize(("full", "overrides"), [(TrainSettings, TrainOverrides), (StreamSpec, StreamOverrides)])
def test_override_sections_have_the_models_keys_and_constraints(full, overrides):
    want, got = full.model_json_schema()["properties"], overrides.model_json_schema()["properties"]
    assert list(got) == list(want)
    for key, schema in want.items():
        schema = {k: v for k, v in schema.items() if k not in ("default", "title")}
        variants = schema.get("anyOf", [schema, {"type": "null"}])
        assert got[key]["anyOf"] == variants, key
        assert got[key]["default"] is None
