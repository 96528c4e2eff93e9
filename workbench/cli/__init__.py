"""``python -m workbench COMMAND``: the command-line layer, the top of the package.

Each command is a module of this package with an ``add_arguments(parser)`` / ``run(args)`` pair, so
this file stays a table of contents.
"""

from __future__ import annotations

import argparse
import importlib

# command name -> (module, one-line help)
COMMANDS = {
    "reproduce": ("workbench.cli.reproduce", "run every notebook headless with papermill"),
    "recipes": ("workbench.cli.recipes", "print every recipe (cpu, gpu, paper) side by side, or one as YAML"),
    "pretrain": ("workbench.cli.pretrain", "pretrain the language model of a recipe (DDP under torchrun)"),
    "finetune": ("workbench.cli.finetune", "fine-tune a pretrained checkpoint on a task (GPT-1's L2 + lambda L1)"),
    "data": ("workbench.cli.data", "fetch and prepare the corpora, tokenizer, packed tokens and tasks"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workbench", description="GPT workbench: GPT-1 and GPT-2 at laptop scale."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)
