"""The PostgreSQL search backend's table: one row of search terms per public product."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from market.extensions import db

#: tsvector on PostgreSQL; elsewhere the table exists (one schema for every database)
#: but stays empty, because only the PostgreSQL backend uses it.
TermVector = TSVECTOR().with_variant(Text(), "sqlite")


class SearchDocument(db.Model):
    """A public product's terms, weighted by where they occur, and its filter values.

    Only products the public may see have a row (like the whoosh index holds only
    them); the indexing task adds, replaces and removes rows after each commit.
    """

    __tablename__ = "market_search_documents"
    __table_args__ = (Index("ix_market_search_documents_terms", "terms", postgresql_using="gin"),)

    product_id: Mapped[int] = mapped_column(
        ForeignKey("market_products.id", ondelete="CASCADE"), primary_key=True
    )
    #: Chinese, pinyin and ASCII terms, weighted A (title), B (GI name), C (cooperative)
    #: and D (description); see market.search.backends.term_vector.
    terms: Mapped[str] = mapped_column(TermVector)
    category: Mapped[str] = mapped_column(String(32))
    #: GB/T 2260 codes of the product's origin ("" when it is a city without counties).
    city_code: Mapped[str] = mapped_column(String(6))
    county_code: Mapped[str] = mapped_column(String(6))
    cooperative_id: Mapped[int]
