"""Loading Lightning checkpoints without ever executing code from the file.

A ``.ckpt`` is a pickle, and unpickling an arbitrary pickle can run arbitrary code. Everything here loads with
``torch.load(..., weights_only=True)``: PyTorch's restricted unpickler, which rebuilds only tensors,
containers and primitive types, plus the few classes of :data:`SAFE_GLOBALS`. A file that asks for anything
else (a function such as ``os.system``, an arbitrary class) is refused with :class:`UnsafeCheckpointError`
before any of it runs. The trust model: a checkpoint is data; loading one from an untrusted source cannot
run code, but the weights themselves are only as good as their source.

Example::

    from litquant.checkpoints import load_checkpoint, load_classifier, load_module

    checkpoint = load_checkpoint("checkpoints/last.ckpt")      # dict: state_dict, hyper_parameters, ...
    model = load_classifier("checkpoints/last.ckpt").eval()    # MNISTClassifier, weights loaded
    mine = load_module("mine.ckpt", MyModule)                  # any LightningModule class the caller names

Lightning's own loaders (``trainer.fit/validate/test/predict(ckpt_path=...)``,
``LightningModule.load_from_checkpoint``) take a ``weights_only`` argument. Left at ``None`` they use PyTorch's
default, which is ``True`` since PyTorch 2.6, except that ``$TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` turns it
off and Lightning itself uses ``False`` for ``http(s)://`` checkpoint paths. So pass ``weights_only=True``
explicitly, inside :func:`safe_globals` (or after calling :func:`register_safe_globals` once), so that they
accept the same allow-list.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path, PosixPath, WindowsPath
from typing import Any, TypeVar

import torch

from litquant.model import MNISTClassifier

__all__ = [
    "SAFE_GLOBALS",
    "CheckpointError",
    "UnsafeCheckpointError",
    "load_checkpoint",
    "resume_checkpoint",
    "unsafe_checkpoint_error",
    "load_classifier",
    "load_module",
    "register_safe_globals",
    "safe_globals",
]

#: Classes a litquant checkpoint may contain beyond tensors, containers and primitive types. A Lightning
#: checkpoint of ``MNISTClassifier`` (weights, optimizer and LR-scheduler states, loops, callback states,
#: model and data-module hyper-parameters) needs none of them, except that hyper-parameters given as
#: ``pathlib.Path`` objects (e.g. ``MNISTDataModule(data_dir=Path(...))`` in older checkpoints) are
#: pickled as paths. Rebuilding a path from its string parts runs no code.
SAFE_GLOBALS: tuple[type, ...] = (PosixPath, WindowsPath)


class CheckpointError(ValueError):
    """The file is missing, is not a Lightning checkpoint, or is a checkpoint of another model."""


class UnsafeCheckpointError(CheckpointError):
    """The file would need to run code (or build a class that is not allow-listed) to load; nothing ran."""


def safe_globals() -> contextlib.AbstractContextManager:
    """A context in which ``torch.load(weights_only=True)``, and so Lightning's loaders, accept
    :data:`SAFE_GLOBALS`."""
    return torch.serialization.safe_globals(list(SAFE_GLOBALS))


def register_safe_globals() -> None:
    """Allow-list :data:`SAFE_GLOBALS` for the whole process (for Lightning's own ``ckpt_path=`` loading)."""
    torch.serialization.add_safe_globals(list(SAFE_GLOBALS))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


#: How a file ``torch.save`` wrote begins: a zip archive (the format since PyTorch 1.6), or a legacy pickle.
CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")


def _looks_like_torch_file(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError:
        return True  # let the loader's own error speak
    return head.startswith(CHECKPOINT_MAGIC)


def unsafe_checkpoint_error(path: str | os.PathLike, error: pickle.UnpicklingError) -> CheckpointError:
    """The one-line refusal for ``torch.load(path, weights_only=True)`` failing with ``error``: the file holds
    code (or objects outside the allow-list), so it was refused; nothing from it ran. A file that does not even
    begin as one ``torch.save`` writes (an image renamed ``.ckpt``) is said to be no checkpoint."""
    if not _looks_like_torch_file(path):
        return CheckpointError(f"{path} is not a PyTorch checkpoint (it does not begin as a file torch.save "
                               "writes): pass a .ckpt file written by `litquant fit`")
    message = str(error)
    if found := re.search(r"Unsupported global: GLOBAL (\S+)", message):
        return UnsafeCheckpointError(
            f"refused to load {path}: it holds code (it asks to import {found.group(1)}, which is not "
            "allow-listed); nothing from the file was executed (load only checkpoints you trust)"
        )
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(Check the doc|$)", message, re.DOTALL)
    return UnsafeCheckpointError(
        f"refused to load {path}: not a plain tensor checkpoint, it may hold code "
        f"({detail.group(1).strip() if detail else _first_line(error)}); nothing from the file was executed"
    )


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a Lightning checkpoint as a dict, never executing code from the file.

    Raises:
        UnsafeCheckpointError: the file asks for a function or class outside the allow-list.
        CheckpointError: the file is missing, unreadable, or not a Lightning checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "not found"
        raise CheckpointError(f"checkpoint {path} {what}: pass the path of a .ckpt file")
    try:
        with safe_globals():
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise unsafe_checkpoint_error(path, err) from None
    except PermissionError:
        raise CheckpointError(f"cannot read {path}: permission denied; check the file's permissions") from None
    except Exception as err:  # noqa: BLE001 - every other failure means "not a checkpoint"
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint ({type(err).__name__}: {_first_line(err)}): "
            "pass a .ckpt file written by `litquant fit`"
        ) from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(
            f"{path} is not a Lightning checkpoint (no 'state_dict' entry): pass a .ckpt file written by "
            "`litquant fit`"
        )
    return checkpoint


def class_path(module_class: type) -> str:
    """``package.module.Class``: how a class is named on the command line and in a LightningCLI checkpoint's
    ``_class_path``."""
    return f"{module_class.__module__}.{module_class.__qualname__}"


def _init_arguments(module_class: type, hyper_parameters: Any, path: Path) -> dict[str, Any]:
    """The checkpoint's hyper-parameters that ``module_class.__init__`` takes (all of them when it takes
    ``**kwargs``), as the plain data the safe loader rebuilt. A LightningCLI checkpoint's ``_class_path`` must name
    ``module_class`` itself: the class comes from the caller, never from the file."""
    if hyper_parameters is None:
        return {}
    if not isinstance(hyper_parameters, Mapping):
        raise CheckpointError(f"{path}: its hyper-parameters are not a mapping; it was not written by Lightning")
    named = hyper_parameters.get("_class_path")
    if named is not None and named != class_path(module_class):
        raise CheckpointError(f"{path} is a checkpoint of {named}, not {class_path(module_class)}: pass "
                              f"--model {named} (a class is never imported because a checkpoint names it)")
    parameters = inspect.signature(module_class.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return {key: value for key, value in hyper_parameters.items()
            if isinstance(key, str) and not key.startswith("_") and (takes_any or key in parameters)}


def _check_keys(module: torch.nn.Module, checkpoint: dict[str, Any], path: Path) -> None:
    keys = set(checkpoint["state_dict"])
    expected = set(module.state_dict())
    if keys != expected:
        missing, unexpected = sorted(expected - keys), sorted(keys - expected)
        parts = [f"{len(missing)} weights missing (e.g. {missing[0]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"] if unexpected else []
        ours = isinstance(module, MNISTClassifier)
        name = type(module).__name__ if ours else class_path(type(module))
        advice = ("pass a checkpoint written by `litquant fit`" if ours else
                  "pass a checkpoint of that class, or --model the class it was trained with")
        raise CheckpointError(f"{path} is a checkpoint of another model, not {name} ({', '.join(parts)}): {advice}")


ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)


def load_module(path: str | os.PathLike, module_class: type[ModuleT], map_location: Any = "cpu", *,
                init_args: Mapping[str, Any] | None = None) -> ModuleT:
    """An instance of ``module_class`` (a LightningModule the caller names) with the weights and hyper-parameters
    of the checkpoint ``path``, never executing code from the file.

    The file is read with :func:`load_checkpoint` (so the same errors apply); its hyper-parameters are passed, as
    plain data, to ``module_class.__init__`` (those it takes), then ``on_load_checkpoint`` and a strict
    ``load_state_dict`` run as in Lightning's ``load_from_checkpoint``. Unlike that, no class or instantiator the
    checkpoint names is ever imported. ``init_args`` replace hyper-parameters of the same name.

    Raises:
        CheckpointError: the checkpoint names another class, its weights are another model's, or its
            hyper-parameters or tensor shapes do not fit ``module_class``.
    """
    path = Path(path)
    checkpoint = load_checkpoint(path, map_location=map_location)
    arguments = {**_init_arguments(module_class, checkpoint.get("hyper_parameters"), path), **(init_args or {})}
    name = module_class.__name__ if issubclass(module_class, MNISTClassifier) else class_path(module_class)
    try:
        module = module_class(**arguments)
    except (TypeError, ValueError) as err:  # hyper-parameters that do not fit __init__
        raise CheckpointError(f"{path} does not fit {name} ({_fit_problem(err)})") from None
    _check_keys(module, checkpoint, path)
    try:
        if hasattr(module, "on_load_checkpoint"):
            module.on_load_checkpoint(checkpoint)
        module.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, KeyError) as err:  # shapes that do not fit
        raise CheckpointError(f"{path} does not fit {name} ({_fit_problem(err)})") from None
    return module.to(map_location) if isinstance(map_location, (str, torch.device)) else module


