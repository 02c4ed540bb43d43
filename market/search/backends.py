"""The three ways to answer a product search, behind one small interface.

- :class:`WhooshBackend` -- the whoosh index on local disk (market.search_engine).
- :class:`PostgresBackend` -- PostgreSQL full text: a weighted ``tsvector`` of the same
  terms per public product (table ``market_search_documents``, GIN index), so every
  web node shares one index.
- :class:`LikeBackend` -- plain SQL ``LIKE`` over the products; no index to keep, no
  pinyin, slower. The fallback when an index can't answer.

Every backend gets the same query (``market.search_engine.query_terms``: a CJK run
becomes its bigrams, all required; ASCII words match pinyin and words, by prefix from
three letters) and ranks the same way: a document's score is the sum, over the query's
terms, of the weights of the sections containing the term (title 5, GI name 2,
cooperative 1.5, description 1; see ``search_engine.TEXT_SECTIONS``), so a title match
always ranks first. Ties are broken differently (whoosh: index order; PostgreSQL:
newest first; LIKE ranks only title matches first, then newest first).

Backends return product ids; :mod:`market.search.services` loads the products, keeps
only those the public may see and highlights their titles.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Protocol

from sqlalchemy import and_, case, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from market.search.models import SearchDocument
from market.search_engine import (
    ON_SALE,
    SHARED_SECTIONS,
    TEXT_SECTIONS,
    ParsedQuery,
    SearchDoc,
    SearchIndexError,
    WhooshIndex,
    term_spans,
)

#: Rows per INSERT statement when the PostgreSQL table is written in bulk.
WRITE_BATCH = 1000


@dataclass(frozen=True)
class Filters:
    """Exact-match filters; None means any. ``city_code`` is a prefecture-level code."""

    category: str | None = None
    city_code: str | None = None
    county_code: str | None = None
    cooperative_id: int | None = None


@dataclass
class Hits:
    """One page of product ids, best first, and how many match in all."""

    ids: list[int]
    total: int


class Backend(Protocol):
    name: str

    def search(
        self,
        session: Session,
        q: str,
        parsed: ParsedQuery,
        filters: Filters,
        page: int,
        per_page: int,
    ) -> Hits:
        """One page of matching public products; raises SearchIndexError when it can't."""
        ...

    def upsert(self, session: Session, docs: Sequence[SearchDoc]) -> int:
        """Add or replace ``docs`` (removing those whose status is not on sale)."""
        ...

    def delete(self, session: Session, product_ids: Iterable[int]) -> None: ...

    def rebuild(self, session: Session, docs: Iterable[SearchDoc], procs: int = 1) -> int:
        """Replace everything by ``docs``; returns how many are searchable. ``procs``:
        processes that may build it in parallel (where the backend can)."""
        ...

    def clear(self, session: Session) -> None: ...

    def count(self, session: Session) -> int:
        """Documents in the index (raises SearchIndexError when it is unusable)."""
        ...


# ------------------------------------------------------------------------------ whoosh


class WhooshBackend:
    """The whoosh index of this node (``SEARCH_INDEX_DIR``); the session is not used."""

    name = "whoosh"

    def __init__(self, index: WhooshIndex) -> None:
        self.index = index

    def search(self, session, q, parsed, filters, page, per_page) -> Hits:
        result = self.index.search(
            q,
            category=filters.category,
            city_code=filters.city_code,
            county_code=filters.county_code,
            cooperative_id=filters.cooperative_id,
            page=page,
            per_page=per_page,
        )
        return Hits(result.ids, result.total)

    def upsert(self, session, docs) -> int:
        return self.index.upsert(docs)

    def delete(self, session, product_ids) -> None:
        self.index.delete(product_ids)

    def rebuild(self, session, docs, procs=1) -> int:
        return self.index.rebuild(docs, procs=procs)

    def clear(self, session) -> None:
        self.index.clear()

    def count(self, session) -> int:
        return self.index.doc_count()


# -------------------------------------------------------------------------- PostgreSQL

#: tsvector weight letter of each TEXT_SECTIONS entry, in order.
SECTION_LETTERS = "ABCD"
#: Section weights doubled, so that scores are small integers (whoosh: 5, 2, 1.5, 1).
SECTION_POINTS = tuple(round(weight * 2) for _name, weight, _p, _x in TEXT_SECTIONS)


