import os

import pytest

from monai_xai.locking import LockHeldError, take_lock


def test_a_held_lock_names_its_holder_and_frees_on_close(tmp_path) -> None:
    path = tmp_path / ".lock"
    first = take_lock(path)
    assert path.read_text() == f"pid {os.getpid()}\n"
    with pytest.raises(LockHeldError, match=rf"held by pid {os.getpid()}") as held:
        take_lock(path)  # another open file description: flock refuses it even in the same process
    assert held.value.path == path
    first.close()
    second = take_lock(path)
    assert path.read_text() == f"pid {os.getpid()}\n"
    second.close()


def test_an_unreadable_holder_is_another_process(tmp_path) -> None:
    path = tmp_path / ".lock"
    path.write_text("")
    first = take_lock(path)
    path.write_text("")  # a holder that wrote nothing yet
    with pytest.raises(LockHeldError) as held:
        take_lock(path)
    assert held.value.holder == "another process"
    first.close()
