"""What reaches the Docker image, worked out without Docker.

- :class:`DockerIgnore`: ``.dockerignore`` with Docker's own matching rules (``*`` and ``?`` stay within one
  path segment, ``**`` spans any number, ``!`` re-includes, the last matching line decides, and a file whose
  directory is excluded is excluded).
- :func:`parse_dockerfile`: stages and instructions (continuation lines joined, comments dropped).
- :func:`image_problems`: for a list of repository files, where each lands in the stage that builds the
  project (``COPY`` sources and destinations resolved against ``WORKDIR``) and whether that is the directory
  ``pip install``/``pip wheel`` is run on, then how the result reaches the final stage, and that the final
  stage does not run as root.
- :func:`no_deps_wheel_problems`: that a wheel installed without its dependencies (the sentence model) is
  fetched with ``--no-deps`` in a build stage, copied into the final stage and installed there with ``--no-deps``.
- :func:`discover_packages` and :func:`undeclared_data`: the packages ``[tool.setuptools.packages.find]``
  selects (setuptools' rules) and the files inside them that only ``package-data`` could install.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

# --- .dockerignore ----------------------------------------------------------------------------------------


def _docker_regex(pattern: str) -> re.Pattern[str]:
    """moby/patternmatcher's translation of one cleaned pattern into an anchored regular expression."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i + 1:i + 2] == "*":
                i += 1
                if pattern[i + 1:i + 2] == "/":
                    i += 1
                out.append(".*" if i + 1 >= len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out))


@dataclass(frozen=True)
class _Rule:
    pattern: str
    regex: re.Pattern[str]
    include: bool  # a "!" line


@dataclass
class DockerIgnore:
    rules: list[_Rule] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            include = line.startswith("!")
            pattern = posixpath.normpath(line[1:].strip() if include else line).lstrip("/")
            if pattern in ("", "."):
                continue
            rules.append(_Rule(pattern, _docker_regex(pattern), include))
        return cls(rules)

    @property
    def has_exceptions(self) -> bool:
        return any(rule.include for rule in self.rules)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative to the context, ``/``-separated) stays out of the build context."""
        parts = posixpath.normpath(path).split("/")
        candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        excluded = False
        for rule in self.rules:
            if any(rule.regex.match(candidate) for candidate in candidates):
                excluded = not rule.include
        return excluded


def context_files(root: Path, ignore: DockerIgnore) -> Iterator[str]:
    """The files of ``root`` that ``docker build root`` sends (``/``-separated, relative)."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel == "." else f"{rel}/"
        if not ignore.has_exceptions:  # an excluded directory can hold nothing that gets through
            dirnames[:] = [d for d in dirnames if not ignore.excluded(prefix + d)]
        dirnames.sort()
        for name in sorted(filenames):
            if not ignore.excluded(prefix + name):
                yield prefix + name


# --- Dockerfile -------------------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    index: int
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending.strip():
        logical.append(pending)
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(len(stages), words[0], name))
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def _words(args: str) -> list[str]:
    if args.startswith("["):
        return [str(w) for w in json.loads(args)]
    return shlex.split(args)


@dataclass
class _Copy:
    sources: list[str]
    dest: str  # absolute in the stage
    dest_is_dir: bool
    from_stage: str | None


def _parse_copy(args: str, workdir: str) -> _Copy:
    words = _words(args)
    from_stage = None
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if flag.startswith("--from="):
            from_stage = flag.split("=", 1)[1]
    *sources, dest = words
    dest_is_dir = dest.endswith("/") or len(sources) > 1 or dest in (".", "./")
    absolute = posixpath.normpath(posixpath.join(workdir, dest))
    return _Copy([posixpath.normpath(s).lstrip("/") or "." for s in sources], absolute, dest_is_dir, from_stage)


