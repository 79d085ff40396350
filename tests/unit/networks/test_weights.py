"""The one reader of PyTorch weights files: nested state dicts, bare ones, and errors naming the file."""

import pytest
import torch

from monai_xai.errors import InputError
from monai_xai.networks import read_weights_file


def test_nested_state_dict_under_the_first_key_that_holds_one(tmp_path):
    state = {"w": torch.ones(2)}
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": state, "model": {"w": torch.zeros(2)}}, path)
    read = read_weights_file(path, "missing", keys=("state_dict", "model"))
    assert torch.equal(read["w"], torch.ones(2))
    read = read_weights_file(path, "missing", keys=("model",))
    assert torch.equal(read["w"], torch.zeros(2))


def test_bare_state_dict_is_the_file_itself(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save({"w": torch.full((2,), 5.0)}, path)
    assert torch.equal(read_weights_file(path, "missing")["w"], torch.full((2,), 5.0))


def test_errors_name_the_file_and_say_what_it_is_for(tmp_path):
    with pytest.raises(InputError, match=r"nothing\.pt: pretrained weights file not found"):
        read_weights_file(tmp_path / "nothing.pt", "pretrained weights file not found")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match=r"broken\.pt: cannot read as a PyTorch state dict"):
        read_weights_file(broken, "missing", what="state dict")
