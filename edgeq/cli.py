"""The `edgeq` command: run a model, inspect a model, describe the installation.

    edgeq run [MODEL] [--input FILE] [--output FILE.npz] [--threads N] [--repeat N]
              [--norm unit|signed|raw]
    edgeq inspect MODEL
    edgeq info

`edgeq run` with no MODEL runs the demo model shipped in edgeq/data on its sample images.
Problems with what the user gave (a missing file, a model edgeq refuses, an input of the wrong
shape) print one line on stderr and exit with status 2; a traceback would mean a bug in edgeq.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"
DEMO_MODEL = DATA_DIR / "demo_shapes.tflite"
DEMO_INPUTS = DATA_DIR / "demo_shapes_inputs.npz"
IMAGE_SUFFIXES = (".png", ".ppm", ".pgm", ".pnm")
RANDOM_SEED = 0
UNKNOWN_IMAGE_SIDE = 224  # what a typical vision model expects when its H, W are left open
TOP_K = 5


class CliError(Exception):
    """A problem with the user's request; reported as one line, exit status 2."""


# -- images ------------------------------------------------------------------------------------
def read_image(path) -> np.ndarray:
    """Decode a PNG or a PPM/PGM file into an [H, W, C] uint8 array (C = 1, 3 or 4)."""
    data = Path(path).read_bytes()
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _decode_png(data, path)
    if data[:2] in (b"P5", b"P6", b"P2", b"P3"):
        return _decode_pnm(data, path)
    raise CliError(f"{path}: not a PNG or PPM/PGM image")


