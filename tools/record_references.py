#!/usr/bin/env python3
"""Record LiteRT's outputs for every shared model, for test runs where LiteRT cannot run.

    python tools/record_references.py [--models ../shared/models] [--out tests/reference]

LiteRT (the reference) has no wheel usable under qemu-user, so the emulated ARM test runs
(tools/qemu_pytest.py) compare edgeq against these recordings instead. Inputs are exactly the
model tests' own: tests/test_models.py's `run(interpreter, name, seed=1)` (make_inputs with
seed 1, the RESIZE table) is imported and called here, so the two can never drift apart.

For each model M.tflite that LiteRT can run, tests/reference/M.npz holds
  output_0, output_1, ...   the outputs in get_output_details() order (float32 as LiteRT gives)
  inputs_sha256             digest of the fed inputs (dtype, shape, bytes, in input order),
                            so a run on another numpy can prove it generated the same inputs
  seed, litert_version      how they were made
compressed (np.savez_compressed). tests/reference/index.json lists every model with its input
shapes and dtypes and output shapes, or why it has no recording (LiteRT could not run it).
Re-run it when a model or the model tests' inputs change; it rewrites only what differs.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
SEED = 1


def inputs_digest(feeds) -> str:
    """What the fallback test recomputes: equal digests mean bit-identical inputs."""
    h = hashlib.sha256()
    for x in feeds:
        x = np.ascontiguousarray(x)
        h.update(f"{x.dtype.str}{x.shape}".encode())
        h.update(x.tobytes())
    return h.hexdigest()


def find_models(start: Path) -> Path | None:
    for parent in [start] + list(start.parents):
        if (parent / "shared" / "models").is_dir():
            return parent / "shared" / "models"
    return None


def record(model: Path, test_models, litert, version: str) -> tuple[dict, dict]:
    """(arrays for the npz, index entry) for one model."""
    seen = {}
    make_inputs = test_models.make_inputs

    def capture(details, seed=0):  # the model tests' generator, with the feeds kept aside
        feeds = make_inputs(details, seed)
        seen["feeds"] = feeds
        seen["details"] = [{"shape": [int(v) for v in d["shape"]],
                            "dtype": np.dtype(d["dtype"]).name} for d in details]
        return feeds

    test_models.make_inputs = capture
    try:
        interp = litert.Interpreter(model_path=str(model), num_threads=1)
        outputs = test_models.run(interp, model.name, seed=SEED)
    finally:
        test_models.make_inputs = make_inputs
    arrays = {f"output_{k}": np.asarray(o) for k, o in enumerate(outputs)}
    digest = inputs_digest(seen["feeds"])
    arrays.update(inputs_sha256=np.array(digest), seed=np.array(SEED),
                  litert_version=np.array(version))
    entry = {"file": model.stem + ".npz", "inputs_sha256": digest, "inputs": seen["details"],
             "outputs": [{"shape": list(o.shape), "dtype": str(o.dtype)} for o in outputs]}
    return arrays, entry


def npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def same_content(path: Path, arrays: dict) -> bool:
    """True when the file already holds these arrays (keeps unchanged files untouched)."""
    try:
        with np.load(path) as old:
            if set(old.files) != set(arrays):
                return False
            return all(np.array_equal(old[k], arrays[k]) for k in arrays)
    except (OSError, ValueError):
        return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", help="model folder (default: nearest shared/models above)")
    p.add_argument("--out", default=str(TESTS / "reference"))
    args = p.parse_args(argv)
    models = Path(args.models) if args.models else find_models(ROOT.parent)
    if models is None or not models.is_dir():
        raise SystemExit("no shared/models folder found; pass --models")
    if not any(models.glob("*.tflite")):
        raise SystemExit(f"no .tflite files in {models}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    try:
        from importlib.metadata import version as dist_version

        import ai_edge_litert.interpreter as litert
    except ImportError:
        raise SystemExit("ai-edge-litert is not installed: pip install -e '.[test]'")
    sys.path[:0] = [str(TESTS), str(ROOT)]  # as pytest sees them: harness, and this edgeq
    try:
        import test_models
    except ImportError as e:
        raise SystemExit(f"importing tests/test_models.py failed ({e}); build edgeq in place "
                         "first: python setup.py build_ext --inplace")
    litert_version = dist_version("ai-edge-litert")

    index = {"seed": SEED, "litert_version": litert_version, "models": {}}
    total = 0
    for model in sorted(models.glob("*.tflite")):
        start = time.monotonic()
        try:
            arrays, entry = record(model, test_models, litert, litert_version)
        except Exception as e:  # a model LiteRT cannot run: say why, keep going
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            index["models"][model.name] = {"skipped": reason[:200]}
            print(f"{model.name}: not recorded ({reason[:120]})", file=sys.stderr)
            continue
        path = out / entry["file"]
        if not same_content(path, arrays):
            path.write_bytes(npz_bytes(arrays))
        size = path.stat().st_size
        total += size
        index["models"][model.name] = entry
        print(f"{model.name}: {len(entry['outputs'])} outputs, {size / 1024:.0f} KiB, "
              f"{time.monotonic() - start:.1f} s", file=sys.stderr)
    (out / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    print(f"{len([m for m in index['models'].values() if 'file' in m])} recordings, "
          f"{total / 2**20:.2f} MiB in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
