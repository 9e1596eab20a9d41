"""Build edgeq's demo model: a tiny classifier of simple shapes, trained here in plain numpy.

    python tools/make_demo_model.py            # writes edgeq/data/demo_shapes.*

Images are 32x32 RGB in [0, 1], drawn procedurally: a circle, square, triangle or cross at a
random place, size and colour on a random background, or horizontal / vertical stripes, plus
noise. The network is the shape of a MobileNet block, small enough to train on a CPU in seconds:

    CONV_2D 3x3/2 (RELU) -> DEPTHWISE_CONV_2D 3x3 (RELU6) -> CONV_2D 1x1 (RELU)
    -> MEAN over H,W -> FULLY_CONNECTED -> SOFTMAX

Forward and backward passes are written out below (NHWC, the layout TFLite uses, so the weights
go into the file with a transpose at most). Everything is seeded: on one machine every run
writes the same bytes (another BLAS may round differently in the last bits). The model is
written with edgeq's own writer and, when LiteRT is installed, run by LiteRT to check that the
file computes what the numpy model computes.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# One BLAS thread: the matrices here are small, so threads only add contention (badly so on a
# busy machine), and a fixed summation order keeps the output the same from run to run.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "edgeq" / "data"
MODEL_PATH = DATA / "demo_shapes.tflite"
LABELS_PATH = DATA / "demo_shapes_labels.txt"
INPUTS_PATH = DATA / "demo_shapes_inputs.npz"

LABELS = ["circle", "square", "triangle", "cross", "horizontal stripes", "vertical stripes"]
SIZE = 32
C1, C2 = 32, 48  # channels after the first conv / after the 1x1 conv
TRAIN_SEED, TEST_SEED, SAMPLE_SEED, INIT_SEED = 1, 2, 3, 4


# -- images ------------------------------------------------------------------------------------
def _colours(rng):
    """Background and foreground colours that differ clearly in brightness (either way round)."""
    while True:
        bg, fg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if abs(bg.mean() - fg.mean()) > 0.25:
            return bg, fg


def _mask(kind: int, rng) -> np.ndarray:
    """Coverage in [0, 1] of the shape, drawn at 2x and averaged down for smooth edges."""
    s = 2 * SIZE
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    if kind >= 4:  # stripes fill the image
        period = rng.uniform(8, 16)
        coord = yy if kind == 4 else xx
        m = ((coord + rng.uniform(0, period)) % period) < period / 2
    else:
        r = rng.uniform(0.22, 0.38) * s
        cy, cx = rng.uniform(r + 2, s - r - 2, 2)
        dy, dx = yy - cy, xx - cx
        if kind == 0:
            m = dy * dy + dx * dx <= r * r
        elif kind == 1:
            h = r * 0.85
            m = (np.abs(dy) <= h) & (np.abs(dx) <= h)
        elif kind == 2:  # upright triangle: apex at the top, base at the bottom
            top, base = cy - r, cy + 0.8 * r
            half = (dy + r) / (1.8 * r) * r  # half width grows from 0 at the apex to r at the base
            m = (yy >= top) & (yy <= base) & (np.abs(dx) <= half)
        else:
            t = r * rng.uniform(0.28, 0.4)
            m = ((np.abs(dy) <= r) & (np.abs(dx) <= t)) | ((np.abs(dx) <= r) & (np.abs(dy) <= t))
    m = m.astype(np.float32)
    return m.reshape(SIZE, 2, SIZE, 2).mean(axis=(1, 3))


def make_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images (float32 [n, 32, 32, 3] in [0, 1], multiples of 1/255) and their labels (int64),
    classes balanced."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(LABELS)
    rng.shuffle(labels)
    images = np.empty((n, SIZE, SIZE, 3), np.float32)
    for i, kind in enumerate(labels):
        bg, fg = _colours(rng)
        m = _mask(int(kind), rng)[..., None]
        img = bg * (1 - m) + fg * m + rng.normal(0, 0.04, (SIZE, SIZE, 3))
        images[i] = np.clip(img, 0, 1)
    # 8-bit levels, as a camera or an image file would give (and the samples compress 2x).
    images = np.round(images * 255) / np.float32(255)
    return images, labels.astype(np.int64)


# -- the network -------------------------------------------------------------------------------
def init_params(seed: int = INIT_SEED) -> dict:
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return (rng.normal(0, np.sqrt(2.0 / fan_in), shape)).astype(np.float32)

    return {
        "w1": he((3, 3, 3, C1), 27), "b1": np.zeros(C1, np.float32),  # HWIO
        "wd": he((3, 3, C1), 9), "bd": np.zeros(C1, np.float32),  # HWC
        "w3": he((C1, C2), C1), "b3": np.zeros(C2, np.float32),  # IO
        "wf": he((C2, len(LABELS)), C2), "bf": np.zeros(len(LABELS), np.float32),  # IO
    }


def _conv1_patches(x):
    """3x3 stride-2 patches with TFLite's SAME padding: 32 -> 16 pads one pixel after, none before."""
    xp = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    out = SIZE // 2
    cols = [xp[:, ky:ky + 2 * out:2, kx:kx + 2 * out:2, :] for ky in range(3) for kx in range(3)]
    return np.stack(cols, axis=3).reshape(x.shape[0], out, out, 27)  # (ky, kx, c) order


