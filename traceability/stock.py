"""Stock per batch: how many units each batch still has on sale, and which batch every
unit an order took came from.

The product's ``stock`` stays the one count that decides whether a buyer can have a
unit (market.orders.services takes it with one conditional UPDATE). Beside it, each batch
keeps ``stock_left``, the units of that stock it backs:

- put on sale (services.put_on_sale): the product's stock and the batch's stock_left
  rise together;
- checkout (``take``): once the product's UPDATE has succeeded, the line's units come
  from the batches oldest harvest first (harvest_date, id), each with a conditional
  UPDATE (``stock_left >= n``), and ``record`` writes an OrderLineBatch row per batch.
  Units beyond what the batches hold were added by hand on the product: they are not
  from a recorded batch and get no row;
- unpaid order cancelled, or refunded before shipping (``put_back``): the units go back
  to the same batches;
- stock set by hand (``fit_to_product``): see there.

So a product's batches never claim more than its stock. Every path updates the
product's row first and its batches' rows after, in the same transaction: the product's
row lock orders everyone who touches those batches, and no two paths can deadlock on them.

Market reaches these functions through ``app.extensions["batch_stock"]`` (this module,
registered by ``init_app``; see market.catalog.services.BatchStock), as it may
not import traceability. The ``*_for_template`` functions at the end are the template
globals of the product page, the order pages and the batch page.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import current_app
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from market.catalog.models import Product
from market.types import utcnow
from traceability import services
from traceability.models import (
    Batch,
    CodeKind,
    Inspection,
    InspectionResult,
    OrderLineBatch,
    TraceCode,
)

#: Times a checkout reads the batches again when one changed under it (it cannot while
#: the product's row is locked; this only bounds the loop).
_ROUNDS = 3

_KEEP_UPDATED_AT = {"updated_at": Batch.updated_at}  # stock moves do not touch the record
_NO_SYNC = {"synchronize_session": False}


def _change_left(session: Session, batch_id: int, delta: int) -> bool:
    """Move a batch's stock_left by `delta` with one conditional UPDATE; False if refused."""
    statement = update(Batch).where(Batch.id == batch_id)
    if delta < 0:
        statement = statement.where(Batch.stock_left >= -delta)
    result = session.execute(
        statement.values(stock_left=Batch.stock_left + delta, **_KEEP_UPDATED_AT),
        execution_options=_NO_SYNC,
    )
    return result.rowcount == 1


def _with_stock(session: Session, product_id: int, *, newest_first: bool = False):
    order = (Batch.harvest_date, Batch.id)
    if newest_first:
        order = (Batch.harvest_date.desc(), Batch.id.desc())
    return session.execute(
        select(Batch.id, Batch.stock_left)
        .where(Batch.product_id == product_id, Batch.stock_left > 0)
        .order_by(*order)
    ).all()


def take(session: Session, product_id: int, quantity: int) -> list[tuple[int, int]]:
    """Take `quantity` units, just taken from the product, from its batches: oldest
    harvest first. Returns [(batch id, units)]; the units beyond them (if the batches run
    out) are not from a recorded batch. Call only after the product's own UPDATE."""
    wanted = quantity
    taken: dict[int, int] = {}
    for _round in range(_ROUNDS):
        refused = False
        for batch_id, left in _with_stock(session, product_id):
            units = min(left, wanted)
            if not _change_left(session, batch_id, -units):
                refused = True  # it changed since the read: read the batches again
                break
            taken[batch_id] = taken.get(batch_id, 0) + units
            wanted -= units
            if wanted == 0:
                return list(taken.items())
        if not refused:
            break
    return list(taken.items())


def record(session: Session, taken: Mapping[int, Sequence[tuple[int, int]]]) -> None:
    """Write what ``take`` gave each order line: {order line id: [(batch id, units)]}."""
    rows = [
        {"order_line_id": line_id, "batch_id": batch_id, "quantity": units}
        for line_id, parts in taken.items()
        for batch_id, units in parts
        if units > 0
    ]
    if rows:
        session.execute(insert(OrderLineBatch), rows)


def put_back(session: Session, line_ids: Sequence[int]) -> None:
    """The lines' units are back in their products' stock: give each batch back what the
    lines took from it. A line's units go back once (its rows are marked returned)."""
    if not line_ids:
        return
    returned = session.execute(
        update(OrderLineBatch)
        .where(
            OrderLineBatch.order_line_id.in_(list(line_ids)),
            OrderLineBatch.returned_at.is_(None),
        )
        .values(returned_at=utcnow())
        .returning(OrderLineBatch.batch_id, OrderLineBatch.quantity),
        execution_options=_NO_SYNC,
    ).all()
    back: dict[int, int] = defaultdict(int)
    for batch_id, units in returned:
        back[batch_id] += units
    for batch_id in sorted(back):
        _change_left(session, batch_id, back[batch_id])


def fit_to_product(session: Session, product_id: int) -> None:
    """The product's stock was set by hand: make its batches claim no more than it.

    Units added by hand are not from a recorded batch, so a decrease takes those first.
    Only what the batches would still claim beyond the new stock is taken from them,
    newest harvest first: a farmer who lowers the stock is most often undoing the latest
    batch put on sale (a typo, a box that went bad on arrival), and the oldest batch keeps
    being sold first. An increase changes no batch. Call only after the product's UPDATE.
    """
    for _round in range(_ROUNDS):
        stock = session.scalar(select(Product.stock).where(Product.id == product_id)) or 0
        rows = _with_stock(session, product_id, newest_first=True)
        excess = sum(left for _batch_id, left in rows) - stock
        refused = False
        for batch_id, left in rows:
            if excess <= 0:
                break
            units = min(left, excess)
            if not _change_left(session, batch_id, -units):
                refused = True
                break
            excess -= units
        if not refused:
            return


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockCounts:
    """A batch's stock for its page: put on sale, still on sale, in orders, taken off."""

    added: int
    left: int
    #: Units in orders that were not given back (an unpaid order's too, until it expires).
    sold: int

    @property
    def removed(self) -> int:
        """Units the cooperative took off by lowering the product's stock by hand."""
        return max(0, self.added - self.left - self.sold)


