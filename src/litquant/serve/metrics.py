"""Request counts, batch sizes and latency percentiles of the HTTP process, as Prometheus text or JSON."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

import numpy as np

QUANTILES = (0.5, 0.9, 0.99)


class Metrics:
    """Counters since start-up, and percentiles over the last ``window`` latencies of each endpoint."""

    def __init__(self, window: int = 10_000) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.predictions: Counter[str] = Counter()
        self.batch_sizes: Counter[int] = Counter()
        self.latencies: dict[str, deque[float]] = {}
        self.latency_sum: Counter[str] = Counter()
        self.window = window

    def record_request(self, endpoint: str, status: int, latency_ms: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.latencies.setdefault(endpoint, deque(maxlen=self.window)).append(latency_ms)
            self.latency_sum[endpoint] += latency_ms

    def record_prediction(self, model: str, batch_size: int) -> None:
        """One input run through ``model`` in a batch of ``batch_size`` inputs."""
        with self._lock:
            self.predictions[model] += 1
            self.batch_sizes[batch_size] += 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            latency = {
                endpoint: {"count": sum(n for (e, _), n in self.requests.items() if e == endpoint),
                           **{f"p{round(q * 100)}": float(np.quantile(values, q)) for q in QUANTILES}}
                for endpoint, values in self.latencies.items() if values
            }
            return {
                "requests": [{"endpoint": e, "status": s, "count": n} for (e, s), n in sorted(self.requests.items())],
                "predictions": dict(sorted(self.predictions.items())),
                "batch_sizes": {str(size): n for size, n in sorted(self.batch_sizes.items())},
                "latency_ms": latency,
            }

    def prometheus(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            lines = ["# HELP litquant_requests_total HTTP requests by endpoint and status.",
                     "# TYPE litquant_requests_total counter"]
            lines += [f'litquant_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                      for (e, s), n in sorted(self.requests.items())]
            lines += ["# HELP litquant_predictions_total Inputs run through each model.",
                      "# TYPE litquant_predictions_total counter"]
            lines += [f'litquant_predictions_total{{model="{m}"}} {n}' for m, n in sorted(self.predictions.items())]
            lines += ["# HELP litquant_batch_inputs_total Inputs by the size of the batch they ran in.",
                      "# TYPE litquant_batch_inputs_total counter"]
            lines += [f'litquant_batch_inputs_total{{batch_size="{b}"}} {n}'
                      for b, n in sorted(self.batch_sizes.items())]
            lines += ["# HELP litquant_request_latency_ms Server-side latency of answered requests.",
                      "# TYPE litquant_request_latency_ms summary"]
            for endpoint, values in sorted(self.latencies.items()):
                if not values:
                    continue
                for q in QUANTILES:
                    lines.append(f'litquant_request_latency_ms{{endpoint="{endpoint}",quantile="{q}"}} '
                                 f"{float(np.quantile(values, q)):.3f}")
                total = self.latency_sum[endpoint]
                lines.append(f'litquant_request_latency_ms_sum{{endpoint="{endpoint}"}} {total:.3f}')
                count = sum(n for (e, _), n in self.requests.items() if e == endpoint)
                lines.append(f'litquant_request_latency_ms_count{{endpoint="{endpoint}"}} {count}')
            return "\n".join(lines) + "\n"
