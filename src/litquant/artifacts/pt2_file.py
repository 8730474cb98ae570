"""Reading a ``.pt2`` artifact safely: the archive's entries checked, a clean copy loaded, the graph checked again.

**Loading never executes code from the file, and the bytes checked are the bytes loaded.** The file is read into
memory once (:func:`~litquant.artifacts.files.read_artifact_bytes`). Then :class:`Pt2Archive`:

* parses the zip central directory and refuses duplicate names, names that collide when letter case is ignored
  (torch's zip reader matches names case-insensitively), and every entry outside the layout ``torch.export.save``
  writes for plain tensors: pickled or legacy ``.pt`` weights and constants, custom and opaque objects, native
  libraries, AOTInductor packages;
* caps each entry's and the total inflated size from the declared sizes before inflating anything, and again while
  inflating (in chunks, stopping at the cap: declared sizes can lie);
* parses ``models/model.json`` and the weight and constant configs into a strict schema and replaces them by a
  canonical copy rebuilt from the parsed values (:mod:`litquant.artifacts.pt2_schema`: registered operators of
  allowed namespaces, plain names, no higher-order operators, size-comparison guards, shapes of a small grammar),
  and refuses example inputs that do not load with ``torch.load(weights_only=True)``.

:func:`load_program` then rebuilds a clean archive in memory from the checked entries only, hands only that to
``torch.export.load``, and checks the loaded graph again (:func:`check_graph_module`: allowed operators only, no
sub-module), its int8 operators against the described precision and its inputs and outputs against the
description. The eager runner builds its module from the parsed entries instead
(:mod:`litquant.artifacts.pt2_graph`) and runs the same checks on it.

Example::

    from litquant.artifacts.pt2_file import load_program

    program, description = load_program("out/ptq.pt2")   # a torch.export.ExportedProgram, checked
"""

from __future__ import annotations

import contextlib
import io
import logging
import operator
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch

from litquant.artifacts.description import (
    PT2_DESCRIPTION,
    ArtifactDescription,
    check_io,
    check_precision,
    description_mismatch,
)
from litquant.artifacts.errors import ArtifactError, UnsafeArtifactError
from litquant.artifacts.files import MAX_TOTAL_BYTES, read_artifact_bytes
from litquant.artifacts.pt2_schema import (
    OPERATOR_NAMESPACES,
    PYTHON_OPERATORS,
    SchemaError,
    canonical_program,
    canonical_tensor_config,
    int8_targets,
)
from litquant.artifacts.signature import value_dtype, value_shape

__all__ = ["MAX_ENTRIES", "MAX_ENTRY_BYTES", "MAX_JSON_BYTES", "Pt2Archive", "check_graph_module", "load_program",
           "program_io"]

#: Largest inflated size of one ``.pt2`` entry (of all together: :data:`~litquant.artifacts.files.MAX_TOTAL_BYTES`),
#: and most entries.
MAX_ENTRY_BYTES = 256 * 2**20
MAX_ENTRIES = 10_000
#: Largest inflated size of a JSON entry (the program and the tensor configs): parsing costs many times its size
#: in memory, and a program of a few thousand nodes takes a few megabytes.
MAX_JSON_BYTES = 32 * 2**20


def _entry_cap(name: str) -> int:
    return MAX_JSON_BYTES if name.endswith(".json") else MAX_ENTRY_BYTES

#: The ``.pt2`` layout of a plain-tensor program named ``model`` (names inside the archive's root folder).
_PT2_LAYOUT = re.compile(r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
                         r"|models/model\.json|data/sample_inputs/model\.pt"
                         r"|data/weights/model_weights_config\.json|data/weights/weight_\d+"
                         r"|data/constants/model_constants_config\.json|data/constants/tensor_\d+"
                         r"|extra/[A-Za-z0-9_][A-Za-z0-9_.-]*")
_PT2_REQUIRED = ("archive_format", "archive_version", ".data/version", "models/model.json",
                 "data/sample_inputs/model.pt")


