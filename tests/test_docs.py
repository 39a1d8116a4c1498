"""The docs that are generated stay in step with the code."""

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_api_reference_is_current():
    spec = importlib.util.spec_from_file_location("generate_api_reference",
                                                  DOCS / "generate_api_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render(module.openapi())
    assert (DOCS / "api.md").read_text() == expected, \
        "docs/api.md is stale: run python docs/generate_api_reference.py"
    assert "POST /api/v1/decisions" in expected and "## DecisionRequest" in expected


def test_every_setting_is_in_the_operator_guide():
    from client_runtime.settings import Settings

    guide = (DOCS / "operator-guide.md").read_text()
    missing = [name for name in Settings.model_fields if f"`SPARK_ROUTER_{name.upper()}`" not in guide]
    assert missing == [], f"settings not documented in docs/operator-guide.md: {missing}"
