"""The values table of the chart's README, made from the `# --` comments of values.yaml.

    python helm/tools/values_table.py            # print the table
    python helm/tools/values_table.py --write    # replace the table in helm/spark-connect-router/README.md
    python helm/tools/values_table.py --check    # exit 1 if a value is undocumented or the README is stale

A key is documented by a comment block starting with `# --` right above it; the keys under a documented key
(e.g. the fields of `resources`) are covered by it. Every other key must be a section whose keys are all
documented. tests/test_deploy.py runs the check.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parent.parent / "spark-connect-router"
BEGIN, END = "<!-- values-table:begin -->", "<!-- values-table:end -->"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.\-/]+):(?:\s|$)")


@dataclass
class Entry:
    path: str
    description: str
    default: object


def parse(values_file: Path = CHART / "values.yaml") -> tuple[list[Entry], list[str]]:
    """The documented entries, and the paths of keys that are neither documented nor covered."""
    data = yaml.safe_load(values_file.read_text())
    entries: list[Entry] = []
    undocumented: list[str] = []
    stack: list[tuple[int, str, bool]] = []  # (indent, key, covered by a documented ancestor or itself)
    comment: list[str] | None = None
    for line in values_file.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if comment is not None:
                comment.append(stripped.lstrip("#").strip())
            continue
        match = KEY.match(line)
        if not match or stripped.startswith("- "):
            if not stripped:
                comment = None
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k, _ in stack] + [match["key"]])
        covered = bool(stack and stack[-1][2])
        value = _get(data, path)
        if comment is not None and not covered:
            entries.append(Entry(path, " ".join(comment), value))
            covered = True
        elif not covered and not (isinstance(value, dict) and value):
            undocumented.append(path)
        stack.append((indent, match["key"], covered))
        comment = None
    return entries, undocumented


def _get(data: dict, path: str) -> object:
    for part in path.split("."):
        data = data[part]
    return data


def table(entries: list[Entry]) -> str:
    rows = ["| value | default | description |", "| --- | --- | --- |"]
    for entry in entries:
        default = json.dumps(entry.default, separators=(", ", ": ")).replace("|", "\\|")
        description = entry.description.replace("|", "\\|")
        rows.append(f"| `{entry.path}` | `{default}` | {description} |")
    return "\n".join(rows)


def readme_with_table(readme: str, rendered: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[:start] + "\n" + rendered + "\n" + readme[end:]


def main(argv: list[str]) -> int:
    entries, undocumented = parse()
    rendered = table(entries)
    readme_path = CHART / "README.md"
    if "--write" in argv:
        readme_path.write_text(readme_with_table(readme_path.read_text(), rendered))
    elif "--check" in argv:
        readme = readme_path.read_text()
        problems = [f"undocumented value: {path}" for path in undocumented]
        if readme_with_table(readme, rendered) != readme:
            problems.append(
                f"{readme_path} has a stale values table: run python helm/tools/values_table.py --write"
            )
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    else:
        print(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