def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def _landing(copy: _Copy, path: str) -> str | None:
    """Where ``COPY`` puts the context file ``path`` in the stage, or None when it does not copy it."""
    for source in copy.sources:
        if source == ".":
            return posixpath.join(copy.dest, path)
        matcher = _docker_regex(source) if _has_glob(source) else None
        parts = path.split("/")
        for n in range(1, len(parts) + 1):
            head = "/".join(parts[:n])
            if head == source or (matcher is not None and matcher.match(head)):
                rest = "/".join(parts[n:])
                if rest:  # a directory: its contents go into the destination
                    return posixpath.join(copy.dest, rest)
                return posixpath.join(copy.dest, parts[-1]) if copy.dest_is_dir else copy.dest
    return None


_PIP_VALUE_OPTIONS = {"-w", "--wheel-dir", "-r", "--requirement", "-c", "--constraint", "-t", "--target",
                      "--prefix", "--root", "-i", "--index-url", "--extra-index-url", "-f", "--find-links",
                      "--cache-dir", "--src", "--config-settings", "-C", "--no-binary", "--only-binary", "-d", "--dest"}


@dataclass
class _Pip:
    command: str  # install, wheel or download
    targets: list[str]
    options: dict[str, str]
    editable: bool
    no_deps: bool = False


def _pip_calls(run_args: str) -> Iterator[_Pip]:
    """The ``pip install``/``pip wheel``/``pip download`` calls of one RUN (shell or exec form)."""
    try:
        words = _words(run_args)
    except ValueError:
        return
    command: list[str] = []
    for word in [*words, "&&"]:
        if word in ("&&", "||", ";", "|"):
            yield from _pip_of(command)
            command = []
        elif word.endswith(";"):
            command.append(word[:-1])
            yield from _pip_of(command)
            command = []
        else:
            command.append(word)


def _pip_of(words: list[str]) -> Iterator[_Pip]:
    for i, word in enumerate(words):
        if re.fullmatch(r"pip(3(\.\d+)?)?", posixpath.basename(word)):
            sub = i + 1
        elif word == "-m" and words[i + 1:i + 2] == ["pip"]:
            sub = i + 2
        else:
            continue
        if sub >= len(words) or words[sub] not in ("install", "wheel", "download"):
            continue
        targets: list[str] = []
        options: dict[str, str] = {}
        editable = no_deps = False
        rest = iter(words[sub + 1:])
        for arg in rest:
            name, eq, value = arg.partition("=")
            if arg in ("-e", "--editable") or name == "--editable":
                editable = True
            elif arg == "--no-deps":
                no_deps = True
            elif name in _PIP_VALUE_OPTIONS:
                options[name] = value if eq else next(rest, "")
            elif not arg.startswith("-"):
                targets.append(arg)
        yield _Pip(words[sub], targets, options, editable, no_deps)
        return


def _user_is_root(user: str) -> bool:
    return user.split(":", 1)[0] in ("", "root", "0")


