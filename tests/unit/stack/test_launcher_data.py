"""``LocalStack.stop`` removes the stack's data directories (hundreds of megabytes each) and keeps its logs."""

from pathlib import Path

import pytest

from stack.launcher import DATA_DIRS, LocalStack


def _stack_dirs(root: Path) -> None:
    for name in (*DATA_DIRS, "logs"):
        (root / name).mkdir()
        (root / name / "file").write_text(name)


@pytest.mark.parametrize("keep_data", [False, True])
def test_stop_removes_the_data_unless_kept_and_always_keeps_the_logs(tmp_path: Path, keep_data: bool) -> None:
    _stack_dirs(tmp_path)
    stack = LocalStack(root=tmp_path, keep_data=keep_data)
    stack.stop()
    stack.stop()  # again, as at interpreter exit: nothing left to fail on
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["logs", *(DATA_DIRS if keep_data else ())])
    assert (tmp_path / "logs" / "file").read_text() == "logs"
