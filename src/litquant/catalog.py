"""Catalogs of the callbacks and loggers that Lightning exports: summary, constructor arguments, requirements.

Every name in ``lightning.pytorch.callbacks.__all__`` and ``lightning.pytorch.loggers.__all__`` is listed;
base classes meant to be subclassed carry a note. Whether a logger's backend package is installed is checked
with ``importlib.util.find_spec``, without importing it.

Example::

    from litquant.catalog import format_catalog, logger_catalog
    print(format_catalog(logger_catalog()))                  # a readable table
    print(format_catalog(logger_catalog(), fmt="json"))      # the same entries as JSON
"""

from __future__ import annotations

import enum
import importlib.util
import inspect
import json
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["FORMATS", "callback_catalog", "format_catalog", "logger_catalog", "missing_logger_backend"]

FORMATS = ("text", "json", "markdown")

# Import name(s) of the package each logger needs (any one of them suffices) and how to install it.
_Requirement = tuple[tuple[str, ...], str]
_LOGGER_BACKENDS: dict[str, _Requirement] = {
    "CSVLogger": ((), ""),
    "Logger": ((), ""),
    "TensorBoardLogger": (("tensorboard", "tensorboardX"), "pip install 'litquant[tensorboard]'"),
    "WandbLogger": (("wandb",), "pip install wandb"),
    "MLFlowLogger": (("mlflow",), "pip install 'litquant[mlflow]'"),
    "CometLogger": (("comet_ml",), "pip install comet-ml"),
    "NeptuneLogger": (("neptune",), "pip install neptune"),
    "LitLogger": (("litlogger",), "pip install litlogger"),
}
# Callbacks that need a package Lightning does not install.
_CALLBACK_REQUIREMENTS: dict[str, _Requirement] = {
    "RichProgressBar": (("rich",), "pip install rich"),
    "RichModelSummary": (("rich",), "pip install rich"),
    "DeviceStatsMonitor": (("psutil",), "pip install psutil"),  # for CPU stats only
}
_BASE_NOTE = "base class: subclass it to write your own"
_TEXT_MAX_ARGUMENTS = 12


def callback_catalog() -> list[dict[str, Any]]:
    """One entry per class in ``lightning.pytorch.callbacks.__all__``.

    Keys: ``name``, ``summary`` (first sentence of the docstring), ``arguments`` (constructor parameters as
    ``name=default`` strings), ``requires`` (import name of an extra package, or ``None``), ``installed``,
    ``install`` (a pip command, or ``""``) and ``note``.
    """
    import lightning.pytorch.callbacks as module

    return [
        _entry(cls, module, module.Callback, "requires", _CALLBACK_REQUIREMENTS.get(name, ((), "")))
        for name, cls in _exported(module)
    ]


def logger_catalog() -> list[dict[str, Any]]:
    """One entry per class in ``lightning.pytorch.loggers.__all__``.

    Keys as in :func:`callback_catalog`, with ``backend`` (the package the logger writes through, ``None``
    for built-in ones) instead of ``requires``.
    """
    import lightning.pytorch.loggers as module

    entries = []
    for name, cls in _exported(module):
        backend = _LOGGER_BACKENDS.get(name) or (_requirements_in_module(sys.modules[cls.__module__]), "")
        entries.append(_entry(cls, module, module.Logger, "backend", backend))
    return entries


def format_catalog(entries: Sequence[dict[str, Any]], fmt: str = "text", width: int | None = None) -> str:
    """Render catalog entries as ``text`` (an aligned, wrapped table), ``json`` or ``markdown``."""
    if fmt == "json":
        return json.dumps(list(entries), indent=2)
    if fmt == "markdown":
        return _markdown(entries)
    if fmt == "text":
        return _text(entries, width or min(shutil.get_terminal_size((110, 24)).columns, 110))
    raise ValueError(f"unknown catalog format {fmt!r}: choose one of {', '.join(FORMATS)}")


def missing_logger_backend(class_path: str) -> str | None:
    """For a logger class (``TensorBoardLogger`` or its dotted path) whose backend package is not installed,
    one line naming the package and its install command; ``None`` when nothing is missing or it is unknown."""
    packages, install = _LOGGER_BACKENDS.get(class_path.rsplit(".", 1)[-1], ((), ""))
    if not packages or any(importlib.util.find_spec(package) is not None for package in packages):
        return None
    return f"{' or '.join(packages)} is not installed: {install}"


# -- building entries -------------------------------------------------------------------------------
def _exported(module: ModuleType) -> list[tuple[str, Any]]:
    return [(name, getattr(module, name)) for name in module.__all__]


def _entry(cls: Any, module: ModuleType, base: type, key: str, requirement: _Requirement) -> dict[str, Any]:
    packages, install = requirement
    installed = not packages or any(importlib.util.find_spec(package) is not None for package in packages)
    entry = {
        "name": cls.__name__ if inspect.isclass(cls) else str(cls),
        "summary": _summary(cls, base),
        "arguments": _arguments(cls),
        key: " or ".join(packages) if packages else None,
        "installed": installed,
        "install": "" if installed else install,
        "note": _BASE_NOTE if _is_base(cls, module) else "",
    }
    if not inspect.isclass(cls):
        entry["note"] = f"not a class: {type(cls).__name__}"
    return entry


