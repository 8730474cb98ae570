"""Run the saved models: load an artifact, evaluate it, time it, and check it in a fresh process.

An artifact is one file, ``.pt2`` (``torch.export``) or ``.onnx`` (ONNX Runtime), plus an optional JSON
sidecar beside it (``model.pt2`` → ``model.json``) with the method, library versions and input spec.
Models take the normalised float input ``[N, 1, 28, 28]`` and return logits ``[N, 10]``.

**Loading never executes code from the file.** A ``.pt2`` is a zip archive of a JSON graph and raw tensor
bytes, but ``torch.export.load`` also unpickles some entries when present (pickled tensor subclasses,
script objects, opaque constants, and the example inputs, where it falls back to an unrestricted
``torch.load``). :func:`load_artifact` therefore checks the archive first and refuses any pickled or native
payload, and any entry outside the known layout; the example inputs must load with ``weights_only=True``.
A ``.onnx`` file is protobuf data, run by ONNX Runtime without custom-op libraries.

Example::

    from litquant.data import MNISTDataModule
    from litquant.runtime import evaluate, load_artifact, measure_latency

    model = load_artifact("out/ptq.pt2")       # compiles with inductor freezing on first use
    print(evaluate(model, MNISTDataModule()))  # test accuracy, plain PyTorch loop
    print(measure_latency(model, batch_size=256, threads=2), "ms")

Run as a module, it loads an artifact in a fresh process and prints one JSON line::

    python -m litquant.runtime out/ptq.pt2 --data_dir ~/data --batches 2
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch
from torch import nn

__all__ = [
    "ArtifactError",
    "ArtifactModule",
    "LoadedModel",
    "UnsafeArtifactError",
    "check_all_in_fresh_process",
    "check_in_fresh_process",
    "evaluate",
    "load_artifact",
    "measure_latency",
    "normalized_batches",
    "read_sidecar",
]

#: Batch sizes a compiled ``.pt2`` is specialised for; other sizes are padded up to the next one, and
#: larger inputs run in chunks of the largest. Inductor's int8 kernels do not support a dynamic batch.
COMPILED_BATCH_SIZES = (1, 8, 32, 64, 128, 256)


class ArtifactError(ValueError):
    """The file is missing, of an unknown kind, or not a valid artifact."""


class UnsafeArtifactError(ArtifactError):
    """The file holds payloads whose loading could execute code; it was not loaded."""


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON sidecar of an artifact (``{}`` when there is none)."""
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.is_file():
        return {}
    return json.loads(sidecar.read_text())


