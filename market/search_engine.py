"""Pure product-search core: Chinese/pinyin term extraction and a Whoosh index.

No Flask and no database here; ``market.search`` wraps this module with DB
integration, Celery tasks and the PostgreSQL backend.

Term extraction (shared by every backend, deterministic for a given jieba and
pypinyin version):

* :func:`chinese_terms` -- for each run of CJK characters: every single
  character, every character bigram, and every jieba search-mode word of three
  or more characters (jieba's one- and two-character words are already among
  the unigrams/bigrams); plus lowercased ASCII words/numbers (``[a-z0-9]+``).
  Text is NFKC-normalised first, so full-width ``２５０ｇ`` becomes ``250g``.
* :func:`pinyin_terms` -- for the same CJK spans (unigrams, bigrams, jieba
  words of three or more characters) and for the whole CJK run (up to
  ``MAX_RUN_PINYIN_CHARS`` characters): full toneless pinyin joined without
  spaces (``荔枝`` -> ``lizhi``, ``ü`` is written ``v``) and, for spans of two or
  more characters, the initials (``lz``). Readings come from pypinyin applied
  to the whole run, so polyphones follow their context.
* :func:`prefix_terms` -- prefixes of the full-pinyin terms and ASCII words,
  so the whoosh index answers a partly typed ``lizh`` with one term lookup.

Each returns terms ordered by position (then shorter span first, then
alphabetically), a term at the same span only once; repeated occurrences at
other positions are kept. ``chinese_terms`` + ``pinyin_terms`` can be fed as
they are to a PostgreSQL ``simple`` tsvector (it does prefixes itself, ``:*``).

Queries (:func:`query_terms`): a CJK run of two or more characters becomes its
bigrams, all of which must match; a single CJK character matches its unigram;
an ASCII word matches pinyin terms and ASCII words, as a prefix when it has at
least ``PREFIX_MIN_CHARS`` characters and contains a letter (``lizh`` ->
``lizhi``). All clauses are ANDed. jieba words of three or more characters in
the query are optional terms that only raise the score.

The whoosh index (:class:`WhooshIndex`) keeps one ``text`` field whose
postings carry per-document weights (see ``TEXT_SECTIONS``), so a query term is
one posting list. Pure-Python whoosh pays for every posting it reads, so:
one-term queries use whoosh's top-N search, which skips blocks that cannot
reach the top N, and take their total from document frequencies; multi-term
queries are scored term at a time, rarest term first, probing the other
postings only for the remaining candidates; filters are cached docsets.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import heapq
import html
import logging
import os
import pickle
import re
import struct
import threading
import unicodedata
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jieba
from pypinyin import Style, lazy_pinyin
from whoosh import index as whoosh_index
from whoosh import query as wq
from whoosh import scoring, writing
from whoosh.analysis import Token, Tokenizer
from whoosh.fields import ID, STORED, TEXT, Schema
from whoosh.filedb.filestore import FileStorage
from whoosh.reading import TermNotFound
from whoosh.util.filelock import try_for

# jieba logs "Building prefix dict ..." at DEBUG to its own stderr handler.
jieba.setLogLevel(logging.WARNING)

log = logging.getLogger(__name__)

ON_SALE = "on_sale"

#: Bump when the schema or the term extraction changes: an index written with
#: another version is then reported as missing and has to be rebuilt.
INDEX_VERSION = 2
INDEX_NAME = f"products_v{INDEX_VERSION}"

#: Whole-run pinyin (``gualvlizhi``) is only indexed for runs up to this length.
MAX_RUN_PINYIN_CHARS = 12
#: ASCII query words at least this long (and containing a letter) match by prefix;
#: the whoosh index stores prefixes of this length up to MAX_PREFIX_CHARS.
PREFIX_MIN_CHARS = 3
MAX_PREFIX_CHARS = 16
#: Queries are cut to this many characters and this many AND clauses.
MAX_QUERY_CHARS = 64
MAX_QUERY_CLAUSES = 16
#: ``page * per_page`` may not exceed this (deep paging costs like a full scan).
MAX_RESULT_WINDOW = 10_000

#: The searchable text of a product, in the order its parts are joined into the
#: ``text`` field: (SearchDoc attribute, weight, whether pinyin terms are indexed,
#: whether prefixes of pinyin/ASCII words are indexed for as-you-type queries).
#: A document's score for a query term is the sum of the weights of the parts
#: containing it (repetitions and lengths do not count), summed over the query's
#: terms. The title weight exceeds all the others together, so a title match
#: always ranks first. Pinyin and prefixes would multiply the index size for long
#: texts while they are meant for names, hence the flags. Changing this table
#: requires bumping ``INDEX_VERSION``.
TEXT_SECTIONS: tuple[tuple[str, float, bool, bool], ...] = (
    ("title", 5.0, True, True),
    ("gi_name", 2.0, True, True),
    ("cooperative", 1.5, True, False),
    ("description", 1.0, False, False),
)
SECTION_SEP = "\x1e"
FILTER_FIELDS = ("category", "city_code", "county_code", "cooperative_id")

_CJK = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_SEGMENT_RE = re.compile(f"([{_CJK}]+)|([A-Za-z0-9]+)")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

Span = tuple[str, int, int]  # (term, start, end) in the caller's original text


class SearchIndexError(Exception):
    """The search index is missing, unreadable or corrupt; fall back to SQL search."""


class SearchIndexLockedError(SearchIndexError):
    """Another writer held the index lock for longer than the lock timeout."""


@dataclass
class SearchDoc:
    id: int
    title: str
    gi_name: str = ""
    cooperative: str = ""
    description: str = ""
    category: str = ""
    city_code: str = ""
    county_code: str = ""
    status: str = ON_SALE
    cooperative_id: int | None = None


@dataclass
class SearchResult:
    ids: list[int]
    total: int
    highlights: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryClause:
    """One required term; ``prefix`` means any indexed term starting with it matches."""

    term: str
    prefix: bool = False


@dataclass(frozen=True)
class ParsedQuery:
    """A user query as terms: every clause must match; boost terms only add score."""

    clauses: tuple[QueryClause, ...] = ()
    boost_terms: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.clauses)

    def to_tsquery(self) -> str:
        """PostgreSQL ``to_tsquery('simple', ...)`` text for the required clauses.

        Terms are only CJK characters and ``[a-z0-9]``, so no escaping is needed
        beyond the quotes.
        """
        return " & ".join(f"'{c.term}'" + (":*" if c.prefix else "") for c in self.clauses)


# --------------------------------------------------------------------------- text


_U_UMLAUT = str.maketrans({"ü": "v", "Ü": "V"})


def _normalize(text: str) -> tuple[str, list[int] | None]:
    """NFKC-normalise ``text`` and write ü as v (the pinyin keyboard spelling).

    Returns the normalised text and, when it differs in layout from the input,
    a list mapping each normalised character index to its original index.
    """
    if text.isascii() or (
        unicodedata.is_normalized("NFKC", text) and "ü" not in text and "Ü" not in text
    ):
        return text, None
    parts: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        norm = unicodedata.normalize("NFKC", ch).translate(_U_UMLAUT)
        parts.append(norm)
        origin.extend([i] * len(norm))
    return "".join(parts), origin


def _syllables(run: str) -> list[str]:
    """Toneless pinyin per character of a CJK run ("" where pypinyin has none)."""
    syllables = lazy_pinyin(run, style=Style.NORMAL, errors=lambda chars: [""] * len(chars))
    if len(syllables) != len(run):  # never seen, but keep spans aligned if it happens
        syllables = [
            (lazy_pinyin(ch, style=Style.NORMAL, errors=lambda c: [""]) or [""])[0] for ch in run
        ]
    return [s if s.isascii() and s.isalpha() else "" for s in syllables]


def _jieba_spans(run: str) -> list[tuple[int, int]]:
    return [(start, end) for _word, start, end in jieba.tokenize(run, mode="search")]


def _edges(term: str) -> range:
    """Lengths of the prefixes indexed for ``term`` (see :func:`prefix_terms`)."""
    return range(PREFIX_MIN_CHARS, min(len(term), MAX_PREFIX_CHARS + 1))


def _analyze(
    text: str, *, with_pinyin: bool, with_prefixes: bool = False
) -> tuple[list[Span], list[Span], list[Span]]:
    """Chinese/ASCII, pinyin and prefix spans of ``text``, positions in ``text``."""
    norm, origin = _normalize(text)
    chinese: set[Span] = set()
    pinyin: set[Span] = set()
    prefixes: set[Span] = set()
    for match in _SEGMENT_RE.finditer(norm):
        base = match.start()
        run = match.group(1)
        if run is None:
            word = match.group(2).lower()
            chinese.add((word, base, match.end()))
            if with_prefixes and not word.isdigit():
                prefixes.update((word[:k], base, match.end()) for k in _edges(word))
            continue
        n = len(run)
        spans = {(i, i + 1) for i in range(n)} | {(i, i + 2) for i in range(n - 1)}
        if n >= 3:
            spans.update((s, e) for s, e in _jieba_spans(run) if e - s >= 3)
        for s, e in spans:
            chinese.add((run[s:e], base + s, base + e))
        if not with_pinyin:
            continue
        if 3 <= n <= MAX_RUN_PINYIN_CHARS:
            spans.add((0, n))
        syllables = _syllables(run)
        for s, e in spans:
            parts = syllables[s:e]
            if not all(parts):
                continue
            full = "".join(parts)
            pinyin.add((full, base + s, base + e))
            if e - s >= 2:
                pinyin.add(("".join(p[0] for p in parts), base + s, base + e))
            if with_prefixes:
                prefixes.update((full[:k], base + s, base + e) for k in _edges(full))

    def ordered(spans: set[Span]) -> list[Span]:
        if origin is not None:
            spans = {(t, origin[s], origin[e - 1] + 1) for t, s, e in spans}
        return sorted(spans, key=lambda sp: (sp[1], sp[2], sp[0]))

    return ordered(chinese), ordered(pinyin), ordered(prefixes)


def term_spans(text: str, *, with_pinyin: bool = True, with_prefixes: bool = False) -> list[Span]:
    """Index terms of ``text`` with their (start, end) in ``text``, ordered by position."""
    chinese, pinyin, prefixes = _analyze(text, with_pinyin=with_pinyin, with_prefixes=with_prefixes)
    return sorted(chinese + pinyin + prefixes, key=lambda sp: (sp[1], sp[2], sp[0]))


def chinese_terms(text: str) -> list[str]:
    """CJK unigrams, bigrams and 3+ character jieba words, plus lowercased ASCII words."""
    return [term for term, _s, _e in _analyze(text, with_pinyin=False)[0]]


def pinyin_terms(text: str) -> list[str]:
    """Full pinyin and initials for the CJK spans of ``text`` (see module docstring)."""
    return [term for term, _s, _e in _analyze(text, with_pinyin=True)[1]]


def prefix_terms(text: str) -> list[str]:
    """Prefixes (``PREFIX_MIN_CHARS`` to ``MAX_PREFIX_CHARS`` long, shorter than the term)
    of the full-pinyin terms and of the ASCII words containing a letter.

    The whoosh index stores them so that a partly typed word (``lizh``) is a
    plain term lookup; a PostgreSQL backend does not need them (``:*``).
    """
    return [term for term, _s, _e in _analyze(text, with_pinyin=True, with_prefixes=True)[2]]


def query_terms(q: str) -> ParsedQuery:
    """Turn a user query into required clauses and optional boost terms."""
    norm, _origin = _normalize(q[: MAX_QUERY_CHARS * 2])
    norm = norm[:MAX_QUERY_CHARS]
    clauses: dict[QueryClause, None] = {}
    boosts: dict[str, None] = {}
    for match in _SEGMENT_RE.finditer(norm):
        run = match.group(1)
        if run is None:
            word = match.group(2).lower()
            prefix = len(word) >= PREFIX_MIN_CHARS and not word.isdigit()
            clauses[QueryClause(word, prefix)] = None
        elif len(run) == 1:
            clauses[QueryClause(run)] = None
        else:
            for i in range(len(run) - 1):
                clauses[QueryClause(run[i : i + 2])] = None
            if len(run) >= 3:
                boosts.update((run[s:e], None) for s, e in _jieba_spans(run) if e - s >= 3)
    return ParsedQuery(tuple(clauses)[:MAX_QUERY_CLAUSES], tuple(boosts)[:MAX_QUERY_CLAUSES])


@functools.lru_cache(maxsize=4096)
def _title_spans(title: str) -> tuple[Span, ...]:
    """Cached analysis of titles for highlighting (popular products recur)."""
    return tuple(term_spans(title))


def highlight(title: str, parsed: ParsedQuery) -> str:
    """``title`` HTML-escaped, with the parts matching ``parsed`` in ``<mark>``.

    CJK terms are found by substring search (a bigram or character occurs in
    the title exactly where it was indexed); pinyin and ASCII clauses need the
    full analysis of the title, which is only done when the query has them.
    """
    # Query terms are either all CJK or all [a-z0-9].
    cjk_terms = {c.term for c in parsed.clauses if not c.term.isascii()}
    cjk_terms.update(parsed.boost_terms)
    exact = {c.term for c in parsed.clauses if not c.prefix and c.term not in cjk_terms}
    prefixes = tuple(c.term for c in parsed.clauses if c.prefix)
    found: list[tuple[int, int]] = []
    if cjk_terms:
        norm, origin = _normalize(title)
        for term in cjk_terms:
            start = norm.find(term)
            while start >= 0:
                end = start + len(term)
                if origin is None:
                    found.append((start, end))
                else:
                    found.append((origin[start], origin[end - 1] + 1))
                start = norm.find(term, start + 1)
    if exact or prefixes:
        found.extend(
            (start, end)
            for term, start, end in _title_spans(title)
            if term in exact or (prefixes and term.startswith(prefixes))
        )
    ranges: list[list[int]] = []
    for start, end in sorted(found):
        if ranges and start <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], end)
        else:
            ranges.append([start, end])
    out: list[str] = []
    pos = 0
    for start, end in ranges:
        out.append(html.escape(title[pos:start]))
        out.append(f"<mark>{html.escape(title[start:end])}</mark>")
        pos = end
    out.append(html.escape(title[pos:]))
    return "".join(out)


def warm_up() -> None:
    """Load jieba's and pypinyin's dictionaries now instead of on the first request."""
    jieba.initialize()
    _syllables("荔枝")


# ------------------------------------------------------------------------ whoosh


def product_text(doc: SearchDoc) -> str:
    """The value indexed in the ``text`` field: the TEXT_SECTIONS joined by SECTION_SEP."""
    return SECTION_SEP.join(
        _CONTROL_RE.sub(" ", getattr(doc, name) or "") for name, *_options in TEXT_SECTIONS
    )


def _document_fields(doc: SearchDoc) -> dict[str, str]:
    fields = {"id": str(doc.id), "title": doc.title, "text": product_text(doc)}
    fields.update((name, str(getattr(doc, name))) for name in FILTER_FIELDS if getattr(doc, name))
    return fields


class ChineseTokenizer(Tokenizer):
    """Whoosh tokenizer for plain text: :func:`chinese_terms` and :func:`pinyin_terms`.

    Every occurrence is a token with boost 1; ``startchar``/``endchar`` are
    offsets into the value. Positions are token numbers (no phrase support).
    """

    def __init__(self, pinyin: bool = True, prefixes: bool = False) -> None:
        self.pinyin = pinyin
        self.prefixes = prefixes

    def _terms(self, value: str) -> Iterator[tuple[str, int, int, float]]:
        spans = term_spans(value, with_pinyin=self.pinyin, with_prefixes=self.prefixes)
        for term, start, end in spans:
            yield term, start, end, 1.0

    def __call__(
        self,
        value: str,
        positions: bool = False,
        chars: bool = False,
        keeporiginal: bool = False,
        removestops: bool = True,
        start_pos: int = 0,
        start_char: int = 0,
        tokenize: bool = True,
        mode: str = "",
        **kwargs: Any,
    ) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if tokenize:
            terms: Iterable[tuple[str, int, int, float]] = self._terms(value)
        else:
            terms = [(value, 0, len(value), 1.0)]
        for i, (term, start, end, boost) in enumerate(terms):
            token.text = term
            token.boost = boost
            token.stopped = False
            if keeporiginal:
                token.original = term
            if positions:
                token.pos = start_pos + i
            if chars:
                token.startchar = start_char + start
                token.endchar = start_char + end
            yield token


class ProductTextTokenizer(ChineseTokenizer):
    """Tokenizer for :func:`product_text` values.

    Each distinct term of each section is emitted once, with the section's
    weight as its boost, so the indexed weight of a term is the sum of the
    weights of the sections containing it.
    """

    def _terms(self, value: str) -> Iterator[tuple[str, int, int, float]]:
        base = 0
        for (name, weight, with_pinyin, with_prefixes), section in zip(
            TEXT_SECTIONS, value.split(SECTION_SEP), strict=False
        ):
            if name in SHARED_SECTIONS:
                spans: Iterable[Span] = _distinct_spans(section, with_pinyin, with_prefixes)
            else:
                spans = _first_of_each(
                    term_spans(section, with_pinyin=with_pinyin, with_prefixes=with_prefixes)
                )
            for term, start, end in spans:
                yield term, base + start, base + end, weight
            base += len(section) + len(SECTION_SEP)


#: Sections that many products share word for word (all products of a cooperative
#: carry its name): their analysis is cached, which matters when indexing in bulk.
SHARED_SECTIONS = frozenset({"gi_name", "cooperative"})


def _first_of_each(spans: Iterable[Span]) -> list[Span]:
    """Each term once, at its first position."""
    seen: set[str] = set()
    first: list[Span] = []
    for span in spans:
        if span[0] not in seen:
            seen.add(span[0])
            first.append(span)
    return first


@functools.lru_cache(maxsize=4096)
def _distinct_spans(section: str, with_pinyin: bool, with_prefixes: bool) -> tuple[Span, ...]:
    """:func:`_first_of_each` of the section's spans, cached (see SHARED_SECTIONS)."""
    return tuple(
        _first_of_each(term_spans(section, with_pinyin=with_pinyin, with_prefixes=with_prefixes))
    )


