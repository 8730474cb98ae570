"""``litquant serve``: checkpoints and int8 artifacts behind an HTTP endpoint, with dynamic batching and a drawing
page. The models run in the HTTP process (the default), or in LitServe worker processes (``--workers N``).

One or more models (``.pt2``, ``.onnx``, ``.ckpt``) are served under their names (``ptq.pt2`` → ``ptq``):

- ``POST /predict`` an image (multipart ``file``, a raw ``image/*`` body, or JSON ``{"image": base64 PNG}`` or
  ``{"pixels": 28×28}``), optional ``model`` (form field, JSON key or query): label, probabilities, model,
  latency;
- ``POST /compare``: the same input through every model;
- ``GET /health``, ``GET /models``, ``GET /metrics`` (Prometheus text; ``?format=json``), ``GET /docs``;
- ``GET /``: a page to draw a digit on, with every model's top-3 and latency as you draw.

Example::

    litquant serve demo/fp32.pt2 demo/ptq.pt2 --port 8000
    curl -F file=@digit.png 'http://127.0.0.1:8000/predict?model=ptq'
"""

from litquant.serve.app import ServedModel, build_app, served_models
from litquant.serve.litserve_server import build_server

__all__ = ["ServedModel", "build_app", "build_server", "served_models"]
