"""``aerostic dev``: its data directory goes when it stops, and the commands it prints run in a fresh shell."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

import stack.dev
from stack.dev import KEEP_DATA_ENV, aerostic_command, run_dev


class FailingStack:
    """A stack whose services do not start: ``run_dev`` must still stop it and clean up."""

    instances: list[FailingStack] = []

    def __init__(self, *, keep_data: bool = False) -> None:
        self.keep_data = keep_data
        self.root = Path(tempfile.mkdtemp(prefix="aerostic-dev-test-"))
        (self.root / "logs").mkdir()
        (self.root / "logs" / "kafka.log").write_text("…")
        self.stopped = False
        FailingStack.instances.append(self)

    def start_services(self) -> None:
        raise RuntimeError("no broker today")

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def failing_stack(monkeypatch: pytest.MonkeyPatch) -> type[FailingStack]:
    monkeypatch.setattr(stack.dev, "LocalStack", FailingStack)
    monkeypatch.delenv(KEEP_DATA_ENV, raising=False)
    FailingStack.instances.clear()
    return FailingStack


def _run(**kwargs: bool) -> FailingStack:
    with pytest.raises(RuntimeError, match="no broker today"):
        run_dev(threading.Event(), ingress_port=0, **kwargs)
    (created,) = FailingStack.instances
    assert created.stopped
    return created


def test_the_data_directory_is_removed_when_dev_stops(failing_stack: type[FailingStack]) -> None:
    assert not _run().root.exists()


def test_keep_data_keeps_it(failing_stack: type[FailingStack], monkeypatch: pytest.MonkeyPatch) -> None:
    kept = _run(keep_data=True)
    root = kept.root
    assert (root / "logs" / "kafka.log").exists() and kept.keep_data  # the stack's own stop keeps it too
    FailingStack.instances.clear()
    monkeypatch.setenv(KEEP_DATA_ENV, "1")
    kept = _run()
    root2 = kept.root
    assert root2.exists() and kept.keep_data
    for path in (root, root2):
        shutil.rmtree(path)


def test_the_printed_aerostic_command_runs_in_a_fresh_shell(tmp_path: Path) -> None:
    command = aerostic_command()
    executable = Path(shlex.split(command)[0])
    assert executable.is_absolute()
    # A fresh login: no virtualenv on PATH, another working directory.
    result = subprocess.run(["/bin/sh", "-c", f"{command} simulate --help"], cwd=tmp_path, capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--sim" in result.stdout