def _decode_pnm(data: bytes, path) -> np.ndarray:
    # Netpbm header: magic, width, height, maxval as whitespace-separated ASCII; '#' starts a
    # comment; a single whitespace byte separates the header from binary pixels.
    fields, pos = [], 2
    while len(fields) < 3:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            while pos < len(data) and data[pos:pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < len(data) and not data[pos:pos + 1].isspace() and data[pos:pos + 1] != b"#":
            pos += 1
        if start == pos:
            raise CliError(f"{path}: truncated PPM/PGM header")
        fields.append(data[start:pos])
    try:
        width, height, maxval = (int(f) for f in fields)
    except ValueError:
        raise CliError(f"{path}: bad PPM/PGM header {fields}") from None
    if not (width > 0 and height > 0 and 0 < maxval < 65536):
        raise CliError(f"{path}: bad PPM/PGM size {width}x{height} or maxval {maxval}")
    channels = 3 if data[:2] in (b"P6", b"P3") else 1
    count = width * height * channels
    if data[:2] in (b"P2", b"P3"):
        values = np.array(data[pos:].split()[:count], dtype=np.int64)
    else:
        body = data[pos + 1:]
        dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
        if len(body) < count * dtype.itemsize:
            raise CliError(f"{path}: pixel data is truncated")
        values = np.frombuffer(body, dtype, count).astype(np.int64)
    if values.size < count:
        raise CliError(f"{path}: pixel data is truncated")
    pixels = (values * 255 + maxval // 2) // maxval if maxval != 255 else values
    return pixels.astype(np.uint8).reshape(height, width, channels)


_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (no palettes)


def _decode_png(data: bytes, path) -> np.ndarray:
    pos, header, idat = 8, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None or not idat:
        raise CliError(f"{path}: PNG without IHDR or IDAT")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in _PNG_CHANNELS or interlace:
        raise CliError(f"{path}: only 8-bit grey/RGB/RGBA non-interlaced PNGs are supported "
                       f"(this one: bit depth {depth}, colour type {colour}, interlace "
                       f"{interlace})")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise CliError(f"{path}: corrupt PNG data ({e})") from None
    bpp = _PNG_CHANNELS[colour]
    stride = width * bpp
    if len(raw) < height * (stride + 1):
        raise CliError(f"{path}: PNG pixel data is truncated")
    out = np.zeros((height, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        out[y] = prev = _png_unfilter(line[0], np.frombuffer(line[1:], np.uint8), prev, bpp, path)
    pixels = out.reshape(height, width, bpp)
    if colour == 4:  # grey + alpha: keep grey
        pixels = pixels[..., :1]
    return pixels


def _png_unfilter(kind: int, cur: np.ndarray, prev: np.ndarray, bpp: int, path) -> np.ndarray:
    # PNG filters (PNG spec, section 9): each byte was stored minus a predictor made from the
    # byte to its left (a), above (b) and above-left (c); undo it, modulo 256.
    if kind == 0:
        return cur
    if kind == 2:
        return cur + prev
    if kind == 1:  # the left neighbour chain is a running sum per channel
        cols = cur.reshape(-1, bpp).astype(np.int64)
        return (np.cumsum(cols, axis=0) % 256).astype(np.uint8).reshape(-1)
    if kind not in (3, 4):
        raise CliError(f"{path}: unknown PNG filter type {kind}")
    out = bytearray(cur.tobytes())
    up = prev.tobytes()
    for i in range(len(out)):
        a = out[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            out[i] = (out[i] + ((a + b) >> 1)) & 0xFF
        else:
            c = up[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            out[i] = (out[i] + pred) & 0xFF
    return np.frombuffer(bytes(out), np.uint8)


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of [H, W, C] with half-pixel centres; returns float32 in the same scale."""
    src = image.astype(np.float32)
    h, w = src.shape[:2]
    if (h, w) == (height, width):
        return src

    def axis(n_out, n_in):
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    y0, y1, fy = axis(height, h)
    x0, x1, fx = axis(width, w)
    top = src[y0] * (1 - fy)[:, None, None] + src[y1] * fy[:, None, None]
    return top[:, x0] * (1 - fx)[None, :, None] + top[:, x1] * fx[None, :, None]


def image_to_input(pixels: np.ndarray, shape: tuple, dtype: np.dtype, norm: str) -> np.ndarray:
    """Fit decoded pixels to an [1, H, W, C] input: channels, size, then scale for the dtype."""
    channels = shape[3]
    if pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    if channels == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    elif channels == 1 and pixels.shape[2] == 3:
        pixels = pixels.astype(np.float32).mean(axis=2, keepdims=True)
    elif pixels.shape[2] != channels:
        raise CliError(f"the model's image input has {channels} channels; the image has "
                       f"{pixels.shape[2]}")
    img = resize_bilinear(pixels, shape[1], shape[2])[None]
    if dtype == np.uint8:
        return np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if dtype == np.int8:
        return np.clip(np.rint(img) - 128, -128, 127).astype(np.int8)
    if not np.issubdtype(dtype, np.floating):
        raise CliError(f"cannot feed an image to an input of type {np.dtype(dtype).name}")
    scaled = {"unit": img / 255.0, "signed": img / 127.5 - 1.0, "raw": img}[norm]
    return scaled.astype(dtype)


# -- model facts -------------------------------------------------------------------------------
def _labels_for(model_path: Path, interp) -> Optional[list]:
    """Class names: the model's "labels" metadata, else a labels file beside the model."""
    meta = _metadata(interp._model)
    text = meta.get("labels")
    if text is None:
        for name in (model_path.stem + "_labels.txt", model_path.stem + ".labels.txt",
                     "labels.txt"):
            candidate = model_path.parent / name
            if candidate.is_file():
                text = candidate.read_bytes()
                break
    if text is None:
        return None
    lines = text.decode("utf-8", "replace").splitlines()
    return [line.strip() for line in lines if line.strip()]


def _metadata(model) -> dict:
    """name -> bytes of the model's metadata entries."""
    meta = getattr(model, "metadata", None) or {}
    if isinstance(meta, dict):
        return {k: bytes(v) for k, v in meta.items()}
    return {m.name: bytes(m.data) for m in meta}


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def _dtype_name(dtype) -> str:
    return np.dtype(dtype).name


# -- run ---------------------------------------------------------------------------------------
def _choose_shape(detail: dict) -> tuple[tuple, bool]:
    """The shape to run an input at: unknown dims become 224 for image H, W, else 1."""
    shape = [int(d) for d in detail["shape"]]
    signature = [int(d) for d in detail["shape_signature"]]
    if len(signature) != len(shape) or -1 not in signature:
        return tuple(shape), False
    image_like = len(signature) == 4 and signature[3] in (1, 3, 4)
    chosen = []
    for axis, d in enumerate(signature):
        if d != -1:
            chosen.append(d)
        elif image_like and axis in (1, 2):
            chosen.append(UNKNOWN_IMAGE_SIDE)
        else:
            chosen.append(1)
    return tuple(chosen), True


def _random_input(shape: tuple, dtype: np.dtype, rng, norm: str) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 10, shape).astype(dtype)  # small: indices and ids stay valid
    low = -1.0 if norm == "signed" else 0.0
    high = 255.0 if norm == "raw" else 1.0
    return rng.uniform(low, high, shape).astype(dtype)


def _with_path(path: Path, error: Exception) -> str:
    message = _one_line(error)
    return message if str(path) in message else f"{path}: {message}"


def _open_interpreter(path: Path, threads: Optional[int], precision: str = "fp32"):
    from edgeq import Interpreter
    from edgeq.errors import ModelError

    try:
        return Interpreter(model_path=str(path), num_threads=threads, precision=precision)
    except ModelError as e:
        raise CliError(_with_path(path, e)) from None


def _fit_array(arr: np.ndarray, detail: dict) -> np.ndarray:
    """Check an array against an input; returns it as [samples, *input shape] ready to feed."""
    name = detail["name"]
    shape = tuple(int(d) for d in detail["shape"])
    signature = tuple(int(d) for d in detail["shape_signature"])
    dtype = np.dtype(detail["dtype"])
    arr = np.asarray(arr)
    if arr.dtype != dtype:
        ok = (np.issubdtype(dtype, np.floating) and (np.issubdtype(arr.dtype, np.number)
                                                     or arr.dtype == np.bool_)) \
            or (np.issubdtype(dtype, np.integer) and np.issubdtype(arr.dtype, np.integer)) \
            or (dtype == np.bool_ and arr.dtype == np.bool_)
        if not ok:
            raise CliError(f"input '{name}' is {dtype.name}; got an array of {arr.dtype.name}")
        arr = arr.astype(dtype)
    if len(signature) != len(shape):
        signature = shape
    if arr.ndim == len(shape) - 1 and shape and shape[0] == 1:
        arr = arr[None]  # one sample without its batch axis
    if arr.ndim == len(shape) and all(s in (-1, a) for s, a in zip(signature, arr.shape)):
        return arr[None]
    if (arr.ndim == len(shape) and shape and shape[0] == 1
            and all(s in (-1, a) for s, a in zip(signature[1:], arr.shape[1:]))):
        return arr[:, None]  # a stack of samples for a batch-1 model: run them one by one
    raise CliError(f"input '{name}' expects shape {_shape_text(shape)} (signature "
                   f"{_shape_text(signature)}); got an array of shape {_shape_text(arr.shape)}")


def _load_feeds(path: Path, details: list, norm: str) -> tuple[list, Optional[np.ndarray]]:
    """Read --input: returns one dict {input position: array} per sample, and true labels."""
    if not path.is_file():
        raise CliError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    labels = None
    if suffix in IMAGE_SUFFIXES:
        targets = [k for k, d in enumerate(details)
                   if len(d["shape"]) == 4 and int(d["shape_signature"][3]) in (1, 3, 4)]
        if len(details) != 1 or not targets:
            raise CliError(f"an image needs a model with one [1, H, W, C] input; this one has "
                           f"{', '.join(_shape_text(d['shape']) for d in details)}")
        d = details[0]
        shape = [int(v) for v in d["shape"]]
        sig = [int(v) for v in d["shape_signature"]]
        pixels = read_image(path)
        if len(sig) == 4:  # open H, W: take the image's own size
            shape[1] = pixels.shape[0] if sig[1] == -1 else shape[1]
            shape[2] = pixels.shape[1] if sig[2] == -1 else shape[2]
        arrays = [image_to_input(pixels, tuple(shape), np.dtype(d["dtype"]), norm)]
    elif suffix == ".npy":
        try:
            arrays = [np.load(path, allow_pickle=False)]
        except (ValueError, OSError) as e:
            raise CliError(f"{path}: cannot read as .npy ({e})") from None
    elif suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                content = {k: npz[k] for k in npz.files}
        except (ValueError, OSError, zlib.error) as e:
            raise CliError(f"{path}: cannot read as .npz ({e})") from None
        names = [d["name"] for d in details]
        if "labels" not in names:  # otherwise reserved for the samples' true classes
            labels = content.pop("labels", None)
        if all(n in content for n in names):
            arrays = [content[n] for n in names]
        else:
            arrays = list(content.values())
    else:
        raise CliError(f"{path}: --input takes .npy, .npz, .png, .ppm or .pgm")
    if len(arrays) != len(details):
        raise CliError(f"the model has {len(details)} input{'s' if len(details) != 1 else ''} "
                       f"({', '.join(repr(d['name']) for d in details)}); {path.name} gives "
                       f"{len(arrays)} arrays")
    fitted = [_fit_array(a, d) for a, d in zip(arrays, details)]
    counts = {f.shape[0] for f in fitted}
    if len(counts) != 1:
        raise CliError(f"the inputs in {path.name} hold different numbers of samples: "
                       f"{sorted(counts)}")
    n = counts.pop()
    if labels is not None and len(np.atleast_1d(labels)) != n:
        labels = None
    return [{k: fitted[k][i] for k in range(len(fitted))} for i in range(n)], labels


def _summary(arr: np.ndarray) -> str:
    if arr.size == 0:
        return "(empty)"
    values = arr.astype(np.float64) if arr.dtype != np.bool_ else arr.astype(np.int8)
    return (f"min {values.min():.6g}  max {values.max():.6g}  mean {values.mean():.6g}")


def _classifier_scores(arr: np.ndarray) -> Optional[np.ndarray]:
    """The scores of a classifier-looking output ([N] or [1, N], N >= 2), else None.

    Only float and 8-bit (quantized score) outputs count: an int32 output of the same shape is
    far more often indices or lengths than scores."""
    if not (np.issubdtype(arr.dtype, np.floating) or arr.dtype in (np.uint8, np.int8)):
        return None
    squeezed = np.squeeze(arr)
    if squeezed.ndim == 1 and squeezed.size >= 2:
        return squeezed
    return None


def _top(scores: np.ndarray, k: int) -> list:
    order = np.argsort(-scores.astype(np.float64), kind="stable")
    return [int(i) for i in order[:k]]


def _label(labels: Optional[list], index: int, n: int) -> str:
    if labels is None:
        return ""
    if len(labels) == n:
        return labels[index]
    if len(labels) == n - 1 and index > 0:  # the background class some models add first
        return labels[index - 1]
    return ""


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def cmd_run(args, out) -> int:
    demo = args.model is None
    model_path = DEMO_MODEL if demo else Path(args.model)
    input_path = DEMO_INPUTS if demo and args.input is None else args.input
    if not model_path.is_file():
        raise CliError(f"model file not found: {model_path}" +
                       (" (the demo model is missing from this installation)" if demo else ""))
    interp = _open_interpreter(model_path, args.threads, args.precision)
    details = interp.get_input_details()
    for d in details:
        shape, resized = _choose_shape(d)
        if resized:
            print(f"note: input '{d['name']}' has unknown dims {_shape_text(d['shape_signature'])}"
                  f"; running it at {_shape_text(shape)}", file=out)
            interp.resize_tensor_input(d["index"], shape)
    interp.allocate_tensors()
    details = interp.get_input_details()

    labels_true = None
    if input_path is not None:
        samples, labels_true = _load_feeds(Path(input_path), details, args.norm)
    else:
        rng = np.random.default_rng(RANDOM_SEED)
        samples = [{k: _random_input(tuple(int(v) for v in d["shape"]), d["dtype"], rng,
                                     args.norm) for k, d in enumerate(details)}]
        print(f"input: seeded random values (seed {RANDOM_SEED}) for "
              f"{', '.join(repr(d['name']) for d in details)}", file=out)

    labels = _labels_for(model_path, interp)
    outputs = interp.get_output_details()
    if demo:
        print(f"edgeq demo: {model_path.name}, a shape classifier over "
              f"{', '.join(labels or [])}; {len(samples)} sample images from "
              f"{Path(input_path).name}", file=out)

    times = []
    correct = 0
    saved = []  # per sample, the outputs (for --output)
    current_shapes = {d["index"]: tuple(int(v) for v in d["shape"]) for d in details}
    for i, feed in enumerate(samples):
        for k, value in feed.items():
            d = details[k]
            if value.shape != current_shapes[d["index"]]:
                interp.resize_tensor_input(d["index"], value.shape)
                current_shapes[d["index"]] = value.shape
                interp.allocate_tensors()
        for k, value in feed.items():
            interp.set_tensor(details[k]["index"], value)
        start = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - start)
        results = [interp.get_tensor(o["index"]) for o in outputs]
        if args.output:
            saved.append(results)
        if len(samples) == 1:
            _print_outputs(outputs, results, labels, out)
        else:
            correct += _print_sample_line(i, len(samples), results, labels, labels_true, out)
    if len(samples) > 1 and labels_true is not None:
        print(f"{correct}/{len(samples)} correct", file=out)
    if args.output:
        _save_outputs(Path(args.output), outputs, saved, out)

    repeats = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        interp.invoke()
        repeats.append(time.perf_counter() - start)
    line = f"latency: first {_ms(times[0])}"
    if repeats:
        line += (f", then median {_ms(statistics.median(repeats))}, min {_ms(min(repeats))} "
                 f"over {len(repeats)} runs")
    threads = interp.num_threads
    print(f"{line} ({threads} thread{'s' if threads != 1 else ''})", file=out)
    return 0


def _print_outputs(outputs: list, results: list, labels, out):
    for o, value in zip(outputs, results):
        print(f"output '{o['name']}': shape {_shape_text(value.shape)} {value.dtype.name}  "
              f"{_summary(value)}", file=out)
        scores = _classifier_scores(value)
        if scores is None:
            continue
        n = scores.size
        for rank, idx in enumerate(_top(scores, TOP_K), 1):
            name = _label(labels, idx, n)
            print(f"  top-{rank}: {idx:5d}  {float(scores[idx]):.6g}" +
                  (f"  {name}" if name else ""), file=out)


def _print_sample_line(i, n, results, labels, labels_true, out) -> int:
    """One line per sample: the top class of the first classifier-looking output."""
    for value in results:
        scores = _classifier_scores(value)
        if scores is None:
            continue
        best = _top(scores, 1)[0]
        name = _label(labels, best, scores.size) or f"class {best}"
        line = f"  sample {i + 1:{len(str(n))}d}: {name:<20s} {float(scores[best]):.3f}"
        if labels_true is None:
            print(line, file=out)
            return 0
        truth = int(np.atleast_1d(labels_true)[i])
        ok = truth == best
        true_name = _label(labels, truth, scores.size) or f"class {truth}"
        print(f"{line}   true: {true_name:<20s} {'ok' if ok else 'WRONG'}", file=out)
        return int(ok)
    print(f"  sample {i + 1}: " + "; ".join(
        f"{_shape_text(v.shape)} {_summary(v)}" for v in results), file=out)
    return 0


# -- inspect -----------------------------------------------------------------------------------
def cmd_inspect(args, out) -> int:
    from edgeq.errors import ModelError
    from edgeq.ops.registry import lookup, op_name
    from edgeq.tflite.reader import read_model
    from edgeq.tflite.schema import BuiltinOp

    path = Path(args.model)
    if not path.is_file():
        raise CliError(f"model file not found: {path}")
    try:
        model = read_model(str(path))
    except ModelError as e:
        raise CliError(_with_path(path, e)) from None
    print(f"model: {path} ({path.stat().st_size:,} bytes)", file=out)
    description = getattr(model, "description", None)
    if description:
        print(f"description: {description}", file=out)
    sub = model.subgraphs[0]
    extra = len(model.subgraphs) - 1
    print(f"subgraphs: {len(model.subgraphs)}" +
          (f" (only the first is run; {extra} more for control flow or signatures)"
           if extra else ""), file=out)

    rows = []
    for title, indices in (("inputs", sub.inputs), ("outputs", sub.outputs)):
        for i in indices:
            t = sub.tensors[i]
            sig = t.shape_signature if t.shape_signature else t.shape
            dtype = _dtype_name(t.dtype) if t.dtype is not None else f"type {t.type}"
            rows.append((title, f"{i:4d}", repr(t.name), _shape_text(t.shape), _shape_text(sig),
                         dtype))
    widths = [max([len(r[k]) for r in rows] + [0]) for k in range(6)]
    for title in ("inputs", "outputs"):
        print(f"{title}:", file=out)
        for _, index, name, shape, sig, dtype in (r for r in rows if r[0] == title):
            print(f"  {index} {name:{widths[2]}s}  shape {shape:{widths[3]}s}  signature "
                  f"{sig:{widths[4]}s}  {dtype}", file=out)

    counts: dict = {}
    for s in model.subgraphs:
        for op in s.operators:
            key = op.custom_code if op.builtin_code == BuiltinOp.CUSTOM else op.builtin_code
            counts[key] = counts.get(key, 0) + 1
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], op_name(kv[0])))
    width = max([len(_op_label(k, op_name)) for k in counts] + [2])
    print("ops:", file=out)
    print(f"  {'op':{width}s}  count  edgeq", file=out)
    unsupported = 0
    for key, n in rows:
        ok = lookup(key) is not None
        unsupported += not ok
        print(f"  {_op_label(key, op_name):{width}s}  {n:5d}  "
              f"{'yes' if ok else 'NOT SUPPORTED'}", file=out)
    total_ops = sum(counts.values())
    print(f"  {total_ops} ops of {len(counts)} kinds" +
          (f"; {unsupported} kind(s) not supported by edgeq" if unsupported else ""), file=out)

    weight_bytes, n_constants = _weight_bytes(model)
    print(f"weights: {weight_bytes:,} bytes in {n_constants} constant tensors", file=out)

    meta = _metadata(model)
    if meta:
        print("metadata: " + ", ".join(f"{k} ({len(v):,} bytes)" for k, v in meta.items()),
              file=out)

    print(_arena_line(path), file=out)
    return 0


def _op_label(key, op_name) -> str:
    return f"{key} (custom)" if isinstance(key, str) else op_name(key)


def _weight_bytes(model) -> tuple[int, int]:
    """Bytes of constant data, each buffer counted once even if tensors share it."""
    seen: dict = {}
    n = 0
    for s in model.subgraphs:
        for t in s.tensors:
            data = getattr(t, "data", None)
            if data is None:
                continue
            n += 1
            key = getattr(t, "buffer", None)
            key = ("buffer", key) if key is not None else ("tensor", id(data))
            seen[key] = np.asarray(data).nbytes
    return sum(seen.values()), n


def _arena_line(path: Path) -> str:
    from edgeq import Interpreter
    from edgeq.errors import InvokeError, ModelError

    resized_to = []
    try:
        interp = Interpreter(model_path=str(path), num_threads=1)
        for d in interp.get_input_details():
            shape, resized = _choose_shape(d)
            if resized:
                interp.resize_tensor_input(d["index"], shape)
                resized_to.append(f"'{d['name']}' at {_shape_text(shape)}")
        interp.allocate_tensors()
        plan = interp._get_plan()
    except (ModelError, InvokeError, ValueError, RuntimeError) as e:
        return f"arena: n/a ({_one_line(e)})"
    return (f"arena: {plan.arena_bytes:,} bytes; plan: {len(plan.nodes)} kernels" +
            (f" (with input {', '.join(resized_to)})" if resized_to else ""))


# -- info --------------------------------------------------------------------------------------
def cmd_info(args, out) -> int:
    import edgeq

    print(f"edgeq {edgeq.__version__} ({Path(edgeq.__file__).parent})", file=out)
    print(f"python {platform.python_version()} ({platform.python_implementation()})", file=out)
    print(f"platform {platform.platform()}, machine {platform.machine()}, "
          f"{os.cpu_count()} CPUs", file=out)
    print(f"numpy {np.__version__}", file=out)
    try:
        from edgeq.runtime import kernel_names

        print(f"kernels compiled: {len(kernel_names())}", file=out)
    except ImportError as e:
        print(f"kernels compiled: none (the C extension is not built: {_one_line(e)})", file=out)
    print(f"ops supported: {len(edgeq.supported_ops())}", file=out)
    from edgeq.board import detect_board

    board = detect_board()
    print(f"board: {board.name} ({board.description}); default threads {board.default_threads}",
          file=out)
    try:
        info = edgeq.cpu_info()
        print(f"cpu features: {', '.join(info['features']) or 'none beyond the baseline'}",
              file=out)
        print(f"kernels may use: {', '.join(info['allowed']) or 'portable C only'}"
              + (f" (EDGEQ_ISA={info['EDGEQ_ISA']})" if info["EDGEQ_ISA"] else ""), file=out)
    except ValueError as e:  # a bad EDGEQ_ISA value
        print(f"cpu: {_one_line(e)}", file=out)
    else:
        from edgeq.plan.precision import AUTO_WHY, resolve

        auto = resolve("auto")
        print(f"precision auto: {auto} ({AUTO_WHY}; fp16 halves the activation memory)",
              file=out)
    return 0


# -- entry point -------------------------------------------------------------------------------
def _timing_stats(seconds: list) -> str:
    """count/min/max/avg/std/p50/p95 in microseconds, the way TFLite's benchmark_model says it."""
    us = np.asarray(seconds, np.float64) * 1e6
    return (f"count={len(us)} min={us.min():.0f} max={us.max():.0f} avg={us.mean():.1f} "
            f"std={us.std():.1f} p50={np.percentile(us, 50):.0f} "
            f"p95={np.percentile(us, 95):.0f}")


def _peak_rss_mb() -> Optional[float]:
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024  # bytes / KiB


def _prepare_for_bench(interp, feeds=None):
    """Resize open dims as `run` does, allocate, and feed the same seeded random inputs."""
    for d in interp.get_input_details():
        shape, resized = _choose_shape(d)
        if resized:
            interp.resize_tensor_input(d["index"], shape)
    interp.allocate_tensors()
    details = interp.get_input_details()
    if feeds is None:
        rng = np.random.default_rng(RANDOM_SEED)
        feeds = [_random_input(tuple(int(v) for v in d["shape"]), d["dtype"], rng, "signed")
                 for d in details]
    for d, value in zip(details, feeds):
        interp.set_tensor(d["index"], value)
    return feeds


def _timed_invoke(interp) -> float:
    start = time.perf_counter()
    interp.invoke()
    return time.perf_counter() - start


def _print_op_profile(interp, runs: int, out):
    """Time of every node (each run alone through the compiled plan), then per op type."""
    plan = interp._get_plan()
    compiled = plan.compiled
    n = compiled.num_nodes
    per_node = np.zeros(n)
    for _ in range(max(runs, 1)):
        for i in range(n):
            start = time.perf_counter()
            compiled.invoke_node(i)
            per_node[i] += time.perf_counter() - start
    per_node /= max(runs, 1)
    total = float(per_node.sum()) or 1.0
    print(f"per op (average of {max(runs, 1)} runs of each node alone, microseconds):", file=out)
    print(f"  {'node':>4s}  {'op':28s} {'kernel':28s} {'us':>9s} {'%':>6s}", file=out)
    by_type: dict = {}
    for i in range(n):
        node = plan.nodes[i].node
        label = f"{node.op_name} (op {node.index})"
        kernel = compiled.kernel_of_node[i]
        inner = getattr(plan.nodes[i].call, "twin_of", None)
        if inner:  # an fp16 twin: the float32 kernel it runs
            kernel = f"{inner}@f16"
        print(f"  {i:4d}  {label:28s} {kernel:28s} {per_node[i] * 1e6:9.1f} "
              f"{100 * per_node[i] / total:6.1f}", file=out)
        count, seconds = by_type.get(node.op_name, (0, 0.0))
        by_type[node.op_name] = (count + 1, seconds + per_node[i])
    print("per op type:", file=out)
    print(f"  {'op':28s} {'count':>5s} {'us':>9s} {'%':>6s}", file=out)
    for name, (count, seconds) in sorted(by_type.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:28s} {count:5d} {seconds * 1e6:9.1f} {100 * seconds / total:6.1f}",
              file=out)
    print(f"  {'total':28s} {n:5d} {total * 1e6:9.1f}", file=out)


