"""The named functions the bundle configs call instead of inline conditionals, lambdas and comprehensions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


def test_key_metric_and_its_validation_metric():
    from monai_xai.bundle import get_device, key_metric, validation_key_metric
    from monai_xai.handlers import ClassificationEpochMetric

    assert key_metric(2) == "auc" and key_metric(3) == "accuracy"
    (name, metric), *rest = validation_key_metric(3).items()
    assert name == "val_accuracy" and not rest and isinstance(metric, ClassificationEpochMetric)
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_finetune_name_and_logged_state_attributes():
    from monai_xai.bundle import finetune_name, logged_state_attributes

    assert finetune_name("mask", "all", 1.0, True) == "mask_all_1.0"
    assert finetune_name("corrected_map", "random", 0.3, False) == "corrected_map_random_0.3_whole"
    assert logged_state_attributes("dynamic") == ["alpha"] and logged_state_attributes("plain") is None


def test_dataset_splits_merge_the_fragment_reader_options(tmp_path):
    from monai_xai.bundle import dataset_splits
    from monai_xai.data import write_demo_dataset

    write_demo_dataset(tmp_path, n_train=4, n_val=2, n_test=2, size=24)
    from monai_xai.errors import InputError

    csv = tmp_path / "labels.csv"
    splits = dataset_splits("csv", csv, {"label_col": "label", "mask_col": "mask"}, fold=0, limit=2)
    assert all(len(splits[name]) <= 2 for name in ("train", "val", "test"))
    with pytest.raises(InputError, match="missing column 'grade'"):
        dataset_splits("csv", csv, {"label_col": "grade"}, fold=0)


def test_not_rank0_in_one_process():
    from monai_xai.bundle import is_not_rank0

    assert is_not_rank0() is False


def test_classifier_run_name_leaves_out_the_default_architecture():
    from monai_xai.tracking import classifier_run_name

    assert classifier_run_name("demo", "dynamic", "abn", "resnet18", 0) == "demo_dynamic_resnet18_fold0"
    assert classifier_run_name("busi2", "dynamic", "abn_gated", "resnet34", 2) == (
        "busi2_dynamic_abn_gated_resnet34_fold2"
    )


def test_rank_rules_in_one_process(monkeypatch, capsys):
    from monai_xai import bundle, distributed

    assert distributed.device_ids(torch.device("cpu")) is None
    assert distributed.device_ids(torch.device("cuda:1")) == [torch.device("cuda:1")]
    monkeypatch.setenv("RANK", "1")  # what torchrun sets before the process group exists
    assert bundle.is_not_rank0()
    distributed.print_once("not on rank 1")
    monkeypatch.setenv("RANK", "0")
    assert not bundle.is_not_rank0()
    distributed.print_once("summary")
    assert capsys.readouterr().out == "summary\n"


def test_process_group_of_one_with_its_tracking_store(monkeypatch, tmp_path):
    import torch.distributed as dist

    from monai_xai import distributed

    environment = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29531", "RANK": "0", "WORLD_SIZE": "1"}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    store = f"sqlite:///{tmp_path / 'mlruns.db'}"
    distributed.setup_process_group(torch.device("cpu"), store)
    try:
        assert dist.is_initialized() and dist.get_backend() == "gloo"
        assert (tmp_path / "mlruns.db").is_file()
    finally:
        distributed.destroy_process_group()
    assert not dist.is_initialized()
    distributed.destroy_process_group()  # nothing joined: no error


def test_select_for_correction(tmp_path):
    from monai_xai.active_learning import select_for_correction

    records = tmp_path / "records.csv"
    records.write_text(
        "source,label,prob_0,prob_1,map_mse\na,0,0.9,0.1,0.5\nb,1,0.55,0.45,0.1\nc,1,0.2,0.8,0.3\n"
    )
    assert select_for_correction("all", tmp_path / "not_needed.csv", 1.0) is None
    assert select_for_correction("largest_map_error", records, 0.5) == ["a", "c"]
    assert select_for_correction("lowest_confidence", records, 0.3) == ["b"]


def test_inference_transforms_and_corrected_maps(tmp_path):
    from monai.transforms import Compose

    from monai_xai.transforms import LoadCorrectedMapd, inference_transforms, with_corrected_maps

    path = tmp_path / "image.png"
    Image.fromarray((np.arange(48 * 40).reshape(48, 40) % 255).astype(np.uint8)).save(path)
    item = inference_transforms("ultrasound", [32, 32], 1, {"remove_overlays": False})({"image": str(path)})
    image = item["image"]
    assert image.shape == (1, 32, 32) and 0.0 <= float(image.min()) < float(image.max()) <= 1.0
    preprocessing = Compose([])
    assert with_corrected_maps(preprocessing, "mask") is preprocessing
    corrected = with_corrected_maps(preprocessing, "corrected_map")
    assert isinstance(corrected.transforms[0], LoadCorrectedMapd)


REPO = Path(__file__).resolve().parents[2]
ABN_CONFIGS = REPO / "bundles" / "abn_classification" / "configs"
MULTISCALE_INFERENCE = REPO / "bundles" / "multiscale_abn_correction" / "configs" / "inference.json"


def _parsed(config_files, item, entry):
    """``entry`` of the merged ``config_files``, applied to a copy of ``item``."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(f) for f in config_files])
    return parser.get_parsed_content(entry)(dict(item))["image"]


def _assert_inference_equals_validation(fragments, item):
    validation = _parsed(
        [ABN_CONFIGS / "train.json", *fragments], {**item, "label": 0}, "validate#preprocessing"
    )
    for inference in (ABN_CONFIGS / "inference.json", MULTISCALE_INFERENCE):
        image = _parsed([inference, *fragments], item, "preprocessing")
        assert image.dtype == validation.dtype == torch.float32
        assert image.shape == validation.shape and torch.equal(image.as_tensor(), validation.as_tensor())
    return validation


