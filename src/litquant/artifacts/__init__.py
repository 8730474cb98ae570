"""Artifacts: a model in one file, ``.pt2`` (``torch.export``) or ``.onnx`` (ONNX Runtime), that carries its own
description and is loaded through strict allowlists, so that loading never runs code from the file.

The modules, each importing only the ones above it in this list:

- :mod:`~litquant.artifacts.errors`: what goes wrong with an artifact file;
- :mod:`~litquant.artifacts.strict_json`, :mod:`~litquant.artifacts.signature`,
  :mod:`~litquant.artifacts.onnx_check`: strict JSON parsing, a model's inputs and outputs, the ``.onnx`` allowlist;
- :mod:`~litquant.artifacts.files`: the file's kind, bytes (capped), SHA-256 and readable JSON copy;
- :mod:`~litquant.artifacts.description`: the description embedded in the file, and the checks of a model against it;
- :mod:`~litquant.artifacts.pt2_schema`: the allowlist a ``.pt2`` program must fit;
- :mod:`~litquant.artifacts.pt2_file`, :mod:`~litquant.artifacts.onnx_file`: reading each kind safely;
- :mod:`~litquant.artifacts.pt2_inputs`, :mod:`~litquant.artifacts.pt2_graph`: what the eager module of a checked
  ``.pt2`` takes (call signature, input checks, guards), and that module, built from litquant's own parse;
- :mod:`~litquant.artifacts.saving`: writing an artifact and its readable copy;
- :mod:`~litquant.artifacts.private_cache`, :mod:`~litquant.artifacts.inductor`,
  :mod:`~litquant.artifacts.batching`: the private cache for native code, inductor builds and their int8 check,
  padding a batch to a compiled size;
- :mod:`~litquant.artifacts.compiled`, :mod:`~litquant.artifacts.aot`: the ``torch.compile`` and AOTInductor
  runners of a ``.pt2``;
- :mod:`~litquant.artifacts.loading`: :func:`~litquant.artifacts.loading.load_artifact`,
  :func:`~litquant.artifacts.loading.load_model` (a checkpoint too) and
  :func:`~litquant.artifacts.loading.read_description`.

Importing the package imports nothing of them: ``.onnx`` artifacts load and run without PyTorch.
"""
