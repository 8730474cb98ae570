"""``litquant info callbacks|loggers``: what Lightning ships, as text, Markdown or JSON."""

from __future__ import annotations

from typing import Literal

from litquant.cli.options import command_parser


def cmd_info(argv: list[str]) -> None:
    parser = command_parser("litquant info", "List Lightning's callbacks or loggers.")
    parser.add_argument("what", type=Literal["callbacks", "loggers"], help="what to list")
    parser.add_argument("--format", type=Literal["text", "markdown", "json"], default="text")
    config = parser.parse_args(argv)
    from litquant.catalog import callback_catalog, format_catalog, logger_catalog

    entries = callback_catalog() if config.what == "callbacks" else logger_catalog()
    print(format_catalog(entries, config.format))