def test_inference_transforms_2d_default_is_the_preset_alone(tmp_path):
    """The 2D default: loading, the channel check and the preset, as before ``spatial_dims`` existed."""
    from monai.transforms import Compose, ScaleIntensityd

    from monai_xai.errors import InputError
    from monai_xai.transforms import LoadImageOrArrayd, ValidateItemd, get_preset, inference_transforms

    path = tmp_path / "image.png"
    Image.fromarray((np.arange(48 * 40).reshape(48, 40) % 251).astype(np.uint8)).save(path)
    args = {"remove_overlays": False}
    before = Compose(
        [
            LoadImageOrArrayd(keys=["image"]),
            ValidateItemd(expected_channels=1),
            get_preset(
                "ultrasound", keys=["image"], mask_keys=[], spatial_size=[32, 32], augment=False, **args
            ),
        ]
    )({"image": str(path)})["image"]
    transforms = inference_transforms("ultrasound", [32, 32], 1, args)
    assert torch.equal(transforms({"image": str(path)})["image"].as_tensor(), before.as_tensor())
    # a 3D volume's transforms in a 2D run are a mistake to name, not to ignore
    with pytest.raises(InputError, match="intensity_transforms"):
        inference_transforms(
            "ultrasound", [32, 32], 1, args, spatial_dims=2, intensity_transforms=[ScaleIntensityd("image")]
        )


def test_inference_preprocessing_equals_validation_preprocessing_2d(tmp_path):
    """The bundles' default (2D ultrasound) inference preprocessing gives the validation pipeline's image."""
    path = tmp_path / "image.png"
    Image.fromarray((np.arange(48 * 40).reshape(48, 40) % 251).astype(np.uint8)).save(path)
    image = _assert_inference_equals_validation([], {"image": str(path)})
    assert tuple(image.shape) == (1, 64, 64)


def test_inference_preprocessing_equals_validation_preprocessing_3d(tmp_path):
    """With a 3D dataset fragment (AdrenalMNIST3D), inference runs its ``intensity_transforms`` as validation
    does; the 2D preset of the bundle's defaults would not take a volume."""
    import nibabel as nib

    from monai_xai.transforms import inference_transforms

    volume = np.random.default_rng(0).integers(0, 200, (12, 10, 8)).astype(np.float32)
    path = tmp_path / "volume.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(path))
    fragment = REPO / "configs" / "datasets" / "adrenalmnist3d.json"
    image = _assert_inference_equals_validation([fragment], {"image": str(path)})
    assert tuple(image.shape) == (1, 12, 10, 8)
    assert float(image.min()) == 0.0 and float(image.max()) == 1.0
    # a numpy volume (as the deploy app passes a loaded series) gives the same tensor
    from monai.transforms import ScaleIntensityd

    transforms = inference_transforms(
        "ultrasound", [28, 28, 28], 1, spatial_dims=3, intensity_transforms=[ScaleIntensityd("image")]
    )
    from_array = transforms({"image": volume[None]})["image"]
    assert torch.equal(torch.as_tensor(from_array), image.as_tensor())


def test_trainable_parameters_saliency_functions_and_summary():
    from monai_xai.data import correction_datalist
    from monai_xai.networks import MultiScaleAttentionBranchNetwork, get_classifier, trainable_parameters
    from monai_xai.visualize import CAMSaliency, saliency_functions

    network = MultiScaleAttentionBranchNetwork("resnet18").freeze_features()
    trainable = trainable_parameters(network)
    assert trainable and all(p.requires_grad for p in trainable)
    assert len(trainable) < len(list(network.parameters()))
    functions = saliency_functions(get_classifier("baseline"), ["gradcam", "gradcampp"])
    assert list(functions) == ["gradcam", "gradcampp"]
    assert all(isinstance(f, CAMSaliency) for f in functions.values())
    items = [{"image": "a.png", "mask": "a_mask.png"}, {"image": "b.png"}]
    summary = correction_datalist(items, None, "mask").describe("mask")
    assert summary == "fine-tuning on 1 of 2 training samples with a mask map (1 selected without one)"


def test_attention_outputs_read_as_their_prediction_and_the_evaluator_uses_its_inferer():
    from monai.inferers import SimpleInferer

    from monai_xai.engines import AttentionEvaluator
    from monai_xai.networks import MultiScaleAttentionBranchNetwork, get_classifier

    for network in (get_classifier("dynamic"), MultiScaleAttentionBranchNetwork("resnet18")):
        out = network.eval()(torch.rand(2, 1, 32, 32))
        assert out.shape == out.perception_logits.shape == (2, 2) and out.dtype == torch.float32

    calls = []

    class CountingInferer(SimpleInferer):
        def __call__(self, inputs, network, *args, **kwargs):
            calls.append(inputs.shape)
            return super().__call__(inputs, network, *args, **kwargs)

    batches = [{"image": torch.rand(2, 1, 32, 32)}]
    evaluator = AttentionEvaluator(
        device="cpu", val_data_loader=batches, network=get_classifier("dynamic"), inferer=CountingInferer()
    )
    evaluator.run()
    assert calls == [(2, 1, 32, 32)] and evaluator.state.output["attention_map"].shape == (2, 1, 2, 2)


def test_classification_postprocessing_works_on_batches():
    from monai_xai.transforms import classification_postprocessing

    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.5]])
    out = classification_postprocessing()({"pred": logits})
    assert torch.equal(out["pred"], logits)
    assert torch.allclose(torch.as_tensor(out["probabilities"]), torch.softmax(logits, dim=1))
    assert torch.as_tensor(out["class"]).tolist() == [0, 1, 1]
