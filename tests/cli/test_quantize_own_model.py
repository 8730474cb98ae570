"""``litquant quantize --model CLASS --data CLASS`` on the model zoo (``model_zoo.py``): a user's LightningModule
and LightningDataModule named on the command line, every method, each artifact evaluated; a checkpoint of another
class refused in one line.

The models are trained for three epochs on 1,024 MNIST images (a few seconds); each method quantizes with few
calibration batches and fine-tuning steps. ``--method auto`` compiles its finalists to time them and is slow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as L
import pytest
import torch
from helpers import run_litquant
from model_zoo import ZOO, ZooData
from quantization_helpers import small_datamodule

from litquant.artifacts.loading import load_artifact, read_description
from litquant.evaluation import evaluate
from litquant.quantization import ModelSpec
from litquant.quantization.model_io import checked_net

#: The options that keep every method quick.
FAST = ["--quant.calibration_batches=2", "--quant.qat_max_steps=4", "--quant.qat_epochs=1",
        "--quant.accuracy_batches=1", "--quant.val_batches=1"]
#: The int8 model may lose this many points of the fp32 model's accuracy on the 256 test images.
MAX_DROP_POINTS = 5.0


def _train(name: str, root: Path, mnist_dir: Path) -> Path:
    torch.manual_seed(0)
    trainer = L.Trainer(max_epochs=3, default_root_dir=root, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", devices=1, num_sanity_val_steps=0,
                        limit_val_batches=0, enable_checkpointing=False)
    trainer.fit(ZOO[name](), datamodule=small_datamodule(mnist_dir))
    path = root / f"{name}.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def zoo_checkpoints(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> dict[str, Path]:
    """A checkpoint of each fast zoo model, trained with a plain ``Trainer``."""
    root = tmp_path_factory.mktemp("own-model")
    return {name: _train(name, root, mnist_dir) for name in ("mlp", "two_inputs", "tuple_outputs", "dict_outputs")}


def _error(err: str) -> str:
    """The one error line of a failed command's stderr."""
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _quantize(capsys, *args: str) -> tuple[int, str, str]:
    from litquant.cli import main

    code = main(["quantize", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _data(mnist_dir: Path, rows: bool = False) -> list[str]:
    return ["--data=model_zoo.ZooData", f"--data.init_args.data_dir={mnist_dir}", f"--data.init_args.rows={rows}"]


def _accuracies(artifact: Path, checkpoint: Path, model: ModelSpec, datamodule: Any) -> tuple[float, float]:
    """The artifact's and the checkpoint's fp32 test accuracy, each batch fed as the model's inputs."""
    datamodule.setup("test")
    checked = checked_net(checkpoint, datamodule, model)
    io = {"inputs": checked.inputs, "logits": checked.logits}
    loaded = load_artifact(artifact, runner="eager", progress=False)
    return (evaluate(loaded, datamodule, "test", **io), evaluate(checked.net, datamodule, "test", **io))


@pytest.mark.parametrize("method", ["ptq", "qat", "lightning-qat", "onnxruntime",
                                    pytest.param("auto", marks=pytest.mark.slow)])
def test_every_method_quantizes_a_model_of_the_zoo(method: str, zoo_checkpoints: dict[str, Path], mnist_dir: Path,
                                                   tmp_path: Path, capsys) -> None:
    checkpoint = zoo_checkpoints["mlp"]
    extra = ["--max_drop=100", "--quant.observer=minmax"] if method == "auto" else []
    code, out, err = _quantize(capsys, "--model=model_zoo.MLP", *_data(mnist_dir), f"--ckpt_path={checkpoint}",
                               f"--method={method}", f"--out={tmp_path}", *FAST, *extra)
    assert code == 0, err
    artifact = next(p for p in tmp_path.iterdir() if p.suffix in (".pt2", ".onnx") and "fp32" not in p.name)
    description = read_description(artifact)
    assert description.checkpoint_sha256 and list(description.input.shape[1:]) == [1, 28, 28]
    int8, fp32 = _accuracies(artifact, checkpoint, ModelSpec(ZOO["mlp"]), ZooData(str(mnist_dir)))
    assert fp32 > 0.3 and (fp32 - int8) * 100 <= MAX_DROP_POINTS, (int8, fp32)
    assert "configuration:" in out


@pytest.mark.parametrize(("name", "method", "logits_output"), [
    ("two_inputs", "ptq", None), ("two_inputs", "onnxruntime", None), ("two_inputs", "lightning-qat", None),
    ("tuple_outputs", "qat", "0"), ("dict_outputs", "ptq", None), ("dict_outputs", "onnxruntime", "logits"),
])
def test_several_inputs_and_outputs(name: str, method: str, logits_output: str | None,
                                    zoo_checkpoints: dict[str, Path], mnist_dir: Path, tmp_path: Path,
                                    capsys) -> None:
    """Keyword inputs fed by name from the data's dict batches; the class logits found among several outputs (a
    dict's ``logits`` key by default, a tuple's position with ``--logits_output``)."""
    rows = name == "two_inputs"
    module_class = ZOO[name]
    chosen = [f"--logits_output={logits_output}"] if logits_output is not None else []
    code, _, err = _quantize(capsys, f"--model=model_zoo.{module_class.__name__}", *_data(mnist_dir, rows),
                             f"--ckpt_path={zoo_checkpoints[name]}", f"--method={method}", f"--out={tmp_path}",
                             *FAST, *chosen)
    assert code == 0, err
    artifact = next(p for p in tmp_path.iterdir() if p.suffix in (".pt2", ".onnx") and "fp32" not in p.name)
    description = read_description(artifact)
    if rows:
        assert [spec.name for spec in description.signature.inputs] == ["image", "rows"]
    else:
        assert description.signature.logits is not None
    model = ModelSpec(module_class, 0 if logits_output == "0" else logits_output)
    int8, fp32 = _accuracies(artifact, zoo_checkpoints[name], model, ZooData(str(mnist_dir), rows=rows))
    assert fp32 > 0.3 and (fp32 - int8) * 100 <= MAX_DROP_POINTS, (int8, fp32)


def test_a_tuple_output_needs_the_logits_position(zoo_checkpoints: dict[str, Path], mnist_dir: Path,
                                                  tmp_path: Path, capsys) -> None:
    code, _, err = _quantize(capsys, "--model=model_zoo.TwoOutputs", *_data(mnist_dir),
                             f"--ckpt_path={zoo_checkpoints['tuple_outputs']}", "--method=ptq", f"--out={tmp_path}")
    assert code != 0
    assert "returns 2 outputs: name the class logits with --logits_output POSITION (0 to 1)" in _error(err)
    assert not list(tmp_path.iterdir())


def test_the_model_on_mnist_data_by_default(zoo_checkpoints: dict[str, Path], mnist_dir: Path, tmp_path: Path,
                                            capsys) -> None:
    """``--model`` alone: the default data is MNIST's (``--data.*``), as for litquant's own model; the model given
    as ``{class_path, init_args}``, whose ``init_args`` replace the checkpoint's hyper-parameters."""
    model = '{"class_path": "model_zoo.MLP", "init_args": {"lr": 0.5}}'
    code, _, err = _quantize(capsys, f"--model={model}", f"--ckpt_path={zoo_checkpoints['mlp']}",
                             "--method=ptq", f"--out={tmp_path}", f"--data.data_dir={mnist_dir}",
                             "--data.train_size=512", "--data.val_size=256", "--data.test_size=256", *FAST)
    assert code == 0, err
    assert read_description(tmp_path / "ptq.pt2").input.dataset == "mnist"


def test_a_checkpoint_of_another_class_is_refused_in_one_line(zoo_checkpoints: dict[str, Path], mnist_dir: Path,
                                                              tmp_path: Path, capsys) -> None:
    code, _, err = _quantize(capsys, "--model=model_zoo.TwoOutputs", *_data(mnist_dir),
                             f"--ckpt_path={zoo_checkpoints['mlp']}", "--method=ptq", f"--out={tmp_path}",
                             "--logits_output=0")
    assert code != 0
    error = _error(err)
    assert error.startswith("litquant: error: ")
    assert "is a checkpoint of another model, not model_zoo.TwoOutputs" in error
    assert not list(tmp_path.iterdir())
    # without --model: MNIST's classifier, which the zoo checkpoint is not
    code, _, err = _quantize(capsys, f"--ckpt_path={zoo_checkpoints['mlp']}", "--method=ptq", f"--out={tmp_path}",
                             f"--data.data_dir={mnist_dir}")
    assert code != 0 and "is a checkpoint of another model, not MNISTClassifier" in _error(err)


def test_a_checkpoint_naming_another_class_is_refused_and_that_class_never_imported(
        zoo_checkpoints: dict[str, Path], mnist_dir: Path, tmp_path: Path, capsys) -> None:
    """A LightningCLI checkpoint names its class (``_class_path``): another class than ``--model`` is refused, and
    the class it names is never imported."""
    checkpoint = torch.load(zoo_checkpoints["mlp"], weights_only=True)
    checkpoint["hyper_parameters"]["_class_path"] = "not_a_module_anywhere.Evil"
    named = tmp_path / "named.ckpt"
    torch.save(checkpoint, named)
    code, _, err = _quantize(capsys, "--model=model_zoo.MLP", *_data(mnist_dir), f"--ckpt_path={named}",
                             "--method=ptq", f"--out={tmp_path / 'out'}")
    assert code != 0
    assert ("is a checkpoint of not_a_module_anywhere.Evil, not model_zoo.MLP: pass --model "
            "not_a_module_anywhere.Evil") in _error(err)


def test_a_model_and_data_in_a_fresh_process(zoo_checkpoints: dict[str, Path], mnist_dir: Path,
                                             tmp_path: Path) -> None:
    """The command a user runs, classes importable from PYTHONPATH, and its configuration file run again."""
    tests = Path(__file__).resolve().parents[1]
    args = ["quantize", "--model", "model_zoo.MLP", "--data", "model_zoo.ZooData", "--data.init_args.data_dir",
            str(mnist_dir), "--ckpt_path", str(zoo_checkpoints["mlp"]), "--method", "ptq", "--out", str(tmp_path),
            *FAST]
    result = run_litquant(*args, cwd=tmp_path, PYTHONPATH=str(tests))
    assert "ptq: wrote" in result.stderr
    first = read_description(tmp_path / "ptq.pt2")
    again = run_litquant("quantize", "--config", str(tmp_path / "ptq.quantize_config.yaml"), cwd=tmp_path,
                         PYTHONPATH=str(tests))
    assert "ptq: wrote" in again.stderr
    assert read_description(tmp_path / "ptq.pt2").checkpoint_sha256 == first.checkpoint_sha256


@pytest.mark.parametrize(("model", "error"), [
    ("model_zoo.Nope", "--model model_zoo.Nope: not found; give the class path of your LightningModule"),
    ("model_zoo.ZooData", "--model model_zoo.ZooData: not a LightningModule class"),
    ("no_such_package.Model", "--model no_such_package.Model: cannot import no_such_package"),
])
def test_a_model_that_is_not_a_lightning_module_class_is_refused(model: str, error: str, tmp_path: Path,
                                                                 zoo_checkpoints: dict[str, Path], capsys) -> None:
    code, _, err = _quantize(capsys, f"--model={model}", f"--ckpt_path={zoo_checkpoints['mlp']}", "--method=ptq",
                             f"--out={tmp_path}")
    assert code != 0 and error in _error(err)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet", "mobilenetv3", "vit"])
def test_ptq_of_the_larger_zoo_models(name: str, mnist_dir: Path, tmp_path: Path, capsys) -> None:
    """The conv/batch-norm and attention models of the zoo through ``litquant quantize --method ptq``."""
    checkpoint = _train(name, tmp_path, mnist_dir)
    code, _, err = _quantize(capsys, f"--model=model_zoo.{ZOO[name].__name__}", *_data(mnist_dir),
                             f"--ckpt_path={checkpoint}", "--method=ptq", f"--out={tmp_path / 'out'}", *FAST,
                             "--quant.accuracy_batches=4")
    assert code == 0, err
    accuracy = read_description(tmp_path / "out" / "ptq.pt2").accuracy  # measured on the 256 validation images
    assert (accuracy["fp32"] - accuracy["int8"]) * 100 <= 2 * MAX_DROP_POINTS, accuracy


def test_data_takes_a_class_path_or_a_file_of_mnist_options(tmp_path: Path, capsys, monkeypatch) -> None:
    """``--data CLASS_PATH`` is the user's data module; ``--data FILE`` stays a file of MNIST's ``--data.*``."""
    import yaml

    from litquant.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.yaml").write_text("train_size: 123\n")
    common = ["quantize", "--ckpt_path=x.ckpt", "--method=ptq", "--print_config"]
    assert main([*common, "--data", "data.yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["data"]["train_size"] == 123
    assert main([*common, "--data", "model_zoo.ZooData", "--data.init_args.rows=true", "--model=model_zoo.MLP"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["class_path"] == "model_zoo.ZooData" and printed["data"]["init_args"]["rows"] is True
    assert printed["model"] == "model_zoo.MLP"