class Pt2Archive:
    """The checked entries of a ``.pt2`` file (inner name → bytes), read from one in-memory copy of the file."""

    def __init__(self, path: Path, raw: bytes) -> None:
        self.path = path
        self.entries = self._read_entries(raw)
        self._check_payloads()

    def refuse(self, why: str) -> UnsafeArtifactError:
        return UnsafeArtifactError(f"{self.path}: refused to load, {why}; nothing from the file was run (only load "
                                   ".pt2 files written by litquant or torch.export.save of plain tensors)")

    def _read_entries(self, raw: bytes) -> dict[str, bytes]:
        try:
            archive = zipfile.ZipFile(io.BytesIO(raw))
            infos = archive.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
            raise ArtifactError(f"{self.path}: not a .pt2 archive ({err}); export it again") from None
        if len(infos) > MAX_ENTRIES:
            raise self.refuse(f"{len(infos)} entries")
        roots = {info.filename.split("/", 1)[0] for info in infos}
        if len(roots) != 1 or any("/" not in info.filename for info in infos):
            raise self.refuse("unexpected archive layout")
        root = roots.pop() + "/"
        seen: dict[str, str] = {}
        for info in infos:
            inner = info.filename[len(root):]
            folded = info.filename.casefold()
            if folded in seen:
                what = "appears twice" if seen[folded] == info.filename else f"collides with {seen[folded]!r}"
                raise self.refuse(f"entry {inner!r} {what}")
            seen[folded] = info.filename
            if inner.startswith(("data/weights/", "data/constants/")) and inner.endswith(".pt"):
                raise self.refuse(f"legacy pickled entry {inner!r}")
            if not _PT2_LAYOUT.fullmatch(inner):
                raise self.refuse(f"unexpected entry {inner!r}")
            if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise self.refuse(f"entry {inner!r} is encrypted or compressed with an unsupported method")
            if info.file_size > _entry_cap(inner):
                raise self.refuse(f"entry {inner!r} declares {info.file_size / 2**20:.0f} MiB, more than "
                                  f"{_entry_cap(inner) // 2**20} MiB")
        declared = sum(info.file_size for info in infos)
        if declared > MAX_TOTAL_BYTES:
            raise self.refuse(f"its entries declare {declared / 2**20:.0f} MiB, more than "
                              f"{MAX_TOTAL_BYTES // 2**20} MiB")
        missing = [name for name in _PT2_REQUIRED if root + name not in seen.values()]
        if missing:
            raise ArtifactError(f"{self.path}: not a torch.export archive (no {missing[0]!r}); export it again")
        entries, total = {}, 0
        for info in infos:
            data = self._inflate(archive, info, MAX_TOTAL_BYTES - total)
            total += len(data)
            entries[info.filename[len(root):]] = data
        return entries

    def _inflate(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
        """An entry's bytes, read in chunks and stopped as soon as they pass its declared size or a cap."""
        limit = min(info.file_size, _entry_cap(info.filename), budget)
        chunks, size = [], 0
        try:
            with archive.open(info) as entry:
                while chunk := entry.read(2**20):
                    size += len(chunk)
                    if size > limit:
                        raise self.refuse(f"entry {info.filename!r} inflates past its declared size or the cap")
                    chunks.append(chunk)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as err:
            if isinstance(err, UnsafeArtifactError):
                raise
            raise ArtifactError(f"{self.path}: entry {info.filename!r} is damaged ({err}); export it again") \
                from None
        return b"".join(chunks)

    def _check_payloads(self) -> None:
        """Check every entry torch reads; the JSON ones are replaced by their canonical rebuild (see
        :mod:`litquant.artifacts.pt2_schema`), so only parsed values reach ``torch.export.load``."""
        for name, data in self.entries.items():
            if name.endswith("_config.json") or name == "models/model.json":
                try:
                    self.entries[name] = canonical_program(data) if name == "models/model.json" else \
                        canonical_tensor_config(data, name.rsplit("/", 1)[0] + "/", self.entries)
                except SchemaError as err:
                    raise self.refuse(f"{name!r} is outside the schema litquant loads ({err})") from None
            elif name.startswith("data/sample_inputs/"):
                try:
                    torch.load(io.BytesIO(data), weights_only=True)
                except Exception as err:  # noqa: BLE001 - any failure means: not plain tensors
                    raise self.refuse(f"example inputs are not plain tensors ({type(err).__name__})") from None
            elif name.startswith("extra/"):
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    raise self.refuse(f"extra file {name!r} is not text") from None

    def description(self) -> ArtifactDescription:
        data = self.entries.get(f"extra/{PT2_DESCRIPTION}")
        if data is None:
            raise ArtifactError(f"{self.path}: no litquant description inside; make it with `litquant quantize` "
                                "(or litquant.artifacts.saving.save_pt2)")
        return ArtifactDescription.from_json(data)

    def clean_copy(self) -> io.BytesIO:
        """A new archive holding exactly the checked entries (uncompressed), for ``torch.export.load``."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as clean:
            for name, data in self.entries.items():
                clean.writestr(zipfile.ZipInfo(f"model/{name}", date_time=(1980, 1, 1, 0, 0, 0)), data)
        buffer.seek(0)
        return buffer


def program_io(program: torch.export.ExportedProgram) -> tuple[list, list]:
    """A program's user inputs ``("", shape, dtype)`` and outputs ``(shape, dtype)``, ``"batch"`` for symbolic
    dimensions."""
    nodes = {node.name: node for node in program.graph.nodes}
    inputs = []
    for spec in program.graph_signature.input_specs:
        if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT:
            value = nodes[spec.arg.name].meta.get("val")
            inputs.append(("", list(value_shape(value)), value_dtype(value)))  # called by position
    output_node = next(node for node in program.graph.nodes if node.op == "output")
    outputs = [(list(value_shape(value)), value_dtype(value))
               for value in [arg.meta.get("val") for arg in output_node.args[0] if isinstance(arg, torch.fx.Node)]]
    return inputs, outputs


@contextlib.contextmanager
def _quiet_torch_export() -> Iterator[None]:
    """Keep ``torch.export.load`` from logging a traceback for a file it cannot read (we report one line)."""
    logger = logging.getLogger("torch.export")
    quiet = logging.Filter()
    quiet.filter = lambda record: record.levelno >= logging.ERROR  # type: ignore[method-assign]
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def check_graph_module(path: Path, graph_module: torch.fx.GraphModule, description: ArtifactDescription,
                       inputs: list, outputs: list) -> None:
    """A loaded graph against the allowlists and the description: registered operator overloads of the allowed
    namespaces and the listed Python operators only (no higher-order operator, no sub-module but plain holders
    of tensors, attributes read only for tensors), int8 operators exactly when the description says int8, and
    its inputs ``(name, shape, dtype)`` and outputs ``(shape, dtype)`` as described."""
    if any(type(module) is not torch.nn.Module for module in graph_module.modules() if module is not graph_module):
        raise UnsafeArtifactError(f"{path}: refused to run, its graph holds a sub-module")
    targets = set()
    for node in graph_module.graph.nodes:
        target = node.target
        allowed = node.op in ("placeholder", "output") or node.op == "call_function" and (
            isinstance(target, torch._ops.OpOverload) and not isinstance(target, torch._ops.HigherOrderOperator)
            and target.namespace in OPERATOR_NAMESPACES
            or f"{getattr(target, '__module__', '')}.{getattr(target, '__name__', '')}" in PYTHON_OPERATORS) \
            or node.op == "get_attr" and isinstance(operator.attrgetter(target)(graph_module), torch.Tensor)
        if not allowed:
            raise UnsafeArtifactError(f"{path}: refused to run, its graph calls {target!r}, not a registered "
                                      "operator of " + ", ".join(sorted(OPERATOR_NAMESPACES)))
        if isinstance(target, torch._ops.OpOverload):
            targets.add(f"torch.ops.{target.namespace}.{target._opname}.{target._overloadname}")
    if why := check_precision(int8_targets(targets), description.precision):
        raise description_mismatch(path, why)
    check_io(path, description, inputs, outputs)


def load_program(path: str | os.PathLike, raw: bytes | None = None) -> tuple[torch.export.ExportedProgram,
                                                                           ArtifactDescription]:
    """The checked program and description of a ``.pt2`` (``raw``: its bytes, when already read): only a clean
    in-memory copy of the allowed entries reaches ``torch.export.load``."""
    path = Path(path)
    raw = read_artifact_bytes(path) if raw is None else raw
    archive = Pt2Archive(path, raw)
    description = archive.description()
    import torch.ao.quantization.fx._decomposed  # noqa: F401  registers the quantized_decomposed ops (not inductor)

    try:
        with _quiet_torch_export():
            program = torch.export.load(archive.clean_copy())
    except Exception as err:  # noqa: BLE001 - one line for any deserialisation failure
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        raise ArtifactError(f"{path}: cannot load ({message}); export it again") from None
    check_graph_module(path, program.graph_module, description, *program_io(program))
    return program, description


