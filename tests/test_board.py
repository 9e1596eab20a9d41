"""edgeq.board: every shipped board config is valid, and detect_board() recognises boards from
fake /proc, /sys and device-tree files (and never raises on odd ones)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeq import board as B

SOURCE_CONFIGS = Path(__file__).resolve().parents[1] / "board_configs"
BOARDS = ["rpi3", "rpi4", "rpi5", "rpi-zero-2w", "android-termux", "generic-aarch64", "x86_64"]
QEMU_CPUS = {"cortex-a35", "cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "neoverse-n1",
             "a64fx", "max"}

A53, A55, A72, A76, X1, A78 = "0xd03", "0xd05", "0xd08", "0xd0b", "0xd44", "0xd41"
PI_FEATURES = "fp asimd evtstrm crc32 cpuid"
A76_FEATURES = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm " \
               "lrcpc dcpop asimddp"


def cpuinfo(parts, features=PI_FEATURES, implementer="0x41", extra=""):
    """An arm64 /proc/cpuinfo: one record per CPU part given."""
    records = [f"processor\t: {k}\nBogoMIPS\t: 108.00\nFeatures\t: {features}\n"
               f"CPU implementer\t: {implementer}\nCPU architecture: 8\nCPU variant\t: 0x4\n"
               f"CPU part\t: {part}\nCPU revision\t: 1\n" for k, part in enumerate(parts)]
    return "\n".join(records) + ("\n" + extra if extra else "")


def fake_machine(root: Path, *, model=None, model_path="proc/device-tree/model", parts=(),
                 features=PI_FEATURES, online=None, capacity=None, max_freq=None, files=None):
    """Write the files detect_board reads below `root`; returns root."""
    def put(rel, text):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    if model is not None:
        put(model_path, model.encode() + b"\x00")  # device-tree strings end in NUL
    if parts:
        put("proc/cpuinfo", cpuinfo(parts, features))
    if online is not None:
        put("sys/devices/system/cpu/online", online + "\n")
    for cpu, value in enumerate(capacity or []):
        put(f"sys/devices/system/cpu/cpu{cpu}/cpu_capacity", f"{value}\n")
    for cpu, value in enumerate(max_freq or []):
        put(f"sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq", f"{value}\n")
    for rel, text in (files or {}).items():
        put(rel, text)
    return root


def detect(root, machine="aarch64", environ=None):
    return B.detect_board(root=root, environ=environ or {}, machine=machine)


# ------------------------------------------------------------------------------ configs

@pytest.mark.parametrize("name", BOARDS)
def test_every_board_has_a_valid_source_config(name):
    path = SOURCE_CONFIGS / f"{name}.json"
    if not SOURCE_CONFIGS.is_dir():
        pytest.skip("board_configs/ is not beside this installed copy")
    cfg = json.loads(path.read_text())
    assert cfg["name"] == name
    assert B.validate_config(cfg) == []
    assert cfg["qemu_cpu"] is None or cfg["qemu_cpu"] in QEMU_CPUS


def test_no_stray_config_files():
    if not SOURCE_CONFIGS.is_dir():
        pytest.skip("board_configs/ is not beside this installed copy")
    assert sorted(p.stem for p in SOURCE_CONFIGS.glob("*.json")) == sorted(BOARDS)
    assert not [p for p in SOURCE_CONFIGS.iterdir() if p.suffix != ".json"]


def test_configs_load_from_wherever_edgeq_lives():
    """Source checkout (board_configs/) or installed wheel (edgeq/data/boards/) alike."""
    configs = B.load_configs()
    assert set(BOARDS) <= set(configs)
    for cfg in configs.values():
        assert B.validate_config(cfg) == [], cfg["name"]


def test_thread_defaults_follow_the_cores():
    configs = B.load_configs()
    for name in ("rpi3", "rpi4", "rpi5", "rpi-zero-2w"):
        assert configs[name]["default_threads"] == configs[name]["cores"] == 4
    assert configs["android-termux"]["thread_policy"] == "big-cores"
    assert configs["android-termux"]["affinity"] == "big-cores"
    assert configs["x86_64"]["thread_policy"] == "physical-cores"
    assert configs["rpi5"]["features"] == ["neon", "dotprod", "fp16"]
    assert configs["rpi4"]["features"] == ["neon"]


@pytest.mark.parametrize("bad, field", [
    ({"default_threads": 1}, "default_threads"),          # 1 thread on a 4-core board
    ({"default_threads": 8}, "default_threads"),          # more than its cores
    ({"default_threads": True}, "default_threads"),
    ({"features": ["neon", "sve2"]}, "features"),
    ({"features": []}, "features"),
    ({"arch": "riscv64"}, "arch"),
    ({"libc": "musl"}, "libc"),
    ({"cflags": "-mcpu=cortex-a72"}, "cflags"),
    ({"thread_policy": "all"}, "thread_policy"),
    ({"affinity": "little"}, "affinity"),
    ({"detect": {"model_regex": ["("], "cpu_parts": []}}, "model_regex"),
    ({"detect": {"model_regex": [], "cpu_parts": ["0xd08"]}}, "cpu_parts"),
])
def test_validate_config_names_the_bad_field(bad, field):
    cfg = dict(B.load_configs()["rpi4"], **bad)
    problems = B.validate_config(cfg)
    assert problems and any(field in p for p in problems), problems


@pytest.mark.skipif(not shutil.which("aarch64-linux-gnu-gcc"), reason="no aarch64 cross gcc")
@pytest.mark.parametrize("name", [b for b in BOARDS if b != "x86_64"])
def test_arm_cflags_are_accepted_by_the_cross_compiler(name, tmp_path):
    cfg = B.load_configs()[name]
    src = tmp_path / "empty.c"
    src.write_text("int edgeq_probe(int x) { return x + 1; }\n")
    result = subprocess.run(["aarch64-linux-gnu-gcc", "-Werror", "-c", str(src), "-o",
                             str(tmp_path / "empty.o")] + cfg["cflags"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------ detection

@pytest.mark.parametrize("model_path", ["proc/device-tree/model",
                                        "sys/firmware/devicetree/base/model"])
@pytest.mark.parametrize("model, expected", [
    ("Raspberry Pi 3 Model B Rev 1.2", "rpi3"),
    ("Raspberry Pi 3 Model B Plus Rev 1.3", "rpi3"),
    ("Raspberry Pi 3 Model A Plus Rev 1.0", "rpi3"),
    ("Raspberry Pi Compute Module 3 Plus Rev 1.0", "rpi3"),
    ("Raspberry Pi Zero 2 W Rev 1.0", "rpi-zero-2w"),
    ("Raspberry Pi 4 Model B Rev 1.4", "rpi4"),
    ("Raspberry Pi 400 Rev 1.0", "rpi4"),
    ("Raspberry Pi Compute Module 4 Rev 1.0", "rpi4"),
    ("Raspberry Pi 5 Model B Rev 1.0", "rpi5"),
    ("Raspberry Pi 500 Rev 1.0", "rpi5"),
    ("Raspberry Pi Compute Module 5 Rev 1.0", "rpi5"),
])
def test_raspberry_pi_from_device_tree_model(tmp_path, model_path, model, expected):
    root = fake_machine(tmp_path, model=model, model_path=model_path, parts=[A53] * 4,
                        online="0-3")
    board = detect(root)
    assert (board.name, board.matched_by, board.model) == (expected, "model", model)
    assert board.default_threads == 4
    assert board.affinity == ()
    assert board.features == tuple(B.load_configs()[expected]["features"])


def test_model_line_of_a_pi_kernels_cpuinfo(tmp_path):
    """32-bit Raspberry Pi OS kernels print the model in /proc/cpuinfo too."""
    text = cpuinfo([A72] * 4,
                   extra="Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.5\n")
    root = fake_machine(tmp_path, files={"proc/cpuinfo": text})
    board = detect(root, machine="armv7l")
    assert (board.name, board.matched_by) == ("rpi4", "model")


def test_model_that_is_no_known_board_falls_through_to_cpu_parts(tmp_path):
    root = fake_machine(tmp_path, model="Pine64 RockPro64 v2.1", parts=[A72] * 4, online="0-3")
    board = detect(root)
    assert (board.name, board.matched_by) == ("rpi4", "cpu part")


@pytest.mark.parametrize("part, expected", [(A53, "rpi3"), (A72, "rpi4"), (A76, "rpi5")])
def test_board_from_cpu_parts_alone(tmp_path, part, expected):
    root = fake_machine(tmp_path, parts=[part] * 4)  # no device tree, no online file
    board = detect(root)
    assert (board.name, board.matched_by) == (expected, "cpu part")
    assert board.cpu_parts == (f"0x41:{part}",) * 4
    assert board.default_threads == 4


def test_unknown_homogeneous_cpu_is_generic(tmp_path):
    root = fake_machine(tmp_path, parts=["0xd0c"] * 8, online="0-7")  # Neoverse-N1 server
    board = detect(root)
    assert (board.name, board.matched_by) == ("generic-aarch64", "fallback")
    assert board.default_threads == 8
    assert board.affinity == ()


RK3588 = dict(parts=[A55] * 4 + [A76] * 4, online="0-7")  # 4 LITTLE then 4 big


@pytest.mark.parametrize("how", ["capacity", "max_freq", "parts"])
def test_big_little_linux_board_uses_its_big_cores(tmp_path, how):
    extra = {"capacity": dict(capacity=[414] * 4 + [1024] * 4),
             "max_freq": dict(max_freq=[1800000] * 4 + [2400000] * 4),
             "parts": {}}[how]
    root = fake_machine(tmp_path, model="Radxa ROCK 5B", **RK3588, **extra)
    board = detect(root)
    assert board.name == "generic-aarch64"
    assert board.default_threads == 4
    assert board.affinity == (4, 5, 6, 7)


@pytest.mark.parametrize("signal", ["ANDROID_ROOT", "ANDROID_DATA", "TERMUX_VERSION", "build.prop"])
def test_android_phone(tmp_path, signal):
    # Snapdragon 888 layout: 4x A55, 3x A78, 1x X1; capacities as its kernel reports them.
    root = fake_machine(tmp_path, parts=[A55] * 4 + [A78] * 3 + [X1], features=A76_FEATURES,
                        online="0-7", capacity=[325] * 4 + [836] * 3 + [1024],
                        files={"system/build.prop": "ro.product.model=Pixel\n"}
                        if signal == "build.prop" else None)
    environ = {} if signal == "build.prop" else {signal: "/system"}
    board = detect(root, environ=environ)
    assert (board.name, board.matched_by) == ("android-termux", "android")
    assert board.default_threads == 4
    assert board.affinity == (4, 5, 6, 7)
    assert board.detected_features == ("neon", "dotprod", "fp16")


def test_android_with_two_big_cores_by_qualcomm_part_numbers(tmp_path):
    """Kryo 4xx: Gold 0x804, Silver 0x805 (implementer 0x51); no capacity or cpufreq files."""
    text = "\n".join(cpuinfo([p], implementer="0x51").replace("processor\t: 0", f"processor\t: {k}")
                     for k, p in enumerate(["0x805"] * 6 + ["0x804"] * 2))
    root = fake_machine(tmp_path, files={"proc/cpuinfo": text})
    board = detect(root, environ={"ANDROID_ROOT": "/system"})
    assert board.name == "android-termux"
    assert board.default_threads == 2
    assert board.affinity == (6, 7)


def test_one_big_core_still_gets_two_threads(tmp_path):
    root = fake_machine(tmp_path, parts=[A55] * 3 + [A76], online="0-3",
                        capacity=[300, 300, 300, 1024])
    board = detect(root, environ={"ANDROID_DATA": "/data"})
    assert board.default_threads == 2


def test_single_core_machine_gets_one_thread(tmp_path):
    root = fake_machine(tmp_path, parts=[A53], online="0")
    assert detect(root).default_threads == 1


def test_x86_counts_physical_cores(tmp_path):
    files = {"proc/cpuinfo": "processor\t: 0\nmodel\t\t: 1\nflags\t\t: fpu sse2 avx2 fma f16c "
                             "avx512_vnni avx_vnni\n"}
    for cpu in range(4):  # 2 cores x 2 SMT threads
        files[f"sys/devices/system/cpu/cpu{cpu}/topology/core_id"] = f"{cpu % 2}\n"
        files[f"sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id"] = "0\n"
    root = fake_machine(tmp_path, online="0-3", files=files)
    board = detect(root, machine="x86_64")
    assert (board.name, board.arch, board.matched_by) == ("x86_64", "x86_64", "fallback")
    assert board.model == ""  # x86's numeric "model" line is no board name
    assert board.default_threads == 2
    assert board.detected_features == ("sse2", "avx2", "fma", "f16c", "avxvnni", "avx512vnni")


@pytest.mark.parametrize("machine, expected", [
    ("aarch64", "generic-aarch64"), ("arm64", "generic-aarch64"), ("x86_64", "x86_64"),
    ("AMD64", "x86_64"), ("riscv64", "generic-aarch64"), ("", "generic-aarch64"),
])
def test_empty_machine_falls_back(tmp_path, machine, expected):
    board = detect(tmp_path, machine=machine)
    assert (board.name, board.matched_by) == (expected, "fallback")
    assert board.default_threads == 1  # nothing says there is more than one CPU
    assert board.detected_features == ()


@pytest.mark.parametrize("odd", ["dirs", "garbage", "dangling", "huge-range", "binary-model"])
def test_odd_files_never_raise(tmp_path, odd):
    if odd == "dirs":  # folders where files should be: reads fail
        for rel in ("proc/cpuinfo", "proc/device-tree/model", "sys/devices/system/cpu/online",
                    "system/build.prop/x"):
            (tmp_path / rel).mkdir(parents=True)
    elif odd == "garbage":
        fake_machine(tmp_path, online="zero-three", files={
            "proc/cpuinfo": "CPU part : banana\nprocessor : x\n:::\n\n\nCPU implementer: 0x41\n",
            "sys/devices/system/cpu/cpu0/cpu_capacity": "lots"})
    elif odd == "dangling":
        (tmp_path / "proc/device-tree").mkdir(parents=True)
        (tmp_path / "proc/device-tree/model").symlink_to(tmp_path / "nowhere")
        (tmp_path / "proc/cpuinfo").symlink_to(tmp_path / "proc/cpuinfo")  # a loop
    elif odd == "huge-range":
        fake_machine(tmp_path, online="0-99999999", parts=[A72] * 2)
    elif odd == "binary-model":
        fake_machine(tmp_path, files={"proc/device-tree/model": b"\xff\xfe\x00Raspberry\x00"})
    board = detect(tmp_path)
    assert board.name in BOARDS
    assert board.default_threads >= 1


def test_broken_and_overriding_config_files(tmp_path, monkeypatch):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    invalid = dict(B.load_configs()["rpi4"], name="invalid", default_threads=0)
    (tmp_path / "invalid.json").write_text(json.dumps(invalid))
    custom = dict(B.load_configs()["rpi4"], name="rpi4", default_threads=3)
    (tmp_path / "rpi4.json").write_text(json.dumps(custom))
    monkeypatch.setenv("EDGEQ_BOARD_CONFIGS", str(tmp_path))
    configs = B.load_configs()
    assert "invalid" not in configs and "broken" not in configs
    assert configs["rpi4"]["default_threads"] == 3  # the override wins
    assert set(BOARDS) <= set(configs)


def test_no_config_files_at_all_still_detects(tmp_path):
    configs = B.load_configs([tmp_path / "missing"])
    assert set(configs) == {"generic-aarch64", "x86_64"}
    root = fake_machine(tmp_path / "m", model="Raspberry Pi 4 Model B Rev 1.4", parts=[A72] * 4)
    board = B.detect_board(root=root, environ={}, machine="aarch64", configs=configs)
    assert board.name == "generic-aarch64" and board.default_threads == 4


def test_unknown_board_name_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown board 'rpi9'.*rpi4"):
        B.board_config("rpi9")


def test_cpu_features_from_cpuinfo(tmp_path):
    fake_machine(tmp_path, parts=[A76] * 4, features=A76_FEATURES + " i8mm")
    assert B.cpu_features(tmp_path, machine="aarch64") == ("neon", "dotprod", "fp16", "i8mm")
    assert B.cpu_features(tmp_path / "nothing", machine="aarch64") == ()


# ------------------------------------------------------------------------------ this machine

def test_this_machine_is_detected_without_error():
    board = B.detect_board()
    assert board.name in B.load_configs()
    assert 1 <= board.default_threads <= (os.cpu_count() or 1)
    assert all(c in range(4096) for c in board.affinity)
    info = board.as_dict()
    json.dumps(info)  # plain data, printable by `python -m edgeq.board`
    if B._normalize_machine(board.machine) == "aarch64":
        assert "neon" in board.detected_features


def test_emulated_core_reports_its_features():
    """Under tools/qemu_pytest.py: getauxval sees the emulated core, not the x86 host."""
    cpu = os.environ.get("EDGEQ_QEMU_CPU")
    if not cpu or cpu == "max":
        pytest.skip("not running under tools/qemu_pytest.py with a named core")
    expected = {"cortex-a35": ("neon",), "cortex-a53": ("neon",), "cortex-a57": ("neon",),
                "cortex-a72": ("neon",), "cortex-a76": ("neon", "dotprod", "fp16"),
                "neoverse-n1": ("neon", "dotprod", "fp16")}
    if cpu not in expected:
        pytest.skip(f"no expectation for {cpu}")
    assert B.cpu_features() == expected[cpu]
    for cfg in B.load_configs().values():
        if cfg["qemu_cpu"] == cpu and cfg["name"].startswith("rpi"):
            assert tuple(cfg["features"]) == expected[cpu], cfg["name"]
