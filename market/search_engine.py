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

Both return terms ordered by position (then shorter span first, then
alphabetically), duplicates of the same term at the same position removed;
repeated occurrences at different positions are kept so term frequency means
something. Either list can be fed as-is to a PostgreSQL ``simple`` tsvector.

Queries (:func:`query_terms`): a CJK run of two or more characters becomes its
bigrams, all of which must match; a single CJK character matches its unigram;
an ASCII word matches pinyin terms and ASCII words, as a prefix when it has at
least ``PREFIX_MIN_CHARS`` characters and contains a letter (``lizh`` ->
``lizhi``). All clauses are ANDed. jieba words of three or more characters in
the query are optional terms that only raise the score.
"""

from __future__ import annotations

import contextlib
import html
import logging
import os
import pickle
import re
import struct
import threading
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
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
from whoosh.util.filelock import try_for

# jieba logs "Building prefix dict ..." at DEBUG to its own stderr handler.
jieba.setLogLevel(logging.WARNING)

log = logging.getLogger(__name__)

ON_SALE = "on_sale"

#: Bump when the schema or the term extraction changes: an index written with
#: another version is then reported as missing and has to be rebuilt.
INDEX_VERSION = 1
INDEX_NAME = f"products_v{INDEX_VERSION}"

#: Whole-run pinyin (``gualvlizhi``) is only indexed for runs up to this length.
MAX_RUN_PINYIN_CHARS = 12
#: ASCII query words at least this long (and containing a letter) match by prefix.
PREFIX_MIN_CHARS = 3
#: Queries are cut to this many characters and this many AND clauses.
MAX_QUERY_CHARS = 64
MAX_QUERY_CLAUSES = 16
#: ``page * per_page`` may not exceed this (deep paging costs like a full scan).
MAX_RESULT_WINDOW = 10_000

#: The searchable text of a product, in the order its parts are joined into the
#: ``text`` field: (SearchDoc attribute, weight, whether pinyin terms are indexed).
#: A document's score for a query term is the sum of the weights of the parts
#: containing it (repetitions and lengths do not count), summed over the query's
#: terms. The title weight exceeds all the others together, so a title match
#: always ranks first. Descriptions get no pinyin terms: they would multiply the
#: index size while pinyin queries are meant for names. Changing this table
#: requires bumping ``INDEX_VERSION``.
TEXT_SECTIONS: tuple[tuple[str, float, bool], ...] = (
    ("title", 5.0, True),
    ("gi_name", 2.0, True),
    ("cooperative", 1.5, True),
    ("description", 1.0, False),
)
SECTION_SEP = "\x1e"
FILTER_FIELDS = ("category", "city_code", "county_code")

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


def _normalize(text: str) -> tuple[str, list[int] | None]:
    """NFKC-normalise ``text`` (and map ü to v).

    Returns the normalised text and, when it differs in layout from the input,
    a list mapping each normalised character index to its original index.
    """
    if text.isascii() or (unicodedata.is_normalized("NFKC", text) and "ü" not in text):
        return text, None
    parts: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        norm = unicodedata.normalize("NFKC", ch).replace("ü", "v")
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


def _analyze(text: str, *, with_pinyin: bool) -> tuple[list[Span], list[Span]]:
    """Chinese/ASCII spans and pinyin spans of ``text``, positions in ``text``."""
    norm, origin = _normalize(text)
    chinese: set[Span] = set()
    pinyin: set[Span] = set()
    for match in _SEGMENT_RE.finditer(norm):
        base = match.start()
        run = match.group(1)
        if run is None:
            chinese.add((match.group(2).lower(), base, match.end()))
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
            pinyin.add(("".join(parts), base + s, base + e))
            if e - s >= 2:
                pinyin.add(("".join(p[0] for p in parts), base + s, base + e))

    def ordered(spans: set[Span]) -> list[Span]:
        if origin is not None:
            spans = {(t, origin[s], origin[e - 1] + 1) for t, s, e in spans}
        return sorted(spans, key=lambda sp: (sp[1], sp[2], sp[0]))

    return ordered(chinese), ordered(pinyin)


def term_spans(text: str, *, with_pinyin: bool = True) -> list[Span]:
    """All index terms of ``text`` with their (start, end) in ``text``."""
    chinese, pinyin = _analyze(text, with_pinyin=with_pinyin)
    return sorted(chinese + pinyin, key=lambda sp: (sp[1], sp[2], sp[0]))


def chinese_terms(text: str) -> list[str]:
    """CJK unigrams, bigrams and 3+ character jieba words, plus lowercased ASCII words."""
    return [term for term, _s, _e in _analyze(text, with_pinyin=False)[0]]


def pinyin_terms(text: str) -> list[str]:
    """Full pinyin and initials for the CJK spans of ``text`` (see module docstring)."""
    return [term for term, _s, _e in _analyze(text, with_pinyin=True)[1]]


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
    return ParsedQuery(tuple(clauses)[:MAX_QUERY_CLAUSES], tuple(boosts))


def highlight(title: str, parsed: ParsedQuery) -> str:
    """``title`` HTML-escaped, with the parts matching ``parsed`` in ``<mark>``."""
    exact = {c.term for c in parsed.clauses if not c.prefix} | set(parsed.boost_terms)
    prefixes = tuple(c.term for c in parsed.clauses if c.prefix)
    ranges: list[list[int]] = []
    for term, start, end in term_spans(title):
        if term in exact or (prefixes and term.startswith(prefixes)):
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
        _CONTROL_RE.sub(" ", getattr(doc, name) or "") for name, _w, _p in TEXT_SECTIONS
    )


class ChineseTokenizer(Tokenizer):
    """Whoosh tokenizer for plain text: :func:`chinese_terms` and :func:`pinyin_terms`.

    Every occurrence is a token with boost 1; ``startchar``/``endchar`` are
    offsets into the value. Positions are token numbers (no phrase support).
    """

    def __init__(self, pinyin: bool = True) -> None:
        self.pinyin = pinyin

    def _terms(self, value: str) -> Iterator[tuple[str, int, int, float]]:
        for term, start, end in term_spans(value, with_pinyin=self.pinyin):
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

    def __init__(self) -> None:
        super().__init__(pinyin=True)

    def _terms(self, value: str) -> Iterator[tuple[str, int, int, float]]:
        base = 0
        for (_name, weight, with_pinyin), section in zip(
            TEXT_SECTIONS, value.split(SECTION_SEP), strict=False
        ):
            seen: set[str] = set()
            for term, start, end in term_spans(section, with_pinyin=with_pinyin):
                if term not in seen:
                    seen.add(term)
                    yield term, base + start, base + end, weight
            base += len(section) + len(SECTION_SEP)


def chinese_analyzer(*, pinyin: bool = True) -> ChineseTokenizer:
    """Analyzer for plain Chinese/pinyin text (a tokenizer is a complete analyzer)."""
    return ChineseTokenizer(pinyin=pinyin)


def build_schema() -> Schema:
    """``text`` holds all searchable parts, weighted; only ``id`` and ``title`` are stored.

    Documents that are not on sale are not indexed at all, so there is no
    status field to filter on.
    """
    return Schema(
        id=ID(stored=True, unique=True),
        title=STORED,
        text=TEXT(analyzer=ProductTextTokenizer(), phrase=False),
        category=ID,
        city_code=ID,
        county_code=ID,
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


def build_query(parsed: ParsedQuery, filters: dict[str, str] | None = None) -> wq.Query:
    """The whoosh query for ``parsed`` restricted by exact-match ``filters``."""
    required: list[wq.Query] = [
        wq.Prefix("text", c.term) if c.prefix else wq.Term("text", c.term) for c in parsed.clauses
    ]
    required += [wq.Term(name, value) for name, value in (filters or {}).items()]
    query: wq.Query = required[0] if len(required) == 1 else wq.And(required)
    if parsed.boost_terms:
        query = wq.AndMaybe(query, wq.Or([wq.Term("text", t) for t in parsed.boost_terms]))
    return query


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
        self._searchers: dict[tuple[int, int], Any] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"WhooshIndex({str(self.path)!r})"

    # ---------------------------------------------------------------- lifecycle

    def exists(self) -> bool:
        return whoosh_index.exists_in(str(self.path), indexname=INDEX_NAME)

    def _locked(self) -> SearchIndexLockedError:
        return SearchIndexLockedError(
            f"Could not lock the search index at {self.path} within {self.lock_timeout} seconds"
        )

    def create(self) -> None:
        """Create an empty index unless one exists (safe to call concurrently)."""
        if self.exists():
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            storage = FileStorage(str(self.path))
            lock = storage.lock(f"{INDEX_NAME}_WRITELOCK")
            if not try_for(lock.acquire, timeout=self.lock_timeout, delay=0.05):
                raise self._locked()
            try:
                if self.exists():
                    return
                storage.create_index(self._schema, indexname=INDEX_NAME)
            finally:
                lock.release()
        except OSError as exc:
            raise SearchIndexError(f"Could not create the search index at {self.path}") from exc
        log.info("Created search index %s at %s", INDEX_NAME, self.path)

    def close(self) -> None:
        """Close cached searchers (they are reopened by the next search)."""
        with self._guard:
            searchers, self._searchers = list(self._searchers.values()), {}
        for searcher in searchers:
            searcher.close()

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

    def _write(self, apply: Callable[[Any], None], *, clear: bool = False) -> None:
        ix = self._open()
        try:
            writer = ix.writer(timeout=self.lock_timeout, limitmb=self.limitmb)
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
            writer.commit(mergetype=writing.CLEAR if clear else writing.MERGE_SMALL)
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
                filters = {name: getattr(doc, name) for name in FILTER_FIELDS}
                writer.update_document(
                    id=str(doc.id),
                    title=doc.title,
                    text=product_text(doc),
                    **{name: value for name, value in filters.items() if value},
                )

        if batch:
            self._write(apply)
        return indexed

    def delete(self, ids: Iterable[int]) -> None:
        """Remove documents by id; ids that are not indexed are ignored."""
        unique = sorted({int(i) for i in ids})

        def apply(writer: Any) -> None:
            for doc_id in unique:
                writer.delete_by_term("id", str(doc_id))

        if unique:
            self._write(apply)

    def clear(self) -> None:
        """Remove every document, creating the index first if it is missing."""
        self.create()
        self._write(lambda writer: None, clear=True)

    def optimize(self) -> None:
        """Merge all segments into one (after a full rebuild; makes searches faster)."""
        ix = self._open()
        try:
            ix.optimize()
        except whoosh_index.LockError as exc:
            raise self._locked() from exc
        except _INDEX_ERRORS as exc:
            raise SearchIndexError(f"Could not optimize the search index at {self.path}") from exc

    # ---------------------------------------------------------------- searching

    def _searcher(self) -> Any:
        key = (os.getpid(), threading.get_ident())
        searcher = self._searchers.get(key)
        if searcher is None:
            searcher = self._open().searcher(weighting=scoring.Frequency())
        else:
            searcher = searcher.refresh()
        with self._guard:
            self._searchers[key] = searcher
        return searcher

    def _forget_searcher(self) -> None:
        with self._guard:
            searcher = self._searchers.pop((os.getpid(), threading.get_ident()), None)
            self._ix = None
        if searcher is not None:
            with contextlib.suppress(Exception):
                searcher.close()

    def search(
        self,
        q: str,
        *,
        category: str | None = None,
        city_code: str | None = None,
        county_code: str | None = None,
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
            )
            if value
        }
        query = build_query(parsed, filters)
        offset = (page - 1) * per_page
        ids: list[int] = []
        highlights: dict[int, str] = {}
        try:
            searcher = self._searcher()
            results = searcher.search(query, limit=offset + per_page)
            total = len(results)
            for rank in range(offset, min(offset + per_page, results.scored_length())):
                stored = searcher.stored_fields(results.docnum(rank))
                doc_id = int(stored["id"])
                ids.append(doc_id)
                highlights[doc_id] = highlight(stored.get("title", ""), parsed)
        except _INDEX_ERRORS as exc:
            self._forget_searcher()
            raise SearchIndexError(f"Could not search the index at {self.path}") from exc
        return SearchResult(ids=ids, total=total, highlights=highlights)
