"""Real, offline text: pinned public archives, the corpus split by document, packed tokens, tasks.

``sources`` fetches and verifies archives; ``corpus`` turns them into documents and splits;
``tokens`` packs a split for training; ``tasks`` and ``benchmarks`` give downstream examples as
plain dicts; ``vocabulary`` trains and caches the corpus tokenizer; ``prepare`` builds and caches
the packed splits; ``tokenizer`` is the byte-level BPE (Hugging Face ``tokenizers``);
``transforms`` are GPT-1's input transformations.
"""

from .corpus import BOOK_SOURCES, DEFAULT_SOURCES, Document, corpus_split, load_documents, source_sizes
from .prepare import packed_split
from .sources import SOURCES, SourceError, data_dir, fetch, source_dir
from .tasks import TASKS, describe_tasks, load_task, task_sizes, validate_examples
from .tokenizer import Tokenizer, gpt2_tokenizer, train_bpe
from .tokens import open_tokens, pack_tokens
from .vocabulary import corpus_tokenizer

__all__ = [
    "BOOK_SOURCES",
    "DEFAULT_SOURCES",
    "Document",
    "SOURCES",
    "SourceError",
    "TASKS",
    "Tokenizer",
    "corpus_split",
    "corpus_tokenizer",
    "data_dir",
    "describe_tasks",
    "fetch",
    "gpt2_tokenizer",
    "load_documents",
    "load_task",
    "open_tokens",
    "pack_tokens",
    "packed_split",
    "source_dir",
    "source_sizes",
    "task_sizes",
    "train_bpe",
    "validate_examples",
]
