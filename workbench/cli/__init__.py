"""``python -m workbench COMMAND``: the command-line layer, the top of the package.

Each command is a module of this package with an ``add_arguments(parser)`` / ``run(args)`` pair, so
this file stays a table of contents. A command's module is imported only to run it, or for its
``--help`` when its options are generated from its modules' dataclasses (pretrain, finetune: torch,
seconds); the options of the others are in :mod:`.arguments`, so ``--help`` answers at once.

A command never prints its own errors: it raises, and :func:`main` turns the exception into one line
on stderr, ``workbench COMMAND: error: ...``, and an exit status: 2 for a usage error (argparse's, or
a :class:`UsageError` a command raises for options that do not go together), 1 for a failure
(``ValueError``, ``OSError``, ``RuntimeError`` and the workbench's own errors, which derive from them
or from ``FloatingPointError``). The full traceback is printed only under ``--debug``; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from . import arguments

PROG = "workbench"

# command name -> (module, one-line help)
COMMANDS = {
    "reproduce": ("workbench.cli.reproduce", "run every notebook headless with papermill"),
    "recipes": ("workbench.cli.recipes", "print every recipe (cpu, gpu, paper) side by side, or one as YAML"),
    "pretrain": ("workbench.cli.pretrain", "pretrain the language model of a recipe (DDP under torchrun)"),
    "finetune": ("workbench.cli.finetune", "fine-tune a pretrained checkpoint on a task (GPT-1's L2 + lambda L1)"),
    "data": ("workbench.cli.data", "fetch and prepare the corpora, tokenizer, packed tokens and tasks"),
    "verify": (
        "workbench.cli.verify",
        "check every checkpoint of a run against the hashes recorded when it was written",
    ),
    "export": (
        "workbench.cli.export",
        "write a checkpoint as a Hugging Face model directory (GPT2LMHeadModel or OpenAIGPTLMHeadModel)",
    ),
    "lm-eval": (
        "workbench.cli.harness",
        "evaluate a checkpoint (GPT or LSTM) on lm-evaluation-harness tasks, without conversion",
    ),
}

OPTIONS = {
    "reproduce": arguments.reproduce,
    "recipes": arguments.recipes,
    "data": arguments.data,
    "verify": arguments.verify,
    "export": arguments.export,
    "lm-eval": arguments.lm_eval,
}
"""Commands whose options are added without importing their module (which imports torch)."""

FAILURES = (ValueError, OSError, RuntimeError, FloatingPointError, ModuleNotFoundError)
"""What a command may raise for bad input, a failed run or a missing optional dependency (``lm-eval``'s
lm_eval): exit status 1 and one line, no traceback."""


class UsageError(ValueError):
    """Options that do not go together (``--out`` without ``--yaml``): exit status 2, like argparse's errors."""


class _ParseError(Exception):
    """An argparse error, carried to :func:`main` with the program of the parser that raised it."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors :func:`main` prints as one line (no usage block)."""

    def error(self, message: str):
        raise _ParseError(self.prog, message)


def one_line(error: BaseException) -> str:
    """An exception's message on one line (empty messages give the exception's type)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines) or type(error).__name__


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the options of ``command`` only: for another command they may cost an import of torch."""
    parser = _Parser(prog=PROG, description="GPT workbench: GPT-1 and GPT-2 at laptop scale.")
    debug_help = "on an error, print the full traceback (default: one line)"
    parser.add_argument("--debug", action="store_true", help=debug_help)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(
            name,
            prog=f"{PROG} {name}",
            help=help_text,
            description=help_text,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        # also after the command; SUPPRESS keeps a --debug given before it
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug_help)
        if name == command:
            add_arguments = OPTIONS.get(name) or importlib.import_module(module_name).add_arguments
            add_arguments(sub)
    return parser


def command_name(argv: list[str]) -> str | None:
    """The command ``argv`` names: its first word that is not an option (the top level has only flags)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _error(prog: str, error: BaseException | str, status: int) -> int:
    message = error if isinstance(error, str) else one_line(error)
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 failure, 2 usage error, 130 interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_name(argv))
    try:
        args, extras = parser.parse_known_args(argv)
    except _ParseError as error:
        return _error(error.prog, str(error), 2)
    except SystemExit as done:  # --help
        return done.code if isinstance(done.code, int) else 0
    prog = f"{PROG} {args.command}"
    if extras:
        return _error(prog, f"unrecognized arguments: {' '.join(extras)}", 2)
    try:
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)
    except BrokenPipeError:  # `... | head` closed stdout: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except UsageError as error:
        if args.debug:
            traceback.print_exc()
        return _error(prog, error, 2)
    except FAILURES as error:
        if args.debug:
            traceback.print_exc()
        return _error(prog, error, 1)
    except KeyboardInterrupt:
        return _error(prog, "interrupted", 130)
