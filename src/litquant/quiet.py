"""Importing this module keeps library messages a user cannot act on out of a script's output, from the
libraries' own imports on: it calls :func:`litquant.quiet_libraries` (what the ``litquant`` command does at start).
The examples import it before anything that loads torchao, whose import logs CUDA-only kernels not loading::

    import litquant.quiet  # noqa: F401
"""

from litquant import quiet_libraries

quiet_libraries()
