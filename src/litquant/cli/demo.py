"""``litquant demo``: the whole workflow into one folder (fit, test, quantize every way, report), with every
option of ``litquant fit`` and the ``--quant.*`` options."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch.cli import LightningArgumentParser

from litquant.cli.lightning import DEFAULT_ROOT_DIR, LitquantCLI
from litquant.cli.options import add_quantize_arguments, legacy_quant_flags, quantize_config, writable_folder
from litquant.errors import UserError

DEMO_HELP = """Run the whole workflow into --out: fit, test the best checkpoint (best val_acc), quantize it with
every method (ptq, qat, lightning-qat, onnxruntime), check every model with plain PyTorch, a Trainer and a fresh
process, and write report.md / report.json, the per-epoch table and the plots.

Every option of `litquant fit` is accepted too (see `litquant fit --help`), e.g.
  litquant demo --out demo --data.data_dir ~/data --trainer.max_epochs 3 --data.train_size 20000
Small defaults: --trainer.max_epochs 2 --data.train_size 10000. --print_config prints the whole configuration
(--config FILE takes it back); a run saves it, --quant.* included, as <out>/mnist/version_N/config.yaml."""


class DemoCLI(LitquantCLI):
    """``litquant demo``: :class:`LitquantCLI`'s options plus ``--out``, ``--methods`` and ``--quant.*``."""

    def __init__(self, args: Sequence[str]) -> None:
        super().__init__(args=args, run=False, prog="litquant demo", description=DEMO_HELP)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        from litquant.quantization import METHODS

        super().add_arguments_to_parser(parser)
        parser.add_argument("--out", default="demo", help="output folder (also the default --trainer.default_root_dir)")
        parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated quantization methods")
        add_quantize_arguments(parser)
        parser.set_defaults({"data.train_size": 10000})  # and litquant fit's default length

    def before_instantiate_classes(self) -> None:
        from litquant.quantization import METHODS

        config = self.config
        methods = [m for m in config.methods.split(",") if m]
        if unknown := [m for m in methods if m not in METHODS]:
            raise UserError(f"unknown method {', '.join(unknown)}: choose from {', '.join(METHODS)}")
        writable_folder(config.out, "--out")
        if config.trainer.default_root_dir == DEFAULT_ROOT_DIR:
            config.trainer.default_root_dir = config.out
        super().before_instantiate_classes()


def cmd_demo(argv: list[str]) -> None:
    from litquant.apps.workflow import run_demo
    from litquant.checkpoints import register_safe_globals

    register_safe_globals()
    cli = DemoCLI(legacy_quant_flags(argv))
    config = cli.config
    run_demo(cli.trainer, cli.model, cli.datamodule, Path(config.out), [m for m in config.methods.split(",") if m],
             quantize_config(config))
