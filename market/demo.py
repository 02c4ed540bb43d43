"""Deterministic, true-to-life demo data. Loading twice changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from market import uscc
from market.auth import services as accounts
from market.auth.models import Role, User
from market.catalog import demo as catalog_demo
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.types import utcnow

DEMO_PASSWORD = "demo12345"  # noqa: S105 - documented demo login, never used in production


@dataclass(frozen=True)
class DemoCoop:
    key: str
    name: str
    division_code: str
    village: str
    intro: str
    admin_phone: str
    admin_name: str
    farmers: tuple[tuple[str, str], ...]


COOPERATIVES: tuple[DemoCoop, ...] = (
    DemoCoop(
        "xinhui",
        "新会区会城陈皮专业合作社",
        "440705",
        "会城街道茶坑村",
        "新会陈皮国家地理标志产品，选用新会大红柑，三年以上自然陈化。",
        "13700000001",
        "陈志强",
        (("13600000101", "李秀英"), ("13600000102", "梁国华")),
    ),
    DemoCoop(
        "yingde",
        "英德市英红九号茶叶专业合作社",
        "441881",
        "横石塘镇",
        "英德红茶产区核心茶园，英红九号手工采摘，金毫显露、香高味浓。",
        "13700000002",
        "黄丽萍",
        (("13600000201", "邓伟"), ("13600000202", "罗小燕")),
    ),
    DemoCoop(
        "meizhou",
        "梅县区金柚种植专业合作社",
        "441403",
        "松口镇",
        "梅州金柚（沙田柚）地理标志产品，山地种植，果肉清甜多汁。",
        "13700000003",
        "古建新",
        (("13600000301", "刘春梅"),),
    ),
    DemoCoop(
        "zhanjiang",
        "湛江市麻章区对虾养殖专业合作社",
        "440811",
        "湖光镇",
        "湛江对虾养殖基地，高位池生态养殖，鲜活冷链直发。",
        "13700000004",
        "吴海生",
        (("13600000401", "陈阿水"), ("13600000402", "林月娥")),
    ),
    DemoCoop(
        "xuwen",
        "徐闻县菠萝种植专业合作社",
        "440825",
        "曲界镇",
        "“菠萝的海”核心产区，徐闻菠萝地理标志产品，火山红土孕育香甜。",
        "13700000005",
        "王德明",
        (("13600000501", "蔡玉兰"),),
    ),
    DemoCoop(
        "huazhou",
        "化州市橘红专业合作社",
        "440982",
        "平定镇",
        "化州橘红国家地理标志产品，道地药材，毛橘红片与橘红胎。",
        "13700000006",
        "梁锦荣",
        (("13600000601", "杨桂芳"),),
    ),
    DemoCoop(
        "zengcheng",
        "广州市增城区荔枝专业合作社",
        "440118",
        "仙村镇",
        "增城荔枝地理标志产品，挂绿、仙进奉、糯米糍，当天采摘顺丰直达。",
        "13700000007",
        "钟永康",
        (("13600000701", "何丽娟"), ("13600000702", "朱伟强")),
    ),
    DemoCoop(
        "yangjiang",
        "阳西县海产品渔业专业合作社",
        "441721",
        "沙扒镇",
        "阳江近海捕捞与晒制海产，程村蚝、虾干、鱼干，渔船直供。",
        "13700000008",
        "冯大海",
        (("13600000801", "谭水娣"),),
    ),
)

ADMIN = ("13900000001", "省平台管理员")
STAFF = (
    ("13900000002", "清远市供销社 张敏", "441800"),
    ("13900000003", "新会区供销社 周红", "440705"),
)
BUYERS = (("13500000001", "王小明"), ("13500000002", "Lucy Chen"))


@dataclass
class Summary:
    created: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            "Demo data ready"
            + (f" ({len(self.created)} records added)." if self.created else " (nothing to add)."),
            f"All demo accounts use the password: {DEMO_PASSWORD}",
            f"  platform admin       {ADMIN[0]}",
            *(f"  供销社 staff          {phone}  {name} ({code})" for phone, name, code in STAFF),
            *(f"  cooperative admin    {c.admin_phone}  {c.name}" for c in COOPERATIVES[:3]),
            *(
                f"  farmer               {c.farmers[0][0]}  {c.farmers[0][1]}"
                for c in COOPERATIVES[:2]
            ),
            *(f"  buyer                {phone}  {name}" for phone, name in BUYERS),
        ]
        return "\n".join(lines)


def demo_uscc(division_code: str, serial: int) -> str:
    """A well-formed 统一社会信用代码 for a farmers' cooperative (type 93)."""
    body = f"93{division_code}MA{serial:07d}"
    return body + uscc.check_char(body)


