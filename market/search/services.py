"""Product search: which backend answers, what a product's search document is, searching
with the LIKE fallback, and writing products into the index.

Like every service, nothing here commits: the indexing task and the CLI do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from market.catalog.models import PUBLIC_STATUSES, Category, Product
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.search.backends import (
    Backend,
    Filters,
    Hits,
    LikeBackend,
    PostgresBackend,
    WhooshBackend,
)
from market.search_engine import (
    MAX_RESULT_WINDOW,
    ON_SALE,
    SearchDoc,
    SearchIndexError,
    WhooshIndex,
    highlight,
    query_terms,
)

log = logging.getLogger(__name__)

BACKENDS = ("auto", "whoosh", "postgres", "like")
#: Status given to the search document of a product the public may not see: the index
#: drops it (only ``ON_SALE`` documents are kept; sold-out products are public too and
#: are indexed as ``ON_SALE``).
NOT_PUBLIC = "not_public"
#: Products read per query while rebuilding.
REBUILD_BATCH = 1000
#: A failing backend is reported at WARNING at most this often per process (the
#: searches in between say so at DEBUG), so a broken index can't flood the logs.
WARNING_INTERVAL_S = 60.0

_LIKE = LikeBackend()
_POSTGRES = PostgresBackend()
_warned_at: dict[str, float] = {}
_warned_lock = threading.Lock()


class SearchConfigError(RuntimeError):
    """SEARCH_BACKEND names a backend this database can't have."""


# ----------------------------------------------------------------------------- backends


def backend_name(app: Flask | None = None) -> str:
    """The configured backend, with "auto" resolved by the database's dialect."""
    app = app or current_app
    name = str(app.config.get("SEARCH_BACKEND") or "auto").strip().lower()
    if name not in BACKENDS:
        raise SearchConfigError(f"SEARCH_BACKEND must be one of {', '.join(BACKENDS)}: {name!r}")
    dialect = _dialect(app)
    if name == "auto":
        return "postgres" if dialect == "postgresql" else "whoosh"
    if name == "postgres" and dialect != "postgresql":
        raise SearchConfigError(f"SEARCH_BACKEND=postgres needs PostgreSQL, not {dialect}")
    return name


def _dialect(app: Flask) -> str:
    return app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0].split("+", 1)[0]


def whoosh_index(app: Flask | None = None) -> WhooshIndex:
    """This process's whoosh index object for the app (one per index folder)."""
    app = app or current_app
    path = Path(app.config["SEARCH_INDEX_DIR"])
    cache: dict[Path, WhooshIndex] = app.extensions.setdefault("search_whoosh", {})
    index = cache.get(path)
    if index is None:
        index = cache.setdefault(
            path, WhooshIndex(path, lock_timeout=float(app.config["SEARCH_LOCK_TIMEOUT"]))
        )
    return index


def backend(name: str | None = None, app: Flask | None = None) -> Backend:
    """The backend called ``name`` (default: the configured one)."""
    app = app or current_app
    name = name or backend_name(app)
    if name == "whoosh":
        return WhooshBackend(whoosh_index(app))
    if name == "postgres":
        return _POSTGRES
    if name == "like":
        return _LIKE
    raise SearchConfigError(f"unknown search backend {name!r}")


# ---------------------------------------------------------------------------- documents


def is_public(product: Product) -> bool:
    """What the catalog's public_query() shows: on sale or sold out, approved seller."""
    return (
        product.status in PUBLIC_STATUSES
        and product.cooperative.status is CooperativeStatus.APPROVED
    )


def place_codes(origin_code: str) -> tuple[str, str]:
    """(city code, county code) of a GB/T 2260 origin, as the catalog's place filters
    read it (a city matches on the first four digits; a county exactly)."""
    code = origin_code or ""
    if len(code) != 6:
        return "", ""
    return code[:4] + "00", code if code[4:] != "00" else ""


def product_doc(product: Product) -> SearchDoc:
    """The search document of ``product`` (its cooperative must be loadable)."""
    coop = product.cooperative
    city_code, county_code = place_codes(product.origin_code or coop.division_code)
    return SearchDoc(
        id=product.id,
        title=product.title,
        gi_name=product.gi_name if product.is_gi else "",
        cooperative=coop.name,
        description=product.description or "",
        category=product.category.value,
        city_code=city_code,
        county_code=county_code,
        status=ON_SALE if is_public(product) else NOT_PUBLIC,
        cooperative_id=product.cooperative_id,
    )


def _with_cooperative(query):
    return query.join(Cooperative, Cooperative.id == Product.cooperative_id).options(
        contains_eager(Product.cooperative)
    )


def public_docs(session: Session, batch_size: int = REBUILD_BATCH) -> Iterator[SearchDoc]:
    """Search documents of every public product, by id, read ``batch_size`` at a time."""
    last_id = 0
    while True:
        products = session.scalars(
            _with_cooperative(select(Product))
            .where(
                Product.id > last_id,
                Product.status.in_(PUBLIC_STATUSES),
                Cooperative.status == CooperativeStatus.APPROVED,
            )
            .order_by(Product.id)
            .limit(batch_size)
        ).all()
        if not products:
            return
        for product in products:
            yield product_doc(product)
        last_id = products[-1].id
        for product in products:  # keep the identity map small on 100,000 products
            session.expunge(product)


