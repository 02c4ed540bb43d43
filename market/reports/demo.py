"""Demo sales for the dashboards: paid orders of the demo cooperatives over 14 months.

Called from market.demo after the products exist. Deterministic (one seeded generator,
dates counted back from today in Beijing time) and idempotent: the demo buyers are made
together with their orders, so if the first of them exists nothing is added. Orders are
written as history (paid, shipped, completed, some refunded), each with a succeeded
payment of its own, and never touch the products' stock.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from market.auth import services as accounts
from market.auth.models import Role
from market.catalog.models import Product, ProductStatus
from market.cooperatives.models import Cooperative, CooperativeStatus
from market.orders.models import Order, OrderEvent, OrderLine, OrderStatus
from market.payments.models import IntentStatus, PaymentIntent
from market.reports import periods

SEED = 20130510  # the plan's date of issue
DAYS = 430
#: Demo buyers: (phone, name, address division code, street address).
BUYERS: tuple[tuple[str, str, str, str], ...] = (
    ("13500100001", "陈嘉欣", "440106", "天河路 208 号"),
    ("13500100002", "黄志明", "440104", "中山五路 33 号"),
    ("13500100003", "李婉婷", "440305", "科技园南区 6 栋"),
    ("13500100004", "张伟", "440304", "福华三路 88 号"),
    ("13500100005", "梁淑仪", "440604", "祖庙路 12 号"),
    ("13500100006", "吴家豪", "441900", "东城大道 66 号"),
    ("13500100007", "何丽华", "440703", "建设路 5 号"),
    ("13500100008", "林晓东", "440507", "金平路 19 号"),
    ("13500100009", "郑美玲", "441302", "江北路 7 号"),
    ("13500100010", "罗建国", "440402", "拱北迎宾南路 1 号"),
    ("13500100011", "周敏", "440113", "市桥街 3 号"),
    ("13500100012", "谢志强", "445102", "湘桥区西马路 4 号"),
    ("13500100013", "王芳", "330100", "西湖区文三路 90 号"),
    ("13500100014", "刘洋", "110000", "朝阳区建国路 1 号"),
    ("13500100015", "孙丽", "310000", "浦东新区世纪大道 100 号"),
    ("13500100016", "赵磊", "320100", "玄武区中山东路 18 号"),
    ("13500100017", "钱佳", "430100", "芙蓉区五一大道 200 号"),
    ("13500100018", "冯涛", "350200", "思明区思明南路 422 号"),
    ("13500100019", "蒋雪", "510100", "锦江区春熙路 10 号"),
    ("13500100020", "韩梅", "450100", "青秀区民族大道 39 号"),
    ("13500100021", "杨帆", "810000", "九龙弥敦道 300 号"),
    ("13500100022", "朱琳", "440803", "人民大道 50 号"),
)
#: How often each buyer orders (weights): some come back often, most now and then.
BUYER_WEIGHTS = (9, 7, 8, 6, 5, 5, 4, 3, 3, 4, 3, 2, 4, 3, 3, 2, 2, 2, 1, 1, 1, 2)


def load(session: Session, today=None) -> list[str]:
    """Add the demo orders unless they are there; returns what was added."""
    from market.demo import DEMO_PASSWORD

    if accounts.find_by_phone(session, BUYERS[0][0]) is not None:
        return []
    products = list(
        session.execute(
            select(Product, Cooperative)
            .join(Cooperative, Cooperative.id == Product.cooperative_id)
            .where(
                Cooperative.status == CooperativeStatus.APPROVED,
                Product.status.in_((ProductStatus.ON_SALE, ProductStatus.SOLD_OUT)),
            )
            .order_by(Product.id)
        )
    )
    if not products:
        return []
    rng = random.Random(SEED)  # noqa: S311 - demo data, reproducible on purpose
    buyers = []
    for phone, name, _code, _street in BUYERS:
        user = accounts.register(session, phone, DEMO_PASSWORD, name=name)
        user.role = Role.BUYER
        buyers.append(user)
    session.flush()
    today = today or periods.local_today()
    by_coop: dict[int, list[Product]] = {}
    for product, coop in products:
        by_coop.setdefault(coop.id, []).append(product)
    coop_ids = sorted(by_coop)
    # Larger, older cooperatives sell more; one has been quiet for two months (it shows
    # as not active online).
    coop_weights = [max(1, 8 - index) for index in range(len(coop_ids))]
    quiet = coop_ids[-1] if len(coop_ids) > 2 else None
    sequence: dict[str, int] = {}
    made: list[tuple[PaymentIntent, Order]] = []
    for back in range(DAYS, -1, -1):
        day = today - timedelta(days=back)
        # Busier towards now (the platform grows), and around the Spring Festival and
        # the Mid-Autumn Festival, when people send food home.
        growth = 0.6 + 0.8 * (DAYS - back) / DAYS
        festive = 1.8 if (day.month, day.day) >= (1, 10) and day.month <= 2 else 1.0
        festive = 1.5 if day.month == 9 else festive
        count = _poisson(rng, 1.6 * growth * festive)
        for _ in range(count):
            coop_id = rng.choices(coop_ids, coop_weights)[0]
            if coop_id == quiet and back < 60:
                continue
            buyer_index = rng.choices(range(len(buyers)), BUYER_WEIGHTS)[0]
            made.append(
                _order(
                    session,
                    rng,
                    day,
                    back,
                    by_coop[coop_id],
                    buyers[buyer_index],
                    buyer_index,
                    sequence,
                )
            )
    # Payments first: orders point at them, and the two are not related in the mapper.
    session.add_all([intent for intent, _order in made])
    session.flush()
    session.add_all([order for _intent, order in made])
    session.flush()
    return [f"demo orders {len(made)}"]


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small means used here.
    limit, k, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _order(
    session, rng, day, back, products, buyer, buyer_index, sequence
) -> tuple[PaymentIntent, Order]:
    chosen = rng.sample(products, k=1 if len(products) == 1 or rng.random() < 0.75 else 2)
    local = datetime.combine(day, time(8, 0), tzinfo=periods.SHANGHAI) + timedelta(
        minutes=rng.randrange(0, 14 * 60)
    )
    created_at = local.astimezone(UTC)
    paid_at = created_at + timedelta(minutes=rng.randrange(1, 20))
    lines = [
        OrderLine(
            product_id=p.id,
            farmer_id=p.farmer_id,
            title=p.title,
            unit=p.unit,
            unit_price_fen=p.price_fen,
            quantity=rng.choice((1, 1, 1, 2, 2, 3)),
        )
        for p in chosen
    ]
    total = sum(line.unit_price_fen * line.quantity for line in lines)
    key = day.strftime("%Y%m%d")
    sequence[key] = sequence.get(key, 900000) + 1
    _phone, name, code, street = BUYERS[buyer_index]
    roll = rng.random()
    if back > 20:
        status = OrderStatus.COMPLETED
    elif back > 4:
        status = OrderStatus.SHIPPED
    else:
        status = OrderStatus.PAID
    refunded = 0
    if roll < 0.035 and back > 3:
        status, refunded = OrderStatus.REFUNDED, total
    elif roll < 0.06 and back > 3:
        refunded = lines[0].unit_price_fen
    intent = PaymentIntent(
        id=f"pi_demo{key}{sequence[key]}",
        amount=total,
        status=IntentStatus.SUCCEEDED,
        description=f"粤农优品 {lines[0].title}",
        metadata_={"buyer": str(buyer.id), "demo": "reports"},
        provider="sandbox",
        attempt=1,
        amount_received=total,
        amount_refunded=refunded,
        created_at=created_at,
        succeeded_at=paid_at,
    )
    order = Order(
        number=f"YN{key}{sequence[key]:06d}",
        buyer_id=buyer.id,
        cooperative_id=products[0].cooperative_id,
        status=status,
        total_fen=total,
        refunded_fen=refunded,
        payment_intent_id=intent.id,
        recipient=name,
        phone=BUYERS[buyer_index][0],
        division_code=code,
        address=street,
        expires_at=created_at + timedelta(minutes=30),
        created_at=created_at,
        paid_at=paid_at,
        shipped_at=paid_at + timedelta(days=1) if back > 4 else None,
        delivered_at=paid_at + timedelta(days=3) if back > 20 else None,
        completed_at=paid_at + timedelta(days=7) if back > 20 else None,
        refunded_at=paid_at + timedelta(days=2) if status is OrderStatus.REFUNDED else None,
    )
    order.lines = lines
    order.events = [
        OrderEvent(
            action="place",
            from_status=OrderStatus.PENDING_PAYMENT,
            to_status=OrderStatus.PENDING_PAYMENT,
            actor_id=buyer.id,
            created_at=created_at,
        ),
        OrderEvent(
            action="pay",
            from_status=OrderStatus.PENDING_PAYMENT,
            to_status=OrderStatus.PAID,
            note=f"payment {intent.id}",
            created_at=paid_at,
        ),
    ]
    return intent, order