def chinese_analyzer(*, pinyin: bool = True, prefixes: bool = False) -> ChineseTokenizer:
    """Analyzer for plain Chinese/pinyin text (a tokenizer is a complete analyzer)."""
    return ChineseTokenizer(pinyin=pinyin, prefixes=prefixes)


def build_schema() -> Schema:
    """``text`` holds all searchable parts, weighted; only ``id`` and ``title`` are stored.

    Documents that are not on sale are not indexed at all, so there is no
    status field to filter on.
    """
    return Schema(
        id=ID(stored=True, unique=True),
        title=STORED,
        # Frequency postings carry the summed section weights (scoring uses
        # only those). Marking the field unscorable would save the lengths
        # column but makes whoosh 2.7 stat a file for every posting it writes.
        text=TEXT(analyzer=ProductTextTokenizer(), phrase=False),
        category=ID,
        city_code=ID,
        county_code=ID,
        cooperative_id=ID,
    )


# Errors from whoosh or the file system meaning the index can't be used.
_INDEX_ERRORS = (
    whoosh_index.IndexError,
    OSError,
    EOFError,
    struct.error,
    zlib.error,
    pickle.UnpicklingError,
    ValueError,
    KeyError,
)


#: Filter docsets cached per searcher (rebuilt when the index changes): at most
#: this many document numbers in all, about 60 bytes each.
MAX_CACHED_FILTER_DOCS = 500_000
#: A term whose postings outnumber the candidate documents by this factor is
#: looked up by skipping along its postings instead of reading all of them.
SPARSE_RATIO = 4


