"""A built-in stress case for int8: the same trained ``Net`` with outlier activation channels.

MNIST's CNN loses nothing in int8, so tuning and the per-layer report would have nothing to find. The
stress case rewrites a trained checkpoint so that a few output channels of ``conv1`` are ``scale`` times
larger and ``conv2`` reads them ``scale`` times weaker. ReLU is positively homogeneous
(``relu(s·x) = s·relu(x)`` for ``s > 0``), so the fp32 model computes the same function, up to rounding;
but ``conv2``'s input now has a few channels ``scale`` times wider than the rest, and the one per-tensor
``uint8`` scale of that input leaves the other channels a few int8 steps: plain PTQ loses accuracy, and the
per-layer report (:mod:`litquant.apps.inspect`) points at ``conv2``.

Example::

    from litquant.apps.stress import outlier_checkpoint

    outlier_checkpoint("fp32.ckpt", "stress.ckpt")      # then: litquant quantize --ckpt_path stress.ckpt ...

From the command line::

    python -m litquant.apps.stress fp32.ckpt stress.ckpt [--channels 4] [--scale 300]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import torch

from litquant.files import write_bytes

__all__ = ["outlier_checkpoint"]


def outlier_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, *, channels: int = 4,
                       scale: float = 300.0) -> Path:
    """Write ``out``: ``checkpoint`` with ``conv1``'s first ``channels`` output channels (weights and bias)
    multiplied by ``scale`` and ``conv2``'s matching input weights divided by it (same fp32 function).
    The checkpoint's hyper-parameters are kept; ``litquant_stress`` records the rewrite."""
    from litquant.checkpoints import load_checkpoint

    if scale <= 0:
        raise ValueError(f"scale must be positive (ReLU keeps only positive factors), got {scale}")
    data = load_checkpoint(checkpoint)
    state = data["state_dict"]
    width = state["model.conv1.weight"].shape[0]
    if not 1 <= channels <= width:
        raise ValueError(f"channels must be between 1 and {width}, got {channels}")
    state["model.conv1.weight"][:channels] *= scale
    state["model.conv1.bias"][:channels] *= scale
    state["model.conv2.weight"][:, :channels] /= scale
    data["litquant_stress"] = {"kind": "outlier channels", "layer": "conv1", "next_layer": "conv2",
                               "channels": channels, "scale": scale}
    for key in ("optimizer_states", "lr_schedulers", "callbacks", "loops"):
        data.pop(key, None)  # a rewritten model is not a training state to resume
    buffer = io.BytesIO()
    torch.save(data, buffer)
    return write_bytes(out, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    """Write the stress checkpoint; a bad argument or file is one line on stderr and exit 2."""
    parser = argparse.ArgumentParser(prog="python -m litquant.apps.stress",
                                     description="Write the outlier-channel stress case of a trained checkpoint.")
    parser.add_argument("checkpoint", help="a Lightning checkpoint of the MNIST classifier, or `last` (the newest "
                        "fit run's last.ckpt)")
    parser.add_argument("out", help="the stress checkpoint to write")
    parser.add_argument("--channels", type=int, default=4, help="conv1 output channels made outliers")
    parser.add_argument("--scale", type=float, default=300.0, help="how much larger they are")
    args = parser.parse_args(argv)
    from litquant.checkpoints import checkpoint_argument, register_safe_globals

    register_safe_globals()
    try:
        args.checkpoint = checkpoint_argument(args.checkpoint)
        path = outlier_checkpoint(args.checkpoint, args.out, channels=args.channels, scale=args.scale)
    except (OSError, ValueError, KeyError) as err:
        print(f"litquant: error: {args.checkpoint}: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
              file=sys.stderr)
        return 2
    print(f"wrote {path}: conv1 channels 0-{args.channels - 1} x{args.scale:g}, conv2 reads them /{args.scale:g} "
          "(same fp32 function)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
