"""The pure search core: term extraction, query parsing and the whoosh index."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from market.search_engine import (
    ChineseTokenizer,
    SearchDoc,
    SearchIndexError,
    SearchIndexLockedError,
    WhooshIndex,
    chinese_terms,
    highlight,
    pinyin_terms,
    prefix_terms,
    query_terms,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# jieba (0.42) cuts 英德红/茶 and 新/会/十年/陈皮, and finds 荔枝 in 荔枝蜜 only in
# search mode: character bigrams make such words findable all the same.
TITLES = {
    1: "增城挂绿荔枝 5斤装",
    2: "新会十年陈皮 250克",
    3: "湛江鲜活对虾 2斤",
    4: "英德红茶 英红九号 礼盒",
    5: "从化荔枝蜜 500克",
}


@pytest.fixture
def index(tmp_path: Path) -> Iterator[WhooshIndex]:
    ix = WhooshIndex(tmp_path / "index", lock_timeout=0.5)
    ix.create()
    ix.upsert(SearchDoc(id=i, title=t) for i, t in TITLES.items())
    yield ix
    ix.close()


def ids(ix: WhooshIndex, q: str, **filters: str) -> list[int]:
    return ix.search(q, per_page=100, **filters).ids


# ---------------------------------------------------------------- term extraction


def test_chinese_terms_have_bigrams_unigrams_long_jieba_words_and_ascii() -> None:
    terms = chinese_terms("英德红茶 ＡＢＣ２５０ｇ")
    assert "红茶" in terms  # a bigram, whatever jieba makes of 英德红茶
    assert {"英德", "德红", "英", "茶"} <= set(terms)
    assert "英德红" in terms  # jieba's search mode word of three characters
    assert "abc250g" in terms  # NFKC-normalised and lowercased
    assert chinese_terms("英德红茶 ＡＢＣ２５０ｇ") == terms  # deterministic


def test_chinese_terms_keep_repeated_occurrences() -> None:
    assert chinese_terms("荔枝 荔枝").count("荔枝") == 2
    assert chinese_terms("") == []
    assert chinese_terms("！？ ...") == []


def test_pinyin_terms_full_and_initials() -> None:
    terms = pinyin_terms("新会陈皮 挂绿荔枝")
    assert {"chenpi", "cp", "lizhi", "lz", "xinhui", "xh"} <= set(terms)
    assert "xinhuichenpi" in terms  # the whole run
    assert "xhcp" in terms
    assert "gualv" in terms  # ü is written v
    assert all(t.isascii() and t.isalpha() and t.islower() for t in terms)
    assert pinyin_terms("ABC 250") == []


def test_prefix_terms_cover_partly_typed_pinyin() -> None:
    prefixes = prefix_terms("荔枝")
    assert {"liz", "lizh"} <= set(prefixes)
    assert "lizhi" not in prefixes  # the full term is a pinyin term
    assert "li" not in prefixes  # too short to be useful


def test_query_terms_cjk_is_split_into_bigrams() -> None:
    parsed = query_terms("英红九号")
    assert [c.term for c in parsed.clauses] == ["英红", "红九", "九号"]
    assert not any(c.prefix for c in parsed.clauses)
    assert parsed.to_tsquery() == "'英红' & '红九' & '九号'"


def test_query_terms_single_char_ascii_prefix_and_mixed() -> None:
    assert [(c.term, c.prefix) for c in query_terms("虾").clauses] == [("虾", False)]
    mixed = query_terms("LIZH 礼盒 lz 5")
    assert [(c.term, c.prefix) for c in mixed.clauses] == [
        ("lizh", True),
        ("礼盒", False),
        ("lz", False),
        ("5", False),
    ]
    assert mixed.to_tsquery() == "'lizh':* & '礼盒' & 'lz' & '5'"


def test_query_terms_empty_and_overlong() -> None:
    assert not query_terms("")
    assert not query_terms("  ，。!? ")
    long_query = query_terms("荔枝" * 500)
    assert len(long_query.clauses) <= 16


def test_tokenizer_reports_offsets_into_the_value() -> None:
    tokens = {
        (t.text, t.startchar, t.endchar) for t in ChineseTokenizer()("增城挂绿荔枝", chars=True)
    }
    assert ("荔枝", 4, 6) in tokens
    assert ("lizhi", 4, 6) in tokens
    assert ("lz", 4, 6) in tokens


# ---------------------------------------------------------------------- searching


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("荔枝", {1, 5}),
        ("陈皮", {2}),
        ("对虾", {3}),
        ("红茶", {4}),
        ("新会", {2}),
        ("挂绿荔枝", {1}),
        ("英红九号", {4}),
    ],
)
def test_chinese_words_are_found_however_jieba_segments_the_title(
    index: WhooshIndex, q: str, expected: set[int]
) -> None:
    assert set(ids(index, q)) == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("lizhi", {1, 5}),
        ("lz", {1, 5}),
        ("LiZhi", {1, 5}),
        ("lizh", {1, 5}),
        ("li zhi", {1, 5}),
        ("chenpi", {2}),
        ("cp", {2}),
        ("duixia", {3}),
        ("hongcha", {4}),
        ("xinhui", {2}),
        ("yinghongjiu", {4}),
        ("lizhi 5", {1}),
        ("荔枝 500", {5}),
    ],
)
def test_pinyin_and_mixed_queries(index: WhooshIndex, q: str, expected: set[int]) -> None:
    assert set(ids(index, q)) == expected


def test_single_character_query(index: WhooshIndex) -> None:
    assert set(ids(index, "虾")) == {3}
    assert set(ids(index, "茶")) == {4}


def test_no_match_and_empty_query(index: WhooshIndex) -> None:
    assert index.search("榴莲").ids == []
    assert index.search("榴莲").total == 0
    empty = index.search("   ")
    assert (empty.ids, empty.total, empty.highlights) == ([], 0, {})


def test_title_outranks_gi_name_cooperative_and_description(tmp_path: Path) -> None:
    ix = WhooshIndex(tmp_path / "ix")
    ix.create()
    ix.upsert(
        [
            SearchDoc(id=1, title="新会柑普茶", description="可搭配龙眼干冲泡"),
            SearchDoc(id=2, title="高州桂圆", cooperative="高州龙眼专业合作社"),
            SearchDoc(id=3, title="桂圆肉 500克", gi_name="高州龙眼"),
            SearchDoc(id=4, title="石硖龙眼 5斤"),
            SearchDoc(id=5, title="储良龙眼干", gi_name="高州龙眼", description="龙眼"),
        ]
    )
    result = ix.search("龙眼")
    assert result.total == 5
    # 5 has the word in its title and two other fields; then the title-only match,
    # then gi_name (2.0) > cooperative (1.5) > description (1.0).
    assert result.ids == [5, 4, 3, 2, 1]
    assert ix.search("longyan").ids[:2] == [5, 4]


def test_title_match_beats_every_other_field_together(tmp_path: Path) -> None:
    ix = WhooshIndex(tmp_path / "ix")
    ix.create()
    ix.upsert(
        [
            SearchDoc(
                id=1,
                title="丝苗米",
                gi_name="增城荔枝",
                cooperative="增城荔枝合作社",
                description="产自荔枝之乡",
            ),
            SearchDoc(id=2, title="荔枝干"),
        ]
    )
    assert ix.search("荔枝").ids == [2, 1]


def test_filters(tmp_path: Path) -> None:
    ix = WhooshIndex(tmp_path / "ix")
    ix.create()
    ix.upsert(
        [
            SearchDoc(id=1, title="荔枝", category="fruit", city_code="440100"),
            SearchDoc(id=2, title="荔枝蜜", category="honey", city_code="440100"),
            SearchDoc(
                id=3,
                title="荔枝",
                category="fruit",
                city_code="440900",
                county_code="440981",
            ),
            SearchDoc(id=4, title="陈皮", category="fruit", city_code="440100"),
        ]
    )
    assert set(ids(ix, "荔枝", category="fruit")) == {1, 3}
    assert set(ids(ix, "荔枝", city_code="440100")) == {1, 2}
    assert set(ids(ix, "荔枝", category="fruit", city_code="440100")) == {1}
    assert set(ids(ix, "lizhi", county_code="440981")) == {3}
    assert ix.search("荔枝", category="tea").total == 0
    assert ix.search("荔枝", category="fruit").total == 2


def test_highlights_mark_matches_and_escape_html(tmp_path: Path) -> None:
    ix = WhooshIndex(tmp_path / "ix")
    ix.create()
    ix.upsert(
        [
            SearchDoc(id=1, title="增城挂绿荔枝 <script>alert('x')</script>"),
            SearchDoc(id=2, title="Ａ级荔枝 & 龙眼"),
        ]
    )
    result = ix.search("荔枝")
    assert result.highlights[1] == (
        "增城挂绿<mark>荔枝</mark> &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    )
    assert "<script>" not in result.highlights[1]
    assert result.highlights[2] == "Ａ级<mark>荔枝</mark> &amp; 龙眼"
    assert set(result.highlights) == set(result.ids)
    # Pinyin and ASCII matches are marked on the characters they came from.
    assert ix.search("lizhi").highlights[2] == "Ａ级<mark>荔枝</mark> &amp; 龙眼"
    assert ix.search("a").highlights[2] == "<mark>Ａ</mark>级荔枝 &amp; 龙眼"
    assert ix.search("挂绿荔枝").highlights[1].startswith("增城<mark>挂绿荔枝</mark> ")


def test_highlight_function_merges_overlapping_matches() -> None:
    assert highlight("英红九号", query_terms("英红九号")) == "<mark>英红九号</mark>"
    assert highlight("a<b", query_terms("荔枝")) == "a&lt;b"


def test_paging(tmp_path: Path) -> None:
    ix = WhooshIndex(tmp_path / "ix")
    ix.create()
    ix.upsert(SearchDoc(id=i, title=f"增城荔枝 {i}号") for i in range(1, 46))
    pages = [ix.search("荔枝", page=p, per_page=20) for p in (1, 2, 3, 4)]
    assert [len(p.ids) for p in pages] == [20, 20, 5, 0]
    assert all(p.total == 45 for p in pages)
    seen = list(itertools.chain.from_iterable(p.ids for p in pages))
    assert sorted(seen) == list(range(1, 46))
    with pytest.raises(ValueError, match="at least 1"):
        ix.search("荔枝", page=0)
    with pytest.raises(ValueError, match="must not exceed"):
        ix.search("荔枝", page=1000, per_page=100)


# ------------------------------------------------------------------------- recall

ORIGINS = ["新会", "增城", "湛江", "英德", "从化", "茂名", "梅州", "潮州", "清远", "徐闻"]
PRODUCTS = [
    "陈皮",
    "荔枝",
    "对虾",
    "红茶",
    "龙眼",
    "单丛",
    "生蚝",
    "柚子",
    "挂绿荔枝",
    "十年陈皮",
    "鲜活对虾",
    "英红九号",
    "凤凰单丛",
    "沙田柚",
    "荔枝蜜",
]
ADJECTIVES = ["鲜活", "十年陈", "特级", "有机", "野生", "古树", "冰鲜", "当季", ""]
PACKS = ["250克", "5斤装", "2斤", "礼盒", "散装", "1kg", ""]
# Words of the vocabulary, and bigrams that only arise across word boundaries.
RECALL_WORDS = [
    "陈皮",
    "荔枝",
    "对虾",
    "红茶",
    "龙眼",
    "单丛",
    "生蚝",
    "柚子",
    "挂绿",
    "十年",
    "年陈",
    "鲜活",
    "九号",
    "凤凰",
    "田柚",
    "枝蜜",
    "新会",
    "增城",
    "英德",
    "潮州",
    "礼盒",
    "散装",
    "化荔",
    "会陈",
    "陈陈",
    "活对",
]


Corpus = tuple[WhooshIndex, dict[int, SearchDoc]]


@pytest.fixture(scope="module")
def recall_corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    rnd = random.Random(20240601)
    docs = []
    for doc_id in range(1, 2201):
        title = " ".join(
            part
            for part in (
                rnd.choice(ORIGINS) + rnd.choice(PRODUCTS),
                rnd.choice(ADJECTIVES) + (rnd.choice(PRODUCTS) if rnd.random() < 0.3 else ""),
                rnd.choice(PACKS),
            )
            if part
        )
        docs.append(
            SearchDoc(
                id=doc_id,
                title=title,
                category=rnd.choice(["fruit", "tea", "seafood"]),
                city_code=rnd.choice(["440100", "440700", "440800"]),
                status="archived" if doc_id % 11 == 0 else "on_sale",
            )
        )
    ix = WhooshIndex(tmp_path_factory.mktemp("recall") / "index")
    ix.create()
    # Several commits, so the index has more than one segment, and some
    # documents indexed twice, so segments have deletions.
    for start in range(0, len(docs), 700):
        ix.upsert(docs[start : start + 700])
    ix.upsert(docs[::7])
    yield ix, {d.id: d for d in docs if d.status == "on_sale"}
    ix.close()


def all_ids(ix: WhooshIndex, q: str, **filters: str) -> list[int]:
    found: list[int] = []
    page = 1
    while True:
        result = ix.search(q, page=page, per_page=200, **filters)
        if not result.ids:
            return found
        found.extend(result.ids)
        page += 1


@pytest.mark.parametrize("word", RECALL_WORDS)
def test_recall_of_two_character_words(recall_corpus: Corpus, word: str) -> None:
    ix, docs = recall_corpus
    expected = {d.id for d in docs.values() if word in d.title}
    assert expected, f"the generated corpus has no title containing {word}"
    first = ix.search(word, per_page=20)
    assert first.total == len(expected)
    found = all_ids(ix, word)
    assert len(found) == len(set(found))
    assert set(found) == expected
    assert found[:20] == first.ids


def test_recall_of_pinyin_for_two_character_words(recall_corpus: Corpus) -> None:
    ix, docs = recall_corpus
    for word, pinyin in [("荔枝", "lizhi"), ("陈皮", "chenpi"), ("对虾", "duixia")]:
        expected = {d.id for d in docs.values() if word in d.title}
        result = ix.search(pinyin, per_page=1000)
        assert result.total == len(expected)
        assert set(result.ids) == expected


@pytest.mark.parametrize(
    "q",
    [
        "新会陈皮",
        "挂绿荔枝",
        "十年陈皮",
        "英红九号",
        "鲜活对虾",
        "荔枝蜜",
        "陈皮",
        "虾",
        "英德红茶",
    ],
)
@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"category": "fruit"},
        {"city_code": "440700"},
        {"category": "tea", "city_code": "440100"},
    ],
)
def test_totals_and_results_match_a_brute_force_scan(
    recall_corpus: Corpus, q: str, filters: dict[str, str]
) -> None:
    ix, docs = recall_corpus
    bigrams = [q[i : i + 2] for i in range(len(q) - 1)] or [q]
    expected = {
        d.id
        for d in docs.values()
        if all(b in d.title for b in bigrams)
        and all(getattr(d, name) == value for name, value in filters.items())
    }
    # One per page, so the total has to be counted rather than read off the hits.
    assert ix.search(q, per_page=1, **filters).total == len(expected)
    assert set(all_ids(ix, q, **filters)) == expected


SECTION_WEIGHTS = {"title": 5.0, "gi_name": 2.0, "cooperative": 1.5, "description": 1.0}


@pytest.fixture(scope="module")
def ranking_corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    rnd = random.Random(7)
    docs = [
        SearchDoc(
            id=doc_id,
            title=rnd.choice(ORIGINS) + rnd.choice(PRODUCTS) + " " + rnd.choice(PACKS),
            gi_name=rnd.choice(["新会陈皮", "增城挂绿荔枝", "英德红茶", "", ""]),
            cooperative=rnd.choice(["新会陈皮合作社", "湛江对虾合作社", "", ""]),
            description=rnd.choice(["荔枝味浓", "陈皮入药", "鲜活对虾 当天发货", "", ""]),
            category=rnd.choice(["fruit", "tea"]),
        )
        for doc_id in range(1, 601)
    ]
    ix = WhooshIndex(tmp_path_factory.mktemp("ranking") / "index")
    ix.create()
    for start in range(0, len(docs), 150):
        ix.upsert(docs[start : start + 150])
    ix.upsert(docs[::5])
    yield ix, {d.id: d for d in docs}
    ix.close()


@pytest.mark.parametrize("q", ["荔枝", "陈皮", "对虾", "红茶", "虾", "新会陈皮", "挂绿荔枝"])
@pytest.mark.parametrize("filters", [{}, {"category": "tea"}])
def test_ranking_follows_the_section_weights(
    ranking_corpus: Corpus, q: str, filters: dict[str, str]
) -> None:
    ix, docs = ranking_corpus
    parsed = query_terms(q)
    assert parsed.boost_terms == ()  # so the score is the sum over the clauses

    def score(doc: SearchDoc) -> float:
        return sum(
            weight
            for clause in parsed.clauses
            for section, weight in SECTION_WEIGHTS.items()
            if clause.term in getattr(doc, section)
        )

    expected = {
        d.id
        for d in docs.values()
        if all(
            any(c.term in getattr(d, section) for section in SECTION_WEIGHTS)
            for c in parsed.clauses
        )
        and all(getattr(d, name) == value for name, value in filters.items())
    }
    assert expected
    found: list[int] = []
    for page in itertools.count(1):
        result = ix.search(q, page=page, per_page=7, **filters)
        assert result.total == len(expected)
        if not result.ids:
            break
        found.extend(result.ids)
    assert sorted(found) == sorted(expected)
    scores = [score(docs[doc_id]) for doc_id in found]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1]  # the corpus does rank something above something


# --------------------------------------------------------------- index lifecycle


def test_missing_index_raises_search_index_error(tmp_path: Path) -> None:
    ix = WhooshIndex(tmp_path / "nowhere")
    assert not ix.exists()
    with pytest.raises(SearchIndexError, match="No search index"):
        ix.search("荔枝")
    with pytest.raises(SearchIndexError):
        ix.upsert([SearchDoc(id=1, title="荔枝")])
    with pytest.raises(SearchIndexError):
        ix.delete([1])
    assert ix.search("").ids == []  # an empty query never needs the index


# whoosh 2.7 leaves the table-of-contents file open when it can't parse it.
@pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")
def test_corrupt_index_raises_search_index_error_and_clear_repairs_it(tmp_path: Path) -> None:
    path = tmp_path / "index"
    ix = WhooshIndex(path)
    ix.create()
    ix.upsert([SearchDoc(id=1, title="荔枝")])
    ix.close()
    for toc in path.glob("*.toc"):
        toc.write_bytes(b"\x00garbage")
    broken = WhooshIndex(path)
    assert broken.exists()
    with pytest.raises(SearchIndexError, match="Could not open"):
        broken.search("荔枝")
    with pytest.raises(SearchIndexError):
        broken.upsert([SearchDoc(id=2, title="荔枝")])
    broken.clear()
    assert broken.search("荔枝").total == 0
    broken.upsert([SearchDoc(id=2, title="荔枝")])
    assert broken.search("荔枝").ids == [2]


def test_missing_segment_file_raises_search_index_error(tmp_path: Path) -> None:
    path = tmp_path / "index"
    ix = WhooshIndex(path)
    ix.create()
    ix.upsert([SearchDoc(id=1, title="荔枝")])
    ix.close()
    for segment_file in path.glob("*.seg"):
        segment_file.unlink()
    with pytest.raises(SearchIndexError):
        WhooshIndex(path).search("荔枝")


def test_index_deleted_under_a_cached_searcher(tmp_path: Path) -> None:
    path = tmp_path / "index"
    ix = WhooshIndex(path)
    ix.create()
    ix.upsert([SearchDoc(id=1, title="荔枝")])
    assert ix.search("荔枝").ids == [1]
    for file in path.iterdir():
        file.unlink()
    with pytest.raises(SearchIndexError):
        ix.search("荔枝")


def test_create_is_idempotent_and_clear_empties(index: WhooshIndex) -> None:
    assert index.exists()
    index.create()
    assert set(ids(index, "荔枝")) == {1, 5}
    index.clear()
    assert index.exists()
    assert index.search("荔枝").total == 0
    index.upsert([SearchDoc(id=9, title="荔枝")])
    assert ids(index, "荔枝") == [9]


def test_clear_creates_a_missing_index(tmp_path: Path) -> None:
    ix = WhooshIndex(tmp_path / "new")
    ix.clear()
    assert ix.exists()
    assert ix.search("荔枝").total == 0


def test_upsert_replaces_by_id(index: WhooshIndex) -> None:
    index.upsert([SearchDoc(id=1, title="增城挂绿荔枝 10斤装")])
    index.upsert([SearchDoc(id=1, title="增城挂绿荔枝 10斤装")])
    assert ids(index, "荔枝").count(1) == 1
    assert index.search("荔枝").total == 2
    index.upsert([SearchDoc(id=1, title="高州龙眼")])
    assert set(ids(index, "荔枝")) == {5}
    assert ids(index, "龙眼") == [1]


def test_upsert_same_id_twice_in_one_batch_keeps_the_last(index: WhooshIndex) -> None:
    count = index.upsert([SearchDoc(id=7, title="荔枝 旧"), SearchDoc(id=7, title="龙眼 新")])
    assert count == 1
    assert 7 not in ids(index, "荔枝")
    assert ids(index, "龙眼") == [7]
    assert index.search("龙眼").highlights[7] == "<mark>龙眼</mark> 新"


def test_rebuild_replaces_everything_in_one_segment(
    index: WhooshIndex, caplog: pytest.LogCaptureFixture
) -> None:
    index.upsert([SearchDoc(id=20, title="荔枝 二")])  # a second segment
    count = index.rebuild(
        [
            SearchDoc(id=30, title="高州荔枝"),
            SearchDoc(id=31, title="荔枝干", status="archived"),
            SearchDoc(id=32, title="陈皮"),
            SearchDoc(id=30, title="重复的荔枝"),
        ]
    )
    assert count == 2
    assert ids(index, "荔枝") == [30]
    assert index.search("荔枝").highlights[30] == "高州<mark>荔枝</mark>"
    assert ids(index, "陈皮") == [32]
    assert len(list(index.path.glob("*.seg"))) == 1
    assert "Skipped 1 repeated ids" in caplog.text


# whoosh 2.7 leaves the table-of-contents file open when it can't parse it.
@pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning")
def test_rebuild_replaces_a_corrupt_index(tmp_path: Path) -> None:
    path = tmp_path / "index"
    WhooshIndex(path).create()
    for toc in path.glob("*.toc"):
        toc.write_bytes(b"junk")
    ix = WhooshIndex(path)
    assert ix.rebuild([SearchDoc(id=1, title="荔枝")]) == 1
    assert ids(ix, "lizhi") == [1]


def test_optimize_merges_segments_and_purges_deletions(index: WhooshIndex) -> None:
    for doc_id in (20, 21, 22):
        index.upsert([SearchDoc(id=doc_id, title=f"荔枝 {doc_id}")])
    index.delete([21])
    index.optimize()
    assert len(list(index.path.glob("*.seg"))) == 1
    assert set(ids(index, "荔枝")) == {1, 5, 20, 22}
    assert index.search("荔枝", per_page=1).total == 4


def test_delete(index: WhooshIndex) -> None:
    index.delete([1, 999])
    assert set(ids(index, "荔枝")) == {5}
    index.delete([])
    assert set(ids(index, "荔枝")) == {5}


def test_archived_products_are_not_searchable(index: WhooshIndex) -> None:
    assert index.upsert([SearchDoc(id=8, title="荔枝干", status="archived")]) == 0
    assert 8 not in ids(index, "荔枝")
    # A product that goes off sale disappears from the index.
    index.upsert([SearchDoc(id=5, title="从化荔枝蜜 500克", status="archived")])
    assert set(ids(index, "荔枝")) == {1}


def test_writer_lock_times_out(index: WhooshIndex) -> None:
    holder = WhooshIndex(index.path)._open().writer()
    try:
        with pytest.raises(SearchIndexLockedError, match="Could not lock"):
            index.upsert([SearchDoc(id=10, title="荔枝")])
        # Readers are not blocked by a writer.
        assert set(ids(index, "荔枝")) == {1, 5}
    finally:
        holder.cancel()
    index.upsert([SearchDoc(id=10, title="荔枝")])
    assert set(ids(index, "荔枝")) == {1, 5, 10}


def test_concurrent_readers_see_consistent_results_while_a_writer_commits(
    index: WhooshIndex,
) -> None:
    errors: list[BaseException] = []
    totals: set[int] = set()
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                result = index.search("荔枝", per_page=100)
                assert result.total == len(result.ids)
                totals.add(result.total)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    try:
        for batch in range(5):
            index.upsert(
                SearchDoc(id=100 + batch * 10 + i, title=f"荔枝 {batch}-{i}") for i in range(10)
            )
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert errors == []
    assert totals <= {2, 12, 22, 32, 42, 52}
    assert index.search("荔枝").total == 52


def test_import_and_first_use_print_nothing(tmp_path: Path) -> None:
    code = (
        "import market.search_engine as se; "
        "assert 'lizhi' in se.pinyin_terms('增城挂绿荔枝 英德红茶')"
    )
    # A fresh TMPDIR makes jieba build its dictionary cache, its noisiest path.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(  # noqa: S603 (fixed command: this interpreter, our code)
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == ""
    assert any(tmp_path.glob("jieba*.cache"))  # it really built the dictionary there
