"""Product search at 100,000 products.

1. Engine: 100,000 generated products with realistic Chinese titles (origins x
   specialties x varieties x grades x packs, GI names, cooperatives, descriptions;
   fixed seed) go into the project's whoosh index (``WhooshIndex.rebuild``) and, in the
   same run, into a SQLite FTS5 baseline (each field pre-split into CJK bigrams and
   unigrams plus the same pinyin terms, since FTS5's own tokenizers can't find a
   two-character word: unicode61 keeps a CJK run as one token, trigram needs three
   characters). Both answer ~200 two-character queries and ~60 pinyin queries, top 20
   by relevance plus the total; p50/p95 side by side.
   Recall on the two-character queries: every product whose title contains the word
   (brute-force substring scan) must be found. Goal: p95 <= 20 ms, recall 1.0.
2. PostgreSQL (when BENCH_DATABASE_URL or TEST_DATABASE_URL is set): the same
   documents in the PostgreSQL backend's table (in a scratch schema), same queries.
3. The whole ``search_products`` path (query, index, loading the page of products
   with photos and cooperative from the database, highlighting) on a DB-backed
   catalog of 10,000 products (SQLite), beside the LIKE fallback on the same data.

``quick=True`` uses 10,000 products (and 3,000 in the database). The whoosh indexes
are built with two processes, as `flask search rebuild --procs 2` does.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from market import places
from market.search_engine import (
    MAX_RESULT_WINDOW,
    SearchDoc,
    WhooshIndex,
    chinese_terms,
    pinyin_terms,
    query_terms,
    warm_up,
)

SEED = 20241127
#: Processes for the whoosh builds (`flask search rebuild --procs 2`).
PROCS = min(2, os.cpu_count() or 1)
GOAL_P95_MS = 20.0

# ------------------------------------------------------------------------ the corpus

#: (category, specialty, GI name, varieties, origin counties, packs)
SPECIALTIES: list[tuple[str, str, str, list[str], list[str], list[str]]] = [
    (
        "fruit",
        "荔枝",
        "增城荔枝",
        ["妃子笑", "桂味", "糯米糍", "挂绿", "白糖罂", "黑叶", "仙进奉", "井岗红糯"],
        ["增城", "从化", "茂南", "电白", "高州", "化州", "阳东", "惠阳", "博罗"],
        ["5斤装", "10斤装", "3斤", "礼盒装", "顺丰包邮"],
    ),
    (
        "fruit",
        "龙眼",
        "高州龙眼",
        ["石硖", "储良", "古山二号", "草铺种"],
        ["高州", "茂南", "电白", "化州", "阳西"],
        ["5斤装", "3斤", "10斤整箱"],
    ),
    (
        "fruit",
        "菠萝",
        "徐闻菠萝",
        ["香水菠萝", "金钻凤梨", "巴厘菠萝", "手撕菠萝"],
        ["徐闻", "雷州"],
        ["10斤", "8斤整箱", "5个装"],
    ),
    (
        "fruit",
        "金柚",
        "梅州金柚",
        ["蜜柚", "沙田柚", "红肉蜜柚", "三红柚"],
        ["梅县", "大埔", "平远", "蕉岭", "兴宁", "五华"],
        ["2个装", "4个礼盒", "整箱10斤"],
    ),
    (
        "fruit",
        "香蕉",
        "高州香蕉",
        ["粉蕉", "皇帝蕉", "香芽蕉"],
        ["高州", "徐闻", "雷州", "廉江", "东莞"],
        ["5斤", "10斤", "一把"],
    ),
    (
        "fruit",
        "三华李",
        "翁源三华李",
        ["大蜜李", "鹰嘴李"],
        ["翁源", "始兴", "仁化", "连平"],
        ["3斤", "5斤装"],
    ),
    (
        "fruit",
        "砂糖橘",
        "",
        ["无籽砂糖橘", "沙糖桔"],
        ["四会", "德庆", "广宁", "怀集"],
        ["5斤", "10斤整箱"],
    ),
    (
        "fruit",
        "贡柑",
        "德庆贡柑",
        ["皇帝柑", "冰糖柑"],
        ["德庆", "四会", "封开"],
        ["5斤装", "礼盒"],
    ),
    (
        "fruit",
        "黄皮",
        "郁南黄皮",
        ["无核黄皮", "鸡心黄皮"],
        ["郁南", "新兴", "罗定"],
        ["2斤", "3斤"],
    ),
    ("fruit", "杨桃", "", ["香蜜杨桃", "甜杨桃"], ["潮安", "揭东", "顺德"], ["3斤", "5斤装"]),
    (
        "tea",
        "红茶",
        "英德红茶",
        ["英红九号", "金毫", "金毛毫", "古树红茶"],
        ["英德", "清新", "乐昌"],
        ["250克", "500克礼盒", "罐装100克"],
    ),
    (
        "tea",
        "单丛",
        "凤凰单丛",
        ["鸭屎香", "蜜兰香", "黄枝香", "芝兰香", "八仙"],
        ["潮安", "饶平", "湘桥"],
        ["250克", "500克", "礼盒装"],
    ),
    (
        "tea",
        "白毛茶",
        "仁化白毛茶",
        ["银针", "一芽一叶"],
        ["仁化", "乳源", "始兴"],
        ["100克", "250克"],
    ),
    (
        "tea",
        "炒青",
        "",
        ["客家炒青", "高山绿茶"],
        ["梅县", "五华", "紫金", "和平"],
        ["250克", "500克"],
    ),
    (
        "dried",
        "陈皮",
        "新会陈皮",
        ["十年陈", "五年陈", "二十年陈", "大红皮", "柑普茶"],
        ["新会", "江海", "台山"],
        ["250克", "500克罐装", "50克试吃装", "礼盒装"],
    ),
    (
        "dried",
        "肉桂",
        "罗定肉桂",
        ["桂皮", "桂枝", "桂通"],
        ["罗定", "郁南", "高要", "德庆"],
        ["500克", "1公斤"],
    ),
    ("dried", "砂仁", "阳春砂仁", ["春砂仁", "原果"], ["阳春", "阳东"], ["100克", "250克"]),
    ("dried", "化橘红", "化橘红", ["橘红胎", "橘红片", "毛橘红"], ["化州"], ["100克", "250克礼盒"]),
    (
        "dried",
        "桂圆肉",
        "",
        ["龙眼干", "桂圆干", "去核桂圆肉"],
        ["高州", "茂南", "电白"],
        ["500克", "1斤"],
    ),
    (
        "dried",
        "腊肠",
        "",
        ["广式腊肠", "润肠", "鸭肝肠"],
        ["东莞", "中山", "台山", "顺德"],
        ["500克", "1斤装", "礼盒"],
    ),
    ("dried", "菜干", "", ["白菜干", "梅菜干"], ["惠东", "惠阳", "博罗"], ["500克", "2斤"]),
    (
        "aquatic",
        "对虾",
        "湛江对虾",
        ["南美白对虾", "斑节对虾", "鲜活对虾", "冰鲜对虾"],
        ["麻章", "坡头", "遂溪", "雷州", "廉江", "徐闻"],
        ["2斤", "4斤装", "40-50只/斤"],
    ),
    (
        "aquatic",
        "生蚝",
        "台山蚝",
        ["程村蚝", "鲜蚝", "蚝干", "金蚝"],
        ["台山", "阳西", "南澳", "饶平"],
        ["5斤", "一打", "500克"],
    ),
    (
        "aquatic",
        "膏蟹",
        "",
        ["青蟹", "奄仔蟹", "肉蟹"],
        ["台山", "陆丰", "海丰", "惠东"],
        ["3只装", "2斤"],
    ),
    (
        "aquatic",
        "罗非鱼",
        "",
        ["冰鲜罗非鱼", "罗非鱼片"],
        ["茂南", "高要", "吴川"],
        ["2条", "1公斤"],
    ),
    ("aquatic", "鱿鱼", "", ["鱿鱼干", "鲜鱿鱼"], ["南澳", "陆丰", "阳西"], ["500克", "1斤"]),
    (
        "poultry_egg",
        "清远鸡",
        "清远鸡",
        ["清远麻鸡", "走地鸡", "阉鸡"],
        ["清城", "清新", "佛冈", "阳山", "英德"],
        ["1只", "约3斤", "2只装"],
    ),
    (
        "poultry_egg",
        "狮头鹅",
        "潮汕狮头鹅",
        ["卤鹅", "鹅肝", "鹅肉"],
        ["澄海", "潮安", "饶平"],
        ["半只", "1只", "1斤"],
    ),
    (
        "poultry_egg",
        "土鸡蛋",
        "",
        ["农家鸡蛋", "初生蛋", "乌鸡蛋"],
        ["梅县", "五华", "连平", "龙川", "阳山"],
        ["30枚", "60枚装"],
    ),
    (
        "grain_oil",
        "丝苗米",
        "增城丝苗米",
        ["油粘米", "香米", "新米"],
        ["增城", "曲江", "台山", "罗定", "高要"],
        ["5斤", "10公斤", "25斤"],
    ),
    (
        "grain_oil",
        "花生油",
        "",
        ["古法花生油", "压榨花生油"],
        ["惠来", "揭西", "五华", "新兴"],
        ["5升", "2.5升"],
    ),
    (
        "grain_oil",
        "山茶油",
        "",
        ["野山茶油", "冷榨茶籽油"],
        ["龙川", "和平", "紫金", "广宁"],
        ["500毫升", "2升"],
    ),
    (
        "vegetable",
        "菜心",
        "增城迟菜心",
        ["迟菜心", "连州菜心", "甜菜心"],
        ["增城", "连州", "花都"],
        ["2斤", "5斤装"],
    ),
    ("vegetable", "马蹄", "", ["荸荠", "水马蹄"], ["阳山", "连州", "乐昌"], ["3斤", "5斤"]),
    ("vegetable", "粉葛", "", ["柴葛", "鲜粉葛"], ["四会", "高要", "增城"], ["5斤", "整根"]),
    ("vegetable", "凉瓜", "", ["苦瓜", "雷公凿"], ["番禺", "南沙", "顺德"], ["3斤", "5斤"]),
    ("flowers", "兰花", "", ["国兰", "蝴蝶兰", "墨兰"], ["顺德", "南海", "翁源"], ["1盆", "3盆装"]),
    ("flowers", "年桔", "", ["四季桔", "金桔盆栽"], ["南海", "顺德", "番禺"], ["1盆", "大盆"]),
]
GRADES = ["", "", "", "特级", "一级", "精选", "当季", "新鲜", "农家", "有机", "原产地直发", "现摘"]
DESCRIPTIONS = [
    "产地直发，{p}新鲜采摘，顺丰冷链到家。",
    "{o}{p}，合作社统一种植管理，全程可追溯。",
    "精选{p}，个大饱满，坏果包赔。",
    "{o}本地特产{p}，农户自产自销，支持扶贫。",
    "",
]
SUFFIXES = ("瑶族自治县", "壮族瑶族自治县", "自治县", "区", "县", "市")


def _origins() -> dict[str, str]:
    """Short county name (增城) -> GB/T 2260 code, for every Guangdong county."""
    names: dict[str, str] = {}
    for city in places.guangdong_cities():
        counties = places.children(city.code) or [city]
        for division in counties:
            short = division.name
            for suffix in SUFFIXES:
                if short.endswith(suffix) and len(short) > len(suffix) + 1:
                    short = short[: -len(suffix)]
                    break
            names.setdefault(short, division.code)
    return names


def generate(n: int, seed: int = SEED) -> list[SearchDoc]:
    """``n`` products of about 600 cooperatives (deterministic for a seed)."""
    rnd = random.Random(seed)
    origins = _origins()
    coops: list[tuple[int, str, str, int]] = []  # (id, name, origin, specialty index)
    for coop_id in range(1, 601):
        k = rnd.randrange(len(SPECIALTIES))
        origin = rnd.choice(SPECIALTIES[k][4])
        kind = rnd.choice(["专业合作社", "种植专业合作社", "农民专业合作社", "产销合作社"])
        coops.append(
            (coop_id, f"{origin}{rnd.choice(['', '县', '镇'])}{SPECIALTIES[k][1]}{kind}", origin, k)
        )
    docs = []
    for doc_id in range(1, n + 1):
        coop_id, coop_name, coop_origin, k = rnd.choice(coops)
        if rnd.random() < 0.3:  # many cooperatives sell more than their specialty
            k = rnd.randrange(len(SPECIALTIES))
        category, product, gi_name, varieties, product_origins, packs = SPECIALTIES[k]
        origin = coop_origin if rnd.random() < 0.6 else rnd.choice(product_origins)
        variety = rnd.choice(varieties)
        name = (
            variety
            if product in variety
            else f"{variety}{product}"
            if rnd.random() < 0.5
            else product
        )
        parts = [f"{origin}{name}", rnd.choice(GRADES), rnd.choice(packs)]
        if rnd.random() < 0.25:
            parts.insert(1, variety)
        title = " ".join(p for p in parts if p)[:60]
        code = origins.get(origin, "440100")
        is_gi = bool(gi_name) and rnd.random() < 0.5
        docs.append(
            SearchDoc(
                id=doc_id,
                title=title,
                gi_name=gi_name if is_gi else "",
                cooperative=coop_name,
                description=rnd.choice(DESCRIPTIONS).format(p=product, o=origin),
                category=category,
                city_code=code[:4] + "00",
                county_code=code if code[4:] != "00" else "",
                cooperative_id=coop_id,
            )
        )
    return docs


def queries(docs: list[SearchDoc], seed: int = SEED) -> tuple[list[str], list[str]]:
    """About 200 two-character words buyers type (specialties, varieties, origins, and
    words of the packs and grades) and about 60 pinyin queries (full and initials)."""
    rnd = random.Random(seed + 1)
    words: set[str] = set()
    for _c, product, gi_name, varieties, origins, packs in SPECIALTIES:
        for text in (product, gi_name, *varieties, *origins, *packs):
            for term in chinese_terms(text):
                if len(term) == 2 and not term.isascii():
                    words.add(term)
    for grade in GRADES:
        words.update(t for t in chinese_terms(grade) if len(t) == 2)
    present = {w for w in words if any(w in d.title for d in docs[:5000])}
    two_char = sorted(present)
    rnd.shuffle(two_char)
    two_char = two_char[:200]
    pinyin: list[str] = []
    for word in two_char[:30]:
        full = [t for t in pinyin_terms(word) if len(t) > 2]
        initials = [t for t in pinyin_terms(word) if len(t) == 2 and t.isalpha()]
        pinyin += full[-1:] + initials[-1:]
    return two_char, pinyin


# ------------------------------------------------------------------------ the baseline


def _fts_text(value: str, with_pinyin: bool, shared: bool = False) -> str:
    """A field as FTS5 tokens: the same bigrams/unigrams/words (+ pinyin) as the index
    (cached for the fields products share, as the index does)."""
    from market.search.backends import _shared_terms, section_terms

    return " ".join((_shared_terms if shared else section_terms)(value, with_pinyin))


def build_fts5(docs: Iterable[SearchDoc], path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE VIRTUAL TABLE products USING fts5("
        "title, gi_name, cooperative, description, tokenize = 'unicode61')"
    )
    conn.executemany(
        "INSERT INTO products (rowid, title, gi_name, cooperative, description) "
        "VALUES (?, ?, ?, ?, ?)",
        (
            (
                d.id,
                _fts_text(d.title, True),
                _fts_text(d.gi_name, True, shared=True),
                _fts_text(d.cooperative, True, shared=True),
                _fts_text(d.description, False),
            )
            for d in docs
        ),
    )
    conn.execute("INSERT INTO products(products) VALUES ('optimize')")
    conn.commit()
    return conn


def fts5_match(q: str) -> str:
    parsed = query_terms(q)
    return " AND ".join(f'"{c.term}"' + ("*" if c.prefix else "") for c in parsed.clauses)


def fts5_search(conn: sqlite3.Connection, q: str, limit: int = 20) -> tuple[list[int], int]:
    """Top ``limit`` by BM25 with the same field weights, and the total."""
    match = fts5_match(q)
    ids = [
        row[0]
        for row in conn.execute(
            "SELECT rowid FROM products WHERE products MATCH ? "
            "ORDER BY bm25(products, 5.0, 2.0, 1.5, 1.0) LIMIT ?",
            (match, limit),
        )
    ]
    total = conn.execute(
        "SELECT count(*) FROM products WHERE products MATCH ?", (match,)
    ).fetchone()[0]
    return ids, total


# ------------------------------------------------------------------------ measuring


def _timed(fn: Callable[[str], object], qs: list[str], rounds: int = 2) -> list[float]:
    for q in qs[:20]:  # warm up
        fn(q)
    samples = []
    for _ in range(rounds):
        for q in qs:
            started = time.perf_counter()
            fn(q)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(_pct(samples, 95), 2),
    }


def _whoosh_all(ix: WhooshIndex, q: str, **filters: str) -> set[int]:
    """Every match, paged within the index's result window (split by city if needed)."""
    first = ix.search(q, per_page=1, **filters)
    if first.total <= MAX_RESULT_WINDOW:
        return set(ix.search(q, per_page=max(1, first.total), **filters).ids)
    found: set[int] = set()
    for city in places.guangdong_cities():
        found |= _whoosh_all(ix, q, city_code=city.code, **filters)
    return found