def cmd_bench(args, out) -> int:
    model_path = Path(args.model)
    if not model_path.is_file():
        raise CliError(f"model file not found: {model_path}")
    # The op modules load on first use, once per process (as LiteRT's own library loads at its
    # import, which its init below does not count either): import them before the clock starts.
    start = time.perf_counter()
    from edgeq.ops.registry import supported_ops
    supported_ops()
    imports = time.perf_counter() - start
    start = time.perf_counter()
    interp = _open_interpreter(model_path, args.threads, args.precision)
    feeds = _prepare_for_bench(interp)
    init = time.perf_counter() - start
    threads = interp.num_threads
    shapes = ", ".join(_shape_text(d["shape"]) for d in interp.get_input_details())
    print(f"model: {model_path.name}, input {shapes}, {threads} "
          f"thread{'s' if threads != 1 else ''}, precision {interp.precision}", file=out)
    print(f"op modules imported (once per process, not in init): {_ms(imports)}", file=out)
    print(f"init (load + allocate): {_ms(init)}", file=out)
    print(f"first inference: {_ms(_timed_invoke(interp))}", file=out)

    reference = None
    if args.compare_litert:
        try:
            from ai_edge_litert.interpreter import Interpreter as LiteRT
        except ImportError:
            print("LiteRT: ai-edge-litert is not installed; no comparison", file=out)
        else:
            start = time.perf_counter()
            reference = LiteRT(model_path=str(model_path), num_threads=threads)
            _prepare_for_bench(reference, feeds)
            print(f"LiteRT init (load + allocate): {_ms(time.perf_counter() - start)}", file=out)
            print(f"LiteRT first inference: {_ms(_timed_invoke(reference))}", file=out)

    for _ in range(args.warmup):
        interp.invoke()
        if reference is not None:
            reference.invoke()
    ours, theirs = [], []
    for _ in range(args.runs):  # interleaved, so that both see the same machine load
        ours.append(_timed_invoke(interp))
        if reference is not None:
            theirs.append(_timed_invoke(reference))
    print(f"warmup: {args.warmup} runs", file=out)
    if ours:
        print(f"edgeq inference timings in us: {_timing_stats(ours)}", file=out)
    if theirs:
        print(f"LiteRT inference timings in us: {_timing_stats(theirs)}", file=out)
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"ratio edgeq / LiteRT (median): {ratio:.2f}", file=out)
    peak = _peak_rss_mb()
    if peak is not None:
        what = " (this process, LiteRT included)" if reference is not None else ""
        print(f"peak RSS: {peak:.1f} MB{what}; edgeq arena "
              f"{interp._get_plan().arena_bytes / (1 << 20):.2f} MB", file=out)
    if args.op_profile:
        _print_op_profile(interp, max(args.runs, 1), out)
    return 0


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _save_outputs(path: Path, outputs: list, saved: list, out):
    """Write every output to an .npz keyed by output name (one sample: its arrays as they are;
    several: stacked along a new first axis, sample by sample)."""
    arrays = {}
    for k, detail in enumerate(outputs):
        values = [results[k] for results in saved]
        arrays[detail["name"] or f"output_{k}"] = values[0] if len(values) == 1 else \
            np.stack(values)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    print(f"outputs saved to {path} ({', '.join(repr(n) for n in arrays)})", file=out)


