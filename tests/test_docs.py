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


def test_the_operator_guide_says_which_process_reads_each_setting():
    """The settings table's "read by" column is each variable's process classes, so an operator knows which
    pod needs which variable."""
    import re

    from client_runtime.settings import ClientSettings
    from service.config import RouterSettings
    from service.ops.ops_config import OpsSettings

    processes = {"client": ClientSettings, "router": RouterSettings, "ops": OpsSettings}
    guide = (DOCS / "operator-guide.md").read_text()
    table = guide.split("| variable | read by | default | what it does |")[1]
    rows = [line.split(" | ") for line in table.split("\n\n")[0].splitlines() if line.startswith("| `")]
    wrong = {}
    for row in rows:
        names = [name.lower() for name in re.findall(r"`SPARK_ROUTER_([A-Z0-9_]+)`", row[0])]
        for name in names:
            readers = ", ".join(process for process, cls in processes.items() if name in cls.model_fields)
            if readers and readers != row[1]:
                wrong[name] = (row[1], readers)
    assert len(rows) >= 40 and wrong == {}, f"docs/operator-guide.md: (says, reads) {wrong}"
