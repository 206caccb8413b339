"""Issue 14, recipes: --patience (early stopping that a resume knows) and --class-weights."""

from archdsl.train import TrainConfig, resume, train
from helpers import image_folder, tiny_spec


def noise(folder, counts: dict):
    return image_folder(folder, counts=counts, noise=True)


def test_patience_stops_the_run_and_a_resume_knows(tmp_path):
    data = noise(tmp_path / "d" / "train", {"a": 6, "b": 6})
    noise(tmp_path / "d" / "val", {"a": 2, "b": 2})
    spec = tiny_spec(tmp_path)
    lines = []
    # 4 validation images: the accuracy can rise at most 4 times, so 10 epochs must stop
    run = train(spec, str(data.parent), TrainConfig(epochs=10, batch_size=4, patience=1),
                out=str(tmp_path / "r"), log=lines.append)
    rows = [r.split(",") for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    accuracies = [float(r[4]) for r in rows]
    assert len(rows) < 10
    best = accuracies.index(max(accuracies))
    assert len(rows) - 1 - best == 1  # stopped one epoch without improvement after the best
    assert all(a < b for a, b in zip(accuracies[:best], accuracies[1:best + 1]))
    said = [line for line in lines if line.startswith("--patience 1:")]
    assert said == [f"--patience 1: the validation accuracy has not improved for 1 epoch(s) "
                    f"(best {max(accuracies):.1%}, epoch {best + 1}); stopping after epoch "
                    f"{len(rows)} of 10"]
    again = []
    resume(run, log=again.append)
    assert len((run / "metrics.csv").read_text().splitlines()) == len(rows) + 1
    assert said[0] in again


def test_class_weights_auto_weighs_each_class_by_its_inverse_share(tmp_path):
    import torch

    from archdsl.train import setup as setup_module

    data = noise(tmp_path / "d" / "train", {"a": 9, "b": 3})
    noise(tmp_path / "d" / "val", {"a": 1, "b": 1})
    spec = tiny_spec(tmp_path)
    seen = []
    real = setup_module._loss

    def spy(*args):
        seen.append(real(*args))
        return seen[-1]

    setup_module._loss = spy
    try:
        lines = []
        train(spec, str(data.parent), TrainConfig(epochs=1, batch_size=4, class_weights="auto"),
              out=str(tmp_path / "r"), log=lines.append)
        train(spec, str(data.parent), TrainConfig(epochs=1, batch_size=4, quiet=True),
              out=str(tmp_path / "r2"))
    finally:
        setup_module._loss = real
    assert torch.allclose(seen[0].weight, torch.tensor([12 / (2 * 9), 12 / (2 * 3)]))
    assert seen[1].weight is None
    assert "--class-weights auto: a 0.667 (9 images), b 2 (3 images)" in lines


def test_mixup_and_cutmix_soft_targets_reach_the_loss_and_resume_stays_exact(tmp_path):
    import torch
    from safetensors.torch import load_file

    data = noise(tmp_path / "d", {"a": 8, "b": 8})
    spec = tiny_spec(tmp_path)
    config = dict(batch_size=4, quiet=True, mixup=0.4, cutmix=1.0, schedule="constant")
    full, soft = _targets_trained_on(spec, data, TrainConfig(epochs=2, **config), tmp_path / "f")
    assert len(soft) >= 4 and all(t.shape[1] == 2 for t in soft)  # every step of 2 epochs
    assert all(torch.allclose(t.sum(1), torch.ones(len(t))) for t in soft)
    assert any(((t > 0) & (t < 1)).any() for t in soft)  # mixed, not one-hot
    part = train(spec, str(data), TrainConfig(epochs=1, **config), out=str(tmp_path / "p"))
    resume(part, epochs=2, log=lambda line: None)

    def metrics(run):
        return [r.split(",")[:7] for r in (run / "metrics.csv").read_text().splitlines()]

    assert metrics(part) == metrics(full)
    a, b = load_file(str(full / "last.safetensors")), load_file(str(part / "last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ema_weights_are_measured_saved_and_resumed_exactly(tmp_path):
    import json

    import torch
    from safetensors.torch import load_file

    data = noise(tmp_path / "d", {"a": 8, "b": 8})
    spec = tiny_spec(tmp_path)
    from archdsl.train import inference

    measured = []
    real = inference.evaluate  # what validation calls (task.Classification.validate)

    def spy(model, *args, **kwargs):
        measured.append(model)
        return real(model, *args, **kwargs)

    config = dict(batch_size=4, quiet=True, ema=0.5, schedule="constant")
    inference.evaluate = spy
    try:
        full = train(spec, str(data), TrainConfig(epochs=2, **config), out=str(tmp_path / "f"))
    finally:
        inference.evaluate = real
    ema, raw = load_file(str(full / "ema.safetensors")), load_file(str(full / "last.safetensors"))
    assert set(ema) == set(raw) and not torch.equal(ema["conv1.weight"], raw["conv1.weight"])
    # validation measured the average: the model it was given holds ema.safetensors' weights
    assert len(measured) == 2
    assert all(torch.equal(v, ema[k]) for k, v in measured[-1].state_dict().items())
    best = load_file(str(full / "best.safetensors"))
    assert any(not torch.equal(best[k], raw[k]) for k in raw)  # best is the average's too
    part = train(spec, str(data), TrainConfig(epochs=1, **config), out=str(tmp_path / "p"))
    resume(part, epochs=2, log=lambda line: None)
    again = load_file(str(part / "ema.safetensors"))
    assert all(torch.equal(ema[k], again[k]) for k in ema)
    last = (full / "metrics.csv").read_text().splitlines()[-1].split(",")
    assert last[:7] == (part / "metrics.csv").read_text().splitlines()[-1].split(",")[:7]
    assert json.loads((full / "config.json").read_text())["options"]["ema"] == 0.5


def _targets_trained_on(spec, data, config, out):
    """The run, and the targets of every training step's loss, in order (validation's are
    left out)."""
    from archdsl.train import setup as setup_module

    seen = []
    real = setup_module._loss

    def spy(*args):
        loss = real(*args)

        def recorded(out, target):
            if out.requires_grad:
                seen.append(target.detach().clone())
            return loss(out, target)

        recorded.weight = None
        return recorded

    setup_module._loss = spy
    try:
        run = train(spec, str(data), config, out=str(out))
    finally:
        setup_module._loss = real
    return run, seen


def test_balanced_sampler_draws_each_class_equally_and_resumes_exactly(tmp_path):
    import torch
    from safetensors.torch import load_file

    data = noise(tmp_path / "d" / "train", {"a": 28, "b": 4}).parent
    noise(data / "val", {"a": 2, "b": 2})
    spec = tiny_spec(tmp_path)
    config = dict(batch_size=4, quiet=True, schedule="constant")
    _, shuffled = _targets_trained_on(spec, data, TrainConfig(epochs=4, **config),
                                      tmp_path / "s")
    full, drawn = _targets_trained_on(spec, data, TrainConfig(epochs=4, sampler="balanced",
                                                              **config), tmp_path / "f")
    shuffled, drawn = torch.cat(shuffled).tolist(), torch.cat(drawn).tolist()
    # 28 a and 4 b: a shuffle shows each b once an epoch, an eighth of the images
    assert shuffled.count(1) == 4 * 4 and len(shuffled) == len(drawn) == 4 * 32
    assert 0.4 < drawn.count(1) / len(drawn) < 0.6  # balanced: about half (128 seeded draws)
    part = train(spec, str(data), TrainConfig(epochs=2, sampler="balanced", **config),
                 out=str(tmp_path / "p"))
    resume(part, epochs=4, log=lambda line: None)
    a, b = load_file(str(full / "last.safetensors")), load_file(str(part / "last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_data_summary_counts_each_class_and_flags_imbalance(tmp_path):
    import json

    data = noise(tmp_path / "d" / "train", {"ant": 20, "bee": 2, "cat": 5})
    noise(tmp_path / "d" / "val", {"ant": 3, "bee": 1, "cat": 2})
    spec = tiny_spec(tmp_path, classes=3)
    lines = []
    run = train(spec, str(data.parent), TrainConfig(epochs=1, batch_size=4),
                out=str(tmp_path / "r"), log=lines.append)
    assert lines[1] == ("images per class (train/val): ant 20/3, bee 2/1, cat 5/2; the largest "
                        "class has 10x the images of the smallest: --class-weights auto or "
                        "--sampler balanced evens them out")
    saved = json.loads((run / "config.json").read_text())
    assert saved["class_images"] == {"train": [20, 2, 5], "val": [3, 1, 2]}


def test_many_classes_show_the_fewest_and_the_most():
    from archdsl.train.data import DataSet, Sample, class_counts_line

    classes = [f"c{i:02d}" for i in range(20)]
    train_samples = [Sample(i, pixels=None) for i in range(20) for _ in range(i + 3)]
    data = DataSet(classes, train_samples, [Sample(0, pixels=None)], "made up")
    assert class_counts_line(data) == (
        "images per class (train/val): fewest c00 3/1, c01 4/0, c02 5/0; most c19 22/0, "
        "c18 21/0, c17 20/0 (config.json lists all 20)")