class _Reader:
    """A searcher plus the docsets of the filter combinations used with it."""

    def __init__(self, searcher: Any) -> None:
        self.searcher = searcher
        self._allowed: dict[tuple[tuple[str, str], ...], set[int]] = {}
        self._cached_docs = 0

    def _docs(self, fieldname: str, text: str) -> Iterator[int]:
        return self.searcher.docs_for_query(wq.Term(fieldname, text))

    def allowed(self, filters: dict[str, str]) -> set[int] | None:
        """Document numbers passing all ``filters`` (None when there are none)."""
        if not filters:
            return None
        key = tuple(sorted(filters.items()))
        docs = self._allowed.get(key)
        if docs is None:
            docs = set(self._docs(*key[0]))
            for fieldname, text in key[1:]:
                docs.intersection_update(self._docs(fieldname, text))
            if self._cached_docs + len(docs) > MAX_CACHED_FILTER_DOCS:
                self._allowed.clear()
                self._cached_docs = 0
            self._allowed[key] = docs
            self._cached_docs += len(docs)
        return docs

    def df(self, term: str) -> int:
        return self.searcher.doc_frequency("text", term)

    def count(self, term: str, allowed: set[int] | None) -> int:
        """Exact number of allowed documents having ``term``.

        From the document frequency when nothing is filtered or deleted;
        otherwise by intersecting docsets in C (whoosh's own count after a
        pruned top-N search re-reads every posting through Python generators).
        """
        if allowed is None:
            if not self.searcher.reader().has_deletions():
                return self.df(term)
            return len(set(self._docs("text", term)))
        if len(allowed) * SPARSE_RATIO < self.df(term):
            return len(self.weights(term, among=allowed))
        return len(allowed.intersection(self._docs("text", term)))

    def weights(self, term: str, among: Iterable[int] | None = None) -> dict[int, float]:
        """Document number -> weight of ``term`` for every document having it.

        With ``among``, only those documents are looked up, skipping along the
        postings instead of reading them all. Deleted documents never appear.
        """
        found: dict[int, float] = {}
        wanted = None if among is None else sorted(among)
        for sub, offset in self.searcher.leaf_searchers():
            try:
                matcher = sub.postings("text", term)
            except TermNotFound:
                continue
            if wanted is None:
                is_active, doc, weight, advance = (
                    matcher.is_active,
                    matcher.id,
                    matcher.weight,
                    matcher.next,
                )
                while is_active():
                    found[offset + doc()] = weight()
                    advance()
                continue
            end = offset + sub.doc_count_all()
            for docnum in wanted[
                bisect.bisect_left(wanted, offset) : bisect.bisect_left(wanted, end)
            ]:
                matcher.skip_to(docnum - offset)
                if not matcher.is_active():
                    break
                if matcher.id() == docnum - offset:
                    found[docnum] = matcher.weight()
        return found

    def scores(self, parsed: ParsedQuery, allowed: set[int] | None) -> dict[int, float]:
        """Document number -> score for every allowed document matching all clauses.

        Term at a time, rarest first, each later term read in full or probed
        for the remaining candidates, whichever touches fewer postings. (Not
        whoosh's intersection matcher: walking it in Python is slower, and its
        block-quality pruning drops documents that belong in the top N.)
        """
        terms = sorted({c.term for c in parsed.clauses}, key=self.df)
        scores: dict[int, float] | None = None
        for term in terms:
            found = self.lookup(term, allowed if scores is None else scores.keys())
            if scores is None:
                scores = (
                    found if allowed is None else {d: w for d, w in found.items() if d in allowed}
                )
            else:
                scores = {d: w + found[d] for d, w in scores.items() if d in found}
            if not scores:
                return {}
        if scores is None:
            return {}
        for term in parsed.boost_terms:
            for docnum, weight in self.lookup(term, scores.keys()).items():
                if docnum in scores:
                    scores[docnum] += weight
        return scores

    def lookup(self, term: str, candidates: Collection[int] | None) -> dict[int, float]:
        """Weights of ``term``, at least for all ``candidates`` having it (all if None)."""
        if candidates is not None and len(candidates) * SPARSE_RATIO < self.df(term):
            return self.weights(term, among=candidates)
        return self.weights(term)