def recall(title_ids: dict[str, set[int]], all_matches: Callable[[str], set[int]]) -> float:
    """Smallest, over the queries, share of products with the word in the title found."""
    worst = 1.0
    for word, expected in title_ids.items():
        if expected:
            worst = min(worst, len(expected & all_matches(word)) / len(expected))
    return worst


def _pg_url() -> str:
    from market.config import normalize_database_url

    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or ""
    return normalize_database_url(url) if url.startswith("postgres") else ""


def bench_postgres(
    docs: list[SearchDoc], two_char: list[str], pinyin: list[str], title_ids: dict[str, set[int]]
) -> dict | None:
    """The PostgreSQL backend on the same documents, in a scratch schema."""
    url = _pg_url()
    if not url:
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from market.app import import_models
    from market.search.backends import Filters, PostgresBackend

    import_models()  # the ORM insert needs every model's mapper
    schema = f"bench_search_{os.getpid()}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE market_search_documents (product_id integer PRIMARY KEY, "
                    "terms tsvector NOT NULL, category varchar(32) NOT NULL, "
                    "city_code varchar(6) NOT NULL, county_code varchar(6) NOT NULL, "
                    "cooperative_id integer NOT NULL)"
                )
            )
        backend = PostgresBackend()
        with Session(engine) as session:
            started = time.perf_counter()
            backend.rebuild(session, docs)
            session.commit()
            session.execute(
                text(
                    "CREATE INDEX ix_market_search_documents_terms ON market_search_documents "
                    "USING gin (terms)"
                )
            )
            session.execute(text("ANALYZE market_search_documents"))
            session.commit()
            build_s = time.perf_counter() - started

            def search(q: str, per_page: int = 20) -> list[int]:
                return backend.search(session, q, query_terms(q), Filters(), 1, per_page).ids

            two = _timed(search, two_char)
            pin = _timed(search, pinyin)

            def everything(q: str) -> set[int]:
                total = backend.search(session, q, query_terms(q), Filters(), 1, 1).total
                return set(search(q, per_page=max(1, total)))

            result_recall = recall(title_ids, everything)
            session.rollback()
        return {
            "build_s": round(build_s, 1),
            "two_char": _summary(two),
            "pinyin": _summary(pin),
            "recall": result_recall,
        }
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