def _summary(cls: Any, base: type) -> str:
    """First sentence of the docstring, without reST markup.

    The class's own docstring, else its ``__init__``'s, else those of its parents up to ``base`` (not
    included, so a subclass without a docstring does not read as ``Callback``).
    """
    doc = "" if inspect.isclass(cls) else getattr(cls, "__doc__", None) or ""
    for klass in cls.__mro__ if inspect.isclass(cls) else ():
        if klass is not cls and klass in (base, object):
            break
        init = klass.__dict__.get("__init__")
        doc = klass.__dict__.get("__doc__") or getattr(init, "__doc__", None) or ""
        if doc.strip():
            break
    paragraph = inspect.cleandoc(doc).split("\n\n")[0]
    text = " ".join(_strip_rst(paragraph).split())
    sentence = re.split(r"(?<=[.!?])\s+(?=[A-Z`\"(])", text, maxsplit=1)[0]
    return sentence.rstrip(":") or "(no description)"


def _strip_rst(text: str) -> str:
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`<]+?)`", r"\1", text)  # :class:`~a.b.Name` -> Name
    text = re.sub(r"`([^`<]+?)\s*<[^>]+>`_+", r"\1", text)  # `label <url>`_ -> label
    text = text.replace("``", "")
    return text.replace("\\", "")


def _arguments(cls: Any) -> list[str]:
    """Constructor parameters as ``name``, ``name=default``, ``*args``, ``**kwargs`` and ``*``."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    arguments: list[str] = []
    star_written = False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            arguments.append(f"*{parameter.name}")
            star_written = True
        elif parameter.kind is parameter.VAR_KEYWORD:
            arguments.append(f"**{parameter.name}")
        else:
            if parameter.kind is parameter.KEYWORD_ONLY and not star_written:
                arguments.append("*")
                star_written = True
            if parameter.default is parameter.empty:
                arguments.append(parameter.name)
            else:
                arguments.append(f"{parameter.name}={_short_repr(parameter.default)}")
    return arguments


def _short_repr(value: Any) -> str:
    if inspect.isfunction(value) or inspect.isbuiltin(value) or inspect.isclass(value):
        return value.__qualname__
    if isinstance(value, enum.Enum):
        return repr(value.value)
    text = repr(value)
    if len(text) > 40:
        text = text.split("(", 1)[0] + "(...)" if "(" in text else text[:37] + "..."
    return text


def _is_base(cls: Any, module: ModuleType) -> bool:
    """Abstract, named ``Base*``, or an argument-less class that other exported classes extend."""
    if not inspect.isclass(cls):
        return False
    if inspect.isabstract(cls) or cls.__name__.startswith("Base"):
        return True
    extended = any(other is not cls and issubclass(other, cls) for _, other in _exported(module)
                   if inspect.isclass(other))
    return extended and not _arguments(cls)


def _requirements_in_module(module: ModuleType) -> tuple[str, ...]:
    """Import names from the ``RequirementCache`` objects a logger's module declares (for unknown loggers)."""
    names = []
    for value in vars(module).values():
        if type(value).__name__ == "RequirementCache":
            requirement = getattr(value, "module", None) or re.split(r"[<>=!~ \[]", value.requirement)[0]
            names.append(requirement.replace("-", "_"))
    return tuple(dict.fromkeys(names))


# -- rendering --------------------------------------------------------------------------------------
def _requirement_text(entry: dict[str, Any]) -> str:
    package = entry.get("backend") or entry.get("requires")
    if not package:
        return ""
    return f"{package}: installed" if entry["installed"] else f"{package}: not installed ({entry['install']})"


def _text(entries: Sequence[dict[str, Any]], width: int) -> str:
    name_width = max(len(entry["name"]) for entry in entries) + 2 if entries else 10
    body_width = max(width - name_width, 40)
    indent = " " * name_width
    lines = []
    for entry in entries:
        body = textwrap.wrap(entry["summary"], body_width)
        arguments = entry["arguments"]
        hidden = len(arguments) - _TEXT_MAX_ARGUMENTS
        if hidden > 0:
            arguments = [*arguments[:_TEXT_MAX_ARGUMENTS], f"... (+{hidden} more)"]
        body += textwrap.wrap(
            "args: " + (", ".join(arguments) or "(none)"), body_width, subsequent_indent="      ",
            break_on_hyphens=False,
        )
        requirement = _requirement_text(entry)
        if len(requirement) > body_width and "(" in requirement:  # keep the pip command in one piece
            requirement, hint = requirement.split(" (", 1)
            body += [requirement, f"  ({hint}"]
        elif requirement:
            body.append(requirement)
        if entry["note"]:
            body += textwrap.wrap(entry["note"], body_width, subsequent_indent="  ")
        lines.append(entry["name"].ljust(name_width) + body[0])
        lines += [indent + line for line in body[1:]]
    return "\n".join(lines)


def _markdown(entries: Sequence[dict[str, Any]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    logger = any("backend" in entry for entry in entries)
    header = ["name", "summary", "arguments", "backend" if logger else "requires", "installed"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in entries:
        summary = entry["summary"] + (f" *({entry['note']})*" if entry["note"] else "")
        arguments = ", ".join(f"`{argument}`" for argument in entry["arguments"])
        package = entry.get("backend") or entry.get("requires") or "-"
        lines.append(
            f"| `{entry['name']}` | {cell(summary)} | {cell(arguments)} | {cell(package)} | "
            f"{'yes' if entry['installed'] else 'no'} |"
        )
    return "\n".join(lines)
