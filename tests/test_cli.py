"""The `edgeq` command: run (demo, arrays, images, random inputs), inspect, info, and errors."""
from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgeq import cli
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder

ROOT = Path(__file__).resolve().parents[1]
DEMO_LABELS = (ROOT / "edgeq" / "data" / "demo_shapes_labels.txt").read_text().splitlines()


def edgeq(capsys, *args):
    """Run the CLI in-process: (exit status, stdout, stderr)."""
    status = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(err: str, *fragments):
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeq: error: "), err
    for f in fragments:
        assert f in lines[0], f"{f!r} not in {lines[0]!r}"


def add_model(path: Path, shape, dtype=np.float32, constant=None, signature=None,
              labels=None, names=("x", "y")) -> Path:
    """y = x + constant: the one op every edgeq build runs, to test the CLI around it."""
    b = ModelBuilder(description="cli test")
    x = b.add_tensor(names[0], shape, dtype, shape_signature=signature)
    c = constant if constant is not None else np.zeros(shape[-1:], dtype)
    k = b.add_tensor("constant", c.shape, dtype, data=c)
    y = b.add_tensor(names[1], shape, dtype)
    b.add_operator(BuiltinOp.ADD, [x, k], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    if labels is not None:
        b.add_metadata("labels", "\n".join(labels).encode())
    path.write_bytes(b.build())
    return path


# -- the demo ----------------------------------------------------------------------------------
def check_demo_output(out: str):
    with np.load(ROOT / "edgeq" / "data" / "demo_shapes_inputs.npz") as npz:
        truth = npz["labels"]
    rows = re.findall(r"sample +(\d+): (.+?) +([0-9.]+) +true: (.+?) +(ok|WRONG)", out)
    assert len(rows) == len(truth), out
    for (number, predicted, score, true_name, verdict), label in zip(rows, truth):
        assert true_name == DEMO_LABELS[label]
        assert predicted == true_name and verdict == "ok", out
        assert 0.5 < float(score) <= 1.0
    assert f"{len(truth)}/{len(truth)} correct" in out
    for name in DEMO_LABELS:
        assert name in out
    assert re.search(r"latency: first [0-9.]+ ms, then median [0-9.]+ ms, min [0-9.]+ ms", out)


def test_run_without_a_model_recognises_the_demo_shapes(capsys):
    status, out, err = edgeq(capsys, "run", "--threads", 1, "--repeat", 3)
    assert status == 0, err
    check_demo_output(out)


def test_python_dash_m_edgeq_runs_the_demo():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "edgeq", "run"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    check_demo_output(done.stdout)


def test_run_demo_model_on_one_sample_prints_top5_with_labels(capsys, tmp_path):
    with np.load(ROOT / "edgeq" / "data" / "demo_shapes_inputs.npz") as npz:
        image, label = npz["images"][0], int(npz["labels"][0])
    np.save(tmp_path / "one.npy", image)  # no batch axis: the CLI adds it
    status, out, err = edgeq(capsys, "run", cli.DEMO_MODEL, "--input", tmp_path / "one.npy")
    assert status == 0, err
    assert "output 'probabilities': shape [1, 6] float32" in out
    tops = re.findall(r"top-(\d): +(\d+) +([0-9.e-]+) +(.+)", out)
    assert [int(t[0]) for t in tops] == [1, 2, 3, 4, 5]
    assert int(tops[0][1]) == label and tops[0][3] == DEMO_LABELS[label]


# -- run on arrays, images and random inputs -----------------------------------------------------
def test_run_random_input_on_a_classifier_looking_output(capsys, tmp_path):
    names = [f"class{i}" for i in range(7)]
    model = add_model(tmp_path / "scores.tflite", (1, 7),
                      constant=np.arange(7, dtype=np.float32) * 10, labels=names)
    status, out, err = edgeq(capsys, "run", model, "--repeat", 2)
    assert status == 0, err
    assert "seeded random values" in out
    assert re.search(r"output 'y': shape \[1, 7\] float32 +min [0-9.]+ +max 6[0-9.]+ +mean", out)
    tops = re.findall(r"top-(\d): +(\d+) +([0-9.e-]+) +(\S+)", out)
    assert [(int(t[1]), t[3]) for t in tops] == [(6, "class6"), (5, "class5"), (4, "class4"),
                                                 (3, "class3"), (2, "class2")]
    assert "over 2 runs" in out
    again = edgeq(capsys, "run", model, "--repeat", 0)[1]
    assert again.split("latency")[0] == out.split("latency")[0]  # seeded: same values


def test_run_reads_labels_from_a_file_beside_the_model(capsys, tmp_path):
    model = add_model(tmp_path / "animals.tflite", (3,), constant=np.array([0, 5, 1], np.float32))
    (tmp_path / "animals_labels.txt").write_text("cat\ndog\nbird\n")
    status, out, _ = edgeq(capsys, "run", model)
    assert status == 0
    assert re.search(r"top-1: +1 +5[0-9.]* +dog", out)


def test_run_feeds_npy_and_prints_statistics(capsys, tmp_path):
    model = add_model(tmp_path / "m.tflite", (2, 3), constant=np.array([1, 2, 3], np.float32))
    np.save(tmp_path / "x.npy", np.array([[0, 0, 0], [1, 1, 1]], np.float64))  # cast to f32
    status, out, err = edgeq(capsys, "run", model, "-i", tmp_path / "x.npy", "-r", 0)
    assert status == 0, err
    assert "output 'y': shape [2, 3] float32  min 1  max 4  mean 2.5" in out
    assert "top-1" not in out  # [2, 3] is not a classifier's output


def test_run_feeds_npz_by_input_name(capsys, tmp_path):
    b = ModelBuilder()
    a = b.add_tensor("a", (1, 2), np.int32)
    c = b.add_tensor("c", (1, 2), np.int32)
    s = b.add_tensor("sum", (1, 2), np.int32)
    b.add_operator(BuiltinOp.ADD, [a, c], [s])
    b.set_inputs([a, c])
    b.set_outputs([s])
    (tmp_path / "two.tflite").write_bytes(b.build())
    np.savez(tmp_path / "in.npz", c=np.array([[10, 20]], np.int64), a=np.array([[1, 2]]))
    status, out, err = edgeq(capsys, "run", tmp_path / "two.tflite", "-i", tmp_path / "in.npz")
    assert status == 0, err
    assert "output 'sum': shape [1, 2] int32  min 11  max 22  mean 16.5" in out
    assert "top-1" not in out  # int32 outputs are not taken for scores


def test_run_a_stack_of_samples_with_true_labels(capsys, tmp_path):
    model = add_model(tmp_path / "m.tflite", (1, 3), labels=["r", "g", "b"])
    samples = np.array([[5, 0, 0], [0, 0, 5], [0, 5, 0], [5, 0, 0]], np.float32)
    np.savez(tmp_path / "s.npz", samples=samples, labels=np.array([0, 2, 0, 0]))
    status, out, err = edgeq(capsys, "run", model, "-i", tmp_path / "s.npz", "-r", 1)
    assert status == 0, err
    rows = re.findall(r"sample (\d): (\S+) +[0-9.]+ +true: (\S+) +(ok|WRONG)", out)
    assert rows == [("1", "r", "r", "ok"), ("2", "b", "b", "ok"), ("3", "g", "r", "WRONG"),
                    ("4", "r", "r", "ok")]
    assert "3/4 correct" in out


def test_run_resizes_unknown_dims_and_says_so(capsys, tmp_path):
    model = add_model(tmp_path / "dyn.tflite", (1, 1, 1, 3), signature=(-1, -1, -1, 3))
    status, out, err = edgeq(capsys, "run", model, "-r", 0)
    assert status == 0, err
    assert "note: input 'x' has unknown dims [-1, -1, -1, 3]; running it at [1, 224, 224, 3]" \
        in out
    assert "output 'y': shape [1, 224, 224, 3]" in out
    seq = add_model(tmp_path / "seq.tflite", (1, 1), dtype=np.int32, signature=(1, -1))
    status, out, _ = edgeq(capsys, "run", seq, "-r", 0)
    assert status == 0 and "running it at [1, 1]" in out


def test_run_a_batch_on_a_model_with_an_open_batch(capsys, tmp_path):
    model = add_model(tmp_path / "dyn.tflite", (1, 4), signature=(-1, 4))
    np.save(tmp_path / "b.npy", np.ones((5, 4), np.float32))
    status, out, err = edgeq(capsys, "run", model, "-i", tmp_path / "b.npy", "-r", 0)
    assert status == 0, err
    assert "output 'y': shape [5, 4] float32" in out


# -- images --------------------------------------------------------------------------------------
def png_bytes(pixels: np.ndarray, filters=(0, 1, 2, 3, 4)) -> bytes:
    """Encode [H, W, C] uint8 as PNG, cycling through the filter types row by row."""
    h, w, c = pixels.shape
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = pixels.reshape(h, w * c).astype(np.int64)
    raw = bytearray()
    for y in range(h):
        kind = filters[y % len(filters)]
        row = rows[y]
        up = rows[y - 1] if y else np.zeros_like(row)
        left = np.concatenate([np.zeros(c, np.int64), row[:-c]])
        upleft = np.concatenate([np.zeros(c, np.int64), up[:-c]])
        if kind == 0:
            pred = np.zeros_like(row)
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = up
        elif kind == 3:
            pred = (left + up) // 2
        else:
            p = left + up - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        raw.append(kind)
        raw += ((row - pred) % 256).astype(np.uint8).tobytes()

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    data = zlib.compress(bytes(raw))
    # Split IDAT in two: decoders must join them.
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data[:7]) +
            chunk(b"IDAT", data[7:]) + chunk(b"IEND", b""))