# --------------------------------------------------------------- the whole search path


def bench_app(n: int, two_char: list[str], tmp: Path) -> dict:
    """``search_products`` (index + loading the page + highlighting) on a DB-backed
    catalog, beside the LIKE fallback on the same database."""
    import flask_migrate
    from sqlalchemy import insert

    from market.app import create_app
    from market.catalog.models import Category, Product, ProductStatus
    from market.cooperatives.models import Cooperative, CooperativeStatus
    from market.extensions import db
    from market.search import services

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench-search",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'app.sqlite3'}",
            "SEARCH_INDEX_DIR": str(tmp / "app-index"),
            "MEDIA_DIR": str(tmp / "media"),
            "PAYMENT_SANDBOX_KEY_DIR": str(tmp / "keys"),
            "SEARCH_BACKEND": "whoosh",
        }
    )
    docs = generate(n, seed=SEED + 7)
    with app.app_context():
        flask_migrate.upgrade(revision="heads")
        coops = {d.cooperative_id: (d.cooperative, d.county_code or d.city_code) for d in docs}
        db.session.execute(
            insert(Cooperative),
            [
                {
                    "id": cid,
                    "name": f"{name}{cid}",
                    "division_code": code,
                    "status": CooperativeStatus.APPROVED,
                }
                for cid, (name, code) in coops.items()
            ],
        )
        db.session.execute(
            insert(Product),
            [
                {
                    "id": d.id,
                    "cooperative_id": d.cooperative_id,
                    "title": d.title,
                    "category": Category(d.category),
                    "unit": "箱",
                    "price_fen": 9900,
                    "stock": 10,
                    "status": ProductStatus.ON_SALE,
                    "description": d.description,
                    "is_gi": bool(d.gi_name),
                    "gi_name": d.gi_name,
                    "origin_code": d.county_code or d.city_code,
                }
                for d in docs
            ],
        )
        db.session.commit()
        started = time.perf_counter()
        indexed = services.rebuild(db.session, procs=PROCS)
        build_s = time.perf_counter() - started

        def run_search(q: str) -> object:
            return services.search_products(db.session, q, per_page=20)

        indexed_ms = _timed(run_search, two_char, rounds=1)
        app.config["SEARCH_BACKEND"] = "like"
        like_ms = _timed(run_search, two_char, rounds=1)
        db.session.remove()
        db.engine.dispose()
    services.whoosh_index(app).close()
    return {
        "products": indexed,
        "rebuild_s": round(build_s, 1),
        "whoosh": _summary(indexed_ms),
        "like": _summary(like_ms),
    }


