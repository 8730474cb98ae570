"""The applications built on the quantization library (:mod:`litquant.quantization`): the report of every
method (:mod:`~litquant.apps.report`), accuracy-aware tuning (:mod:`~litquant.apps.tuning`), the per-layer
inspection (:mod:`~litquant.apps.inspect`), the outlier stress case (:mod:`~litquant.apps.stress`), the
benchmark (:mod:`~litquant.apps.bench`) and the demo workflow (:mod:`~litquant.apps.workflow`). They import the
library; the library never imports them."""