def test_png_decoder_undoes_every_filter_for_each_colour_type(tmp_path):
    rng = np.random.default_rng(5)
    for channels in (1, 2, 3, 4):
        # Smooth gradients plus noise exercise the predictors' choices, including wraparound.
        yy, xx = np.mgrid[0:23, 0:17]
        pixels = (yy[..., None] * 11 + xx[..., None] * 7 + rng.integers(0, 60, (23, 17, channels))
                  ) % 256
        pixels = pixels.astype(np.uint8)
        for filters in ((0,), (1,), (2,), (3,), (4,), (4, 3, 2, 1, 0)):
            path = tmp_path / f"c{channels}.png"
            path.write_bytes(png_bytes(pixels, filters))
            got = cli.read_image(path)
            want = pixels[..., :1] if channels == 2 else pixels  # grey + alpha keeps grey
            np.testing.assert_array_equal(got, want, err_msg=f"{channels} ch, filters {filters}")


def test_ppm_and_pgm_decoder(tmp_path):
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 13
    (tmp_path / "a.ppm").write_bytes(b"P6\n# made by a test\n3 2\n255\n" + pixels.tobytes())
    np.testing.assert_array_equal(cli.read_image(tmp_path / "a.ppm"), pixels)
    text = "P3 3 2 255 " + " ".join(str(v) for v in pixels.reshape(-1))
    (tmp_path / "b.ppm").write_text(text)
    np.testing.assert_array_equal(cli.read_image(tmp_path / "b.ppm"), pixels)
    wide = (pixels[..., 0].astype(">u2") * 257)
    (tmp_path / "c.pgm").write_bytes(b"P5 3 2 65535\n" + wide.tobytes())
    np.testing.assert_array_equal(cli.read_image(tmp_path / "c.pgm"), pixels[..., :1])