def normalized_batches(datamodule: Any, split: str = "test", batch_size: int | None = None,
                       limit: int | None = None, shuffle: bool = False, seed: int | None = None,
                       device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``datamodule.normalized_batches(...)``: see :meth:`litquant.data.MNISTDataModule.normalized_batches`."""
    return datamodule.normalized_batches(split, batch_size=batch_size, limit=limit, shuffle=shuffle, seed=seed,
                                         device=device)


# -- loading ----------------------------------------------------------------------------------------
_PT2_ALLOWED = ("data/weights/", "data/constants/", "models/", "data/sample_inputs/", "extra/", ".data/",
                "archive_format", "archive_version", "byteorder")


def _check_pt2(path: Path) -> None:
    """Refuse a ``.pt2`` whose loading could execute code (see the module docstring)."""
    from torch.export.pt2_archive.constants import CUSTOM_OBJ_FILENAME_PREFIX, OPAQUE_OBJ_FILENAME_PREFIX

    def refuse(why: str) -> UnsafeArtifactError:
        return UnsafeArtifactError(f"{path}: refused to load, {why}; only load .pt2 files written by torch.export.save "
                                   "of plain tensors")

    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise ArtifactError(f"{path}: not a .pt2 archive ({err}); export it again") from None
    with archive:
        names = archive.namelist()
        roots = {name.split("/", 1)[0] for name in names}
        if len(roots) != 1 or any("/" not in name for name in names):
            raise refuse("unexpected archive layout")
        root = roots.pop() + "/"
        for name in names:
            inner = name[len(root):]
            if not inner.startswith(_PT2_ALLOWED) or inner.endswith((".so", ".dll", ".dylib")):
                raise refuse(f"unexpected entry {inner!r}")
            if inner.startswith(("data/weights/", "data/constants/")) and inner.endswith(".pt"):
                raise refuse(f"legacy pickled entry {inner!r}")
            if inner.endswith("_config.json"):
                for key, payload in json.loads(archive.read(name)).get("config", {}).items():
                    if payload.get("use_pickle") or str(payload.get("path_name", "")).startswith(
                            (CUSTOM_OBJ_FILENAME_PREFIX, OPAQUE_OBJ_FILENAME_PREFIX)):
                        raise refuse(f"pickled payload {key!r}")
            if inner.startswith("data/sample_inputs/"):
                try:
                    torch.load(io.BytesIO(archive.read(name)), weights_only=True)
                except Exception as err:  # noqa: BLE001 - any failure means: not plain tensors
                    raise refuse(f"example inputs are not plain tensors ({type(err).__name__})") from None


class LoadedModel:
    """A loaded artifact, callable on normalised float images ``[N, 1, 28, 28]``, returning logits.

    Attributes:
        path: the artifact file.
        meta: its sidecar (``{}`` without one).
        kind: ``"pt2"`` or ``"onnx"``.
    """

    def __init__(self, path: Path, meta: dict[str, Any], kind: str, runner: Callable[[torch.Tensor], torch.Tensor],
                 module: nn.Module | None = None) -> None:
        self.path = path
        self.meta = meta
        self.kind = kind
        self.module = module
        self._runner = runner

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self._runner(x)

    def __repr__(self) -> str:
        return f"LoadedModel({str(self.path)!r}, kind={self.kind!r}, method={self.meta.get('method')!r})"


def _compiled_runner(module: nn.Module, progress: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401  registers int8 lowerings

    torch._inductor.config.freezing = True
    # torch's own int8 lowering copies a tensor the deprecated way whenever it (re)compiles: nothing to act on
    warnings.filterwarnings("ignore", "To copy construct from a tensor", UserWarning,
                            r"torch\._inductor\.mkldnn_lowerings")
    compiled = torch.compile(module, dynamic=False)
    seen: set[int] = set()

    def run(x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for chunk in x.split(COMPILED_BATCH_SIZES[-1]):
            size = next(b for b in COMPILED_BATCH_SIZES if b >= len(chunk))
            if size not in seen and progress:
                print(f"compiling {module_name} with inductor for batch {size} (takes a few seconds)...",
                      file=sys.stderr, flush=True)
            seen.add(size)
            padded = chunk if size == len(chunk) else \
                torch.nn.functional.pad(chunk, (0, 0, 0, 0, 0, 0, 0, size - len(chunk)))
            outputs.append(compiled(padded)[: len(chunk)])
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    module_name = getattr(module, "_litquant_name", "model")
    return run


def load_artifact(path: str | os.PathLike, *, compile: bool = True, threads: int | None = None,
                  progress: bool = True) -> LoadedModel:
    """Load a ``.pt2`` or ``.onnx`` artifact from the file alone, refusing files that could run code.

    Args:
        path: the artifact.
        compile: ``.pt2`` only: run through ``torch.compile`` with inductor freezing, so that int8 kernels
            really run (compiled on first use per batch size). ``False`` runs the exported graph as is.
        threads: ONNX Runtime intra-op threads (``None``: its default). PyTorch uses its global setting.
        progress: print a note to stderr when compiling.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such artifact; run `litquant quantize` first or check the path")
    meta = read_sidecar(path)
    if path.suffix == ".pt2":
        _check_pt2(path)
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer  # noqa: F401  quantized_decomposed ops

        try:
            module = torch.export.load(path).module()
        except Exception as err:  # noqa: BLE001 - one line for any deserialisation failure
            raise ArtifactError(f"{path}: cannot load ({type(err).__name__}: {err}); export it again") from None
        precision = meta.get("precision", "model")
        module._litquant_name = f"{precision} model"
        runner = _compiled_runner(module, progress) if compile else module
        return LoadedModel(path, meta, "pt2", runner, module)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        level = meta.get("onnxruntime", {}).get("graph_optimization_level", "ORT_ENABLE_ALL")
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001
            raise ArtifactError(f"{path}: ONNX Runtime cannot load it ({type(err).__name__}); export it again") \
                from None
        name = session.get_inputs()[0].name

        def run(x: torch.Tensor) -> torch.Tensor:
            logits = session.run(None, {name: x.detach().cpu().float().numpy()})[0]
            return torch.from_numpy(logits).to(x.device)

        return LoadedModel(path, meta, "onnx", run)
    raise ArtifactError(f"{path}: unknown artifact type {path.suffix!r}; expected .pt2 or .onnx")


# -- using ------------------------------------------------------------------------------------------
def evaluate(model: Callable[[torch.Tensor], torch.Tensor], datamodule: Any, split: str = "test",
             batch_size: int = 256, limit_batches: int | None = None) -> float:
    """Top-1 accuracy of ``model`` on a split, with a plain PyTorch loop (no Trainer)."""
    if isinstance(model, nn.Module) and not isinstance(model, torch.fx.GraphModule):
        model.eval()  # exported graphs have no eval(): their mode is fixed at export
    correct = total = 0
    with torch.inference_mode():
        for images, labels in normalized_batches(datamodule, split, batch_size, limit_batches):
            correct += (model(images).argmax(dim=1) == labels).sum().item()
            total += len(labels)
    if total == 0:
        raise ValueError(f"the {split!r} split is empty: nothing to evaluate")
    return correct / total


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def measure_latency(model: Callable[[torch.Tensor], torch.Tensor], batch_size: int, threads: int | None = None,
                    repeats: int = 20, warmup: int = 3, min_time_s: float = 0.0) -> float:
    """Median wall time (ms) of one call on a batch of ``batch_size``, after ``warmup`` calls.

    ``threads`` sets PyTorch's thread count during the measurement. An ONNX Runtime model keeps the thread
    count it was loaded with (``load_artifact(threads=...)``).
    """
    x = torch.randn(batch_size, 1, 28, 28)
    timings = []
    with _torch_threads(threads), torch.inference_mode():
        for _ in range(warmup):
            model(x)
        start = time.perf_counter()
        while len(timings) < repeats or time.perf_counter() - start < min_time_s:
            begin = time.perf_counter()
            model(x)
            timings.append(time.perf_counter() - begin)
    return statistics.median(timings) * 1000.0


class ArtifactModule(L.LightningModule):
    """A loaded artifact as a LightningModule: ``Trainer.test`` logs ``test_loss``/``test_acc``,
    ``Trainer.validate`` ``val_loss``/``val_acc``, and ``Trainer.predict`` returns class probabilities.

    Example::

        trainer = L.Trainer(logger=False)
        trainer.test(ArtifactModule("out/ptq.pt2"), datamodule=MNISTDataModule())
    """

    def __init__(self, artifact: str | os.PathLike | LoadedModel, compile: bool = True) -> None:
        super().__init__()
        self.artifact = artifact if isinstance(artifact, LoadedModel) else load_artifact(artifact, compile=compile)
        self.criterion = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.artifact(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], split: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.criterion(logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        self.log(f"{split}_loss", loss, on_epoch=True, batch_size=len(labels))
        self.log(f"{split}_acc", accuracy, on_epoch=True, batch_size=len(labels))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(images).softmax(dim=1)


# -- the fresh-process check ------------------------------------------------------------------------
def check_in_fresh_process(path: str | os.PathLike, data_dir: str | os.PathLike | None = None, *,
                           dataset: str = "mnist", batches: int = 2, batch_size: int = 256, compile: bool = False,
                           timeout: float = 600.0) -> dict[str, Any]:
    """Load ``path`` in a new Python process (``python -m litquant.runtime``) and evaluate ``batches`` test
    batches there. Returns ``{"ok": bool, "accuracy": float | None, "samples": int, "error": str | None}``."""
    return check_all_in_fresh_process([path], data_dir, dataset=dataset, batches=batches, batch_size=batch_size,
                                      compile=compile, timeout=timeout)[0]


def check_all_in_fresh_process(paths: Sequence[str | os.PathLike], data_dir: str | os.PathLike | None = None, *,
                               dataset: str = "mnist", batches: int = 2, batch_size: int = 256,
                               compile: bool = False, timeout: float = 600.0) -> list[dict[str, Any]]:
    """:func:`check_in_fresh_process` for several artifacts in one new process (each loaded from its file
    alone; one failing does not stop the others). One result per path, in order."""
    command = [sys.executable, "-m", "litquant.runtime", *map(str, paths), "--dataset", dataset,
               "--batches", str(batches), "--batch_size", str(batch_size)]
    if data_dir is not None:
        command += ["--data_dir", str(data_dir)]
    if compile:
        command.append("--compile")

    def failed(error: str) -> list[dict[str, Any]]:
        return [{"artifact": str(p), "ok": False, "accuracy": None, "samples": 0, "error": error} for p in paths]

    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return failed(f"timed out after {timeout:.0f} s")
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if len(results) != len(paths):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return failed(f"exit {done.returncode}: {tail}")
    return results


def main(argv: list[str] | None = None) -> int:
    """Load each artifact, evaluate it on a few test batches, print one JSON line per artifact."""
    parser = argparse.ArgumentParser(prog="python -m litquant.runtime",
                                     description="Load artifacts and print their accuracy on a few test batches.")
    parser.add_argument("artifacts", nargs="+")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args(argv)
    from litquant.data import MNISTDataModule

    datamodule = MNISTDataModule(data_dir=args.data_dir, dataset=args.dataset,
                                 test_size=args.batches * args.batch_size)
    samples = len(datamodule.split("test"))
    failures = 0
    for artifact in args.artifacts:
        try:
            model = load_artifact(artifact, compile=args.compile)
            accuracy = evaluate(model, datamodule, "test", args.batch_size, args.batches)
            result = {"artifact": artifact, "ok": True, "accuracy": accuracy, "samples": samples, "error": None}
        except Exception as err:  # noqa: BLE001 - reported per artifact, the others still run
            failures += 1
            result = {"artifact": artifact, "ok": False, "accuracy": None, "samples": 0,
                      "error": f"{type(err).__name__}: {err}".splitlines()[0]}
        print(json.dumps(result), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