def _user(
    session: Session,
    summary: Summary,
    phone: str,
    name: str,
    role: Role,
    cooperative: Cooperative | None = None,
    division_code: str | None = None,
) -> User:
    user = accounts.find_by_phone(session, phone)
    if user is None:
        user = accounts.register(session, phone, DEMO_PASSWORD, name=name)
        user.role = role
        user.cooperative_id = cooperative.id if cooperative else None
        user.division_code = division_code
        session.flush()
        summary.created.append(f"user {phone}")
    return user


def load(session: Session) -> Summary:
    summary = Summary()
    _user(session, summary, ADMIN[0], ADMIN[1], Role.PLATFORM_ADMIN)
    for phone, name, code in STAFF:
        _user(session, summary, phone, name, Role.SUPPLY_STAFF, division_code=code)
    for phone, name in BUYERS:
        _user(session, summary, phone, name, Role.BUYER)
    for index, spec in enumerate(COOPERATIVES, start=1):
        coop = session.scalars(select(Cooperative).where(Cooperative.name == spec.name)).first()
        if coop is None:
            coop = Cooperative(
                name=spec.name,
                division_code=spec.division_code,
                village=spec.village,
                intro=spec.intro,
                uscc=demo_uscc(spec.division_code, index),
                status=CooperativeStatus.APPROVED,
                approved_at=utcnow(),
                contact_phone=spec.admin_phone,
            )
            session.add(coop)
            session.flush()
            summary.created.append(f"cooperative {spec.key}")
        _user(session, summary, spec.admin_phone, spec.admin_name, Role.COOP_ADMIN, coop)
        farmers = [
            _user(session, summary, phone, name, Role.FARMER, coop) for phone, name in spec.farmers
        ]
        summary.created += catalog_demo.load_products(
            session, coop, spec.key, farmers[0].id if farmers else None, **_catalog_settings()
        )
    # Batches, trace codes and events for some of those products (imported here:
    # traceability depends on market, never the other way at import time).
    from traceability import demo as trace_demo

    summary.created += trace_demo.load(session, **_catalog_settings())
    # Paid orders over the last months, and the dashboards' summaries rebuilt from them.
    from market.reports import demo as reports_demo
    from market.reports import rollups

    summary.created += reports_demo.load(session)
    # Their parcels, shipments, carrier updates and RFID reads (before the rebuild: the
    # dashboards count RFID-read shipments).
    from logistics import demo as logistics_demo

    summary.created += logistics_demo.load(
        session, company_prefix=_catalog_settings()["company_prefix"]
    )
    rollups.rebuild(session)
    return summary


def _catalog_settings() -> dict:
    """GS1 prefix and media folder from the running app (photos are skipped without one)."""
    from flask import current_app, has_app_context

    from market.config import DEFAULTS

    if not has_app_context():
        return {"company_prefix": DEFAULTS["GS1_COMPANY_PREFIX"], "media_dir": None}
    return {
        "company_prefix": current_app.config["GS1_COMPANY_PREFIX"],
        "media_dir": Path(current_app.config["MEDIA_DIR"]),
    }