def test_bad_images_are_one_line_errors(capsys, tmp_path):
    model = add_model(tmp_path / "m.tflite", (1, 4, 4, 3))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnothing")
    (tmp_path / "short.ppm").write_bytes(b"P6 4 4 255\n\x00\x01")
    (tmp_path / "wrong.png").write_bytes(png_bytes(np.zeros((2, 2, 3), np.uint8))
                                         .replace(b"IHDR\x00\x00\x00\x02\x00\x00\x00\x02\x08",
                                                  b"IHDR\x00\x00\x00\x02\x00\x00\x00\x02\x10"))
    for name, fragment in (("bad.png", "IHDR"), ("short.ppm", "truncated"),
                           ("wrong.png", "bit depth 16")):
        status, _, err = edgeq(capsys, "run", model, "-i", tmp_path / name)
        assert status == 2
        assert_one_line_error(err, name, fragment)


def test_resize_bilinear_matches_litert():
    from harness import run_litert, single_op_model

    rng = np.random.default_rng(3)
    image = rng.uniform(0, 255, (5, 7, 3)).astype(np.float32)
    for size in ((11, 4), (5, 7), (2, 3), (16, 16)):
        model = single_op_model(BuiltinOp.RESIZE_BILINEAR,
                                [((1, 5, 7, 3), np.float32), np.array(size, np.int32)],
                                options={"half_pixel_centers": True})
        (expected,) = run_litert(model, [image[None]])
        np.testing.assert_allclose(cli.resize_bilinear(image, *size), expected[0], atol=1e-3)