# ------------------------------------------------------------------------------ run


def run(quick: bool = False) -> dict:
    n = 10_000 if quick else 100_000
    n_app = 3_000 if quick else 10_000
    print(f"\n== search: {n:,} products ==")
    warm_up()
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        started = time.perf_counter()
        docs = generate(n)
        two_char, pinyin = queries(docs)
        title_ids = {w: {d.id for d in docs if w in d.title} for w in two_char}
        print(
            f"generated in {time.perf_counter() - started:.1f} s; "
            f"{len(two_char)} two-character and {len(pinyin)} pinyin queries; "
            f"e.g. {docs[0].title} | {docs[1].title} | {docs[2].title}"
        )

        started = time.perf_counter()
        ix = WhooshIndex(tmp / "whoosh")
        ix.rebuild(docs, procs=PROCS)
        whoosh_build = time.perf_counter() - started
        started = time.perf_counter()
        fts = build_fts5(docs, tmp / "fts5.sqlite3")
        fts_build = time.perf_counter() - started
        print(f"build: whoosh {whoosh_build:.1f} s, FTS5 baseline {fts_build:.1f} s")

        whoosh_two = _timed(lambda q: ix.search(q, per_page=20), two_char)
        whoosh_pin = _timed(lambda q: ix.search(q, per_page=20), pinyin)
        fts_two = _timed(lambda q: fts5_search(fts, q), two_char)
        fts_pin = _timed(lambda q: fts5_search(fts, q), pinyin)
        whoosh_recall = recall(title_ids, lambda q: _whoosh_all(ix, q))
        fts_recall = recall(
            title_ids,
            lambda q: {
                r[0]
                for r in fts.execute(
                    "SELECT rowid FROM products WHERE products MATCH ?", (fts5_match(q),)
                )
            },
        )
        fts.close()
        ix.close()
        result: dict = {
            "products": n,
            "build_s": {"whoosh": round(whoosh_build, 1), "fts5": round(fts_build, 1)},
            "whoosh": {
                "two_char": _summary(whoosh_two),
                "pinyin": _summary(whoosh_pin),
                "recall": whoosh_recall,
            },
            "fts5": {
                "two_char": _summary(fts_two),
                "pinyin": _summary(fts_pin),
                "recall": fts_recall,
            },
        }
        result["ratio_p95_two_char"] = round(
            result["whoosh"]["two_char"]["p95_ms"] / result["fts5"]["two_char"]["p95_ms"], 2
        )
        result["ratio_p95_pinyin"] = round(
            result["whoosh"]["pinyin"]["p95_ms"] / result["fts5"]["pinyin"]["p95_ms"], 2
        )
        pg = bench_postgres(docs, two_char, pinyin, title_ids)
        if pg:
            result["postgres"] = pg
        result["app"] = bench_app(n_app, two_char, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    w, f = result["whoosh"], result["fts5"]
    print(f"{'top-20 search':<28}{'p50 ms':>9}{'p95 ms':>9}{'recall':>8}")
    for label, figures, rec in (
        ("whoosh, 2 characters", w["two_char"], w["recall"]),
        ("FTS5 bigram, 2 characters", f["two_char"], f["recall"]),
        ("whoosh, pinyin", w["pinyin"], None),
        ("FTS5 bigram, pinyin", f["pinyin"], None),
    ) + (
        (
            ("PostgreSQL, 2 characters", pg["two_char"], pg["recall"]),
            ("PostgreSQL, pinyin", pg["pinyin"], None),
        )
        if pg
        else ()
    ):
        shown = "" if rec is None else f"{rec:.3f}"
        print(f"{label:<28}{figures['p50_ms']:>9.2f}{figures['p95_ms']:>9.2f}{shown:>8}")
    print(
        f"p95 ratio whoosh/FTS5: {result['ratio_p95_two_char']}x (2 characters), "
        f"{result['ratio_p95_pinyin']}x (pinyin); goal p95 <= {GOAL_P95_MS} ms, recall 1.0: "
        + ("met" if w["two_char"]["p95_ms"] <= GOAL_P95_MS and w["recall"] == 1.0 else "NOT met")
    )
    if pg:
        print(f"PostgreSQL build (terms + insert + GIN): {pg['build_s']} s")
    a = result["app"]
    print(
        f"search_products on {a['products']:,} DB products (rebuild {a['rebuild_s']} s): "
        f"whoosh p50 {a['whoosh']['p50_ms']} / p95 {a['whoosh']['p95_ms']} ms, "
        f"LIKE fallback p50 {a['like']['p50_ms']} / p95 {a['like']['p95_ms']} ms"
    )
    return result
