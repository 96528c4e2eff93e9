"""The corpus on the real sources: documents, clean text, splits by document, sizes."""

import re

import pytest

from workbench.data import corpus
from workbench.data.corpus import (
    DEFAULT_SOURCES,
    SPLITS,
    Document,
    corpus_split,
    load_documents,
    rated_sentences,
    source_sizes,
    wiki_to_text,
)

pytestmark = pytest.mark.data


def test_shakespeare_works_without_gutenberg_boilerplate():
    docs = load_documents("shakespeare")
    assert len(docs) == 42
    titles = {d.title for d in docs}
    assert {"Hamlet", "King Lear", "Sonnets", "The Tempest"} <= titles
    hamlet = next(d for d in docs if d.title == "Hamlet")
    assert hamlet.text.startswith("HAMLET, PRINCE OF DENMARK")
    assert "To be, or not to be" in hamlet.text
    for doc in docs:
        lowered = doc.text.lower()
        assert "gutenberg" not in lowered and "*** start" not in lowered, doc.title
        assert not re.search(r"\be-?text\b", lowered), doc.title
        assert doc.text == doc.text.strip() and " \n" not in doc.text


def test_kjv_books_are_documents_of_verses():
    docs = load_documents("kjv")
    assert [d.title for d in docs[:2]] == ["Genesis", "Exodus"] and docs[-1].title == "Revelation"
    assert len(docs) == 66
    genesis = docs[0].text
    assert genesis.startswith("In the beginning God created the heaven")
    assert all(not re.search(r"\d+:\d+", d.text) for d in docs)  # verse numbers stripped
    assert genesis.count("\n\n") == 49  # 50 chapters


def test_wikipedia_articles_are_plain_prose():
    docs = load_documents("wikipedia")
    assert len(docs) == 106
    titles = [d.title for d in docs]
    assert titles[0] == "Anarchism" and "Albert Einstein" in titles
    for doc in docs:
        for markup in ("[[", "]]", "{{", "}}", "<ref", "Category:", "thumb|", "&nbsp;", "'''"):
            assert markup not in doc.text, (doc.title, markup)
    anarchism = docs[0].text
    assert anarchism.startswith("Anarchism is a political philosophy that advocates self-governed")


def test_wiki_markup_is_stripped():
    wikitext = (
        "'''Aardvark''' is a [[mammal|burrowing mammal]].<ref>{{cite book|title=X}}</ref> "
        "{{Infobox|a=b}}It eats [[ant]]s.\n[[File:Aardvark.jpg|thumb|An aardvark]]\n"
        "== Habitat ==\nAfrica.\n== References ==\n{{reflist}}\n[[Category:Mammals]]"
    )
    assert wiki_to_text(wikitext) == "Aardvark is a burrowing mammal. It eats ants.\n\nHabitat\nAfrica."


def test_modern_prose_sources_are_grouped_into_documents():
    tweets, amazon, nyt = (load_documents(s) for s in ("tweets", "amazon_reviews", "nyt_editorials"))
    assert len(tweets) == 4200 and len(amazon) == 300 and len(nyt) == 498
    assert nyt[0].text.startswith("On Dec. 19, around noon, New York City's Union Square")
    assert all("&amp;" not in d.text for d in tweets)


def test_labelled_movie_reviews_are_never_pretraining_text():
    rows = rated_sentences("movie_reviews")
    assert len(rows) == 10605
    first = rows[0][2]
    assert first.startswith("The Rock is destined to be the 21st Century's new")
    assert "movie_reviews" not in DEFAULT_SOURCES
    assert all(first not in d.text for s in DEFAULT_SOURCES for d in load_documents(s))


def test_splits_partition_each_source_by_document():
    for source in DEFAULT_SOURCES:
        docs = load_documents(source)
        parts = {split: corpus_split(split, 0, (source,)) for split in SPLITS}
        assert sum(len(p) for p in parts.values()) == len(docs)
        seen = [id(d) for p in parts.values() for d in p]
        assert len(set(seen)) == len(docs)  # every document in exactly one split
        assert len(parts["heldout"]) == max(1, round(0.1 * len(docs)))
    assert len(corpus_split("heldout", 0, "shakespeare")) == 4


def test_splits_are_fixed_by_seed():
    first = [d.title for d in corpus_split("heldout", 0)]
    assert first == [d.title for d in corpus_split("heldout", 0)]
    assert first != [d.title for d in corpus_split("heldout", 1)]
    train = {(d.source, d.title) for d in corpus_split("train", 0)}
    assert train.isdisjoint((d.source, d.title) for d in corpus_split("heldout", 0))


def test_bad_split_or_source_is_named():
    with pytest.raises(ValueError, match="split='test': expected one of"):
        corpus_split("test")
    with pytest.raises(KeyError, match="unknown corpus source 'bible'"):
        load_documents("bible")


def test_documents_are_frozen():
    doc = load_documents("kjv")[0]
    assert isinstance(doc, Document)
    with pytest.raises(AttributeError):
        doc.text = "changed"


def test_source_sizes_counts_characters_and_tokens():
    table = source_sizes(sources=("shakespeare", "kjv"))
    assert list(table.columns) == ["source", "split", "documents", "characters", "tokens"]
    assert len(table) == 6
    shakespeare = table[table.source == "shakespeare"]
    assert shakespeare.documents.sum() == 42
    assert shakespeare.characters.sum() == sum(len(d.text) for d in load_documents("shakespeare"))
    assert (table.tokens > 0).all() and (table.tokens < table.characters).all()
    assert table.attrs["tokenizer_sha256"]


def test_cache_is_keyed_on_the_data_directory(monkeypatch, tmp_path):
    corpus.load_documents("kjv")
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(Exception, match="source 'kjv'"):
        corpus.load_documents("kjv")  # a new data directory is read, not the in-memory copy