def stock_counts(session: Session, batch: Batch) -> StockCounts:
    sold = session.scalar(
        select(func.coalesce(func.sum(OrderLineBatch.quantity), 0)).where(
            OrderLineBatch.batch_id == batch.id, OrderLineBatch.returned_at.is_(None)
        )
    )
    return StockCounts(added=batch.stock_added, left=batch.stock_left, sold=int(sold or 0))


@dataclass(frozen=True)
class LotLink:
    """A batch as a buyer sees it: its lot, name and harvest date, and its scan page."""

    batch_id: int
    lot_code: str
    name: str
    harvest_date: date
    #: The batch-level GS1 Digital Link (its scan page); None if no batch code was issued.
    link: str | None
    #: Latest inspection result: "pass", "fail", or None when not inspected yet.
    inspection: str | None = None
    #: Units of an order line from this batch (0 where it is not about a line).
    quantity: int = 0


def _batch_codes(session: Session, batch_ids: Sequence[int]) -> dict[int, TraceCode]:
    if not batch_ids:
        return {}
    return {
        code.batch_id: code
        for code in session.scalars(
            select(TraceCode).where(
                TraceCode.batch_id.in_(list(batch_ids)), TraceCode.kind == CodeKind.BATCH
            )
        )
    }


def _link(code: TraceCode | None, lot: str, link_settings: tuple[str, bytes, int]) -> str | None:
    if code is None:
        return None
    base, secret, length = link_settings
    return services.code_link(base, secret, code, lot, tag_length=length)


def current_lot(
    session: Session, product_id: int, link_settings: tuple[str, bytes, int]
) -> LotLink | None:
    """The batch the product's stock is sold from now (services.current_batch), with its
    latest inspection and a link to its scan page. `link_settings`: (public base URL, tag
    secret, tag length)."""
    batch = services.current_batch(session, product_id)
    if batch is None:
        return None
    result = session.scalar(
        select(Inspection.result)
        .where(Inspection.batch_id == batch.id)
        .order_by(Inspection.tested_on.desc(), Inspection.id.desc())
        .limit(1)
    )
    code = _batch_codes(session, [batch.id]).get(batch.id)
    return LotLink(
        batch.id,
        batch.lot_code,
        batch.name,
        batch.harvest_date,
        _link(code, batch.lot_code, link_settings),
        inspection=result.value if isinstance(result, InspectionResult) else None,
    )


def line_lots(
    session: Session, line_ids: Sequence[int], link_settings: tuple[str, bytes, int]
) -> dict[int, list[LotLink]]:
    """{order line id: the lots its units came from, oldest first}, in two queries."""
    if not line_ids:
        return {}
    rows = session.execute(
        select(OrderLineBatch.order_line_id, OrderLineBatch.quantity, Batch)
        .join(Batch, Batch.id == OrderLineBatch.batch_id)
        .where(OrderLineBatch.order_line_id.in_(list(line_ids)))
        .order_by(OrderLineBatch.order_line_id, Batch.harvest_date, Batch.id)
    ).all()
    codes = _batch_codes(session, sorted({batch.id for _line, _units, batch in rows}))
    found: dict[int, list[LotLink]] = defaultdict(list)
    for line_id, units, batch in rows:
        link = _link(codes.get(batch.id), batch.lot_code, link_settings)
        found[line_id].append(
            LotLink(batch.id, batch.lot_code, batch.name, batch.harvest_date, link, quantity=units)
        )
    return dict(found)


# --------------------------------------------------------------------------------------
# Template globals
# --------------------------------------------------------------------------------------


def _link_settings() -> tuple[str, bytes, int]:
    from traceability import config

    app = current_app
    return (
        app.config["PUBLIC_BASE_URL"],
        config.tag_secret(app),
        app.config["TRACE_CODE_TAG_LENGTH"],
    )


def current_lot_for_template(product: Any) -> LotLink | None:
    """The ``product_lot(product)`` template global of the product page."""
    from market.extensions import db

    return current_lot(db.session, product.id, _link_settings())


def order_lots_for_template(orders: Any) -> dict[int, list[LotLink]]:
    """The ``order_lots(order or orders)`` template global of the order pages:
    {order line id: its lots}."""
    from market.extensions import db

    if not isinstance(orders, list | tuple):
        orders = [orders]
    line_ids = [line.id for order in orders for line in order.lines]
    return line_lots(db.session, line_ids, _link_settings())


def stock_counts_for_template(batch: Batch) -> StockCounts:
    """The ``batch_stock_counts(batch)`` template global of the batch page."""
    from market.extensions import db

    return stock_counts(db.session, batch)


def init_app(app: Any) -> None:
    """Register this module as market's per-batch stock keeper (market must not import
    traceability) and the template globals of the product, order and batch pages."""
    app.extensions["batch_stock"] = sys.modules[__name__]
    app.jinja_env.globals.update(
        product_lot=current_lot_for_template,
        order_lots=order_lots_for_template,
        batch_stock_counts=stock_counts_for_template,
    )
