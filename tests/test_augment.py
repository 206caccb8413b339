"""Issue 14, recipes: --augment POLICY and --random-erasing act on the images the network
trains on (on the CPU path and on the GPU path, run here on the CPU), never on the validation
images, and a resumed run stays exact with them on."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from archdsl.train import TrainConfig, resume, train
from archdsl.train import setup as setup_py

SPEC = ("arch tiny(num_classes=2)\ninput 3x8x8\nconv 4 k3 p1; relu\n"
        "adaptiveavgpool 1; flatten; linear num_classes\n")
PATHS = ["cpu", "gpu"]  # --augment-on: torchvision's transforms in the loader, or GpuAugment


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    """16 images of one colour each, 12x12: a crop, a flip or a resize leaves such an image
    flat in its own colour, so whatever else changes it is the policy's or the erasing's."""
    folder = tmp_path_factory.mktemp("flat")
    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (folder / c).mkdir()
        for i in range(8):
            colour = rng.integers(20, 236, 3, dtype=np.uint8)
            Image.fromarray(np.tile(colour, (12, 12, 1))).save(folder / c / f"{i}.png")
    spec = folder / "tiny.arch"
    spec.write_text(SPEC)
    return spec, folder


def seen(monkeypatch, spec, data, out, epochs=1, **options):
    """Train; the images the network was given: (training, validation), each a list."""
    images = {True: [], False: []}
    real = setup_py._model

    def spy(*args, **kwargs):
        model, frozen, info = real(*args, **kwargs)
        model.register_forward_pre_hook(
            lambda module, inputs: images[module.training].extend(inputs[0].detach().clone()))
        return model, frozen, info

    monkeypatch.setattr(setup_py, "_model", spy)
    config = dict(batch_size=4, quiet=True, val_split=0.25, schedule="constant")
    train(spec, str(data), TrainConfig(epochs=epochs, **{**config, **options}), out=str(out))
    monkeypatch.setattr(setup_py, "_model", real)
    return images[True], images[False]


def colour(image: torch.Tensor):
    """The colour of an image that is one colour throughout (C values), else None."""
    flat = image.flatten(1)
    if (flat.max(1).values - flat.min(1).values).max() > 1e-3:
        return None
    return flat[:, 0]


def original(image: torch.Tensor, colours: list) -> bool:
    """Whether the image is one of the data set's images: flat in one of its colours."""
    c = colour(image)
    return c is not None and any(torch.allclose(c, k, atol=1e-3) for k in colours)


@pytest.mark.parametrize("where", PATHS)
def test_each_policy_changes_the_training_images_and_not_the_validation_ones(
        flat, tmp_path, monkeypatch, where):
    spec, data = flat
    basic_train, basic_val = seen(monkeypatch, spec, data, tmp_path / "basic",
                                  augment_on=where)
    colours = [colour(x) for x in basic_train]
    # crops stay flat (and nothing is erased by default)
    assert len(basic_train) == 12 and all(c is not None for c in colours)
    for policy in ("trivialaugment", "randaugment", "autoaugment"):
        train_images, val_images = seen(monkeypatch, spec, data, tmp_path / policy,
                                        augment=policy, augment_on=where)
        changed = [x for x in train_images if not original(x, colours)]
        assert len(train_images) == 12 and len(changed) >= 3, policy  # the policy's work
        assert len(val_images) == len(basic_val) == 4
        assert all(torch.equal(a, b) for a, b in zip(val_images, basic_val)), policy


def erased(image: torch.Tensor) -> bool:
    """Whether a rectangle smaller than the image holds 0 (the mean colour once normalised)
    in every channel, and the rest of the image is one colour."""
    zero = (image == 0).all(0)
    if not zero.any():
        return False
    rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
    box = zero[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    rest = image[:, ~zero]
    return (box.all() and int(zero.sum()) == box.numel() < zero.numel()
            and float((rest.max(1).values - rest.min(1).values).max()) < 1e-3)


@pytest.mark.parametrize("where", PATHS)
def test_random_erasing_erases_a_rectangle_of_some_training_images(
        flat, tmp_path, monkeypatch, where):
    spec, data = flat
    train_images, val_images = seen(monkeypatch, spec, data, tmp_path / "e",
                                    random_erasing=0.5, augment_on=where)
    hit = [erased(x) for x in train_images]
    assert 0 < sum(hit) < len(hit) == 12  # p=0.5: some, not all
    assert not any(erased(x) or colour(x) is None for x in val_images)


def test_no_augment_trains_on_the_plain_resized_images(tmp_path, monkeypatch):
    import json
    import shutil

    from archdsl.cli import main

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "d" / "train" / c).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(
                tmp_path / "d" / "train" / c / f"{i}.png")
    shutil.copytree(tmp_path / "d" / "train", tmp_path / "d" / "val")  # validation: the same
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPEC)
    basic, plain = seen(monkeypatch, spec, tmp_path / "d", tmp_path / "b")
    cropped = [x for x in basic if not any(torch.equal(x, p) for p in plain)]
    assert len(plain) == 16 and len(cropped) >= 8, len(cropped)  # (a crop may take it all)
    images = {True: [], False: []}
    real = setup_py._model

    def spy(*args, **kwargs):
        model, frozen, info = real(*args, **kwargs)
        model.register_forward_pre_hook(
            lambda module, inputs: images[module.training].extend(inputs[0].clone()))
        return model, frozen, info

    monkeypatch.setattr(setup_py, "_model", spy)
    assert main(["train", str(spec), str(tmp_path / "d"), "--no-augment", "--epochs", "1",
                 "--batch-size", "4", "--quiet", "--out", str(tmp_path / "cli")]) == 0
    options = json.loads((tmp_path / "cli" / "config.json").read_text())["options"]
    assert options["augment"] == "none"
    # each training image is exactly one validation image: resized, nothing else
    assert len(images[True]) == 16 and all(torch.equal(a, b) for a, b in zip(images[False],
                                                                             plain))
    assert all(any(torch.equal(x, p) for p in plain) for x in images[True])


@pytest.mark.parametrize("where", PATHS)
def test_resume_is_exact_with_a_policy_and_random_erasing(flat, tmp_path, where):
    spec, data = flat
    config = dict(batch_size=4, quiet=True, val_split=0.25, schedule="constant",
                  augment="trivialaugment", random_erasing=0.5, augment_on=where)
    full = train(spec, str(data), TrainConfig(epochs=2, **config), out=str(tmp_path / "f"))
    part = train(spec, str(data), TrainConfig(epochs=1, **config), out=str(tmp_path / "p"))
    resume(part, epochs=2, log=lambda line: None)
    a, b = load_file(str(full / "last.safetensors")), load_file(str(part / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_cpu_transforms_do_not_depend_on_the_loader_workers(flat, tmp_path):
    """Each image's draws come from its own seed: a run with a loader worker (resumed, so the
    worker starts afresh) ends with the weights of a run without any."""
    spec, data = flat
    config = dict(batch_size=4, quiet=True, val_split=0.25, schedule="constant",
                  augment="trivialaugment", random_erasing=0.5, augment_on="cpu", threads=1)
    alone = train(spec, str(data), TrainConfig(epochs=2, **config), out=str(tmp_path / "a"))
    part = train(spec, str(data), TrainConfig(epochs=1, workers=1, **config),
                 out=str(tmp_path / "w"))
    resume(part, epochs=2, log=lambda line: None)
    a, b = load_file(str(alone / "last.safetensors")), load_file(str(part / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