def load_classifier(path: str | os.PathLike, map_location: Any = "cpu") -> MNISTClassifier:
    """An :class:`~litquant.model.MNISTClassifier` with the weights and hyper-parameters of ``path``
    (:func:`load_module`)."""
    return load_module(path, MNISTClassifier, map_location)


def _fit_problem(error: BaseException) -> str:
    """The first concrete problem in a ``load_state_dict`` error (the tensor whose shape differs), else its first
    line."""
    for line in str(error).splitlines():
        if found := re.search(r"size mismatch for (\S+): copying a param with shape (.+?) from checkpoint, "
                              r"the shape in current model is (.+?)\.?$", line.strip()):
            name, stored, expected = found.groups()
            return (f"tensor {name} has shape {_shape(stored)} in the checkpoint but the model expects "
                    f"{_shape(expected)}; pass a checkpoint of the same architecture")
    return f"{type(error).__name__}: {_first_line(error)}"


def _shape(text: str) -> str:
    return text.replace("torch.Size(", "").rstrip(")") if text.startswith("torch.Size(") else text


#: Files ``--ckpt_path last`` resumes from, in a run's checkpoint folder.
RESUME_FILES = ("last.ckpt", "interrupted.ckpt")


def resume_checkpoint(runs_dir: str | os.PathLike) -> Path | None:
    """The checkpoint ``litquant fit --ckpt_path last`` resumes: in the newest run folder
    ``<runs_dir>/version_N/checkpoints`` (highest N) that holds ``last.ckpt`` or ``interrupted.ckpt``, the newer
    of the two. ``None`` when no run has either. ``runs_dir`` may also be a checkpoint folder itself."""
    runs_dir = Path(runs_dir)
    versions = sorted(
        (int(found.group(1)), path / "checkpoints") for path in (runs_dir.iterdir() if runs_dir.is_dir() else [])
        if (found := re.fullmatch(r"version_(\d+)", path.name))
    )
    for folder in [folder for _, folder in reversed(versions)] + [runs_dir]:
        candidates = [folder / name for name in RESUME_FILES if (folder / name).is_file()]
        if candidates:
            return max(candidates, key=lambda candidate: candidate.stat().st_mtime_ns)
    return None



