"""AG-CycleGAN: shared frozen encoder, masked translation, spectral norm, trainer step, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from monai_xai.data import ClassBalancedDataset, UnpairedDataset
from monai_xai.engines import AGCycleGANTrainer
from monai_xai.errors import InputError
from monai_xai.losses import get_gan_loss
from monai_xai.networks import load_optional_weights, load_weights
from monai_xai.networks.nets import (
    AGCycleGAN,
    LeakyResNetClassifier,
    PatchDiscriminator,
    ResNetClassifier,
)
from monai_xai.transforms import ExpectImaged

SIZE = 16


def make_gan(dims: int = 2, classifier=None) -> AGCycleGAN:
    torch.manual_seed(0)
    classifier = classifier or ResNetClassifier(spatial_dims=dims)
    return AGCycleGAN(classifier, spatial_dims=dims, decoder_widths=(4, 4, 8, 8, 8))


def images(dims: int = 2, n: int = 2) -> torch.Tensor:
    return torch.rand(n, 1, *([SIZE] * dims)) * 2 - 1


def count_calls(module: nn.Module) -> list:
    calls = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("dims", [2, 3])
def test_one_encoder_call_per_input_batch(dims: int) -> None:
    gan = make_gan(dims)
    calls = count_calls(gan.encoder)
    gan.translate(images(dims), 0)
    assert len(calls) == 1  # feeds both G_x and A_x
    x, y = images(dims), images(dims)
    out = gan(x, y)
    assert len(calls) == 1 + 2  # stacked (x, y), then stacked (fake_x, fake_y) for the cycles
    assert torch.allclose(out.x_to_y.fake, gan.translate(x, 0).fake, atol=1e-5)  # stacking changes nothing
    assert torch.allclose(out.rec_x, gan.translate(out.x_to_y.fake, 1).fake, atol=1e-5)
    assert out.rec_x.shape == out.x_to_y.fake.shape == (2, 1, *([SIZE] * dims))


def test_encoder_is_a_frozen_copy_of_the_classifiers_feature_extractor() -> None:
    classifier = ResNetClassifier()
    gan = make_gan(classifier=classifier)
    assert torch.equal(gan.encoder.stem[0].weight, classifier.conv1.weight)
    assert torch.equal(gan.encoder.stages[-1][0].conv1.weight, classifier.layer4[0].conv1.weight)
    assert not any(p.requires_grad for p in gan.encoder.parameters())
    assert all(p.requires_grad for p in classifier.parameters())  # still explainable by Grad-CAM++
    assert {id(p) for p in gan.generator_parameters()}.isdisjoint(id(p) for p in gan.encoder.parameters())


def test_frozen_encoder_gets_no_gradient_but_passes_it_to_the_decoder_that_made_its_input() -> None:
    gan = make_gan()
    fake_y = gan.translate(images(), 0).fake
    # a loss that sees fake_y only through the encoder, as the cycle loss does
    gan.encode(fake_y)[-1].square().mean().backward()
    assert all(p.grad is None for p in gan.encoder.parameters())
    for name in ("g_x", "a_x"):
        grads = [p.grad for p in gan.decoders[name].parameters()]
        assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in gan.decoders["g_y"].parameters())


def test_encoder_batchnorm_statistics_stay_fixed_in_training() -> None:
    gan = make_gan()
    gan.train()
    assert not gan.encoder.training and not gan.encoder.stages[0][0].bn1.training
    before = gan.encoder.stem[1].running_mean.clone()
    gan(images(), images())
    assert torch.equal(before, gan.encoder.stem[1].running_mean)


def test_masked_translation_formula_and_ranges() -> None:
    gan = make_gan()
    x = images()
    t = gan.translate(x, 0)
    assert torch.allclose(t.fake, t.attention * t.generated + (1 - t.attention) * x)
    assert t.attention.min() >= 0 and t.attention.max() <= 1
    assert t.generated.min() >= -1 and t.generated.max() <= 1
    head = gan.decoders["a_x"].head
    nn.init.zeros_(head.weight)
    nn.init.constant_(head.bias, -50.0)  # attention 0: the image passes unchanged
    assert torch.allclose(gan.translate(x, 0).fake, x, atol=1e-6)
    nn.init.constant_(head.bias, 50.0)  # attention 1: the generator's image
    t = gan.translate(x, 0)
    assert torch.allclose(t.fake, t.generated, atol=1e-6)


@pytest.mark.parametrize("dims", [2, 3])
def test_discriminator_is_spectrally_normalised(dims: int) -> None:
    torch.manual_seed(0)
    disc = PatchDiscriminator(dims, channels=(4, 8))
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv2d | nn.Conv3d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    for _ in range(30):  # power iterations run in training forwards
        disc(torch.rand(1, 1, *([SIZE] * dims)))
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)
    assert disc(torch.rand(2, 1, *([SIZE] * dims))).shape == (2, 1, *([SIZE // 4] * dims))


def test_trainer_step_updates_decoders_and_discriminators_not_encoder() -> None:
    gan = make_gan()
    d_x, d_y = PatchDiscriminator(channels=(4, 8)), PatchDiscriminator(channels=(4, 8))
    encoder_before = [p.clone() for p in gan.encoder.parameters()]
    decoder_before = [p.clone() for p in gan.generator_parameters()]
    d_before = [p.clone() for p in d_x.parameters()]
    trainer = AGCycleGANTrainer(
        "cpu", 1, [], gan, d_x, d_y,
        torch.optim.Adam(gan.generator_parameters(), lr=1e-2),
        torch.optim.Adam([*d_x.parameters(), *d_y.parameters()], lr=1e-2),
        get_gan_loss("bce"), lambda_cyc=5.0, n_dis=2,
    )  # fmt: skip
    out = trainer.train_step(torch.rand(2, 1, SIZE, SIZE), torch.rand(2, 1, SIZE, SIZE))
    assert {"loss_g", "loss_g_adv", "loss_cyc", "loss_d"} <= set(out["loss_parts"])
    assert all(torch.equal(a, b) for a, b in zip(encoder_before, gan.encoder.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(decoder_before, gan.generator_parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d_x.parameters()))
    assert all(p.requires_grad for p in d_x.parameters())
    with pytest.raises(ValueError, match="n_dis"):
        AGCycleGANTrainer("cpu", 1, [], gan, d_x, d_y, None, None, get_gan_loss("bce"), n_dis=0)


def test_trainer_steps_in_distributed_data_parallel(monkeypatch) -> None:
    """Generator and discriminators in DistributedDataParallel (a process group of one; the bundle test runs
    two processes): steps train the decoders; wrapping only some of them is refused."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    environment = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29537", "RANK": "0", "WORLD_SIZE": "1"}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    dist.init_process_group("gloo")
    try:
        gan = make_gan()
        d_x, d_y = PatchDiscriminator(channels=(4, 8)), PatchDiscriminator(channels=(4, 8))
        optimizers = (
            torch.optim.Adam(gan.generator_parameters(), lr=1e-2),
            torch.optim.Adam([*d_x.parameters(), *d_y.parameters()], lr=1e-2),
        )
        with pytest.raises(ValueError, match=r"only \['network'\] of network, d_x and d_y"):
            AGCycleGANTrainer("cpu", 1, [], DDP(gan), d_x, d_y, *optimizers, get_gan_loss("lsgan"))
        decoder_before = [p.clone() for p in gan.generator_parameters()]
        trainer = AGCycleGANTrainer(
            "cpu", 1, [], DDP(gan), DDP(d_x), DDP(d_y), *optimizers, get_gan_loss("lsgan"), n_dis=2
        )
        for _ in range(2):
            out = trainer.train_step(torch.rand(2, 1, SIZE, SIZE), torch.rand(2, 1, SIZE, SIZE))
        assert all(np.isfinite(v) for v in out["loss_parts"].values())
        assert any(not torch.equal(a, b) for a, b in zip(decoder_before, gan.generator_parameters()))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trainer_step_on_cuda_with_amp() -> None:
    gan = make_gan().cuda()
    d_x, d_y = PatchDiscriminator(channels=(4, 8)).cuda(), PatchDiscriminator(channels=(4, 8)).cuda()
    trainer = AGCycleGANTrainer(
        "cuda", 1, [], gan, d_x, d_y,
        torch.optim.Adam(gan.generator_parameters()),
        torch.optim.Adam([*d_x.parameters(), *d_y.parameters()]), get_gan_loss("lsgan"), amp=True,
    )  # fmt: skip
    out = trainer.train_step(torch.rand(2, 1, SIZE, SIZE).cuda(), torch.rand(2, 1, SIZE, SIZE).cuda())
    assert all(np.isfinite(v) for v in out["loss_parts"].values())


