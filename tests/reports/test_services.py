"""Dashboard figures: who may see which place, and what the figures are."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import update

from market.auth.models import User
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.errors import NotFoundError, PermissionDeniedError
from market.extensions import db
from market.reports import rollups, services
from market.reports.periods import DateRange
from market.reports.services import Spans, spans
from tests.reports.helpers import add_order, make_world

MAY = DateRange(date(2026, 5, 1), date(2026, 5, 31))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def world(app):
    """Sales in May 2026 (and May 2025) in three cities, summaries built."""
    w = make_world(app)
    with app.app_context():
        s = db.session
        a, b, c = (w.users[k] for k in ("buyer_a", "buyer_b", "buyer_c"))
        p = w.products
        add_order(s, a, [(p["peel"], 1), (p["tea"], 1)], utc(2026, 5, 3, 2))  # 16400 xinhui
        add_order(s, a, [(p["peel"], 2)], utc(2026, 5, 20, 2), address="110000")  # 25600 xinhui
        add_order(s, b, [(p["tea"], 1)], utc(2026, 5, 21, 2), refunded_fen=3600)  # full refund
        add_order(s, b, [(p["rice"], 4)], utc(2026, 5, 4, 2))  # 20000 taishan
        add_order(s, c, [(p["black_tea"], 1)], utc(2026, 5, 5, 2), address="330100")  # 9900
        add_order(s, c, [(p["lychee"], 2)], utc(2026, 5, 6, 2))  # 11800 zengcheng
        add_order(s, a, [(p["peel"], 1)], utc(2025, 5, 10, 2))  # last year: 12800 xinhui
        add_order(s, a, [(p["rice"], 1)], utc(2026, 4, 10, 2))  # April: 5000 taishan
        rollups.rebuild(s)
        s.commit()
    return w


def user(app, world, key) -> User:
    with app.app_context():
        found = db.session.get(User, world.users[key])
        _ = found.cooperative
        db.session.expunge_all()
        return found


def board(app, world, key, dr=MAY, kind="day", **place):
    with app.app_context():
        u = db.session.get(User, world.users[key])
        return services.dashboard(db.session, u, dr, kind, **place)


# --- who sees what ----------------------------------------------------------------------------


def test_the_platform_sees_the_whole_province(app, world):
    d = board(app, world, "platform")
    assert (d.node.level, d.node.code) == ("province", "440000")
    assert d.summary.current.net_fen == 16400 + 25600 + 20000 + 9900 + 11800
    cities = {p.key: p.figures.net_fen for p in d.children}
    assert len(cities) == 21
    assert cities["440700"] == 16400 + 25600 + 20000
    assert cities["441800"] == 9900
    assert cities["440100"] == 11800


def test_city_staff_see_only_their_city_in_every_figure(app, world):
    d = board(app, world, "staff_jiangmen")
    assert (d.node.level, d.node.code) == ("city", "440700")
    jiangmen = 16400 + 25600 + 20000
    assert d.summary.current.net_fen == jiangmen
    assert d.summary.current.orders == 3
    assert {p.key for p in d.children if p.figures.orders} == {"440705", "440781"}
    assert sum(p.figures.net_fen for p in d.categories) == jiangmen
    assert sum(p.figures.net_fen for p in d.gi) == jiangmen
    assert {p.name for p in d.products} == {"新会陈皮", "柑普茶", "台山丝苗米"}
    assert {p.key for p in d.destinations.provinces} == {"440000", "110000"}
    assert d.buyers.buyers == 2  # a (two orders) and b (rice); c bought elsewhere
    assert sum(r.figures.net_fen for r in d.trend) == jiangmen


def test_city_staff_may_drill_into_their_counties_and_cooperatives_only(app, world):
    d = board(app, world, "staff_jiangmen", area="440705")
    assert d.node.level == "county"
    assert [p.name for p in d.children] == ["新会陈皮合作社"]
    assert [n.code for n in d.crumbs] == ["440700", "440705"]
    coop = board(app, world, "staff_jiangmen", coop=world.coops["taishan"])
    assert coop.summary.current.net_fen == 20000
    assert [n.level for n in coop.crumbs] == ["city", "county", "cooperative"]
    for place in ({"area": "441800"}, {"area": "441881"}, {"area": "440000"}):
        with pytest.raises(PermissionDeniedError):
            board(app, world, "staff_jiangmen", **place)
    with pytest.raises(PermissionDeniedError):
        board(app, world, "staff_jiangmen", coop=world.coops["yingde"])


def test_county_staff_see_their_county_not_their_city(app, world):
    d = board(app, world, "staff_xinhui")
    assert (d.node.level, d.node.code) == ("county", "440705")
    assert d.summary.current.net_fen == 16400 + 25600
    assert board(app, world, "staff_xinhui", coop=world.coops["xinhui"]).node.level == (
        "cooperative"
    )
    with pytest.raises(PermissionDeniedError):
        board(app, world, "staff_xinhui", area="440700")
    with pytest.raises(PermissionDeniedError):
        board(app, world, "staff_xinhui", coop=world.coops["taishan"])


def test_a_cooperative_admin_sees_their_cooperative_only(app, world):
    d = board(app, world, "admin_xinhui")
    assert (d.node.level, d.node.cooperative_id) == ("cooperative", world.coops["xinhui"])
    assert d.summary.current.net_fen == 16400 + 25600
    assert {p.name for p in d.children} == {"新会陈皮", "柑普茶"}  # products
    with pytest.raises(PermissionDeniedError):
        board(app, world, "admin_xinhui", coop=world.coops["taishan"])
    with pytest.raises(PermissionDeniedError):
        board(app, world, "admin_xinhui", area="440705")


@pytest.mark.parametrize("key", ["buyer_a", "farmer_xinhui"])
def test_buyers_and_farmers_have_no_dashboards(app, world, key):
    with pytest.raises(PermissionDeniedError):
        board(app, world, key)


def test_an_admin_of_a_cooperative_not_approved_has_no_dashboard(app, world):
    with app.app_context():
        db.session.execute(
            update(Cooperative)
            .where(Cooperative.id == world.coops["xinhui"])
            .values(status=CooperativeStatus.PENDING)
        )
        db.session.commit()
    with pytest.raises(PermissionDeniedError):
        board(app, world, "admin_xinhui")


def test_unknown_places_are_not_found(app, world):
    with pytest.raises(NotFoundError):
        board(app, world, "platform", area="449999")
    with pytest.raises(NotFoundError):
        board(app, world, "platform", area="110000")  # not in Guangdong
    with pytest.raises(NotFoundError):
        board(app, world, "platform", coop=999999)


def test_province_staff_see_everything_in_guangdong(app, world):
    d = board(app, world, "staff_province")
    assert d.node.level == "province"
    assert board(app, world, "staff_province", area="441800").summary.current.net_fen == 9900


# --- figures ----------------------------------------------------------------------------------


def test_key_figures_with_month_on_month_and_year_on_year(app, world):
    d = board(app, world, "admin_xinhui", kind="month")
    s = d.summary
    assert s.current.net_fen == 42000
    assert s.current.gmv_fen == 42000 + 3600
    assert s.current.refunds_fen == 3600
    assert (s.current.orders, s.current.paid_orders, s.current.units) == (2, 3, 4)
    assert s.current.aov_fen == 21000
    assert s.previous.net_fen == 0  # April: nothing from this cooperative
    assert s.last_year.net_fen == 12800
    assert s.growth["net_fen"].mom is None
    assert s.growth["net_fen"].yoy == pytest.approx(42000 / 12800 - 1)
    [may] = d.trend
    assert may.period.key == "2026-05"
    assert (may.figures.net_fen, may.buyers.buyers, may.buyers.repeat_buyers) == (42000, 1, 1)
    assert d.buyers.repeat_rate == 1.0


def test_taishan_grew_four_times_month_on_month(app, world):
    d = board(app, world, "platform", kind="month", coop=world.coops["taishan"])
    assert d.summary.previous.net_fen == 5000
    assert d.summary.growth["net_fen"].mom == pytest.approx(3.0)


def test_a_range_reads_the_same_from_months_and_days(app, world):
    """Spring: April and May whole from the monthly tables, and 20-30 March from days."""
    wide = DateRange(date(2026, 3, 20), date(2026, 5, 31))
    with app.app_context():
        node = services.resolve_node(db.session, db.session.get(User, world.users["platform"]))
        mixed = services._sum(db.session, services.ORDERS, node, wide, services.ORDER_MEASURES)
        daily = services._sum(
            db.session, services.ORDERS, node, wide, services.ORDER_MEASURES, by="day"
        )
    total = services._total(mixed, services.ORDER_MEASURES)
    assert total == services._total(daily, services.ORDER_MEASURES)
    assert total["gmv_fen"] - total["refunds_fen"] == 5000 + 83700


def test_breakdowns_by_category_gi_and_destination(app, world):
    d = board(app, world, "platform")
    categories = {p.key: p.figures.net_fen for p in d.categories}
    assert categories == {
        "dried": 12800 * 3,
        "tea": 3600 + 9900,
        "grain_oil": 20000,
        "fruit": 11800,
    }
    gi = {p.key: p.figures.net_fen for p in d.gi}
    assert gi == {"gi": 12800 * 3 + 9900, "other": 3600 + 20000 + 11800}
    dest = d.destinations
    assert dest.outside.net_fen == 25600 + 9900
    assert dest.outside_share == pytest.approx(35500 / 83700)
    assert dest.provinces[0].key == "440000"
    assert sum(p.share for p in dest.provinces) == pytest.approx(1)


def test_buyers_of_any_range_are_exact(app, world):
    with app.app_context():
        node = services.resolve_node(db.session, db.session.get(User, world.users["platform"]))
        whole_month = services.buyers(db.session, node, MAY)
        odd_range = services.buyers(
            db.session, node, DateRange(date(2026, 5, 3), date(2026, 5, 20))
        )
    # a and c bought twice (c from two cooperatives); b's second order was refunded.
    assert (whole_month.buyers, whole_month.repeat_buyers) == (3, 2)
    assert (odd_range.buyers, odd_range.repeat_buyers) == (3, 2)


def test_weeks_compare_with_the_same_iso_weeks_last_year(app, world):
    dr = services.snap_range(DateRange(date(2026, 5, 6), date(2026, 5, 12)), "week")
    assert dr == DateRange(date(2026, 5, 4), date(2026, 5, 17))
    assert services.last_year_range(dr, "week") == DateRange(date(2025, 5, 5), date(2025, 5, 18))
    assert services.previous_range(dr, "week") == DateRange(date(2026, 4, 20), date(2026, 5, 3))


def test_a_month_to_date_compares_with_the_same_days_of_the_month_before():
    dr = DateRange(date(2026, 10, 1), date(2026, 10, 20))
    assert services.previous_range(dr, "month") == DateRange(date(2026, 9, 1), date(2026, 9, 20))
    march = DateRange(date(2026, 3, 1), date(2026, 3, 31))
    assert services.previous_range(march, "month") == DateRange(date(2026, 2, 1), date(2026, 2, 28))
    days = DateRange(date(2026, 10, 5), date(2026, 10, 14))
    assert services.previous_range(days, "day") == DateRange(date(2026, 9, 25), date(2026, 10, 4))


@pytest.mark.parametrize(
    ("start", "end", "today", "expected"),
    [
        # Whole months from the monthly tables, the days around them from the daily ones.
        (
            "2026-03-20",
            "2026-05-31",
            "2026-10-01",
            Spans((date(2026, 4, 1), date(2026, 5, 1)), ((date(2026, 3, 20), date(2026, 3, 31)),)),
        ),
        # A month to date counts as whole: nothing can have been paid after today.
        (
            "2026-09-21",
            "2026-10-20",
            "2026-10-20",
            Spans((date(2026, 10, 1),), ((date(2026, 9, 21), date(2026, 9, 30)),)),
        ),
        (
            "2026-10-05",
            "2026-10-09",
            "2026-10-20",
            Spans((), ((date(2026, 10, 5), date(2026, 10, 9)),)),
        ),
        (
            "2026-09-21",
            "2026-10-19",
            "2026-10-20",
            Spans((), ((date(2026, 9, 21), date(2026, 10, 19)),)),
        ),
    ],
)
def test_a_range_splits_into_whole_months_and_days(start, end, today, expected):
    dr = DateRange(date.fromisoformat(start), date.fromisoformat(end))
    assert spans(dr, date.fromisoformat(today)) == expected


def test_active_cooperatives_count_paid_orders_in_the_last_30_days(app, world):
    with app.app_context():
        root = services.resolve_node(db.session, db.session.get(User, world.users["platform"]))
        active, registered = services.active_cooperatives(db.session, root, date(2026, 5, 31))
        assert (active, registered) == (4, 4)
        # On 19 June only orders from 21 May on are within 30 days: xinhui's refunded
        # order of 21 May still makes it active (it was paid).
        active, registered = services.active_cooperatives(db.session, root, date(2026, 6, 19))
        assert (active, registered) == (1, 4)
        jiangmen = services.resolve_node(
            db.session, db.session.get(User, world.users["platform"]), area="440700"
        )
        assert services.active_cooperatives(db.session, jiangmen, date(2026, 5, 31)) == (2, 2)
    d = board(app, world, "platform")
    [active_indicator] = [i for i in d.indicators if i.key == "active_cooperatives"]
    assert active_indicator.share == 1.0
    assert active_indicator.goal.value == 90  # the 2020 milestone applies in 2026
    assert active_indicator.progress.status == "met"  # 突破 90%: 100 is above it


def test_buyers_are_exact_for_cities_counties_and_weeks(app, world):
    with app.app_context():
        admin = db.session.get(User, world.users["platform"])
        jiangmen = services.resolve_node(db.session, admin, area="440700")
        xinhui = services.resolve_node(db.session, admin, area="440705")
        # a: 3 May and 20 May (xinhui); b: 4 May (taishan), 21 May refunded in full.
        assert services.buyers(db.session, jiangmen, MAY) == services.Buyers(2, 1)
        assert services.buyers(db.session, xinhui, MAY) == services.Buyers(1, 1)
        early = DateRange(date(2026, 5, 1), date(2026, 5, 10))
        assert services.buyers(db.session, jiangmen, early) == services.Buyers(2, 0)
        weeks = services.trend(db.session, jiangmen, services.snap_range(early, "week"), "week")
        by_week = {row.period.start: row.buyers for row in weeks}
        assert by_week[date(2026, 4, 27)] == services.Buyers(1, 0)  # a on Sunday 3 May
        assert by_week[date(2026, 5, 4)] == services.Buyers(1, 0)  # b on Monday 4 May
        county_days = services.trend(db.session, xinhui, early, "day")
        assert {r.period.start for r in county_days if r.buyers.buyers} == {date(2026, 5, 3)}
