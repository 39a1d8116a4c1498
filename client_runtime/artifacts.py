"""Turning APP (a .py file, a directory, a zip or wheel, a jar, or an s3:// URI of one) into something
to run."""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from client_runtime.jar_check import main_class_of

MAIN_NAMES = ("__main__.py", "main.py")


class ArtifactError(ValueError):
    """APP cannot be fetched or run; the message says what is wrong and what would work."""


@dataclass
class ResolvedApp:
    source: Path                 # what the user gave (after download): checked for Connect compatibility
    main: Path                   # the Python file to run
    pythonpath: list[Path] = field(default_factory=list)  # where the app's own modules are
    artifacts: list[Path] = field(default_factory=list)   # shipped to Connect / --py-files for executors
    main_class: str | None = None  # a JVM app: the class to run from the jar (main)


def fetch_s3(uri: str, workdir: Path) -> Path:
    """Download s3://bucket/key with boto3. Endpoint, region and credentials come from the usual AWS
    settings (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, profiles, ...)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key:
        raise ArtifactError(f"{uri} is not an s3://bucket/key URI")
    target = workdir / Path(key).name
    try:
        boto3.client("s3").download_file(bucket, key, str(target))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise ArtifactError(f"cannot fetch {uri}: {code or exc}") from exc
    except BotoCoreError as exc:
        raise ArtifactError(f"cannot fetch {uri}: {exc}") from exc
    return target


def resolve(app: str, workdir: Path, main_class: str | None = None) -> ResolvedApp:
    """Find the file to run and the modules to ship. workdir holds downloads and extracted files. main_class:
    the class to run from a jar (default: its manifest's Main-Class)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if main_class and not app.endswith(".jar"):
        raise ArtifactError(f"{app}: a main class ({main_class}) is for a .jar app")
    path = fetch_s3(app, workdir) if app.startswith("s3://") else Path(app).expanduser()
    if not path.exists():
        raise ArtifactError(f"{app}: no such file or directory")
    if path.suffix == ".jar":
        return _from_jar(path, main_class)
    if path.is_dir():
        main = next((path / name for name in MAIN_NAMES if (path / name).is_file()), None)
        if main is None:
            raise ArtifactError(f"{app} is a directory without {' or '.join(MAIN_NAMES)}")
        bundle = Path(shutil.make_archive(str(workdir / f"{path.name}-modules"), "zip", root_dir=path))
        return ResolvedApp(source=path, main=main, pythonpath=[path.resolve()], artifacts=[bundle])
    if path.suffix == ".py":
        return ResolvedApp(source=path, main=path.resolve(), pythonpath=[path.resolve().parent])
    if path.suffix in (".zip", ".whl"):
        return _from_archive(path, workdir)
    raise ArtifactError(f"{app}: expected a .py file, a directory, a .zip or .whl, a .jar, or an s3:// URI "
                        "of one")


def _from_jar(path: Path, main_class: str | None) -> ResolvedApp:
    """A JVM app: the jar runs as it is, and on Connect it is added to the session (its UDF classes)."""
    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path} is not a valid jar (zip) archive")
    main_class = main_class or main_class_of(path)
    if not main_class:
        raise ArtifactError(f"{path} names no Main-Class in its manifest: give the class to run (--class "
                            f"com.acme.Main, or the operator's main_class)")
    jar = path.resolve()
    return ResolvedApp(source=path, main=jar, artifacts=[jar], main_class=main_class)


def _from_archive(path: Path, workdir: Path) -> ResolvedApp:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ArtifactError(f"{path} is not a valid zip/wheel archive") from exc
    with archive:
        names = archive.namelist()
        main_name = next((name for name in MAIN_NAMES if name in names), None)
        package = next((n.split("/")[0] for n in names if n.count("/") == 1 and n.endswith("/__main__.py")),
                       None)
        main = workdir / "main" / "app_main.py"
        main.parent.mkdir(parents=True, exist_ok=True)
        if main_name is not None:
            main.write_bytes(archive.read(main_name))
        elif package is not None:
            # A wheel: run its package as `python -m package` would, from the archive on the path.
            main.write_text(f"import runpy\nrunpy.run_module({package!r}, run_name='__main__', "
                            "alter_sys=True)\n")
        else:
            raise ArtifactError(f"{path} has no __main__.py or main.py at its root, nor a package with "
                                "__main__.py")
    # Spark ships .zip files to executors and imports from them; a wheel is a zip under another name.
    shipped = path if path.suffix == ".zip" else shutil.copyfile(path, workdir / f"{path.stem}.zip")
    return ResolvedApp(source=path, main=main, pythonpath=[Path(shipped).resolve()],
                       artifacts=[Path(shipped).resolve()])