def test_leaky_classifier_has_leaky_blocks_and_resnet_layout() -> None:
    leaky, plain = LeakyResNetClassifier(), ResNetClassifier()
    acts = [m for m in leaky.layer2.modules() if isinstance(m, nn.LeakyReLU | nn.ReLU)]
    assert acts and all(isinstance(m, nn.LeakyReLU) for m in acts) and isinstance(leaky.act, nn.LeakyReLU)
    assert leaky.state_dict().keys() == plain.state_dict().keys()


def test_classifier_checkpoint_that_does_not_fit_the_encoder(tmp_path) -> None:
    path = tmp_path / "classifier_2d.pt"
    torch.save(ResNetClassifier(spatial_dims=2).state_dict(), path)
    with pytest.raises(InputError, match="classifier_2d.pt.*shape mismatch"):
        load_weights(ResNetClassifier(spatial_dims=3), path)


def test_optional_weights_load_only_when_a_checkpoint_is_named(tmp_path) -> None:
    """The evaluation's judge: off without a checkpoint, else loaded (and checked) like any classifier."""
    torch.manual_seed(1)
    trained = ResNetClassifier()
    torch.save(trained.state_dict(), tmp_path / "judge.pt")
    assert load_optional_weights(ResNetClassifier(), None) is None
    judge = load_optional_weights(ResNetClassifier(), tmp_path / "judge.pt")
    assert all(torch.equal(a, b) for a, b in zip(judge.state_dict().values(), trained.state_dict().values()))
    with pytest.raises(InputError, match="judge.pt.*shape mismatch"):
        load_optional_weights(ResNetClassifier(spatial_dims=3), tmp_path / "judge.pt")


