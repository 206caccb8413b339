"""Segmentation data (train/seg_data.py, seg_masks.py, shapes.py): each layout recognised and
read, classes.txt, palettes and the ignore value kept, every mistake in the data refused with
a message that names the file and the fix, and the built-in `shapes`."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archdsl.train import shapes
from archdsl.train.data import DataError, Sample, changes_since, fingerprint
from archdsl.train.seg_data import decode_mask, is_segmentation, load_segmentation
from helpers_seg import write_mask, write_segmentation_folder


def rgb(path: Path, size=(6, 4), colour=(10, 20, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def grey_mask(path: Path, values) -> Path:
    return write_mask(path, np.asarray(values, dtype=np.uint8), palette=False)


def pair(root: Path, name: str, mask, suffix=".png") -> None:
    mask = np.asarray(mask, dtype=np.uint8)
    rgb(root / "images" / f"{name}{suffix}", size=mask.shape[::-1])
    grey_mask(root / "masks" / f"{name}.png", mask)


def error(source, **kw) -> str:
    with pytest.raises(DataError) as err:
        load_segmentation(str(source), **kw)
    return str(err.value)


# ----------------------------------------------------------------------------- detection


def test_each_layout_is_recognised_and_classification_data_is_not(tmp_path):
    flat = write_segmentation_folder(tmp_path / "flat")
    split = write_segmentation_folder(tmp_path / "split", layout="train_val")
    (tmp_path / "seg.csv").write_text("Image,Mask\nflat/images/img000.png,flat/masks/img000.png\n")
    (tmp_path / "cls.csv").write_text("path,label\nflat/images/img000.png,cat\n")
    rgb(tmp_path / "classes" / "cat" / "a.png")
    assert is_segmentation(str(flat)) and is_segmentation(str(split))
    assert is_segmentation(str(tmp_path / "seg.csv"))
    assert is_segmentation("shapes") and is_segmentation("shapes:100")
    assert not is_segmentation(str(tmp_path / "cls.csv"))
    assert not is_segmentation(str(tmp_path / "classes"))
    assert not is_segmentation("digits")
    (tmp_path / "shapes").mkdir()  # a folder of that name is read as the folder it is
    assert not is_segmentation(str(tmp_path / "shapes"))


# ----------------------------------------------------------------------------- folders


def test_images_and_masks_are_paired_and_split_by_seed(tmp_path):
    root = write_segmentation_folder(tmp_path, n=10, image_suffix=".jpg")
    data = load_segmentation(str(root), val_split=0.3, seed=1)
    assert (data.task, data.split, data.root) == ("segment", "val_split", root)
    assert (len(data.train), len(data.val)) == (7, 3)
    for s in data.train + data.val:
        assert s.label == 0 and s.mask == root / "masks" / (s.path.stem + ".png")
    assert data.classes == ["class0", "class1", "class2", "class3"]  # largest label + 1
    assert data.palette[:12] == shapes.PALETTE
    again = load_segmentation(str(root), val_split=0.3, seed=1)
    other = load_segmentation(str(root), val_split=0.3, seed=2)
    assert [s.path for s in again.val] == [s.path for s in data.val]
    assert {s.path for s in other.val} != {s.path for s in data.val}


def test_train_and_val_folders_are_the_split(tmp_path):
    root = write_segmentation_folder(tmp_path, n=8, layout="train_val", palette=False,
                                     classes_file=True)
    data = load_segmentation(str(root), channels=1)
    assert data.split == "folders" and (len(data.train), len(data.val)) == (6, 2)
    assert all("val" in s.path.parts for s in data.val)
    assert data.classes == shapes.CLASSES and data.palette is None  # grey masks, no colours
    mask = decode_mask(data.train[0], len(data.classes))
    assert mask.dtype == np.uint8 and mask.shape == (16, 16)


def test_masks_in_sub_folders_pair_by_their_path(tmp_path):
    pair(tmp_path / "a", "x", [[0, 1]])
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "city").mkdir()
    (tmp_path / "a" / "images" / "x.png").rename(tmp_path / "images" / "city" / "x.png")
    grey_mask(tmp_path / "masks" / "city" / "x.png", [[0, 1]])
    pair(tmp_path, "y", [[1, 0]])
    data = load_segmentation(str(tmp_path), val_split=0)
    assert sorted(s.mask.relative_to(tmp_path).as_posix() for s in data.train) == [
        "masks/city/x.png", "masks/y.png"]


def test_ignore_value_is_kept_and_never_a_class(tmp_path):
    pair(tmp_path, "a", [[0, 255, 2], [1, 255, 0]])
    pair(tmp_path, "b", [[0, 1, 1], [2, 2, 255]])
    data = load_segmentation(str(tmp_path), val_split=0)
    assert data.classes == ["class0", "class1", "class2"]
    sample = next(s for s in data.train if s.path.stem == "a")
    assert decode_mask(sample, 3).tolist() == [[0, 255, 2], [1, 255, 0]]


def test_an_unreadable_image_is_skipped_with_its_reason(tmp_path):
    root = write_segmentation_folder(tmp_path, n=4)
    (root / "images" / "broken.png").write_bytes(b"not an image")
    data = load_segmentation(str(root), val_split=0)
    assert data.skipped == [(str(root / "images" / "broken.png"), "not an image")]
    assert len(data.train) == 4


def test_a_mask_without_an_image_is_left_out_with_a_warning(tmp_path):
    root = write_segmentation_folder(tmp_path, n=3)
    grey_mask(root / "masks" / "lost.png", [[0, 1]])
    data = load_segmentation(str(root), val_split=0)
    assert len(data.train) == 3
    assert data.warnings == [f"1 mask(s) in {root / 'masks'} have no image of their name in "
                             f"{root / 'images'} (the first: lost.png); they are left out"]


# ----------------------------------------------------------------------------- classes.txt


def test_classes_txt_names_colours_numbers_and_ignore_colour(tmp_path):
    (tmp_path / "classes.txt").write_text(
        "# label map\n0: background 0 0 0\n\n1: road #804080\n2 traffic light, 250,170,30\n"
        "255 ignore 255 255 255\n")
    colours = {(0, 0, 0): 0, (128, 64, 128): 1, (250, 170, 30): 2, (255, 255, 255): 255}
    labels = np.array([[0, 1, 2, 255], [2, 2, 1, 0]], dtype=np.uint8)
    lookup = {v: k for k, v in colours.items()}
    rgb_mask = np.array([[lookup[v] for v in row] for row in labels], dtype=np.uint8)
    rgb(tmp_path / "images" / "a.jpg", size=(4, 2))
    (tmp_path / "masks").mkdir()
    Image.fromarray(rgb_mask, "RGB").save(tmp_path / "masks" / "a.png")
    data = load_segmentation(str(tmp_path), val_split=0)
    assert data.classes == ["background", "road", "traffic light"]
    assert data.palette[:9] == [0, 0, 0, 128, 64, 128, 250, 170, 30]
    assert data.palette[3 * 255:] == [255, 255, 255]
    assert decode_mask(data.train[0], 3, data.palette).tolist() == labels.tolist()


def test_a_label_beyond_classes_txt_names_the_mask_and_the_fix(tmp_path):
    pair(tmp_path, "a", [[0, 1], [3, 255]])
    (tmp_path / "classes.txt").write_text("sky\nsea\nsand\n")
    assert error(tmp_path) == (
        f"the mask {tmp_path / 'masks' / 'a.png'} has pixels labelled 3 (the first at x=0, "
        "y=1), beyond the 3 classes (labels 0 to 2; 255 marks pixels to ignore); add the class "
        f"to {tmp_path / 'classes.txt'}, or paint those pixels 255 to leave them out")


@pytest.mark.parametrize("text, fragment", [
    ("sky\nsea\nsky\n", "classes.txt:3: the class 'sky' is named twice"),
    ("sky 1 2 3\nsea\n", "the class 'sky' has a colour but 'sea' has none"),
    ("sky 1 2 3\nsea 1 2 3\n", "'sky' and 'sea' have one colour"),
    ("0 sky\n2 sea\n", "classes.txt:2: label 2 where 1 comes next"),
    ("sky\nignore\n", "classes.txt:2: `ignore` is not a class"),
    ("# nothing\n\n", "names no class"),
    ("sky\n", "names one class; segmentation needs at least two"),
])
def test_a_wrong_classes_txt_names_its_line(tmp_path, text, fragment):
    pair(tmp_path, "a", [[0, 1]])
    (tmp_path / "classes.txt").write_text(text)
    assert fragment in error(tmp_path)


# ----------------------------------------------------------------------------- errors


def test_a_mask_of_another_size_is_refused_naming_both_files(tmp_path):
    rgb(tmp_path / "images" / "a.png", size=(6, 4))
    grey_mask(tmp_path / "masks" / "a.png", np.zeros((4, 5)))
    assert error(tmp_path) == (
        f"the mask {tmp_path / 'masks' / 'a.png'} is 5x4 pixels but its image "
        f"{tmp_path / 'images' / 'a.png'} is 6x4; a mask labels each pixel of its image, so "
        "save it at the image's size")


def test_images_without_masks_are_refused_naming_the_first(tmp_path):
    pair(tmp_path, "a", [[0, 1]])
    rgb(tmp_path / "images" / "b.jpg")
    rgb(tmp_path / "images" / "c.jpg")
    assert error(tmp_path) == (
        f"2 image(s) have no mask (the first: {tmp_path / 'images' / 'b.jpg'}, whose mask would "
        f"be {tmp_path / 'masks' / 'b.png'}); add each one's mask, a PNG of the same name, or "
        "move the image out of the data set")


def test_a_mask_that_is_not_a_readable_png_is_refused(tmp_path):
    rgb(tmp_path / "images" / "a.png", size=(2, 1))
    (tmp_path / "masks").mkdir()
    Image.new("L", (2, 1)).save(tmp_path / "masks" / "a.jpg")
    message = error(tmp_path)
    assert message.startswith(f"the mask {tmp_path / 'masks' / 'a.jpg'} is a JPEG file, not a "
                              "PNG (JPEG's compression changes pixel values")
    (tmp_path / "masks" / "a.jpg").rename(tmp_path / "masks" / "a.png")
    (tmp_path / "masks" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert error(tmp_path).startswith(f"the mask {tmp_path / 'masks' / 'a.png'} cannot be read "
                                      "as a PNG (")


def test_colour_masks_without_colours_and_black_and_white_masks_are_refused(tmp_path):
    rgb(tmp_path / "images" / "a.png", size=(2, 1))
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.array([[[9, 0, 0], [0, 9, 0]]], np.uint8)).save(tmp_path / "masks" / "a.png")
    assert "is an RGB image, whose colours are not class indices" in error(tmp_path)
    grey_mask(tmp_path / "masks" / "a.png", [[0, 255]])
    assert "hold no label but 0 and 255" in error(tmp_path)


def test_empty_folders_say_what_to_put_in_them(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    assert error(tmp_path).startswith(f"{tmp_path / 'images'} is empty; put the images in it")
    rgb(tmp_path / "images" / "a.png")
    assert error(tmp_path).startswith(f"{tmp_path / 'masks'} is empty; put each image's mask")


def test_train_without_val_and_two_images_of_one_name_are_refused(tmp_path):
    rgb(tmp_path / "cat" / "a.png")
    assert error(tmp_path).startswith(f"{tmp_path} has no images/ and masks/ folders")
    write_segmentation_folder(tmp_path / "train", n=2)
    assert "has train/ with images/ and masks/ but no val/" in error(tmp_path)
    rgb(tmp_path / "train" / "images" / "img000.jpg")
    (tmp_path / "val").mkdir()
    write_segmentation_folder(tmp_path / "val", n=1)
    images = tmp_path / "train" / "images"
    assert error(tmp_path).startswith(f"{images / 'img000.jpg'} and {images / 'img000.png'} have "
                                      "one name, so it is not clear which one the mask")


# ----------------------------------------------------------------------------- tables


def test_a_table_with_and_without_split(tmp_path):
    root = write_segmentation_folder(tmp_path, n=6)
    rows = [f"images/img{i:03d}.png\tmasks/img{i:03d}.png\t{'val' if i < 2 else 'train'}"
            for i in range(6)]
    (root / "split.tsv").write_text("Image\tMask Path\tSplit\n" + "\n".join(rows) + "\n")
    data = load_segmentation(str(root / "split.tsv"))
    assert data.split == "table" and (len(data.train), len(data.val)) == (4, 2)
    assert data.root == root and data.val[0].mask == root / "masks" / "img000.png"
    (root / "plain.csv").write_text("mask,image\n" + "".join(
        f"masks/img{i:03d}.png,images/img{i:03d}.png\n" for i in range(6)) +
        "masks/img000.png,./images/img000.png\nmasks/x.png,images/missing.png\n")
    data = load_segmentation(str(root / "plain.csv"), val_split=0.5)
    assert data.split == "val_split" and (len(data.train), len(data.val)) == (3, 3)
    assert data.skipped == [(str(root / "images" / "missing.png"), "no such file")]
    assert "1 row(s) of" in data.warnings[0]


def test_a_table_with_missing_columns_or_masks_is_refused(tmp_path):
    root = write_segmentation_folder(tmp_path, n=2)
    (root / "t.csv").write_text("picture,mask\nimages/img000.png,masks/img000.png\n")
    assert error(root / "t.csv") == (
        f"{root / 't.csv'}:1: an unknown column 'picture'; a table of images and masks has the "
        "columns `image,mask` or `image,mask,split`")
    (root / "t.csv").write_text("image,split\nimages/img000.png,train\n")
    assert "names no mask column" in error(root / "t.csv")
    (root / "t.csv").write_text("image,mask\nimages/img000.png,masks/nope.png\n")
    assert error(root / "t.csv").startswith(
        f"{root / 't.csv'}:2: the mask {root / 'masks' / 'nope.png'} of "
        f"{root / 'images' / 'img000.png'} does not exist")


# ----------------------------------------------------------------------------- decode_mask


def test_decode_mask_refuses_a_label_beyond_the_classes(tmp_path):
    mask = grey_mask(tmp_path / "m.png", [[0, 4, 255]])
    sample = Sample(0, path=tmp_path / "i.png", mask=mask)
    assert decode_mask(sample).tolist() == [[0, 4, 255]]
    with pytest.raises(DataError, match=r"the mask .*m\.png has pixels labelled 4 \(the first "
                                        r"at x=1, y=0\), beyond the 3 classes"):
        decode_mask(sample, 3)


def test_fingerprint_sees_an_added_image_and_ignores_built_in_data(tmp_path):
    root = write_segmentation_folder(tmp_path, n=4)
    saved = fingerprint(load_segmentation(str(root)))
    assert changes_since(saved, load_segmentation(str(root))) is None
    pair(root, "zz", np.zeros((16, 16)))
    assert "changed since the run started" in changes_since(saved, load_segmentation(str(root)))
    assert fingerprint(load_segmentation("shapes")) is None


# ----------------------------------------------------------------------------- shapes


def test_shapes_is_deterministic_with_every_class_and_a_seeded_split():
    data = load_segmentation("shapes", val_split=0.2, seed=0)
    assert data.classes == ["background", "circle", "square", "triangle"]
    assert data.source == ("shapes (built in: 480 64x64 images of circles, squares and "
                           "triangles on textured backgrounds)")
    assert (len(data.train), len(data.val)) == (384, 96) and data.task == "segment"
    s = data.train[0]
    assert s.pixels.shape == (64, 64, 3) and decode_mask(s, 4).shape == (64, 64)
    for part in (data.train, data.val):
        present = np.zeros(4, bool)
        present[np.unique(np.stack([x.mask_pixels for x in part]))] = True
        assert present.all()
    images, masks = shapes.generate(480, 64, 0)
    shapes.generate.cache_clear()
    again, again_masks = shapes.generate(480, 64, 0)
    assert (images == again).all() and (masks == again_masks).all()
    other = load_segmentation("shapes", val_split=0.2, seed=1)
    assert {id(x.pixels) for x in other.val} != {id(x.pixels) for x in data.val}
    assert len(load_segmentation("shapes:50").train) == 45
    assert "write `shapes`" in error("shapes:1")


def test_shapes_masks_follow_the_drawn_outlines():
    """Across a mask's edge from background to a shape the colour jumps (a shape's colour is
    kept apart from its background's); inside a shape it barely changes."""
    images, masks = shapes.generate(100, 64, 0)
    pixels = images.astype(np.float32)
    jump = np.abs(pixels[:, :, 1:] - pixels[:, :, :-1]).sum(-1)
    left, right = masks[:, :, :-1], masks[:, :, 1:]
    edge = jump[(left == 0) & (right > 0)].mean()
    inside = jump[(left > 0) & (left == right)].mean()
    assert edge > 4 * inside
