"""The GPU-side input pipeline's pieces, run on the CPU: the decoded-image cache, the batched
augmentation and the synthetic data source."""

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from archdsl.train import pipeline
from archdsl.train.data import DataError, Sample, decode, load_dataset, synthetic_samples
from archdsl.train.pipeline import CachedImages, GpuAugment, cache_bytes, memory_cache_problem

SIZE = (24, 20)  # H, W: not square, to catch a swapped width and height


@pytest.fixture
def images(tmp_path):
    """Files of several sizes and colour modes, and one built-in image given as pixels."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    samples = []
    for i, (mode, h, w, ext) in enumerate([("RGB", 40, 30, "png"), ("L", 17, 33, "png"),
                                           ("RGBA", 24, 20, "png"), ("RGB", 64, 48, "jpg"),
                                           ("RGB", 12, 10, "png")]):
        depth = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
        pixels = rng.integers(0, 256, (h, w, depth), dtype=np.uint8).squeeze()
        path = folder / f"{i}.{ext}"
        Image.fromarray(pixels, mode).save(path)
        samples.append(Sample(i % 2, path=path))
    samples.append(Sample(1, pixels=rng.integers(0, 256, (8, 8), dtype=np.uint8)))
    return samples


def expected(sample, channels=3, size=SIZE):
    resize = v2.Resize(size, antialias=True)
    return v2.functional.pil_to_tensor(resize(decode(sample, channels)))


def test_memory_and_disk_caches_hold_each_image_decoded_and_resized(images, tmp_path):
    memory = CachedImages(images, 3, SIZE, where="memory", threads=2)
    disk = CachedImages(images, 3, SIZE, where="disk", folder=tmp_path / "cache", threads=1)
    assert memory.images.shape == (len(images), 3, *SIZE) and memory.images.dtype == torch.uint8
    assert isinstance(disk.images, np.memmap) and disk.path.suffix == ".npy"
    for i, s in enumerate(images):
        (a, label_a), (b, label_b) = memory[i], disk[i]
        assert a.dtype == b.dtype == torch.uint8 and a.shape == (3, *SIZE)
        assert torch.equal(a, expected(s)) and torch.equal(b, a)
        assert label_a == label_b == s.label
    batch, labels = disk.take([4, 0, 5])
    assert torch.equal(batch, memory.images[[4, 0, 5]])
    assert labels.tolist() == [images[4].label, images[0].label, images[5].label]


def test_grayscale_cache_has_one_channel(images):
    cache = CachedImages(images, 1, SIZE)
    assert cache.images.shape == (len(images), 1, *SIZE)
    assert torch.equal(cache[1][0], expected(images[1], channels=1))


def test_disk_cache_is_reused_without_decoding(images, tmp_path, monkeypatch):
    first = CachedImages(images, 3, SIZE, where="disk", folder=tmp_path)

    def no_decoding(*args):
        raise AssertionError("decoded again although the cache was valid")

    monkeypatch.setattr(pipeline, "decode", no_decoding)
    second = CachedImages(images, 3, SIZE, where="disk", folder=tmp_path)
    assert second.path == first.path
    assert np.array_equal(second.images, first.images)


def test_disk_cache_is_not_reused_after_a_file_changes(images, tmp_path):
    first = CachedImages(images, 3, SIZE, where="disk", folder=tmp_path)
    changed = images[0].path
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched
    touched = CachedImages(images, 3, SIZE, where="disk", folder=tmp_path)
    assert touched.path != first.path
    Image.new("RGB", (30, 40), (255, 0, 0)).save(changed)  # new pixels, new size
    rewritten = CachedImages(images, 3, SIZE, where="disk", folder=tmp_path)
    assert rewritten.path not in (first.path, touched.path)
    assert torch.equal(rewritten[0][0], expected(images[0]))
    assert rewritten[0][0][0].eq(255).all()  # red
    assert CachedImages(images, 3, (12, 12), where="disk", folder=tmp_path).path != first.path
    assert CachedImages(images, 1, SIZE, where="disk", folder=tmp_path).path != first.path


def test_built_in_pixels_key_the_disk_cache_by_content(tmp_path):
    a = [Sample(0, pixels=np.zeros((8, 8), np.uint8)), Sample(1, pixels=np.ones((8, 8), np.uint8))]
    b = [Sample(0, pixels=np.zeros((8, 8), np.uint8)), Sample(1, pixels=np.full((8, 8), 2,
                                                                               np.uint8))]
    assert pipeline.cache_name(a, 1, SIZE) == pipeline.cache_name(list(a), 1, SIZE)
    assert pipeline.cache_name(a, 1, SIZE) != pipeline.cache_name(b, 1, SIZE)


def test_disk_cache_is_written_atomically(images, tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    cache = CachedImages(images, 3, SIZE, where="disk", folder=folder)
    assert sorted(p.name for p in folder.iterdir()) == [cache.path.name]  # no temporary left

    real = pipeline.decode

    def fails_on_the_fourth(sample, channels):
        if sample is images[3]:
            raise OSError("image file is truncated")
        return real(sample, channels)

    monkeypatch.setattr(pipeline, "decode", fails_on_the_fourth)
    other = tmp_path / "other"
    with pytest.raises(DataError, match=r"3\.jpg cannot be read.*truncated or damaged"):
        CachedImages(images, 3, SIZE, where="disk", folder=other, threads=1)
    assert list(other.iterdir()) == []  # neither a half-written cache nor its temporary


def test_a_damaged_disk_cache_is_written_again(images, tmp_path):
    cache = CachedImages(images, 3, SIZE, where="disk", folder=tmp_path)
    cache.path.write_bytes(b"not an npy file")
    again = CachedImages(images, 3, SIZE, where="disk", folder=tmp_path)
    assert torch.equal(again[2][0], expected(images[2]))


def test_a_disk_cache_travels_to_a_worker_as_its_path(images, tmp_path):
    cache = CachedImages(images, 3, SIZE, where="disk", folder=tmp_path)
    sent = pickle.dumps(cache)
    assert len(sent) < cache_bytes(len(images), 3, SIZE)  # the pixels stay in the file
    assert torch.equal(pickle.loads(sent)[3][0], cache[3][0])


def test_memory_cache_that_would_not_fit_is_refused(images, monkeypatch):
    assert cache_bytes(1000, 3, (224, 224)) == 1000 * 3 * 224 * 224
    assert memory_cache_problem(10, 3, (8, 8)) is None
    monkeypatch.setattr(pipeline, "available_memory", lambda: 2_000_000_000)
    problem = memory_cache_problem(100_000, 3, (224, 224))
    assert "15.1 GB" in problem and "2.0 GB is available" in problem and "disk" in problem
    monkeypatch.setattr(pipeline, "available_memory", lambda: 1000)
    with pytest.raises(DataError, match="in memory needs"):
        CachedImages(images, 3, SIZE, where="memory")


MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]


@pytest.mark.parametrize("size", [(16, 12), (48, 40)], ids=["down", "up"])
def test_eval_mode_resizes_and_normalises_like_torchvision(size):
    batch = torch.randint(0, 256, (6, 3, 30, 26), dtype=torch.uint8)
    reference = v2.Compose([v2.Resize(size, antialias=True), v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize(MEAN, STD)])
    out = GpuAugment(size, MEAN, STD).eval()(batch)
    # torchvision rounds the resized image to uint8 first: at most one grey level apart
    assert out.shape == (6, 3, *size) and out.dtype == torch.float32
    assert torch.allclose(out, reference(batch), atol=1.01 / 255 / min(STD), rtol=0)


def test_eval_mode_at_the_same_size_only_normalises():
    batch = torch.randint(0, 256, (2, 3, 16, 12), dtype=torch.uint8)
    out = GpuAugment((16, 12), MEAN, STD).eval()(batch)
    expected_out = (batch.float() / 255 - torch.tensor(MEAN)[:, None, None]) / \
        torch.tensor(STD)[:, None, None]
    assert torch.allclose(out, expected_out, atol=1e-5)


def augment(seed, **options):
    return GpuAugment((32, 28), MEAN, STD, generator=torch.Generator().manual_seed(seed),
                      **options)


def test_training_output_shape_dtype_and_layout():
    batch = torch.randint(0, 256, (5, 3, 40, 36), dtype=torch.uint8)
    out = augment(0, channels_last=True)(batch)
    assert out.shape == (5, 3, 32, 28) and out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert augment(0)(batch).is_contiguous()
    assert augment(0, dtype=torch.bfloat16)(batch).dtype == torch.bfloat16


@pytest.mark.parametrize("height, width", [(40, 36), (30, 60), (64, 16), (7, 5)])
def test_crop_boxes_stay_inside_the_image_with_the_asked_area_and_shape(height, width):
    boxes = augment(0).crop_boxes(4000, height, width)
    x1, y1, x2, y2 = boxes.unbind(1)
    assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= width).all() and (y2 <= height).all()
    assert ((x2 - x1) >= 1).all() and ((y2 - y1) >= 1).all()
    assert torch.equal(boxes, boxes.round())  # whole pixels, as RandomResizedCrop takes
    if (height, width) == (40, 36):  # every image gets a try that fits: the ranges hold
        w, h = x2 - x1, y2 - y1
        area, aspect = w * h / (height * width), w / h
        assert 0.8 - 0.05 < area.min() < 0.82 and 0.97 < area.max() <= 1.0
        assert 0.9 - 0.06 < aspect.min() < 0.92 and 1.08 < aspect.max() < 1.1 + 0.06
        assert x1.unique().numel() > 3 and y1.unique().numel() > 3  # positions vary


def test_a_crop_that_never_fits_falls_back_to_the_centre():
    boxes = GpuAugment(8, [0], [1], scale=(1.0, 1.0), ratio=(2.0, 2.0)).crop_boxes(3, 40, 40)
    assert boxes.tolist() == [[0, 10, 40, 30]] * 3  # the widest 2:1 box, centred


def test_seeded_runs_repeat_and_different_seeds_differ():
    batch = torch.randint(0, 256, (8, 3, 40, 36), dtype=torch.uint8)
    a, b = augment(3), augment(3)
    first, second = a(batch), b(batch)
    assert torch.equal(first, second)
    assert torch.equal(a(batch), b(batch))  # and so do the batches after them
    assert not torch.equal(first, augment(4)(batch))
    assert not torch.equal(first, a(batch))  # a generator moves on


def test_flip_mirrors_about_half_the_images_and_none_without_it():
    batch = torch.randint(0, 256, (400, 1, 16, 16), dtype=torch.uint8)
    plain = batch.float() / 255

    def mirrored(**options):
        whole = GpuAugment(16, [0], [1], scale=(1, 1), ratio=(1, 1),  # the whole image
                           generator=torch.Generator().manual_seed(0), **options)
        out = whole(batch)
        same = (out - plain).abs().amax(dim=(1, 2, 3)) < 1e-5
        flipped = (out - plain.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
        assert (same | flipped).all()
        return int((flipped & ~same).sum())

    assert 160 < mirrored() < 240
    assert mirrored(flip=False) == 0


def test_crop_resamples_the_box_it_drew():
    """A box of exactly the output size is a plain copy of those pixels."""
    image = torch.arange(40 * 36, dtype=torch.float32).view(1, 1, 40, 36).to(torch.uint8)
    aug = GpuAugment((30, 20), [0], [1 / 255], flip=False)
    aug.crop_boxes = lambda n, h, w: torch.tensor([[5.0, 7.0, 25.0, 37.0]])
    assert torch.equal(aug(image), image[:, :, 7:37, 5:25].float())


@pytest.mark.parametrize("policy", ["trivialaugment", "randaugment", "autoaugment"])
def test_a_policy_draws_for_each_image_of_the_batch(policy):
    """Eight copies of one image, the crop the whole image and no flip: what tells them
    apart is the policy, drawn image by image (one draw for the batch would keep them equal);
    the policy's ops act on the uint8 crops, as the CPU path's do."""
    image = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    torch.manual_seed(0)
    whole = GpuAugment(16, [0], [1 / 255], scale=(1, 1), ratio=(1, 1), flip=False,
                       policy=policy)
    out = whole(image.expand(8, -1, -1, -1))
    assert torch.equal(out, out.round()) and out.min() >= 0 and out.max() <= 255
    distinct = {tuple(x.flatten().tolist()) for x in out}
    assert len(distinct) >= 4
    plain = GpuAugment(16, [0], [1 / 255], scale=(1, 1), ratio=(1, 1), flip=False)
    assert torch.equal(plain(image.expand(8, -1, -1, -1)), image.expand(8, -1, -1, -1).float())


@pytest.mark.parametrize("policy", ["trivialaugment", "randaugment", "autoaugment"])
def test_policies_work_on_grayscale_images_on_both_paths(policy):
    """1-channel images (the digits, grayscale specs) go through every policy, on the CPU
    transforms (PIL images) and on GpuAugment (uint8 tensors), and come out changed."""
    from archdsl.train.images import transforms

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L")
    torch.manual_seed(0)
    cpu = transforms((8, 8), [0.5], [0.25], True, policy, flip=False)
    plain = transforms((8, 8), [0.5], [0.25], False, "none", flip=False)(image)
    outs = [cpu(image) for _ in range(20)]
    assert all(x.shape == (1, 8, 8) for x in outs) and len({x.sum().item() for x in outs}) > 10
    batch = torch.from_numpy(np.array(image)).expand(20, 1, 12, 12)
    gpu = GpuAugment(8, [0.5], [0.25], flip=False, policy=policy)(batch)
    assert gpu.shape == (20, 1, 8, 8) and not torch.allclose(gpu[0], plain)


def test_erasing_fills_a_rectangle_of_some_images_with_zero_and_eval_mode_never():
    batch = torch.randint(1, 256, (40, 3, 20, 20), dtype=torch.uint8)
    torch.manual_seed(0)
    aug = GpuAugment(20, [0, 0, 0], [1 / 255] * 3, scale=(1, 1), ratio=(1, 1), flip=False,
                     erasing=0.5)
    out = aug(batch)
    zero = (out == 0).all(1)  # N x H x W: erased pixels (no input pixel is 0)
    hit = zero.flatten(1).any(1)
    assert 8 < int(hit.sum()) < 32  # about half of 40
    for x, z in zip(out[hit], zero[hit]):
        rows, cols = z.any(1).nonzero().flatten(), z.any(0).nonzero().flatten()
        assert z[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()  # one rectangle
    assert torch.equal(out[~hit], batch[~hit].float())
    assert not (aug.eval()(batch) == 0).all(1).any()


def test_policy_none_only_resizes_in_training_mode_but_still_erases():
    batch = torch.randint(1, 256, (6, 3, 30, 26), dtype=torch.uint8)
    none = GpuAugment((16, 12), MEAN, STD, policy="none")
    assert torch.equal(none(batch), none.eval()(batch))
    torch.manual_seed(1)
    erasing = GpuAugment((16, 12), MEAN, STD, policy="none", erasing=1.0)
    assert (erasing(batch) == 0).all(1).flatten(1).any(1).all()


def test_synthetic_source_gives_balanced_classes_and_a_stratified_split():
    data = load_dataset("synthetic:200x5", val_split=0.1, seed=0)
    assert data.classes == [f"class{c}" for c in range(5)]
    assert len(data.train) + len(data.val) == 200
    assert np.bincount([s.label for s in data.val]).tolist() == [4] * 5
    assert np.bincount([s.label for s in data.train]).tolist() == [36] * 5
    s = data.train[0]
    assert s.path is None and s.pixels.dtype == np.uint8 and s.pixels.shape == (256, 256, 3)
    assert decode(s, 3).size == (256, 256)
    assert load_dataset("synthetic:20", channels=1).train[0].pixels.shape == (256, 256)
    assert len(load_dataset("synthetic:30").classes) == 10
    for bad in ("synthetic:x", "synthetic:1", "synthetic:10x1", "synthetic:10x"):
        with pytest.raises(DataError, match="synthetic:NxK"):
            load_dataset(bad)


def test_synthetic_samples_are_seeded_and_the_classes_differ():
    a, b = synthetic_samples(40, 4, 3, (16, 12), seed=1), synthetic_samples(40, 4, 3, (16, 12), 1)
    assert all(np.array_equal(x.pixels, y.pixels) for x, y in zip(a, b))
    assert not np.array_equal(a[0].pixels, synthetic_samples(40, 4, 3, (16, 12), 2)[0].pixels)
    assert a[0].pixels.shape == (16, 12, 3)
    means = [np.mean([s.pixels.mean(axis=(0, 1)) for s in a if s.label == c], axis=0)
             for c in range(4)]
    assert min(np.abs(means[i] - means[j]).max() for i in range(4) for j in range(i)) > 2


def test_cache_and_augment_make_a_training_batch(images):
    cache = CachedImages(images, 3, (36, 36))
    aug = GpuAugment(32, MEAN, STD, generator=torch.Generator().manual_seed(0))
    pixels, labels = cache.take(torch.arange(len(images)))
    assert aug(pixels).shape == (len(images), 3, 32, 32)
    assert labels.tolist() == [s.label for s in images]
