"""The int8 range chosen for the CPU (``--quant.reduce_range auto|true|false``): one resolution for every method,
recorded in the artifact, and a warning when a full-range artifact runs on a CPU whose kernels would saturate."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from quantization_helpers import small_datamodule
from test_cpu import AVX2, ZEN5

from litquant import cpu
from litquant.artifacts.description import saturation_warning
from litquant.artifacts.errors import Int8RangeWarning
from litquant.artifacts.loading import load_artifact, read_description
from litquant.cpu import choose_reduce_range, cpu_info_from_flags
from litquant.quantization import QuantizeConfig, quantize
from litquant.quantization.calibration import CalibrationConfig, quantizer_for
from litquant.quantization.callback import QuantizationAwareTraining
from litquant.quantization.onnx_runtime import CANDIDATES, eligible_candidates

AVX2_CPU = cpu_info_from_flags(AVX2, "Injected AVX2")
ZEN5_CPU = cpu_info_from_flags(ZEN5, "Injected Zen 5")


@pytest.fixture
def on_cpu(monkeypatch):
    """``on_cpu(info)``: this process sees ``info`` as its CPU."""
    return lambda info: monkeypatch.setattr(cpu, "cpu_info", lambda: info)


def activation_quant_max(program: torch.export.ExportedProgram) -> set[int]:
    """The ``quant_max`` of every per-tensor (activation) quantize node of an int8 program."""
    target = torch.ops.quantized_decomposed.quantize_per_tensor.default
    return {node.args[4] for node in program.graph.nodes if node.target == target}


def test_auto_is_7_bit_only_without_vnni_and_an_explicit_setting_wins() -> None:
    avx2, zen5 = choose_reduce_range("auto", AVX2_CPU), choose_reduce_range("auto", ZEN5_CPU)
    assert (avx2.reduce_range, avx2.isa) == (True, "avx2") and "without VNNI" in avx2.reason
    assert (zen5.reduce_range, zen5.isa) == (False, "avx512-vnni") and "avx512_vnni" in zen5.reason
    for info in (AVX2_CPU, ZEN5_CPU):
        for setting in (True, False):
            forced = choose_reduce_range(setting, info)
            assert forced.reduce_range is setting
            assert forced.reason == f"set by --quant.reduce_range {str(setting).lower()}"
    with pytest.raises(ValueError, match="auto, true or false"):
        choose_reduce_range("yes", AVX2_CPU)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduce_range"):
        QuantizeConfig(reduce_range=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^--quant\.reduce_range must be auto, true or false, got None$"):
        QuantizeConfig(reduce_range=None)  # type: ignore[arg-type]  # null in a --config file


@pytest.mark.parametrize(("info", "setting", "quant_max"), [(AVX2_CPU, "auto", 127), (ZEN5_CPU, "auto", 255),
                                                            (AVX2_CPU, False, 255), (ZEN5_CPU, True, 127)])
def test_pt2e_quantizers_follow_the_choice(on_cpu, info, setting, quant_max: int) -> None:
    on_cpu(info)
    for is_qat in (False, True):
        quantizer = quantizer_for(CalibrationConfig(reduce_range=setting), is_qat=is_qat)
        assert quantizer.global_config.input_activation.quant_max == quant_max
    callback = QuantizationAwareTraining(calibration=CalibrationConfig(reduce_range=setting))
    assert callback.build_quantizer().global_config.input_activation.quant_max == quant_max
    assert callback.range_choice.reduce_range is (quant_max == 127)


def test_onnxruntime_candidates_follow_the_cpu() -> None:
    safe = ["s8-reduce-range", "u8-weights"]
    assert eligible_candidates(choose_reduce_range("auto", AVX2_CPU).reduce_range) == safe
    assert eligible_candidates(choose_reduce_range("auto", ZEN5_CPU).reduce_range) == ["u8-weights", "s8"]
    assert eligible_candidates(choose_reduce_range(True, ZEN5_CPU).reduce_range) == safe
    assert all(CANDIDATES[name][2] for name in safe) and not CANDIDATES["s8"][2]


def test_cli_option_takes_auto_true_false(tmp_path: Path, capsys, monkeypatch) -> None:
    import yaml

    from litquant.cli import main

    monkeypatch.chdir(tmp_path)
    for given, parsed in (("auto", "auto"), ("true", True), ("false", False)):
        assert main(["quantize", "--ckpt_path=m.ckpt", "--method=ptq", f"--quant.reduce_range={given}",
                     "--print_config"]) == 0
        assert yaml.safe_load(capsys.readouterr().out)["quant"]["reduce_range"] == parsed
    assert main(["quantize", "--ckpt_path=m.ckpt", "--method=ptq", "--quant.reduce_range=maybe"]) == 2


def test_a_vnni_artifact_records_its_range_and_warns_on_a_cpu_without_vnni(tiny_checkpoint: Path, tmp_path: Path,
                                                                            mnist_dir: Path, on_cpu) -> None:
    on_cpu(ZEN5_CPU)
    config = QuantizeConfig(calibration_batches=2, accuracy_batches=0)
    path = quantize("ptq", tiny_checkpoint, small_datamodule(mnist_dir), tmp_path / "zen5", config=config,
                    progress=False)
    entry = read_description(path).extra["int8_range"]
    assert entry == {"reduce_range": False, "reason": choose_reduce_range("auto", ZEN5_CPU).reason,
                     "chosen_for": "avx512-vnni", "chosen_for_vnni": True, "saturates_without_vnni": True}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the normal case: no warning at all
        model = load_artifact(path, runner="eager")
    assert activation_quant_max(torch.export.load(path)) == {255}
    assert model.module is not None

    on_cpu(AVX2_CPU)
    with pytest.warns(Int8RangeWarning) as caught:
        load_artifact(path, runner="eager")
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "\n" not in message and "with VNNI (avx512-vnni)" in message and "(avx2) has no VNNI" in message
    assert "--quant.reduce_range true" in message

    seven_bit = quantize("ptq", tiny_checkpoint, small_datamodule(mnist_dir), tmp_path / "forced",
                         config=config.replace(reduce_range=True), progress=False)
    entry = read_description(seven_bit).extra["int8_range"]
    assert entry["reduce_range"] is True and entry["reason"] == "set by --quant.reduce_range true"
    assert entry["chosen_for"] == "avx2" and entry["saturates_without_vnni"] is False
    assert activation_quant_max(torch.export.load(seven_bit)) == {127}
    assert saturation_warning(seven_bit, read_description(seven_bit)) is None

    forced_full = quantize("ptq", tiny_checkpoint, small_datamodule(mnist_dir), tmp_path / "forced-full",
                           config=config.replace(reduce_range=False), progress=False)
    entry = read_description(forced_full).extra["int8_range"]
    assert entry["saturates_without_vnni"] is True and entry["chosen_for_vnni"] is False
    assert saturation_warning(forced_full, read_description(forced_full)) is None  # asked for on this CPU


def test_onnxruntime_on_a_vnni_cpu_may_keep_plain_s8(tiny_checkpoint: Path, tmp_path: Path, mnist_dir: Path,
                                                     on_cpu) -> None:
    on_cpu(ZEN5_CPU)
    path = quantize("onnxruntime", tiny_checkpoint, small_datamodule(mnist_dir), tmp_path,
                    config=QuantizeConfig(calibration_batches=2, accuracy_batches=0), progress=False)
    description = read_description(path)
    choice, entry = description.extra["onnxruntime"], description.extra["int8_range"]
    assert choice["eligible"] == ["u8-weights", "s8"] and choice["weights"] in choice["eligible"]
    assert set(choice["check"]["candidates"]) == set(CANDIDATES)
    assert entry["reduce_range"] is False and entry["saturates_without_vnni"] is (choice["weights"] == "s8")
    assert (saturation_warning(path, description, AVX2_CPU) is not None) is entry["saturates_without_vnni"]
    assert saturation_warning(path, description, ZEN5_CPU) is None


def test_evaluate_prints_one_warning_line(tiny_checkpoint: Path, tmp_path: Path, mnist_dir: Path, on_cpu) -> None:
    """A fresh ``litquant evaluate`` of a VNNI artifact on a CPU without VNNI (injected): one line on stderr."""
    from helpers import run_python

    on_cpu(ZEN5_CPU)
    path = quantize("ptq", tiny_checkpoint, small_datamodule(mnist_dir), tmp_path,
                    config=QuantizeConfig(calibration_batches=2, accuracy_batches=0), progress=False)
    script = ("import sys; from litquant import cpu; flags = sys.argv.pop(1).split(','); "
              "cpu.cpu_info = lambda: cpu.cpu_info_from_flags(flags, 'Injected'); "
              "from litquant.cli import main; sys.exit(main(sys.argv[1:]))")
    args = ["evaluate", str(path), "--runner=eager", f"--data.data_dir={mnist_dir}", "--data.test_size=256"]
    result = run_python("-c", script, ",".join(AVX2), *args, cwd=tmp_path, warnings="")
    assert "test_acc" in result.stdout
    found = [line for line in result.stderr.splitlines() if "saturate" in line]
    assert len(found) == 1, result.stderr[-2000:]
    assert found[0].startswith("litquant: warning: Int8RangeWarning: ptq.pt2 was quantized with full 8-bit")


@pytest.mark.parametrize("chosen_for", ["A" * 100_000, "avx\x1b[31m\nsecond line", None, {"isa": ["x"]}])
def test_hand_edited_int8_range_warns_in_one_short_printable_line(chosen_for) -> None:
    """A description holds whatever was written into it: the warning quotes its CPU kind cut short and escaped."""
    from litquant.artifacts.description import describe

    entry = {"reduce_range": False, "reason": "x", "chosen_for": chosen_for, "chosen_for_vnni": True,
             "saturates_without_vnni": True}
    message = saturation_warning("ptq.pt2", describe("ptq", "int8", int8_range=entry), AVX2_CPU)
    assert message is not None and message.isprintable() and len(message) < 400
    assert "quantize it on this machine or with --quant.reduce_range true" in message


@pytest.mark.parametrize(("entry", "expected"), [
    ({"reduce_range": "false", "reason": "r"}, ""),  # not a boolean: says nothing rather than "7-bit"
    ({"reduce_range": True, "reason": {"a": 1}}, ", 7-bit activations"),
    ({"reduce_range": False, "reason": "why\n\x1b[2J" + "y" * 10_000}, None),
])
def test_inspect_range_text_of_a_hand_edited_entry(entry, expected) -> None:
    from litquant.apps.inspect import _range_text

    text = _range_text(entry)
    if expected is not None:
        assert text == expected
    else:
        assert text.startswith(", full 8-bit activations (why\\n\\x1b[2J") and text.isprintable() and len(text) < 250