def _lexeme(term: str) -> str:
    """A tsvector/tsquery lexeme literal. Terms are CJK characters and [a-z0-9] only;
    quoting anyway keeps a future change of the term rules from becoming an injection."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def term_vector(doc: SearchDoc) -> str:
    """``doc``'s terms as a tsvector literal, each section's terms at its own position
    with its weight letter: ``'荔枝':1A,4 'lizhi':1A 'lz':1A 'liz':1A ...`` (D is the
    default weight and is not printed by PostgreSQL).

    The terms are exactly those the whoosh index stores for the section -- Chinese
    unigrams, bigrams and long words, ASCII words and, where the section has them,
    full pinyin, initials and the prefixes of pinyin and ASCII words -- so a query
    term means the same in both (a partly typed ``lizh`` is a plain term lookup, not
    a ``:*`` prefix scan over every lexeme).
    """
    positions: dict[str, list[str]] = {}
    for position, (letter, (name, _weight, with_pinyin, with_prefixes)) in enumerate(
        zip(SECTION_LETTERS, TEXT_SECTIONS, strict=True), start=1
    ):
        value = getattr(doc, name) or ""
        if not value:
            continue
        analyse = _shared_terms if name in SHARED_SECTIONS else section_terms
        for term in analyse(value, with_pinyin, with_prefixes):
            positions.setdefault(term, []).append(f"{position}{letter}")
    return " ".join(f"{_lexeme(term)}:{','.join(at)}" for term, at in positions.items())


def section_terms(value: str, with_pinyin: bool, with_prefixes: bool = False) -> tuple[str, ...]:
    """The distinct terms of one section, in order (as the whoosh index stores them)."""
    spans = term_spans(value, with_pinyin=with_pinyin, with_prefixes=with_prefixes)
    return tuple(dict.fromkeys(term for term, _s, _e in spans))


@functools.lru_cache(maxsize=4096)
def _shared_terms(value: str, with_pinyin: bool, with_prefixes: bool = False) -> tuple[str, ...]:
    return section_terms(value, with_pinyin, with_prefixes)


def _row(doc: SearchDoc) -> dict:
    return {
        "product_id": doc.id,
        "terms": term_vector(doc),
        "category": doc.category,
        "city_code": doc.city_code,
        "county_code": doc.county_code,
        "cooperative_id": doc.cooperative_id or 0,
    }


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class PostgresBackend:
    """Full text in PostgreSQL: the ``market_search_documents`` table (GIN on ``terms``).

    Matching is ``terms @@ query`` on the GIN index; the score replays the whoosh
    scoring exactly, one weight-restricted tsquery per term and section
    (``'荔枝':A``), summed with the section weights, over the matching rows. That
    is work per matching row: a word found in a quarter of 100,000 products costs
    about a hundred milliseconds, where whoosh's top-N search skips most postings.
    """

    name = "postgres"

    def search(self, session, q, parsed, filters, page, per_page) -> Hits:
        # Prefixes are stored as terms (see term_vector): every clause is a plain term.
        terms = list(dict.fromkeys(c.term for c in parsed.clauses))
        params: dict[str, object] = {
            "match": " & ".join(_lexeme(term) for term in terms),
            "limit": per_page,
            "offset": (page - 1) * per_page,
        }
        parts = []
        for i, term in enumerate([*terms, *parsed.boost_terms]):
            for letter, points in zip(SECTION_LETTERS, SECTION_POINTS, strict=True):
                key = f"s{i}{letter}"
                params[key] = f"{_lexeme(term)}:{letter}"
                parts.append(
                    f"CASE WHEN d.terms @@ CAST(:{key} AS tsquery) THEN {points} ELSE 0 END"
                )
        where = ["d.terms @@ CAST(:match AS tsquery)"]
        for column in ("category", "city_code", "county_code", "cooperative_id"):
            value = getattr(filters, column)
            if value is not None and value != "":
                where.append(f"d.{column} = :{column}")
                params[column] = value
        # Every bound value is a parameter; the SQL text is built only from fixed names.
        # OFFSET 0 keeps the subquery from being flattened: the window then counts
        # narrow (id, score) rows instead of dragging every row's terms along.
        sql = (
            "SELECT product_id, count(*) OVER () AS total FROM ("  # noqa: S608
            f"SELECT d.product_id, {' + '.join(parts)} AS score "
            f"FROM market_search_documents AS d WHERE {' AND '.join(where)} OFFSET 0"
            ") AS hits ORDER BY score DESC, product_id DESC LIMIT :limit OFFSET :offset"
        )
        try:
            with session.begin_nested():  # a failed query must not spoil the transaction
                rows = session.execute(text(sql), params).all()
                total = rows[0].total if rows else self._count(session, where, params, page)
        except SQLAlchemyError as exc:
            raise SearchIndexError(f"PostgreSQL search failed: {exc.__class__.__name__}") from exc
        return Hits([row.product_id for row in rows], total)

    @staticmethod
    def _count(session: Session, where: list[str], params: dict, page: int) -> int:
        """The total when the page is past the last hit (the window count saw no rows)."""
        if page == 1:
            return 0
        sql = f"SELECT count(*) FROM market_search_documents AS d WHERE {' AND '.join(where)}"  # noqa: S608
        return session.execute(text(sql), params).scalar_one()

    def upsert(self, session, docs) -> int:
        batch = {doc.id: doc for doc in docs}
        gone = [doc_id for doc_id, doc in batch.items() if doc.status != ON_SALE]
        rows = [_row(doc) for doc in batch.values() if doc.status == ON_SALE]
        if gone:
            self.delete(session, gone)
        for chunk in _batches(rows, WRITE_BATCH):
            stmt = pg_insert(SearchDocument).values(chunk)
            stmt = stmt.on_conflict_do_update(
                index_elements=[SearchDocument.product_id],
                set_={
                    column: stmt.excluded[column]
                    for column in (
                        "terms",
                        "category",
                        "city_code",
                        "county_code",
                        "cooperative_id",
                    )
                },
            )
            session.execute(stmt)
        return len(rows)

    def delete(self, session, product_ids) -> None:
        ids = sorted(set(product_ids))
        for chunk in _batches(ids, WRITE_BATCH):
            session.execute(delete(SearchDocument).where(SearchDocument.product_id.in_(chunk)))

    def rebuild(self, session, docs, procs=1) -> int:
        """Delete and refill the table in the caller's transaction: searches see the old
        rows until it commits (no TRUNCATE, which would block them)."""
        session.execute(delete(SearchDocument))
        indexed = 0
        seen: set[int] = set()
        for chunk in _batches(docs, WRITE_BATCH):
            rows = []
            for doc in chunk:
                if doc.status == ON_SALE and doc.id not in seen:
                    seen.add(doc.id)
                    rows.append(_row(doc))
            if rows:
                session.execute(pg_insert(SearchDocument), rows)
                indexed += len(rows)
        return indexed

    def clear(self, session) -> None:
        session.execute(delete(SearchDocument))

    def count(self, session) -> int:
        try:
            with session.begin_nested():
                return session.scalar(select(func.count()).select_from(SearchDocument)) or 0
        except SQLAlchemyError as exc:
            raise SearchIndexError(f"PostgreSQL search table unusable: {exc}") from exc


# -------------------------------------------------------------------------------- LIKE


def _like_pattern(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class LikeBackend:
    """SQL LIKE over title, GI name, description and cooperative name; no index.

    Each query term (the same bigrams and words as the index gets) must occur in one
    of them; products with every term in the title come first, then newest first.
    Pinyin is not understood. Nothing to write, so updates are no-ops.
    """

    name = "like"

    def search(self, session, q, parsed, filters, page, per_page) -> Hits:
        from market.catalog.models import Category, Product
        from market.catalog.services import filter_places, public_query
        from market.cooperatives.models import Cooperative

        query = filter_places(public_query(), filters.city_code, filters.county_code)
        in_title = []
        for clause in parsed.clauses:
            pattern = _like_pattern(clause.term)
            in_title.append(Product.title.ilike(pattern, escape="\\"))
            query = query.where(
                or_(
                    Product.title.ilike(pattern, escape="\\"),
                    Product.gi_name.ilike(pattern, escape="\\"),
                    Product.description.ilike(pattern, escape="\\"),
                    Cooperative.name.ilike(pattern, escape="\\"),
                )
            )
        if filters.category:
            try:
                query = query.where(Product.category == Category(filters.category))
            except ValueError:
                return Hits([], 0)
        if filters.cooperative_id is not None:
            query = query.where(Product.cooperative_id == filters.cooperative_id)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        ids = session.scalars(
            query.with_only_columns(Product.id)
            .order_by(case((and_(*in_title), 0), else_=1), Product.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        return Hits(list(ids), total)

    def upsert(self, session, docs) -> int:
        return 0

    def delete(self, session, product_ids) -> None:
        return None

    def rebuild(self, session, docs, procs=1) -> int:
        return 0

    def clear(self, session) -> None:
        return None

    def count(self, session) -> int:
        return 0