def test_unpaired_dataset_pairs_both_classes_and_refuses_one_class() -> None:
    data = [{"image": np.full((1, 4, 4), i, np.float32), "label": int(i >= 3)} for i in range(5)]
    dataset = UnpairedDataset(data, transform=lambda item: item, seed=1)
    assert len(dataset) == 3
    pairs = [dataset[i] for i in range(len(dataset))]
    assert sorted(float(p["x"].max()) for p in pairs) == [0, 1, 2]
    assert all(float(p["y"].max()) in (3, 4) for p in pairs)
    with pytest.raises(InputError, match="train.csv: no items of class \\[1\\]"):
        UnpairedDataset(data[:3], transform=lambda item: item, source="train.csv")


def test_class_balanced_dataset_keeps_every_item_and_redraws_the_top_up() -> None:
    labels = [0] * 6 + [1] * 2
    dataset = ClassBalancedDataset(list(range(8)), labels, seed=0)
    epochs = [[dataset[i] for i in range(len(dataset))] for _ in range(3)]
    assert all(len(e) == 12 and sum(labels[i] for i in e) == 6 for e in epochs)
    assert all(set(range(8)) <= set(e) for e in epochs)  # nothing dropped
    assert len({tuple(e) for e in epochs}) > 1  # the top-up of class 1 is drawn afresh
    with pytest.raises(InputError, match="only class"):
        ClassBalancedDataset([0, 1, 2], [1, 1, 1])


def test_class_balanced_dataset_is_reseeded_with_its_transforms_per_worker() -> None:
    """MONAI's worker seeding reaches both the top-up draw and the wrapped dataset's random transforms."""
    from monai.data import Dataset
    from monai.data.utils import set_rnd
    from monai.transforms import RandFlipd

    flip = RandFlipd("image", prob=0.5)
    dataset = ClassBalancedDataset(Dataset([{"image": torch.zeros(1, 2, 2)}] * 3, flip), [0, 0, 1], seed=0)
    before = [flip.R.get_state()[1].copy(), dataset.top_up.R.get_state()[1].copy()]
    set_rnd(dataset, seed=7)
    after = [flip.R.get_state()[1], dataset.top_up.R.get_state()[1]]
    assert not any(np.array_equal(b, a) for b, a in zip(before, after))


def test_expect_image_refuses_wrong_dimensionality_and_range() -> None:
    volume = {"image": torch.rand(1, 8, 8, 8), "source": "adrenal.npz:train[0]"}
    with pytest.raises(InputError, match=r"adrenal.npz:train\[0\].*3 spatial dimensions.*2D"):
        ExpectImaged("image", spatial_dims=2)(volume)
    assert ExpectImaged("image", spatial_dims=3)(volume) is volume
    raw = {"image": torch.full((1, 4, 4), 255.0), "source": "raw.png"}
    raw["image"][0, 0, 0] = 0
    with pytest.raises(InputError, match=r"raw.png.*\[0, 255\].*\[0, 1\]"):
        ExpectImaged("image", value_range=(0, 1))(raw)


def test_benchmark_baseline_differs_only_in_owning_four_encoders(load_script) -> None:
    bench = load_script("benchmarks/agcyclegan_shared_encoder.py")
    _, shared, _ = bench.build("shared", 2, torch.device("cpu"))
    _, separate, _ = bench.build("separate", 2, torch.device("cpu"))
    assert len(separate.encoders) == 4 and not hasattr(separate, "encoder")
    calls = [count_calls(encoder) for encoder in separate.encoders.values()]
    x = images()
    with torch.no_grad():
        a, b = shared.translate(x, 1), separate.translate(x, 1)
    assert all(torch.allclose(u, v, atol=1e-6) for u, v in zip(a, b))
    assert [len(c) for c in calls] == [0, 0, 1, 1]  # g_x, a_x idle; g_y and a_y each ran their own copy
