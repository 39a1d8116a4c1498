"""Writes docs/api.md from the service's OpenAPI schema: `python docs/generate_api_reference.py`.
tests/test_docs.py fails when the file is out of date."""

from __future__ import annotations

import json
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))


def openapi() -> dict:
    from service.app import create_app
    from service.config import RouterSettings

    # No database is touched: the schema comes from the routes alone.
    return create_app(RouterSettings(database_url="sqlite://"), migrate=False).openapi()


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
    kind = schema.get("type", "object")
    if "maxLength" in schema:
        pattern = schema.get("pattern")
        shown = f", `{pattern}`" if pattern and pattern != r"^[^\x00]*$" else ""  # the NUL rule is said above
        return f"{kind} (≤ {schema['maxLength']:,} chars{shown})"
    if kind == "integer" and "maximum" in schema:
        return f"{kind} ({_bound(schema.get('minimum'))}..{_bound(schema['maximum'])})"
    return kind


def _cell(value: str) -> str:
    return value.replace("|", "\\|")  # a union's bar would end the table cell


def _bound(value) -> str:
    """An integer bound of the schema (FastAPI writes them as floats: 2^63-1 becomes 2^63)."""
    if value is None:
        return ""
    if value >= 2**63 - 1:
        return "2^63-1"
    named = {2**31 - 1: "2^31-1", 2**60: "2^60", 10**15: "10^15"}  # the bounds of a stage's metrics
    return named.get(int(value), str(int(value)))


def render(spec: dict) -> str:
    components = spec.get("components", {}).get("schemas", {})
    lines = ["# API reference", "",
             ("Generated from the service's OpenAPI schema by `docs/generate_api_reference.py`; the running "
              "service serves the same at `/docs` (Swagger UI) and `/openapi.json`."), "",
             ("Tokens: ingest endpoints need `SPARK_ROUTER_INGEST_TOKEN`, client endpoints "
              "`SPARK_ROUTER_API_TOKEN`, admin endpoints `SPARK_ROUTER_ADMIN_TOKEN`, `GET /metrics` "
              "`SPARK_ROUTER_METRICS_TOKEN` (as `Authorization: Bearer …`), each only when set. The token is "
              "checked, and the body's size (`SPARK_ROUTER_MAX_BODY_BYTES`, 413), before a body is read."),
             "",
             ("Validation: the service takes only what its database can store, and answers 422 otherwise "
              "(never a 5xx for bad input): no NUL (`\\u0000`) and no lone UTF-16 surrogate in any text, in "
              "bodies, paths and query strings; no text longer than its column (the limits below); integers "
              "as JSON integers (not `\"7\"`, `7.0` or `true`), within their column (counts in Integer "
              "columns below 2^31, in BigInteger columns below 2^63; offsets below 2^63); finite numbers (no "
              "NaN or Infinity); timestamps within the years 1-9999 (epoch milliseconds at most "
              "253402300799999). App and run ids follow one rule everywhere (decisions, stage records, "
              "paths): letters, digits and `_ . : / @ -`, at least one (`^[A-Za-z0-9_.:/@-]+$`; no empty id, "
              "no space, no control character). A stage record's metrics are held to what a real stage can "
              "have (tasks below 2^31, times at most 10^15 ms, bytes and records at most 2^60: "
              "docs/ingest-protocol.md). A stage record that breaks a rule does not refuse its batch: it is "
              "quarantined with the reason (`GET /api/v1/quarantine`) and the others are stored; so is a "
              "record that names a run of another app (a run belongs to one app)."),
             "",
             ("Every 422 has one shape, `{\"detail\": [{\"loc\": [...], \"msg\": ..., \"type\": ..., "
              "\"input\": ...}]}`; `input` is there only for a short value (texts cut to 100 characters). "
              "Other errors are `{\"detail\": \"...\"}`: 400 the body could not be read, 401 a missing or "
              "wrong token (only when that token is set), 404 what the path names does not exist, 409 the "
              "request contradicts the state it acts on, 413 the body is too large, 503 the database is "
              "away, did not answer in time (the `SPARK_ROUTER_DB_*` timeouts), had no free connection, or "
              "the request lost a deadlock or a race: nothing of it was done, send it again after "
              "`Retry-After` seconds."),
             "",
             ("On any path, before an endpoint runs: 408 the request's head or body did not arrive in time, "
              "431 its head is over 64 KiB, 503 (`too many connections`, `Retry-After: 1`) every connection "
              "of the worker has a request in progress; each closes the connection "
              "([Timeouts and limits](operator-guide.md#timeouts-and-limits))."), ""]
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            lines += [f"## `{method.upper()} {path}`", "", (operation.get("description") or
                                                              operation.get("summary", "")).strip(), ""]
            params = operation.get("parameters", [])
            if params:
                lines += ["| parameter | in | type | required |", "| --- | --- | --- | --- |"]
                lines += [f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema', {}), components))} | "
                          f"{'yes' if p.get('required') else 'no'} |" for p in params]
                lines.append("")
            content = operation.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            if body:
                lines += [f"Request body: `{_type(body, components)}`", ""]
            responses = operation.get("responses", {})
            ok = responses.get("200", {}).get("content", {}).get("application/json", {})
            if ok.get("schema"):
                lines += [f"Response: `{_type(ok['schema'], components)}`", ""]
            failures = sorted(code for code in responses if code != "200")
            if failures:
                lines += ["Errors: " + ", ".join(failures), ""]
    lines += ["# Schemas", ""]
    for name, schema in sorted(components.items()):
        if name in ("HTTPValidationError", "ValidationError", "ErrorDetail", "ErrorOut",
                    "ValidationErrorOut"):
            continue
        lines += [f"## {name}", "", (schema.get("description") or "").strip(), "",
                  "| field | type | required | description |", "| --- | --- | --- | --- |"]
        required = set(schema.get("required", []))
        for field, spec_field in schema.get("properties", {}).items():
            description = (spec_field.get("description") or "").replace("\n", " ")
            lines.append(f"| `{field}` | {_cell(_type(spec_field, components))} | "
                         f"{'yes' if field in required else 'no'} | {description} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    (DOCS / "api.md").write_text(render(openapi()))
    print(f"wrote {DOCS / 'api.md'}")
