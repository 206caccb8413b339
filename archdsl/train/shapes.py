"""The built-in segmentation data set `shapes`: small RGB images of circles, squares and
triangles on textured backgrounds, with a mask giving each pixel's class (0 background, 1
circle, 2 square, 3 triangle). Generated with numpy from a fixed seed, so every machine makes
the same images and nothing is shipped or downloaded.

Each image has a background of one of four textures (noise, stripes, a gradient, checkers),
in random colours, and one to three filled shapes of random size, position, rotation and
colour, a later one drawn over an earlier one where they overlap. A shape's colour is drawn
for each shape and kept apart from its background's, and its fill is only lightly noisy, so
what tells the classes apart is the outline: a network must learn shapes, not colours. The
checkers' squares are smaller than the smallest square, and the stripes run on past the
image, so no texture is a shape.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

CLASSES = ["background", "circle", "square", "triangle"]
# The masks' colours (a flat RGB palette, as PIL's getpalette gives it): black, then colours
# that stay apart from each other and from the image's.
PALETTE = [0, 0, 0, 230, 25, 75, 60, 180, 75, 0, 130, 200]
COUNT = 480  # images in `shapes`
SIZE = 64  # their width and height
SEED = 0  # the generator's seed: the images are the same for every run; the split is not
TEXTURES = ("noise", "stripes", "gradient", "checkers")
NOISE_FIELDS = 97
CONTRAST = 45  # how far a texture's second colour lies from its first, per channel: the
# textures' edges stay fainter than a shape's outline (its colour is kept 90 away)


def describe(n: int = COUNT, size: int = SIZE) -> str:
    """The DataSet's `source` text."""
    return (f"shapes (built in: {n:,} {size}x{size} images of circles, squares and triangles "
            "on textured backgrounds)")


@lru_cache(maxsize=4)
def generate(n: int = COUNT, size: int = SIZE, seed: int = SEED):
    """`n` images (uint8, n x size x size x 3) and their masks (uint8, n x size x size, the
    class index of each pixel), the same for the same arguments. Read-only: they are shared
    between the callers of the cache."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    # noise fields drawn at once and shared (a prime number of them, paired differently)
    pool = min(n, NOISE_FIELDS)
    noise = rng.standard_normal((pool, size, size, 3), dtype=np.float32)
    for i in range(n):
        image = _background(rng, x, y, noise[i % pool], noise[(3 * i + 1) % pool])
        mean = image.mean((0, 1))
        for _ in range(rng.integers(1, 4)):
            label = int(rng.integers(1, len(CLASSES)))
            inside = _shape(rng, label, x, y, size)
            colour = _apart_from(rng, mean)
            np.copyto(image, colour + 6 * noise[(5 * i + 2) % pool], where=inside[..., None])
            masks[i][inside] = label
        images[i] = np.clip(image, 0, 255).astype(np.uint8)
    images.flags.writeable = False
    masks.flags.writeable = False
    return images, masks


def _colour(rng) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _apart_from(rng, mean: np.ndarray) -> np.ndarray:
    """A random colour at least 90 (of 441) away from `mean`, the background's average, so
    that every shape can be seen."""
    for _ in range(20):
        colour = _colour(rng)
        if float(((colour - mean) ** 2).sum()) >= 90 * 90:
            return colour
    return np.where(mean > 127, 0.0, 255.0).astype(np.float32)  # the opposite corner


def _background(rng, x, y, noise, other_noise) -> np.ndarray:
    """A textured background, float32 size x size x 3, with a little noise everywhere
    (`noise` and `other_noise`: two independent standard normal size x size x 3 arrays)."""
    kind = TEXTURES[rng.integers(len(TEXTURES))]
    a = _colour(rng)
    b = np.clip(a + rng.normal(0, CONTRAST, 3), 0, 255).astype(np.float32)  # a's neighbour
    angle = rng.uniform(0, np.pi)
    along = x * np.cos(angle) + y * np.sin(angle)
    if kind == "noise":
        image = a + 28 * other_noise
    elif kind == "stripes":
        period = rng.uniform(4, 10)
        image = np.where((np.sin(2 * np.pi * along / period) > 0)[..., None], a, b)
    elif kind == "gradient":
        t = (along - along.min()) / max(float(along.max() - along.min()), 1e-6)
        image = a + (b - a) * t[..., None]
    else:
        cell = int(rng.integers(3, 7))
        image = np.where((((x // cell) + (y // cell)) % 2 == 0)[..., None], a, b)
    return image.astype(np.float32) + 8 * noise


def _shape(rng, label: int, x, y, size: int) -> np.ndarray:
    """The pixels inside a random shape of class `label` (a boolean size x size map)."""
    scale = size / 64
    cx, cy = rng.uniform(0.15, 0.85, 2) * size
    if label == 1:  # circle
        r = rng.uniform(7, 16) * scale
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    turn = rng.uniform(0, 2 * np.pi)
    if label == 2:  # square: four corners at half-diagonal r
        r = rng.uniform(9, 20) * scale
        corners = [turn + k * np.pi / 2 for k in range(4)]
    else:  # triangle: equilateral, circumradius r
        r = rng.uniform(10, 21) * scale
        corners = [turn + k * 2 * np.pi / 3 for k in range(3)]
    points = [(cx + r * np.cos(t), cy + r * np.sin(t)) for t in corners]
    return _convex(points, x, y)


def _convex(points, x, y) -> np.ndarray:
    """The pixels on the inner side of every edge of a convex polygon given anticlockwise
    (in image coordinates, y down: clockwise on screen)."""
    inside = np.ones(x.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0
    return inside
