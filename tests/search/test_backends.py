"""The PostgreSQL backend's documents: the same terms as the whoosh index, weighted."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from market.extensions import db
from market.search.backends import SECTION_POINTS, _lexeme, term_vector
from market.search_engine import TEXT_SECTIONS, SearchDoc, chinese_terms, pinyin_terms
from tests.search.conftest import ON_POSTGRES


def lexemes(vector: str) -> dict[str, set[str]]:
    """{term: {weight letters}} from a tsvector literal (D printed or not)."""
    found: dict[str, set[str]] = {}
    for item in vector.split(" "):
        term, _, positions = item.rpartition(":")
        found[term.strip("'")] = {p[-1] if p[-1].isalpha() else "D" for p in positions.split(",")}
    return found


def test_the_vector_has_each_sections_terms_with_its_weight():
    doc = SearchDoc(
        id=1,
        title="增城挂绿荔枝 5斤装",
        gi_name="增城荔枝",
        cooperative="增城荔枝合作社",
        description="当天采摘 lizhi",
    )
    vector = lexemes(term_vector(doc))
    assert vector["荔枝"] == {"A", "B", "C"}
    assert vector["lizhi"] == {"A", "B", "C", "D"}  # pinyin in names, a word in the text
    assert vector["挂绿"] == {"A"}
    assert vector["当天"] == {"D"}
    assert vector["lizh"] == {"A", "B"}  # prefixes: title and GI name only, as in whoosh
    assert "dangtian" not in vector  # no pinyin for descriptions, as in whoosh
    title_terms = set(chinese_terms(doc.title) + pinyin_terms(doc.title))
    assert {t for t, letters in vector.items() if "A" in letters} >= title_terms


def test_quotes_and_backslashes_cannot_break_out_of_a_lexeme():
    # Terms are CJK and [a-z0-9] today; the quoting holds if that ever changes.
    assert _lexeme("a'b\\c") == "'a''b\\\\c'"
    assert lexemes(term_vector(SearchDoc(id=1, title="a'b"))).keys() == {"a", "b"}


def test_points_are_the_section_weights_doubled():
    assert [p / 2 for p in SECTION_POINTS] == [w for _n, w, _p, _x in TEXT_SECTIONS]
    assert SECTION_POINTS[0] > sum(SECTION_POINTS[1:])  # a title match outranks the rest


@pytest.mark.skipif(not ON_POSTGRES, reason="needs TEST_DATABASE_URL=postgresql...")
def test_postgresql_reads_the_vector_as_written(app):
    doc = SearchDoc(id=1, title="新会陈皮 十年陈", gi_name="新会陈皮")
    with app.app_context():
        stored = db.session.execute(
            text("SELECT CAST(:v AS tsvector) @@ CAST(:q AS tsquery)"),
            {"v": term_vector(doc), "q": "'陈皮':B & 'chenp':A & 'cp':A"},
        ).scalar_one()
        quoted = db.session.execute(
            text("SELECT CAST(:v AS tsvector)::text"), {"v": _lexeme("a'b\\c")}
        ).scalar_one()
    assert stored is True
    assert quoted == _lexeme("a'b\\c")