def test_run_an_image_scaled_for_the_input(capsys, tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (6, 5, 3)).astype(np.uint8)
    (tmp_path / "p.png").write_bytes(png_bytes(pixels))
    (tmp_path / "p.ppm").write_bytes(b"P6 5 6 255\n" + pixels.tobytes())
    model = add_model(tmp_path / "m.tflite", (1, 6, 5, 3))
    for image in ("p.png", "p.ppm"):
        for norm, scaled in (("unit", pixels / 255.0), ("signed", pixels / 127.5 - 1),
                             ("raw", pixels.astype(np.float64))):
            status, out, err = edgeq(capsys, "run", model, "-i", tmp_path / image,
                                     "--norm", norm, "-r", 0)
            assert status == 0, err
            mean = float(re.search(r"mean (\S+)", out).group(1))
            assert mean == pytest.approx(scaled.mean(), rel=1e-5)
    # A differently sized image is resized; a grey one is spread over three channels.
    grey = np.full((12, 10, 1), 51, np.uint8)
    (tmp_path / "g.png").write_bytes(png_bytes(grey))
    status, out, _ = edgeq(capsys, "run", model, "-i", tmp_path / "g.png", "-r", 0)
    assert status == 0 and "min 0.2  max 0.2  mean 0.2" in out
    uint8_model = add_model(tmp_path / "u8.tflite", (1, 3, 3, 3), dtype=np.int32)
    status, _, err = edgeq(capsys, "run", uint8_model, "-i", tmp_path / "g.png")
    assert status == 2
    assert_one_line_error(err, "int32")


# -- inspect and info ----------------------------------------------------------------------------
def test_inspect_demo_model(capsys):
    status, out, err = edgeq(capsys, "inspect", cli.DEMO_MODEL)
    assert status == 0, err
    assert re.search(r"'image' +shape \[1, 32, 32, 3\] +signature \[1, 32, 32, 3\] +float32",
                     out)
    assert re.search(r"'probabilities' +shape \[1, 6\] +signature \[1, 6\] +float32", out)
    for op, count in (("CONV_2D", 2), ("DEPTHWISE_CONV_2D", 1), ("MEAN", 1),
                      ("FULLY_CONNECTED", 1), ("SOFTMAX", 1)):
        assert re.search(rf"^  {op} +{count} +yes$", out, re.M), out
    weights = int(re.search(r"weights: ([0-9,]+) bytes", out).group(1).replace(",", ""))
    assert 10_000 < weights < 100_000
    assert "metadata: labels" in out
    arena = re.search(r"arena: ([0-9,]+) bytes; plan: (\d+) kernels", out)
    assert arena, out
    assert int(arena.group(1).replace(",", "")) >= 16 * 16 * 32 * 4
    assert 1 <= int(arena.group(2)) <= 6