def count_public(session: Session) -> int:
    """How many products the public may see (what a complete index holds)."""
    from market.catalog.services import public_query

    return session.scalar(select(func.count()).select_from(public_query().subquery())) or 0


# ----------------------------------------------------------------------------- indexing


@dataclass
class IndexChange:
    indexed: int
    removed: int


def index_products(
    session: Session, product_ids: Iterable[int], target: Backend | None = None
) -> IndexChange:
    """Bring the products' documents up to date: public ones (re)indexed, the others
    (drafts, archived, unapproved seller, deleted) removed. Idempotent."""
    target = target or backend()
    ids = sorted({int(i) for i in product_ids})
    if not ids:
        return IndexChange(0, 0)
    products = session.scalars(_with_cooperative(select(Product)).where(Product.id.in_(ids))).all()
    docs = [product_doc(p) for p in products]
    deleted = set(ids) - {p.id for p in products}
    indexed = target.upsert(session, docs) if docs else 0
    if deleted:
        target.delete(session, deleted)
    return IndexChange(indexed, len(ids) - indexed)


def cooperative_product_ids(session: Session, cooperative_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Product.id).where(Product.cooperative_id == cooperative_id).order_by(Product.id)
        )
    )


def rebuild(session: Session, name: str | None = None, procs: int = 1) -> int:
    """Rebuild a backend (default: the configured one) from the database; returns how
    many products are searchable. The caller commits (PostgreSQL). ``procs`` > 1
    builds a whoosh index in that many processes (not inside a Celery worker)."""
    return backend(name).rebuild(session, public_docs(session), procs=procs)


def clear(session: Session, name: str | None = None) -> None:
    backend(name).clear(session)


# ---------------------------------------------------------------------------- searching


def _warn(backend_name: str, exc: BaseException) -> None:
    reason = f"{exc}" + (f" ({exc.__cause__!r})" if exc.__cause__ else "")
    now = time.monotonic()
    with _warned_lock:
        last = _warned_at.get(backend_name)
        loud = last is None or now - last >= WARNING_INTERVAL_S
        if loud:
            _warned_at[backend_name] = now
    log.log(
        logging.WARNING if loud else logging.DEBUG,
        "Search backend %s failed, answering with SQL LIKE instead (slower, no pinyin): %s",
        backend_name,
        reason,
    )


def reset_warnings() -> None:
    """Forget when failures were last reported (the next one is logged at WARNING)."""
    with _warned_lock:
        _warned_at.clear()


def _category_value(category: Category | str | None) -> str | None:
    if category is None or category == "":
        return None
    return category.value if isinstance(category, Category) else str(category)


def load_public(session: Session, ids: Sequence[int]) -> tuple[list[Product], list[int]]:
    """The public products among ``ids`` in that order (with photos and cooperative),
    and the ids that are not (or no longer) public."""
    from market.catalog.services import public_query

    if not ids:
        return [], []
    found = {
        p.id: p
        for p in session.scalars(
            public_query()
            .where(Product.id.in_(ids))
            .options(selectinload(Product.photos), contains_eager(Product.cooperative))
        )
    }
    return [found[i] for i in ids if i in found], [i for i in ids if i not in found]


def search_products(
    session: Session,
    q: str,
    *,
    category: Category | str | None = None,
    city_code: str | None = None,
    county_code: str | None = None,
    page: int = 1,
    per_page: int = 20,
    cooperative_id: int | None = None,
) -> tuple[list[Product], int, dict[int, str]]:
    """Public products matching ``q``, best first: (one page of products, total,
    {product id: title as safe HTML with the matches in ``<mark>``}).

    When the index can't answer (missing, corrupt, database error) the search is
    answered by SQL LIKE and the failure is logged.
    """
    from market.search import sync

    sync.send_pending()  # this app context's own changes first (eager mode: indexed now)
    parsed = query_terms(q or "")
    if not parsed:
        return [], 0, {}
    page, per_page = max(1, int(page)), max(1, int(per_page))
    filters = Filters(
        category=_category_value(category),
        city_code=city_code[:4] + "00" if city_code else None,
        county_code=county_code or None,
        cooperative_id=cooperative_id,
    )
    # Past the deepest page an index serves: count only, no rows.
    beyond = page * per_page > MAX_RESULT_WINDOW
    window = (1, 1) if beyond else (page, per_page)
    active = backend()
    try:
        hits = active.search(session, q, parsed, filters, *window)
    except Exception as exc:  # any index failure: answer anyway, slower
        if not isinstance(exc, SearchIndexError):
            log.exception("Unexpected error from search backend %s", active.name)
        _warn(active.name, exc)
        active = _LIKE
        hits = _LIKE.search(session, q, parsed, filters, *window)
    if beyond:
        hits = Hits([], hits.total)
    products, stale = load_public(session, hits.ids)
    if stale and active is not _LIKE:
        # The index lists products the public may no longer see (a change whose
        # update was lost): show the rest and have the index corrected.
        log.info("Search index had %d stale products: %s", len(stale), stale)
        sync.index_later(stale)
    return products, hits.total, {p.id: highlight(p.title, parsed) for p in products}