class WhooshIndex:
    """A product index in a directory; many readers, one writer at a time.

    Readers never block. Writers take whoosh's file lock and give up with
    :class:`SearchIndexLockedError` after ``lock_timeout`` seconds. Searchers
    are cached per process and thread and refreshed when a writer commits.
    """

    def __init__(self, path: Path, *, lock_timeout: float = 10.0, limitmb: int = 128) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.limitmb = limitmb
        self._schema = build_schema()
        self._ix: whoosh_index.FileIndex | None = None
        self._readers: dict[tuple[int, int], _Reader] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"WhooshIndex({str(self.path)!r})"

    # ---------------------------------------------------------------- lifecycle

    def exists(self) -> bool:
        """Whether an index was created at ``path`` (its contents are not checked)."""
        return self.path.is_dir() and any(self.path.glob(f"_{INDEX_NAME}_*.toc"))

    def _locked(self) -> SearchIndexLockedError:
        return SearchIndexLockedError(
            f"Could not lock the search index at {self.path} within {self.lock_timeout} seconds"
        )

    def _reset(self, *, only_if_missing: bool) -> bool:
        """Write an empty index as the next generation, holding the write lock.

        A new generation (rather than whoosh's ``create_in``, which restarts at
        0) keeps cached searchers elsewhere from mistaking it for their own.
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            storage = FileStorage(str(self.path))
            lock = storage.lock(f"{INDEX_NAME}_WRITELOCK")
            if not try_for(lock.acquire, timeout=self.lock_timeout, delay=0.05):
                raise self._locked()
            try:
                if only_if_missing and self.exists():
                    return False
                generation = whoosh_index.TOC._latest_generation(storage, INDEX_NAME) + 1
                whoosh_index.TOC(self._schema, [], generation).write(storage, INDEX_NAME)
                whoosh_index.clean_files(storage, INDEX_NAME, generation, [])
            finally:
                lock.release()
        except OSError as exc:
            raise SearchIndexError(f"Could not create the search index at {self.path}") from exc
        return True

    def create(self) -> None:
        """Create an empty index unless one exists (safe to call concurrently)."""
        if not self.exists() and self._reset(only_if_missing=True):
            log.info("Created search index %s at %s", INDEX_NAME, self.path)

    def clear(self) -> None:
        """Remove every document; also replaces a missing or corrupt index by an empty one."""
        self._reset(only_if_missing=False)
        log.info("Cleared search index %s at %s", INDEX_NAME, self.path)

    def close(self) -> None:
        """Close cached searchers (they are reopened by the next search)."""
        with self._guard:
            readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            reader.searcher.close()

    def __enter__(self) -> WhooshIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> whoosh_index.FileIndex:
        if self._ix is None:
            if not self.exists():
                raise SearchIndexError(f"No search index {INDEX_NAME} at {self.path}")
            try:
                # Passing the schema skips unpickling the stored one.
                self._ix = whoosh_index.open_dir(
                    str(self.path), indexname=INDEX_NAME, schema=self._schema
                )
            except _INDEX_ERRORS as exc:
                raise SearchIndexError(f"Could not open the search index at {self.path}") from exc
        return self._ix

    # ------------------------------------------------------------------ writing

    def _write(
        self, apply: Callable[[Any], None], *, procs: int = 1, **commit_options: Any
    ) -> None:
        ix = self._open()
        options: dict[str, Any] = {"timeout": self.lock_timeout, "limitmb": self.limitmb}
        if procs > 1:
            # Sub-processes analyse and write one segment each; merging those
            # segments would cost as much again in the parent, so they are kept.
            options.update(procs=procs, multisegment=True, batchsize=256)
        try:
            writer = ix.writer(**options)
        except whoosh_index.LockError as exc:
            raise self._locked() from exc
        except _INDEX_ERRORS as exc:
            raise SearchIndexError(f"Could not open the search index at {self.path}") from exc
        try:
            apply(writer)
        except BaseException:
            writer.cancel()
            raise
        try:
            writer.commit(**commit_options)
        except _INDEX_ERRORS as exc:
            raise SearchIndexError(f"Could not write the search index at {self.path}") from exc

    def upsert(self, docs: Iterable[SearchDoc]) -> int:
        """Add or replace documents in one commit; returns how many are now searchable.

        Documents whose status is not ``on_sale`` are removed from the index
        instead. When an id occurs more than once in ``docs`` the last one wins.
        """
        batch = {doc.id: doc for doc in docs}
        indexed = sum(doc.status == ON_SALE for doc in batch.values())

        def apply(writer: Any) -> None:
            for doc in batch.values():
                if doc.status != ON_SALE:
                    writer.delete_by_term("id", str(doc.id))
                    continue
                writer.update_document(**_document_fields(doc))

        if batch:
            self._write(apply)
        return indexed

    def rebuild(self, docs: Iterable[SearchDoc], *, procs: int = 1) -> int:
        """Replace the whole index by ``docs`` in one commit; returns how many are searchable.

        Readers keep seeing the old contents until the commit, and the result is
        a single segment (fast to search), or with ``procs`` > 1 one segment per
        process, built in parallel (whoosh's multiprocessing writer; it forks, so
        not from a daemonic process such as a Celery prefork worker). The write
        lock is held throughout, so concurrent upserts time out with
        :class:`SearchIndexLockedError`. Ids must be unique; repeats after the
        first are skipped and logged. A missing or corrupt index is replaced.
        """
        try:
            self._open()
        except SearchIndexError:
            self.clear()
        seen: set[int] = set()
        indexed = skipped = 0

        def apply(writer: Any) -> None:
            nonlocal indexed, skipped
            for doc in docs:
                if doc.id in seen:
                    skipped += 1
                    continue
                seen.add(doc.id)
                if doc.status == ON_SALE:
                    writer.add_document(**_document_fields(doc))
                    indexed += 1

        self._write(apply, procs=procs, mergetype=writing.CLEAR)
        if skipped:
            log.warning("Skipped %d repeated ids while rebuilding %s", skipped, self.path)
        return indexed

    def delete(self, ids: Iterable[int]) -> None:
        """Remove documents by id; ids that are not indexed are ignored."""
        unique = sorted({int(i) for i in ids})

        def apply(writer: Any) -> None:
            for doc_id in unique:
                writer.delete_by_term("id", str(doc_id))

        if unique:
            self._write(apply)

    def optimize(self) -> None:
        """Merge all segments into one, purging deleted documents.

        Searches get faster, but whoosh needs minutes for 100,000 products:
        run it off-peak (or use :meth:`rebuild`, which writes one segment).
        """
        self._write(lambda writer: None, optimize=True)

    # ---------------------------------------------------------------- searching

    def _reader(self) -> _Reader:
        """This thread's searcher, reopened when a writer has committed since.

        Not ``Searcher.refresh()``: whoosh-reloaded 2.7.5 merges the old
        reader's segments into the new reader there, which resurrects deleted
        and replaced documents.
        """
        key = (os.getpid(), threading.get_ident())
        reader = self._readers.get(key)
        if reader is not None and not reader.searcher.up_to_date():
            reader.searcher.close()
            reader = None
        if reader is None:
            reader = _Reader(self._open().searcher(weighting=scoring.Frequency()))
            with self._guard:
                self._readers[key] = reader
            self._close_orphans()
        return reader

    def _close_orphans(self) -> None:
        """Close the searchers of threads that have ended (or of a parent process).

        A server that starts a thread per request would otherwise keep one open
        searcher, and its files, per thread it ever ran.
        """
        pid = os.getpid()
        alive = {thread.ident for thread in threading.enumerate()}
        with self._guard:
            orphans = [key for key in self._readers if key[0] != pid or key[1] not in alive]
            readers = [self._readers.pop(key) for key in orphans]
        for reader in readers:
            with contextlib.suppress(Exception):
                reader.searcher.close()

    def doc_count(self) -> int:
        """Searchable documents in the index; raises :class:`SearchIndexError` if unusable."""
        try:
            return self._reader().searcher.doc_count()
        except _INDEX_ERRORS as exc:
            self._forget_reader()
            raise SearchIndexError(f"Could not read the index at {self.path}") from exc

    def _forget_reader(self) -> None:
        with self._guard:
            reader = self._readers.pop((os.getpid(), threading.get_ident()), None)
            self._ix = None
        if reader is not None:
            with contextlib.suppress(Exception):
                reader.searcher.close()

    def search(
        self,
        q: str,
        *,
        category: str | None = None,
        city_code: str | None = None,
        county_code: str | None = None,
        cooperative_id: int | None = None,
        page: int = 1,
        per_page: int = 20,
    ) -> SearchResult:
        """One page of on-sale products matching ``q``, best first.

        Ties (frequent: see TEXT_SECTIONS) keep index order. An empty or
        punctuation-only query returns an empty result without opening the
        index. Raises ``ValueError`` for ``page < 1``, ``per_page < 1`` or
        ``page * per_page > MAX_RESULT_WINDOW``, and :class:`SearchIndexError`
        when the index is missing or unreadable.
        """
        if page < 1 or per_page < 1:
            raise ValueError("page and per_page must be at least 1")
        if page * per_page > MAX_RESULT_WINDOW:
            raise ValueError(f"page * per_page must not exceed {MAX_RESULT_WINDOW}")
        parsed = query_terms(q)
        if not parsed:
            return SearchResult(ids=[], total=0, highlights={})
        filters = {
            name: value
            for name, value in (
                ("category", category),
                ("city_code", city_code),
                ("county_code", county_code),
                ("cooperative_id", None if cooperative_id is None else str(cooperative_id)),
            )
            if value
        }
        offset = (page - 1) * per_page
        limit = offset + per_page
        titles: dict[int, str] = {}
        try:
            reader = self._reader()
            searcher = reader.searcher
            allowed = reader.allowed(filters)
            if allowed is not None and not allowed:
                return SearchResult(ids=[], total=0, highlights={})
            if len(parsed.clauses) == 1 and not parsed.boost_terms:
                # One posting list: whoosh's top-N search skips blocks that
                # cannot reach the top N, so the total is counted separately
                # (unless the collector never filled up, and so never skipped).
                term = parsed.clauses[0].term
                results = searcher.search(wq.Term("text", term), limit=limit, filter=allowed)
                top = [results.docnum(rank) for rank in range(results.scored_length())]
                total = len(top) if len(top) < limit else reader.count(term, allowed)
            else:
                scores = reader.scores(parsed, allowed)
                total = len(scores)
                # Best first; equal scores in index order, as whoosh ranks them.
                ranked = heapq.nlargest(limit, scores.items(), key=lambda s: (s[1], -s[0]))
                top = [docnum for docnum, _score in ranked]
            for docnum in top[offset:]:
                stored = searcher.stored_fields(docnum)
                titles[int(stored["id"])] = stored.get("title", "")
        except _INDEX_ERRORS as exc:
            self._forget_reader()
            raise SearchIndexError(f"Could not search the index at {self.path}") from exc
        return SearchResult(
            ids=list(titles),
            total=total,
            highlights={doc_id: highlight(title, parsed) for doc_id, title in titles.items()},
        )
