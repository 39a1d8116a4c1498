"""Writes docs/api.md from the service's OpenAPI schema: `python docs/generate_api_reference.py`.
tests/test_docs.py fails when the file is out of date."""

from __future__ import annotations

import json
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))


def openapi() -> dict:
    from client_runtime.settings import Settings
    from service.app import create_app

    # No database is touched: the schema comes from the routes alone.
    return create_app(Settings(database_url="sqlite://"), migrate=False).openapi()


def _type(schema: dict, components: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s, components) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list[{_type(schema.get('items', {}), components)}]"
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    return schema.get("type", "object")


def render(spec: dict) -> str:
    components = spec.get("components", {}).get("schemas", {})
    lines = ["# API reference", "",
             ("Generated from the service's OpenAPI schema by `docs/generate_api_reference.py`; the running "
              "service serves the same at `/docs` (Swagger UI) and `/openapi.json`."), "",
             ("Tokens: ingest endpoints need `SPARK_ROUTER_INGEST_TOKEN`, client endpoints `SPARK_ROUTER_API_TOKEN`, "
              "admin endpoints `SPARK_ROUTER_ADMIN_TOKEN` (as `Authorization: Bearer …`), each only when set."), ""]
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            lines += [f"## `{method.upper()} {path}`", "", (operation.get("description") or
                                                              operation.get("summary", "")).strip(), ""]
            params = operation.get("parameters", [])
            if params:
                lines += ["| parameter | in | type | required |", "| --- | --- | --- | --- |"]
                lines += [f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}), components)} | "
                          f"{'yes' if p.get('required') else 'no'} |" for p in params]
                lines.append("")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                lines += [f"Request body: `{_type(body, components)}`", ""]
            ok = operation.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
            if ok.get("schema"):
                lines += [f"Response: `{_type(ok['schema'], components)}`", ""]
    lines += ["# Schemas", ""]
    for name, schema in sorted(components.items()):
        if name in ("HTTPValidationError", "ValidationError"):
            continue
        lines += [f"## {name}", "", (schema.get("description") or "").strip(), "",
                  "| field | type | required | description |", "| --- | --- | --- | --- |"]
        required = set(schema.get("required", []))
        for field, spec_field in schema.get("properties", {}).items():
            description = (spec_field.get("description") or "").replace("\n", " ")
            lines.append(f"| `{field}` | {_type(spec_field, components)} | {'yes' if field in required else 'no'} | "
                         f"{description} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    (DOCS / "api.md").write_text(render(openapi()))
    print(f"wrote {DOCS / 'api.md'}")