def image_problems(dockerfile: str, dockerignore: str, files: Iterable[str]) -> list[str]:
    """What keeps the repository files ``files`` (``pyproject.toml`` and the packages' files) out of the image.

    Empty when every file reaches the build context, is copied into the stage that builds the project, sits
    in the directory pip builds (non-editable), and the result reaches a final stage that runs as non-root.
    """
    files = sorted(files)
    ignore = DockerIgnore.parse(dockerignore)
    stages = parse_dockerfile(dockerfile)
    if not stages:
        return ["the Dockerfile has no FROM"]
    problems: list[str] = []

    excluded = [f for f in files if ignore.excluded(f)]
    problems += _grouped(excluded, "excluded from the build context by .dockerignore")

    # The stage that builds the project: the first pip install/wheel of a directory (not of built wheels).
    build: tuple[Stage, int, _Pip, str, dict[str, str]] | None = None
    for stage in stages:
        workdir = "/"
        landed: dict[str, str] = {}
        for index, instruction in enumerate(stage.instructions):
            if instruction.keyword == "WORKDIR":
                workdir = posixpath.normpath(posixpath.join(workdir, instruction.args))
            elif instruction.keyword in ("COPY", "ADD"):
                copy = _parse_copy(instruction.args, workdir)
                if copy.from_stage is None:
                    for path in files:
                        where = _landing(copy, path)
                        if where is not None:
                            landed[path] = where
            elif instruction.keyword == "RUN" and build is None:
                for pip in (p for p in _pip_calls(instruction.args) if p.command != "download"):
                    dirs = [t for t in pip.targets if not t.endswith(".whl") and not _has_glob(t)]
                    if dirs:
                        target = posixpath.normpath(posixpath.join(workdir, dirs[0]))
                        build = (stage, index, pip, target, dict(landed))
                        break
        if build is not None:
            break
    if build is None:
        return [*problems, "no RUN pip install/pip wheel of the copied sources"]
    stage, _, pip, target, landed = build
    if pip.editable:
        problems.append(f"pip {pip.command} -e: an editable install points at sources the image does not keep")
    misplaced = [f for f in files if landed.get(f) != posixpath.join(target, f)]
    problems += _grouped([f for f in misplaced if f not in excluded],
                         f"not copied to {target}/ (where pip {pip.command} builds) in stage {stage.index}")

    final = stages[-1]
    if stage is not final:
        names = {str(stage.index)} | ({stage.name} if stage.name else set())
        carried = [_parse_copy(i.args, "/") for i in final.instructions if i.keyword == "COPY"]
        carried = [c for c in carried if c.from_stage in names]
        if not carried:
            problems.append(f"the final stage copies nothing from stage {stage.name or stage.index}")
        if pip.command == "wheel":
            wheel_dir = pip.options.get("-w") or pip.options.get("--wheel-dir") or "."
            if not any(s == wheel_dir.lstrip("/") or wheel_dir.lstrip("/").startswith(f"{s}/")
                       for c in carried for s in c.sources):
                problems.append(f"the final stage does not copy the wheels ({wheel_dir}) from the build stage")
            wheels = posixpath.normpath("/" + wheel_dir.lstrip("/"))
            if not any(p.command == "install" and any(posixpath.dirname(t) == wheels for t in p.targets)
                       for i in final.instructions if i.keyword == "RUN" for p in _pip_calls(i.args)):
                problems.append("the final stage never pip installs the wheels")
    users = [i.args for i in final.instructions if i.keyword == "USER"]
    if not users or _user_is_root(users[-1]):
        problems.append("the final stage runs as root (no USER, or USER root)")
    return problems


def no_deps_wheel_problems(dockerfile: str, requirement: str) -> list[str]:
    """What keeps ``requirement`` (``name==version``) from being installed without its dependencies.

    A stage before the final one fetches exactly ``requirement`` with ``pip download --no-deps --dest D`` (or
    ``pip wheel --no-deps --wheel-dir D``), the final stage copies ``D`` from that stage and runs
    ``pip install --no-deps D/*.whl``. A dependency-resolving install would pull what the wheel declares.
    """
    stages = parse_dockerfile(dockerfile)
    if not stages:
        return ["the Dockerfile has no FROM"]
    final = stages[-1]
    fetched: dict[str, str] = {}  # destination directory -> the stage's name or index
    for stage in stages[:-1]:
        for instruction in stage.instructions:
            if instruction.keyword != "RUN":
                continue
            for pip in _pip_calls(instruction.args):
                if pip.command in ("download", "wheel") and requirement in pip.targets:
                    if not pip.no_deps:
                        return [f"pip {pip.command} {requirement} without --no-deps fetches its dependencies too"]
                    dest = pip.options.get("-d") or pip.options.get("--dest") or pip.options.get("-w") \
                        or pip.options.get("--wheel-dir") or "."
                    fetched[posixpath.normpath("/" + dest.lstrip("/"))] = stage.name or str(stage.index)
    if not fetched:
        return [f"no stage before the final one fetches {requirement} (pip download/wheel)"]
    copies = [_parse_copy(i.args, "/") for i in final.instructions if i.keyword == "COPY"]
    dirs = [c.dest for c in copies for s in c.sources if fetched.get(posixpath.normpath("/" + s)) == c.from_stage]
    if not dirs:
        return [f"the final stage does not copy {requirement}'s wheel ({', '.join(sorted(fetched))})"]
    installs = [p for i in final.instructions if i.keyword == "RUN" for p in _pip_calls(i.args)
                if p.command == "install" and any(posixpath.dirname(t) in dirs for t in p.targets)]
    if not installs:
        return [f"the final stage never pip installs {requirement}'s wheel"]
    if not all(p.no_deps for p in installs):
        return [f"the final stage installs {requirement}'s wheel without --no-deps (its dependencies would follow)"]
    return []