def _add_precision(parser):
    parser.add_argument("--precision", choices=("fp32", "fp16", "auto"), default="fp32",
                        help="activation storage: fp32, fp16 (half the activation memory), or "
                        "auto (fp32 on every CPU for now; see `edgeq info`)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeq", description="Run and inspect TensorFlow Lite "
                                     "models with edgeq.")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    subs.required = True

    run = subs.add_parser("run", help="run a model (with no MODEL: the shipped shape demo)",
                          description="Run a .tflite model and print its outputs and latency. "
                          "With no MODEL, run the demo shape classifier on its sample images.")
    run.add_argument("model", nargs="?", help=".tflite file (default: the demo model)")
    run.add_argument("--input", "-i", help=".npy/.npz (arrays by input name or in order; an "
                     "npz 'labels' array gives true classes) or a .png/.ppm/.pgm image "
                     "(default: seeded random values)")
    run.add_argument("--threads", "-t", type=_positive, default=None,
                     help="threads (default: the board's, see `edgeq info`)")
    run.add_argument("--output", "-o", help="save the outputs to this .npz, by output name")
    _add_precision(run)
    run.add_argument("--repeat", "-r", type=_non_negative, default=10,
                     help="timed runs after the first (default 10)")
    run.add_argument("--norm", choices=("unit", "signed", "raw"), default="unit",
                     help="image scaling for float inputs: unit = [0, 1], signed = [-1, 1], "
                     "raw = [0, 255] (default unit)")
    run.set_defaults(func=cmd_run)

    inspect = subs.add_parser("inspect", help="list a model's inputs, outputs, ops and memory")
    inspect.add_argument("model", help=".tflite file")
    inspect.set_defaults(func=cmd_inspect)

    bench = subs.add_parser("bench", help="time a model: init, first run, run statistics",
                            description="Benchmark a .tflite model on seeded random inputs "
                            "(open dims as in `run`): init time, first inference, then "
                            "statistics over timed runs, and peak RSS.")
    bench.add_argument("model", help=".tflite file")
    bench.add_argument("--warmup", type=_non_negative, default=3,
                       help="untimed runs before the timed ones (default 3)")
    bench.add_argument("--runs", type=_non_negative, default=50,
                       help="timed runs (default 50)")
    bench.add_argument("--threads", "-t", type=_positive, default=None,
                       help="threads (default: the board's)")
    _add_precision(bench)
    bench.add_argument("--op-profile", action="store_true",
                       help="also time every op alone, and sum by op type")
    bench.add_argument("--compare-litert", action="store_true",
                       help="run LiteRT (ai-edge-litert) interleaved on the same inputs and "
                       "print the ratio")
    bench.set_defaults(func=cmd_bench)

    info = subs.add_parser("info", help="versions, platform and compiled kernels")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv=None) -> int:
    from edgeq.errors import InvokeError, ModelError

    args = build_parser().parse_args(argv)
    out = sys.stdout
    try:
        return args.func(args, out)
    except (CliError, ModelError, InvokeError) as e:
        message = _one_line(e)
    except BrokenPipeError:  # `edgeq inspect m.tflite | head`: the reader left, stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except OSError as e:  # unreadable files, named by the OS error itself
        message = f"{e.filename or ''}: {e.strerror or e}".lstrip(": ")
    except ValueError as e:  # the Interpreter's own checks on shapes and values
        message = _one_line(e)
    print(f"edgeq: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
