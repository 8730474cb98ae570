"""CPU detection and the choices made from it: injected flags for every CPU kind, and real fits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from helpers import TINY, run_litquant, run_python

from litquant import cpu
from litquant.artifacts.loading import read_description
from litquant.cpu import CpuInfo, choose_precision, cpu_info, cpu_info_from_flags, int8_reduce_range

AVX2 = ["sse4_2", "avx", "avx2", "fma"]
AVX512 = [*AVX2, "avx512f", "avx512bw"]
ZEN5 = [*AVX512, "avx512_vnni", "avx512_bf16"]  # AVX-512 with VNNI and BF16 (AMD Zen 4/5)
SAPPHIRE_RAPIDS = [*ZEN5, "amx_tile", "amx_int8", "amx_bf16"]

KINDS = [  # flags, isa, vnni, bf16, amx
    (AVX2, "avx2", False, False, False),
    ([*AVX2, "avx_vnni"], "avx2", True, False, False),  # Alder Lake: VNNI without AVX-512
    (AVX512, "avx512", False, False, False),
    ([*AVX512, "avx512_vnni"], "avx512-vnni", True, False, False),  # Cascade Lake
    (ZEN5, "avx512-vnni", True, True, False),
    (SAPPHIRE_RAPIDS, "amx", True, True, True),
    (["sse4_2"], "other", False, False, False),
]


@pytest.mark.parametrize(("flags", "isa", "vnni", "bf16", "amx"), KINDS)
def test_cpu_kind_from_flags(flags, isa, vnni, bf16, amx) -> None:
    info = cpu_info_from_flags(flags, "test CPU")
    assert (info.isa, info.has_vnni, info.has_bf16, info.has_amx) == (isa, vnni, bf16, amx)
    assert int8_reduce_range(info) is not vnni
    assert info.as_dict()["flags"] == [f for f in cpu.FLAGS if f in flags]


def test_torch_capability_counts_without_flags() -> None:
    assert cpu_info_from_flags([], torch_capability="AVX512").isa == "avx512"
    assert cpu_info_from_flags([], torch_capability="AVX2").isa == "avx2"
    assert cpu_info_from_flags([], torch_capability="DEFAULT").isa == "other"


@pytest.mark.parametrize(("flags", "precision"), [(AVX2, "32-true"), (AVX512, "32-true"),
                                                  ([*AVX512, "avx512_vnni"], "32-true"),
                                                  (ZEN5, "bf16-mixed"), (SAPPHIRE_RAPIDS, "bf16-mixed")])
def test_precision_follows_native_bf16(flags, precision) -> None:
    choice = choose_precision(cpu_info_from_flags(flags, "test CPU"), cuda_bf16_device=None)
    assert choice.precision == precision
    assert choice.channels_last is (precision == "bf16-mixed")
    assert "test CPU" in choice.reason and "\n" not in choice.reason


def test_cuda_gpu_with_bf16_wins_unless_the_accelerator_is_the_cpu() -> None:
    avx2 = cpu_info_from_flags(AVX2, "test CPU")
    on_gpu = choose_precision(avx2, cuda_bf16_device="Test GPU")
    assert (on_gpu.precision, on_gpu.channels_last) == ("bf16-mixed", True) and "Test GPU" in on_gpu.reason
    assert choose_precision(avx2, accelerator="cpu", cuda_bf16_device="Test GPU").precision == "32-true"


def test_this_machine_is_read_from_proc_cpuinfo() -> None:
    info = cpu_info()
    assert info.torch_capability == torch.backends.cpu.get_cpu_capability()
    words = (Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else "").split()
    capped = cpu.onednn_isa_cap() is not None or info.torch_capability in ("AVX2", "DEFAULT")
    if "avx2" in words and not capped:
        assert info.isa in ("avx2", "avx512", "avx512-vnni", "amx") and "avx2" in info.flags
    bf16 = "avx512_bf16" in words or "amx_bf16" in words
    assert info.has_bf16 is bf16 if not capped else (not info.has_bf16 or bf16)


DATA = Path(__file__).resolve().parent / "data"
#: The CPU kinds ``tests/data/cpu-<kind>/`` holds flags of (see its README), with what litquant decides on each:
#: vnni, bf16, amx, training precision, 7-bit int8 (``reduce_range``).
CAPTURED = {
    "avx2": (False, False, False, "32-true", True),
    "avx512-vnni": (True, True, False, "bf16-mixed", False),
    "amx": (True, True, True, "bf16-mixed", False),
}


def captured_flags(kind: str) -> list[str]:
    """The ``flags`` line of ``/proc/cpuinfo`` of a real machine of ``kind``, from ``tests/data/``."""
    return (DATA / f"cpu-{kind}" / "cpuinfo-flags.txt").read_text().partition(":")[2].split()


def test_every_captured_kind_is_covered() -> None:
    assert sorted(p.name.removeprefix("cpu-") for p in DATA.glob("cpu-*")) == sorted(CAPTURED)


@pytest.mark.parametrize("kind", CAPTURED)
def test_decisions_on_each_cpu_kind_from_its_real_flags(kind: str, monkeypatch) -> None:
    vnni, bf16, amx, precision, reduce_range = CAPTURED[kind]
    capability = "AVX2" if kind == "avx2" else "AVX512"  # what torch reports on such a CPU
    info = cpu_info_from_flags(captured_flags(kind), f"{kind} CPU", capability)
    assert (info.isa, info.has_vnni, info.has_bf16, info.has_amx) == (kind, vnni, bf16, amx)
    choice = choose_precision(info, cuda_bf16_device=None)
    assert (choice.precision, choice.channels_last) == (precision, precision == "bf16-mixed")
    assert cpu.choose_reduce_range("auto", info).reduce_range is reduce_range
    assert f"{kind} CPU: litquant uses the {kind} kind" in cpu.summary(info)
    # the AOT package cache keeps each kind's packages apart
    from litquant.artifacts import aot

    monkeypatch.setattr(aot, "cpu_info", lambda: info)
    assert aot.package_path(Path("cache"), "0" * 64, 1).parent.name.endswith(f"-{kind}")


@pytest.mark.parametrize("kind", ["avx512-vnni", "amx"])
def test_forcing_avx2_on_a_higher_kind_takes_the_avx2_path(kind: str) -> None:
    """``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`` make oneDNN and torch run AVX2 kernels: no exact int8
    products (VNNI), no native bf16. litquant then decides as on an AVX2 CPU: fp32 training, 7-bit int8."""
    info = cpu_info_from_flags(captured_flags(kind), f"{kind} CPU", "AVX2", cpu.onednn_isa_cap("AVX2"))
    assert (info.isa, info.has_vnni, info.has_bf16, info.has_amx) == ("avx2", False, False, False)
    assert choose_precision(info, cuda_bf16_device=None).precision == "32-true"
    assert cpu.choose_reduce_range("auto", info).reduce_range is True
    # oneDNN capped alone (torch's own kernels still AVX-512): the int8 kernels decide the range
    only_onednn = cpu_info_from_flags(captured_flags(kind), "x", "AVX512", cpu.onednn_isa_cap("AVX512_CORE"))
    assert (only_onednn.isa, only_onednn.has_vnni) == ("avx512", False)
    assert cpu.onednn_isa_cap("ALL") is None and cpu.onednn_isa_cap("avx2_vnni")[2]  # VNNI allowed


def _fit(capsys, tmp_path: Path, mnist_dir: Path, *extra: str) -> tuple[int, str]:
    from litquant.cli import main

    capsys.readouterr()
    code = main(["fit", f"--data.data_dir={mnist_dir}", "--data.train_size=128", "--data.val_size=64",
                 "--data.batch_size=64", "--trainer.max_steps=2", "--trainer.limit_val_batches=1",
                 f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false",
                 "--trainer.enable_model_summary=false", *extra])
    return code, capsys.readouterr().out


def test_fit_prints_the_precision_it_chose_on_this_machine(capsys, tmp_path: Path, mnist_dir: Path) -> None:
    expected = choose_precision()
    code, out = _fit(capsys, tmp_path, mnist_dir)
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("precision "))
    assert line.startswith(f"precision {expected.precision}") and expected.reason in line


def test_fit_on_a_bf16_cpu_trains_bf16_channels_last(capsys, monkeypatch, tmp_path: Path, mnist_dir: Path) -> None:
    monkeypatch.setattr(cpu, "cpu_info", lambda: cpu_info_from_flags(ZEN5, "Injected Zen 5"))
    monkeypatch.setattr(cpu, "_cuda_bf16", lambda: None)
    seen: dict[str, object] = {}

    def spy(self, batch, split):
        seen.update(precision=self.trainer.precision, weight=self.model.conv2.weight, dtype=self(batch[0]).dtype)
        return original(self, batch, split)

    from litquant.model import MNISTClassifier
    original = MNISTClassifier._shared_step
    monkeypatch.setattr(MNISTClassifier, "_shared_step", spy)
    code, out = _fit(capsys, tmp_path, mnist_dir)
    assert code == 0
    assert "precision bf16-mixed + channels_last: CPU Injected Zen 5 has native bf16 (AVX512_BF16)" in out
    assert seen["precision"] == "bf16-mixed"
    assert seen["weight"].is_contiguous(memory_format=torch.channels_last) and seen["dtype"] == torch.bfloat16


def test_explicit_precision_overrides_the_choice(capsys, monkeypatch, tmp_path: Path, mnist_dir: Path) -> None:
    monkeypatch.setattr(cpu, "cpu_info", lambda: cpu_info_from_flags(ZEN5, "Injected Zen 5"))
    code, out = _fit(capsys, tmp_path, mnist_dir, "--trainer.precision=32-true")
    assert code == 0 and "precision " not in out


def test_explicit_bf16_without_native_bf16_trains_with_a_note(capsys, monkeypatch, tmp_path: Path,
                                                               mnist_dir: Path) -> None:
    """bf16 asked for on a CPU without native bf16 trains as asked, and says that it is emulated there."""
    monkeypatch.setattr(cpu, "cpu_info", lambda: cpu_info_from_flags(AVX2, "Injected AVX2 CPU"))
    monkeypatch.setattr(cpu, "_cuda_bf16", lambda: None)
    code, out = _fit(capsys, tmp_path, mnist_dir, "--trainer.precision=bf16-mixed")
    assert code == 0
    assert ("precision bf16-mixed as given (--trainer.precision), though CPU Injected AVX2 CPU (avx2) has no native "
            "bf16 (AVX512_BF16 or AMX), where bf16 would be emulated and slower") in out


def test_cpu_info_is_frozen() -> None:
    with pytest.raises(AttributeError):
        CpuInfo("x", "avx2", False, False, False).isa = "amx"  # type: ignore[misc]


#: litquant's AVX2 path on any x86-64 CPU: oneDNN's and torch's kernels capped to AVX2.
FORCED_AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def test_the_avx2_path_forced_on_any_cpu_trains_quantizes_and_runs_int8(tmp_path: Path, mnist_dir: Path) -> None:
    """With the ISA forced down to AVX2, a fresh process takes the AVX2 path end to end: fp32 training, 7-bit int8,
    int8 kernels that pass the check. On a CPU above AVX2 this exercises the path its own tests otherwise skip; on
    an AVX2 CPU it is the ordinary path, so the test runs, with the same meaning, on every kind."""
    env = {"OMP_NUM_THREADS": "1", **FORCED_AVX2}
    kind = run_python("-m", "litquant.cpu", cwd=tmp_path, **env).stdout
    assert "uses the avx2 kind" in kind and "training precision on it 32-true, int8 range 7-bit" in kind, kind
    data = f"--data.data_dir={mnist_dir}"
    fit = run_litquant("fit", data, *TINY, "--trainer.max_steps=4", "--trainer.limit_val_batches=1", cwd=tmp_path,
                       **env)
    assert re.search(r"^precision 32-true: CPU .* \(avx2\)", fit.stdout, re.M), fit.stdout
    checkpoint = next((tmp_path / "runs").glob("mnist/version_0/checkpoints/last.ckpt"))
    run_litquant("quantize", f"--ckpt_path={checkpoint}", "--method=ptq", "--out=q", "--calibration_batches=1",
                 data, *TINY[:3], cwd=tmp_path, **env)
    entry = read_description(tmp_path / "q" / "ptq.pt2").extra["int8_range"]
    assert (entry["reduce_range"], entry["chosen_for"], entry["chosen_for_vnni"]) == (True, "avx2", False)
    # the int8 model compiled with inductor (its int8-kernel check runs on every compilation) and evaluated
    evaluated = run_litquant("evaluate", "q/ptq.pt2", data, "--data.test_size=256", cwd=tmp_path, **env)
    assert re.search(r"^test_acc 0\.\d{4}", evaluated.stdout, re.M), evaluated.stdout