def _grouped(paths: list[str], why: str) -> list[str]:
    """One line per top-level path: ``dispatcher: 7 files …, e.g. dispatcher/__init__.py``."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(path.split("/", 1)[0], []).append(path)
    return [f"{top}: {len(group)} file(s) {why}, e.g. {group[0]}" for top, group in sorted(groups.items())]


# --- pyproject.toml ---------------------------------------------------------------------------------------


def find_config(pyproject: dict[str, Any]) -> tuple[list[str], list[str], str]:
    """``[tool.setuptools.packages.find]``: include and exclude patterns and the search root."""
    find = pyproject.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    where = find.get("where", ["."])
    return list(find.get("include", ["*"])), list(find.get("exclude", [])), where[0] if where else "."


def discover_packages(root: Path, pyproject: dict[str, Any]) -> dict[str, Path]:
    """Dotted name → directory of every package ``find`` selects (setuptools' rules: a package has an
    ``__init__.py``, the walk does not enter a directory that is not one, names match with fnmatch)."""
    include, exclude, where = find_config(pyproject)
    base = root / where
    found: dict[str, Path] = {}
    for dirpath, dirnames, _ in os.walk(base):
        here = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            path = here / name
            if "." in name or not (path / "__init__.py").is_file():
                continue
            dotted = ".".join(path.relative_to(base).parts)
            keep.append(name)
            if any(fnmatchcase(dotted, p) for p in include) and not any(fnmatchcase(dotted, p) for p in exclude):
                found[dotted] = path
        dirnames[:] = keep
    return found


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A package-data glob (relative to its package directory): ``*`` within a segment, ``**`` across."""
    return _docker_regex(posixpath.normpath(pattern))


def undeclared_data(root: Path, pyproject: dict[str, Any], packages: dict[str, Path]) -> list[str]:
    """Files inside the packages that only ``package-data`` installs and no pattern of it names.

    That is every file that is not a module of a package: data files, and modules in a directory that is
    not a package (templates, migrations without ``__init__.py``). Caches are ignored.
    """
    data = pyproject.get("tool", {}).get("setuptools", {}).get("package-data", {})
    owner_of = {path.resolve(): name for name, path in packages.items()}
    missing: list[str] = []
    for name, pkg_dir in sorted(packages.items()):
        for dirpath, dirnames, filenames in os.walk(pkg_dir):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and (here / d).resolve() not in owner_of)
            for filename in sorted(filenames):
                path = here / filename
                if filename.endswith((".pyc", ".pyo")):
                    continue
                if filename.endswith(".py") and here.resolve() == pkg_dir.resolve():
                    continue  # a module of the package itself
                rel = path.relative_to(pkg_dir).as_posix()
                patterns = [*data.get(name, []), *data.get("*", []), *data.get("", [])]
                if not any(_glob_regex(p).match(rel) for p in patterns):
                    missing.append(path.relative_to(root).as_posix())
    return missing
