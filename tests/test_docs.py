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
    """Every process's settings (the client's, the router's, operations'), each variable by its name."""
    from client_runtime.settings import ClientSettings
    from service.config import RouterSettings
    from service.ops.ops_config import OpsSettings

    guide = (DOCS / "operator-guide.md").read_text()
    names = {name for cls in (ClientSettings, RouterSettings, OpsSettings) for name in cls.model_fields}
    missing = sorted(name for name in names if f"`SPARK_ROUTER_{name.upper()}`" not in guide)
    assert missing == [], f"settings not documented in docs/operator-guide.md: {missing}"