def forward(p: dict, x: np.ndarray, keep: bool = False):
    cols = _conv1_patches(x)
    a1 = cols @ p["w1"].reshape(27, C1) + p["b1"]
    h1 = np.maximum(a1, 0)
    h1p = np.pad(h1, ((0, 0), (1, 1), (1, 1), (0, 0)))
    n = h1.shape[1]
    a2 = np.zeros_like(h1)
    for ky in range(3):
        for kx in range(3):
            a2 += h1p[:, ky:ky + n, kx:kx + n, :] * p["wd"][ky, kx]
    a2 += p["bd"]
    h2 = np.clip(a2, 0, 6)
    a3 = h2 @ p["w3"] + p["b3"]
    h3 = np.maximum(a3, 0)
    pooled = h3.mean(axis=(1, 2))
    logits = pooled @ p["wf"] + p["bf"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    if not keep:
        return probs
    return probs, dict(cols=cols, a1=a1, h1p=h1p, a2=a2, h2=h2, a3=a3, pooled=pooled)


def loss_and_grads(p: dict, x: np.ndarray, y: np.ndarray):
    probs, c = forward(p, x, keep=True)
    n = x.shape[0]
    loss = -np.log(probs[np.arange(n), y] + 1e-9).mean()
    g = {}
    dlogits = probs.copy()
    dlogits[np.arange(n), y] -= 1
    dlogits /= n
    g["wf"] = c["pooled"].T @ dlogits
    g["bf"] = dlogits.sum(0)
    dpooled = dlogits @ p["wf"].T
    hw = c["a3"].shape[1] * c["a3"].shape[2]
    da3 = (c["a3"] > 0) * (dpooled[:, None, None, :] / hw)
    g["w3"] = np.einsum("nhwi,nhwo->io", c["h2"], da3, optimize=True)
    g["b3"] = da3.sum((0, 1, 2))
    dh2 = da3 @ p["w3"].T
    da2 = dh2 * ((c["a2"] > 0) & (c["a2"] < 6))
    g["bd"] = da2.sum((0, 1, 2))
    side = da2.shape[1]
    gwd = np.zeros_like(p["wd"])
    dh1p = np.zeros_like(c["h1p"])
    for ky in range(3):
        for kx in range(3):
            window = c["h1p"][:, ky:ky + side, kx:kx + side, :]
            gwd[ky, kx] = (window * da2).sum((0, 1, 2))
            dh1p[:, ky:ky + side, kx:kx + side, :] += da2 * p["wd"][ky, kx]
    g["wd"] = gwd
    da1 = dh1p[:, 1:-1, 1:-1, :] * (c["a1"] > 0)
    g["w1"] = (c["cols"].reshape(-1, 27).T @ da1.reshape(-1, C1)).reshape(3, 3, 3, C1)
    g["b1"] = da1.sum((0, 1, 2))
    return loss, g


def accuracy(p: dict, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    pred = np.concatenate([forward(p, x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == y).mean())


def train(n_train: int = 6000, epochs: int = 8, batch: int = 50, lr: float = 1e-2,
          log=print) -> dict:
    """Adam on cross-entropy, with the learning rate decayed by a cosine over the run."""
    x, y = make_images(n_train, TRAIN_SEED)
    p = init_params()
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    rng = np.random.default_rng(TRAIN_SEED + 100)
    steps = epochs * (n_train // batch)
    t = 0
    for epoch in range(epochs):
        order = rng.permutation(n_train)
        total = 0.0
        for i in range(0, n_train - batch + 1, batch):
            idx = order[i:i + batch]
            loss, g = loss_and_grads(p, x[idx], y[idx])
            total += loss
            t += 1
            step_lr = lr * 0.5 * (1 + np.cos(np.pi * t / steps))
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k]
                mh = m[k] / (1 - b1 ** t)
                vh = v[k] / (1 - b2 ** t)
                p[k] = (p[k] - step_lr * mh / (np.sqrt(vh) + eps)).astype(np.float32)
        log(f"epoch {epoch + 1:2d}: loss {total / (n_train // batch):.3f}")
    return p


# -- the .tflite file --------------------------------------------------------------------------
def build_model(p: dict) -> bytes:
    """The trained network as a .tflite flatbuffer, written by edgeq's own writer."""
    from edgeq.tflite.schema import BuiltinOp
    from edgeq.tflite.writer import ModelBuilder

    f32 = np.dtype(np.float32)
    half, n_cls = SIZE // 2, len(LABELS)
    b = ModelBuilder(description="edgeq demo: 32x32 RGB shapes classifier "
                     f"({', '.join(LABELS)}); input in [0, 1]")

    def const(name, value):
        value = np.ascontiguousarray(value, np.float32)
        return b.add_tensor(name, value.shape, f32, data=value)

    image = b.add_tensor("image", (1, SIZE, SIZE, 3), f32)
    # TFLite filter layouts: CONV_2D OHWI, DEPTHWISE_CONV_2D [1, H, W, C], FULLY_CONNECTED [out, in].
    w1 = const("conv1/filter", p["w1"].transpose(3, 0, 1, 2))
    b1 = const("conv1/bias", p["b1"])
    wd = const("dwconv/filter", p["wd"][None])
    bd = const("dwconv/bias", p["bd"])
    w3 = const("pwconv/filter", p["w3"].T.reshape(C2, 1, 1, C1))
    b3 = const("pwconv/bias", p["b3"])
    axes = b.add_tensor("mean/axes", (2,), np.dtype(np.int32), data=np.array([1, 2], np.int32))
    wf = const("logits/weights", p["wf"].T)
    bf = const("logits/bias", p["bf"])

    h1 = b.add_tensor("conv1", (1, half, half, C1), f32)
    h2 = b.add_tensor("dwconv", (1, half, half, C1), f32)
    h3 = b.add_tensor("pwconv", (1, half, half, C2), f32)
    pooled = b.add_tensor("pooled", (1, C2), f32)
    logits = b.add_tensor("logits", (1, n_cls), f32)
    probs = b.add_tensor("probabilities", (1, n_cls), f32)

    SAME, RELU, RELU6, NONE = 0, 1, 3, 0
    b.add_operator(BuiltinOp.CONV_2D, [image, w1, b1], [h1],
                   options=dict(padding=SAME, stride_w=2, stride_h=2,
                                fused_activation_function=RELU))
    b.add_operator(BuiltinOp.DEPTHWISE_CONV_2D, [h1, wd, bd], [h2],
                   options=dict(padding=SAME, stride_w=1, stride_h=1, depth_multiplier=1,
                                fused_activation_function=RELU6))
    b.add_operator(BuiltinOp.CONV_2D, [h2, w3, b3], [h3],
                   options=dict(padding=SAME, stride_w=1, stride_h=1,
                                fused_activation_function=RELU))
    b.add_operator(BuiltinOp.MEAN, [h3, axes], [pooled], options=dict(keep_dims=False))
    b.add_operator(BuiltinOp.FULLY_CONNECTED, [pooled, wf, bf], [logits],
                   options=dict(fused_activation_function=NONE))
    b.add_operator(BuiltinOp.SOFTMAX, [logits], [probs], options=dict(beta=1.0))
    b.set_inputs([image])
    b.set_outputs([probs])
    b.add_metadata("labels", "\n".join(LABELS).encode() + b"\n")
    return b.build()


def params_from_model(model: bytes) -> dict:
    """Read the weights back out of a written model (the inverse of build_model's layouts)."""
    from edgeq.tflite.reader import read_model

    tensors = {t.name: t.data for t in read_model(model).subgraphs[0].tensors}
    return {
        "w1": tensors["conv1/filter"].transpose(1, 2, 3, 0), "b1": tensors["conv1/bias"],
        "wd": tensors["dwconv/filter"][0], "bd": tensors["dwconv/bias"],
        "w3": tensors["pwconv/filter"].reshape(C2, C1).T, "b3": tensors["pwconv/bias"],
        "wf": tensors["logits/weights"].T, "bf": tensors["logits/bias"],
    }


def run_litert(model: bytes, images: np.ndarray) -> np.ndarray:
    """Probabilities from LiteRT, one image at a time as the model's batch is 1."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()
    probs = []
    for img in images:
        it.set_tensor(inp["index"], img[None].astype(np.float32))
        it.invoke()
        probs.append(it.get_tensor(out["index"])[0])
    return np.array(probs)


def litert_available() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DATA,
                        help=f"where to write the model, labels and samples (default {DATA})")
    parser.add_argument("--samples", type=int, default=12, help="sample images to ship")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # edgeq's writer, when run from a source tree

    start = time.perf_counter()
    p = train()
    x_test, y_test = make_images(2000, TEST_SEED)
    acc = accuracy(p, x_test, y_test)
    print(f"numpy model: held-out accuracy {acc:.4f} on {len(y_test)} fresh images "
          f"({time.perf_counter() - start:.1f} s)")
    if acc <= 0.9:
        raise SystemExit(f"accuracy {acc:.4f} is not above 0.9; not writing the model")

    model = build_model(p)
    samples, sample_labels = make_images(args.samples, SAMPLE_SEED)
    predicted = forward(p, samples).argmax(1)
    if not np.array_equal(predicted, sample_labels):
        raise SystemExit(f"the model misclassifies shipped samples: {predicted} vs "
                         f"{sample_labels}")

    if litert_available():
        check = x_test[:300]
        ref = forward(p, check)
        got = run_litert(model, check)
        err = float(np.abs(got - ref).max())
        agree = float((got.argmax(1) == ref.argmax(1)).mean())
        print(f"LiteRT on the written model: max |p - p_numpy| = {err:.2e}, "
              f"same class on {agree:.1%} of {len(check)} images")
        if err > 1e-4 or agree < 1.0:
            raise SystemExit("LiteRT disagrees with the numpy model")
    else:
        print("LiteRT (ai_edge_litert) is not installed: skipped checking the file with it")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / MODEL_PATH.name).write_bytes(model)
    (args.out_dir / LABELS_PATH.name).write_text("\n".join(LABELS) + "\n")
    np.savez_compressed(args.out_dir / INPUTS_PATH.name, images=samples, labels=sample_labels)
    print(f"wrote {args.out_dir / MODEL_PATH.name} ({len(model):,} bytes), "
          f"{LABELS_PATH.name}, {INPUTS_PATH.name} ({len(samples)} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