def trained_epochs(checkpoint: dict[str, Any]) -> int:
    """The epochs a fit's checkpoint has finished: its ``epoch``, plus one when it was saved at the end of that
    epoch (its last training batch done), as ``last.ckpt`` is; an ``interrupted.ckpt`` saved mid-epoch does not
    count the epoch it stopped in."""
    epoch = int(checkpoint.get("epoch") or 0)
    loops = checkpoint.get("loops") or {}
    progress = (loops.get("fit_loop") or {}).get("epoch_loop.batch_progress") or {}
    return epoch + 1 if progress.get("is_last_batch") else epoch


def finished_fit(path: str | os.PathLike, max_epochs: int | None, max_steps: int | None) -> str | None:
    """When resuming ``path`` with ``--trainer.max_epochs max_epochs`` / ``--trainer.max_steps max_steps``
    would train nothing (the fit already reached that length): one line saying so and how to train longer;
    else ``None``."""
    checkpoint = load_checkpoint(path)
    steps = int(checkpoint.get("global_step") or 0)
    epochs = trained_epochs(checkpoint)
    if max_steps not in (None, -1) and steps >= max_steps:
        reached = f"{steps} steps, --trainer.max_steps {max_steps}"
        larger = f"--trainer.max_steps {steps + 1}"
    elif max_epochs is not None and max_epochs >= 0 and epochs >= max_epochs:
        reached = f"{epochs} epochs, --trainer.max_epochs {max_epochs}"
        larger = f"--trainer.max_epochs {epochs + 1}"
    else:
        return None
    scheduler = (checkpoint.get("hyper_parameters") or {}).get("scheduler", "onecycle")
    if scheduler == "onecycle":
        how = (f"its one-cycle schedule has ended, so for a longer training start a new fit with a larger "
               f"length (`litquant fit {larger}`)")
    else:
        how = f"to continue it, resume with a larger length (`litquant fit {larger} --ckpt_path {path}`)"
    return f"{path} is a complete fit ({reached}): nothing to train; {how}"


