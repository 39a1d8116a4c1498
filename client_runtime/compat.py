"""A static check for what cannot work on Spark Connect: the JVM-side APIs a Connect client does not have."""

from __future__ import annotations

import ast
import re
import zipfile
from pathlib import Path

from client_runtime.findings import Finding
from client_runtime.jar_check import check_jar

# Attribute -> why it cannot work on Connect.
UNSUPPORTED_ATTRIBUTES = {
    "sparkContext": "SparkSession.sparkContext does not exist on Connect",
    "rdd": "DataFrame.rdd (RDD API) is not supported on Connect",
    "_jsc": "JVM access (_jsc) is not available on Connect",
    "_jvm": "JVM access (_jvm) is not available on Connect",
    "_jsparkSession": "JVM access (_jsparkSession) is not available on Connect",
    "_jdf": "JVM access (_jdf) is not available on Connect",
    "_jconf": "JVM access (_jconf) is not available on Connect",
    "sessionState": "sessionState is not available on Connect",
    "broadcast": "broadcast variables need a SparkContext",
    "accumulator": "accumulators need a SparkContext",
    "parallelize": "SparkContext.parallelize is not available on Connect",
    "textFile": "SparkContext.textFile is not available on Connect",
    "hadoopConfiguration": "the Hadoop configuration lives in the JVM",
    "setCheckpointDir": "SparkContext.setCheckpointDir is not available on Connect",
}
UNSUPPORTED_NAMES = {
    "SparkContext": "SparkContext cannot be created or used from a Connect client",
    "SparkConf": "a SparkConf configures a JVM application, not a Connect session",
    "StreamingContext": "DStreams need a SparkContext",
    "HiveContext": "HiveContext needs a SparkContext",
    "SQLContext": "SQLContext needs a SparkContext",
}
# `functions.broadcast(df)` is a join hint, fine on Connect; only `<context>.broadcast(value)` is not.
_JOIN_HINT_OWNERS = {"F", "functions", "sf", "fn"}


def check_source(source: str, path: str) -> list[Finding]:
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return [Finding(path, exc.lineno or 0, "syntax error", str(exc.msg))]
    findings = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in UNSUPPORTED_ATTRIBUTES:
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if node.attr == "broadcast" and owner in _JOIN_HINT_OWNERS:
                continue
            findings.append(Finding(path, node.lineno, f".{node.attr}", UNSUPPORTED_ATTRIBUTES[node.attr]))
        elif isinstance(node, ast.Name) and node.id in UNSUPPORTED_NAMES:
            findings.append(Finding(path, node.lineno, node.id, UNSUPPORTED_NAMES[node.id]))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pyspark"):
            for alias in node.names:
                if alias.name in UNSUPPORTED_NAMES:
                    findings.append(Finding(path, node.lineno, f"import {alias.name}",
                                            UNSUPPORTED_NAMES[alias.name]))
        elif isinstance(node, ast.ImportFrom) and node.module in ("pyspark.streaming", "pyspark.rdd"):
            findings.append(Finding(path, node.lineno, f"from {node.module} import ...",
                                    "the RDD and DStream APIs are not available on Connect"))
    # A name imported and then used is reported once, at the import.
    seen, unique = set(), []
    for finding in sorted(findings, key=lambda f: (f.path, f.line, f.what)):
        key = (finding.path, finding.what.replace("import ", ""))
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


_PY = re.compile(r"\.py$")


def check_path(path: Path, main_class: str | None = None) -> list[Finding]:
    """Check a .py file, a directory of them, a zip/wheel, or a jar: the class files ``main_class`` uses
    (client_runtime.jar_check)."""
    if path.suffix == ".jar":
        return check_jar(path, main_class)
    if path.is_dir():
        return [f for file in sorted(path.rglob("*.py"))
                for f in check_source(file.read_text(errors="replace"),
                                                                              str(file))]
    if path.suffix in (".zip", ".whl", ".egg"):
        findings = []
        with zipfile.ZipFile(path) as archive:
            for name in sorted(n for n in archive.namelist() if _PY.search(n)):
                findings += check_source(archive.read(name).decode(errors="replace"), f"{path}!{name}")
        return findings
    return check_source(path.read_text(errors="replace"), str(path))