def test_inspect_lists_an_unknown_custom_op_as_unsupported(capsys, tmp_path):
    b = ModelBuilder()
    x = b.add_tensor("x", (1, 4), np.float32)
    k = b.add_tensor("k", (4,), np.float32, data=np.ones(4, np.float32))
    h = b.add_tensor("h", (1, 4), np.float32)
    y = b.add_tensor("y", (1, 4), np.float32)
    b.add_operator("EdgeqTestMystery", [x], [h], custom_options=b"\x01\x02")
    b.add_operator(BuiltinOp.ADD, [h, k], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    path = tmp_path / "custom.tflite"
    path.write_bytes(b.build())
    status, out, err = edgeq(capsys, "inspect", path)
    assert status == 0, err
    assert re.search(r"^  EdgeqTestMystery \(custom\) +1 +NOT SUPPORTED$", out, re.M), out
    assert re.search(r"^  ADD +1 +yes$", out, re.M)
    assert "1 kind(s) not supported" in out
    assert "weights: 16 bytes in 1 constant tensors" in out
    assert re.search(r"arena: n/a \(.*EdgeqTestMystery", out)
    status, _, err = edgeq(capsys, "run", path)
    assert status == 2
    assert_one_line_error(err, "EdgeqTestMystery", "not supported")


def test_inspect_counts_a_shared_buffer_once(capsys, tmp_path):
    b = ModelBuilder()
    x = b.add_tensor("x", (1, 4), np.float32)
    k = b.add_tensor("k", (4,), np.float32, data=np.ones(4, np.float32))
    h = b.add_tensor("h", (1, 4), np.float32)
    y = b.add_tensor("y", (1, 4), np.float32)
    b.add_operator(BuiltinOp.ADD, [x, k], [h])
    b.add_operator(BuiltinOp.ADD, [h, k], [y])
    b.set_inputs([x])
    b.set_outputs([y])
    (tmp_path / "m.tflite").write_bytes(b.build())
    status, out, _ = edgeq(capsys, "inspect", tmp_path / "m.tflite")
    assert status == 0
    assert re.search(r"^  ADD +2 +yes$", out, re.M)
    assert "weights: 16 bytes" in out
    assert re.search(r"arena: [0-9,]+ bytes; plan: 2 kernels", out)


def test_info(capsys):
    import edgeq as package

    status, out, _ = edgeq(capsys, "info")
    assert status == 0
    assert f"edgeq {package.__version__}" in out
    assert f"numpy {np.__version__}" in out
    from edgeq.runtime import kernel_names

    assert f"kernels compiled: {len(kernel_names())}" in out
    assert "python 3." in out and "machine " in out


# -- errors ------------------------------------------------------------------------------------
def test_missing_model_file_is_exit_2(capsys, tmp_path):
    for command in ("run", "inspect", "bench"):
        status, out, err = edgeq(capsys, command, tmp_path / "nope.tflite")
        assert status == 2 and out == ""
        assert_one_line_error(err, "nope.tflite", "not found")


def test_a_file_that_is_not_a_model_is_exit_2(capsys, tmp_path):
    (tmp_path / "text.tflite").write_text("hello, this is not a flatbuffer at all\n")
    for command in ("run", "inspect"):
        status, _, err = edgeq(capsys, command, tmp_path / "text.tflite")
        assert status == 2
        assert_one_line_error(err, "text.tflite")


def test_wrongly_shaped_npy_is_exit_2_naming_the_input(capsys, tmp_path):
    np.save(tmp_path / "small.npy", np.zeros((1, 16, 16, 3), np.float32))
    status, _, err = edgeq(capsys, "run", cli.DEMO_MODEL, "--input", tmp_path / "small.npy")
    assert status == 2
    assert_one_line_error(err, "'image'", "[1, 32, 32, 3]", "[1, 16, 16, 3]")
    model = add_model(tmp_path / "m.tflite", (1, 6), names=("features", "y"))
    np.save(tmp_path / "seven.npy", np.zeros((1, 7), np.float32))
    status, _, err = edgeq(capsys, "run", model, "--input", tmp_path / "seven.npy")
    assert status == 2
    assert_one_line_error(err, "'features'", "[1, 6]", "[1, 7]")


def test_other_bad_inputs_are_exit_2(capsys, tmp_path):
    model = add_model(tmp_path / "m.tflite", (1, 2), dtype=np.int32)
    np.save(tmp_path / "f.npy", np.zeros((1, 2), np.float32))
    (tmp_path / "x.txt").write_text("1 2")
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    np.savez(tmp_path / "three.npz", a=np.zeros((1, 2), np.int32), b=np.zeros((1, 2), np.int32))
    for name, fragments in (("f.npy", ("'x'", "int32", "float32")), ("x.txt", (".npy",)),
                            ("broken.npy", ("broken.npy",)), ("absent.npy", ("not found",)),
                            ("three.npz", ("1 input (", "2 arrays"))):
        status, _, err = edgeq(capsys, "run", model, "--input", tmp_path / name)
        assert status == 2, name
        assert_one_line_error(err, *fragments)


def test_bad_arguments_exit_2():
    for args in (["run", "--threads", "0"], ["run", "--repeat", "-1"], [], ["frobnicate"],
                 ["run", "--norm", "weird"]):
        with pytest.raises(SystemExit) as e:
            cli.main(args)
        assert e.value.code == 2, args


# -- bench ---------------------------------------------------------------------------------------
STATS = r"count=(\d+) min=(\d+) max=(\d+) avg=([0-9.]+) std=([0-9.]+) p50=(\d+) p95=(\d+)"


def check_stats(out: str, who: str, runs: int):
    match = re.search(rf"^{who} inference timings in us: {STATS}$", out, re.M)
    assert match, out
    count, low, high, avg, _, p50, p95 = (float(v) for v in match.groups())
    assert count == runs
    assert low <= p50 <= p95 <= high
    assert low - 0.5 <= avg <= high + 0.5  # min and max are rounded to whole microseconds


def test_bench_prints_init_first_run_statistics_and_peak_rss(capsys, tmp_path):
    model = add_model(tmp_path / "m.tflite", [1, 8, 8, 3])
    status, out, err = edgeq(capsys, "bench", model, "--warmup", 2, "--runs", 7, "--threads", 1)
    assert status == 0 and err == ""
    assert "model: m.tflite, input [1, 8, 8, 3], 1 thread" in out
    assert re.search(r"^init \(load \+ allocate\): [0-9.]+ ms$", out, re.M), out
    assert re.search(r"^first inference: [0-9.]+ ms$", out, re.M), out
    assert "warmup: 2 runs" in out
    check_stats(out, "edgeq", 7)
    assert re.search(r"^peak RSS: [0-9.]+ MB; edgeq arena [0-9.]+ MB$", out, re.M), out
    assert "per op" not in out and "LiteRT" not in out


def test_bench_op_profile_lists_every_node_and_each_op_type(capsys, tmp_path):
    model = add_model(tmp_path / "m.tflite", [1, 4, 3])
    status, out, _ = edgeq(capsys, "bench", model, "--runs", 3, "--op-profile")
    assert status == 0
    node = re.search(r"^ +0 +ADD \(op 0\) +add_f32 +([0-9.]+) +([0-9.]+)$", out, re.M)
    assert node, out
    assert float(node.group(2)) == pytest.approx(100.0, abs=0.1)  # the only node
    assert re.search(r"^per op type:$", out, re.M)
    assert re.search(r"^ +ADD +1 +[0-9.]+ +100\.0$", out, re.M), out
    assert re.search(r"^ +total +1 +[0-9.]+$", out, re.M), out


def test_bench_compares_with_litert_on_the_same_inputs(capsys, tmp_path):
    pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert is not installed")
    model = add_model(tmp_path / "m.tflite", [2, 5], signature=[-1, 5])
    status, out, _ = edgeq(capsys, "bench", model, "--runs", 4, "--compare-litert")
    assert status == 0
    check_stats(out, "edgeq", 4)
    check_stats(out, "LiteRT", 4)
    assert re.search(r"^LiteRT init \(load \+ allocate\): [0-9.]+ ms$", out, re.M), out
    assert re.search(r"^LiteRT first inference: [0-9.]+ ms$", out, re.M), out
    assert re.search(r"^ratio edgeq / LiteRT \(median\): [0-9.]+$", out, re.M), out
    assert "(this process, LiteRT included)" in out


def test_bench_with_no_timed_runs_still_reports_the_first(capsys, tmp_path):
    model = add_model(tmp_path / "m.tflite", [3])
    status, out, _ = edgeq(capsys, "bench", model, "--runs", 0, "--warmup", 0)
    assert status == 0
    assert re.search(r"^first inference: [0-9.]+ ms$", out, re.M)
    assert "inference timings" not in out