#: The folder of ``litquant fit``'s runs with the default options, where ``--ckpt_path last`` looks.
FIT_RUNS_DIR = Path("runs") / "mnist"


def checkpoint_argument(value: str, runs_dir: str | os.PathLike = FIT_RUNS_DIR) -> str:
    """A ``--ckpt_path`` value as a file path: ``last`` is the newest fit run's ``last.ckpt`` (or its newer
    ``interrupted.ckpt``) under ``runs_dir``, as for ``litquant test --ckpt_path last``; any other value is kept.
    Usable as an ``argparse`` ``type``."""
    if value != "last":
        return value
    found = resume_checkpoint(runs_dir)
    if found is None:
        raise CheckpointError(no_last_checkpoint(runs_dir))
    return str(found)


def no_last_checkpoint(runs_dir: str | os.PathLike) -> str:
    """The one line for ``--ckpt_path last`` finding no checkpoint under ``runs_dir``; it names the checkpoint a fit
    without a logger left beside it (``runs/checkpoints``, Lightning's folder then), when there is one."""
    runs_dir = Path(runs_dir)
    message = f"--ckpt_path last: no last.ckpt or interrupted.ckpt in {runs_dir}/version_*/checkpoints"
    loggerless = resume_checkpoint(runs_dir.parent / "checkpoints")
    if loggerless is not None and loggerless.parent != runs_dir:
        return f"{message}; a fit without a logger left {loggerless}: pass --ckpt_path {loggerless}"
    return f"{message}; run `litquant fit` (without --ckpt_path) first, or pass a checkpoint's path"
