"""``python -m workbench COMMAND``: the command-line entry point.

Each command lives in the module that owns its concept and registers itself here through an
``add_arguments(parser)`` / ``run(args)`` pair, so this file stays a table of contents.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS = {
    "reproduce": ("workbench.reproduce", "run every notebook headless with papermill"),
    "pretrain": ("workbench.pretrain", "pretrain a GPT language model on packed tokens (DDP under torchrun)"),
    "finetune": ("workbench.finetune", "fine-tune a pretrained checkpoint on a task (GPT-1's L2 + lambda L1)"),
    "data": ("workbench.data.prepare", "fetch and prepare the corpora, tokenizer, packed tokens and tasks"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workbench", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(
            name, help=help_text, description=help_text,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
