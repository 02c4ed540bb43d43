"""Carrier tracking: the interface a carrier adapter implements, and an offline sandbox.

A pure module (no Flask, no database). Carrier tracking services (快递100 Kuaidi100,
快递鸟 Kdniao, or a carrier's own open platform) work by subscription: the platform
subscribes a waybill once, and the service then POSTs the waybill's tracking history to a
callback URL whenever it changes, signed so the callback can tell a real push from a
forged one. :class:`CarrierTracking` is that contract:

``carrier_codes``
    The :mod:`logistics.carriers` codes the adapter can follow.
``subscribe(carrier_code, waybill, *, phone=None)``
    Ask for pushes about a waybill (validated with
    :func:`logistics.carriers.validate_waybill`). ``phone`` is the recipient's phone
    number, which some carriers (SF) demand before they disclose a route. Raises
    :class:`TrackingError` (``untracked_carrier``, ``subscribe_failed``) or
    :class:`~logistics.carriers.WaybillError`.
``verify_push(body, headers, *, now=None) -> bool``
    Whether a pushed request carries a valid, fresh signature. ``headers`` is any
    case-insensitive or lower-case-keyed mapping; ``now`` defaults to the clock.
``parse_push(body, headers, *, now=None) -> list[TrackingUpdate]``
    Verify, then turn the push into updates, oldest first. Raises :class:`TrackingError`
    (``bad_signature``, ``stale``, ``bad_payload``).
``push_response(ok) -> (body, content_type)``
    What the service expects back (it retries until it gets an "ok").

A :class:`TrackingUpdate` is one step of a waybill's journey: ``status`` (one of
:class:`TrackingStatus`: accepted, in_transit, out_for_delivery, delivered, exception,
returned), a ``location`` text, an optional GB/T 2260 ``division_code``, the aware UTC time
``at``, the carrier's own ``message`` and the ``raw`` item it came from.

The sandbox
-----------

:class:`SandboxCarrier` needs no network. :meth:`SandboxCarrier.generate` makes a
realistic journey for a waybill, deterministic for a given seed and waybill: collected
in a Jiangmen county (新会, 台山, 开平, 恩平), via the 江门 hub and the 广州转运中心 to a
destination in the Pearl River Delta (深圳, 广州, 佛山, 东莞, 珠海), with now and then a
typhoon delay or a refused parcel sent back. :meth:`SandboxCarrier.push_request` builds the
request its callback would receive, modelled on Kuaidi100's subscription push (the whole
history, newest first, local Beijing times, numeric state codes)::

    POST <callback>
    Content-Type: application/json
    X-Sandbox-Timestamp: 1795766400
    X-Sandbox-Signature: 5f2c...   (64 hex digits)

    {"status": "polling", "message": "",
     "lastResult": {"com": "shunfeng", "nu": "SF1311029837165", "state": "3",
                    "ischeck": "1",
                    "data": [{"time": "2026-11-28 15:02:11", "context": "...",
                              "statusCode": "3", "status": "签收",
                              "location": "深圳市南山区", "areaCode": "440305000000",
                              "areaName": "广东省深圳市南山区"}, ...]}}

The signature is ``hex(HMAC-SHA256(secret, timestamp + "." + body))`` over the exact body
bytes, in the way of Stripe's and GitHub's webhooks rather than Kuaidi100's unkeyed
``MD5(param + salt)``; a push whose timestamp is more than five minutes from ``now`` is
refused as ``stale``, so a captured push cannot be replayed later. State codes follow
Kuaidi100's: 1 揽收, 0 在途, 5 派件, 3 签收, 2 疑难, 14 拒签, 6 退回, 4 退签, 7 转投, 8 清关.

Writing a real adapter
----------------------

A real adapter (say ``Kuaidi100Tracking``) is a class with the four members above: it
maps :mod:`logistics.carriers` codes to the service's company codes
(``Carrier.kuaidi100_code``), calls the service's subscribe API with the callback URL
``{PUBLIC_BASE_URL}/logistics/carriers/<code>/push``, checks the service's own signature
scheme in ``verify_push`` / ``parse_push`` (Kuaidi100 signs ``MD5(param + salt)``), turns
each history item into a :class:`TrackingUpdate` (times are Beijing time: make them
aware), and answers with the body the service expects from ``push_response``. Register
it in :func:`logistics.providers.tracking_provider` under a name and select it with the
``LOGISTICS_TRACKING_PROVIDER`` setting; nothing else changes: the webhook, the
checkpoints, the order moves and the journey only see :class:`TrackingUpdate` values.

Text messages
-------------

:class:`SmsSender` is the contract of a text-message provider (Aliyun SMS, Tencent Cloud
SMS: both send a registered template with parameters to a mainland number);
:class:`LoggingSms`, the default, only writes the message to the log.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from market.errors import DomainError

from .carriers import CARRIERS, OWN_DELIVERY, validate_waybill

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CarrierTracking",
    "LoggingSms",
    "SandboxCarrier",
    "SmsSender",
    "TrackingError",
    "TrackingStatus",
    "TrackingUpdate",
    "sign_push",
    "verify_push_signature",
]

_log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")
TIMESTAMP_HEADER = "X-Sandbox-Timestamp"
SIGNATURE_HEADER = "X-Sandbox-Signature"
#: How far a push's timestamp may be from the receiver's clock.
PUSH_TOLERANCE = timedelta(minutes=5)
_MIN_SECRET = 16
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class TrackingStatus(enum.StrEnum):
    ACCEPTED = "accepted"  #: 揽收
    IN_TRANSIT = "in_transit"  #: 运输中
    OUT_FOR_DELIVERY = "out_for_delivery"  #: 派送中
    DELIVERED = "delivered"  #: 已签收
    EXCEPTION = "exception"  #: 异常 (delay, refused, wrong address)
    RETURNED = "returned"  #: 已退回


#: Statuses after which a waybill changes no more.
FINAL_STATUSES = frozenset({TrackingStatus.DELIVERED, TrackingStatus.RETURNED})

# Kuaidi100 state codes -> our statuses, and the Chinese word the push carries.
_STATE_TO_STATUS = {
    "1": TrackingStatus.ACCEPTED,
    "0": TrackingStatus.IN_TRANSIT,
    "7": TrackingStatus.IN_TRANSIT,
    "8": TrackingStatus.IN_TRANSIT,
    "5": TrackingStatus.OUT_FOR_DELIVERY,
    "3": TrackingStatus.DELIVERED,
    "2": TrackingStatus.EXCEPTION,
    "14": TrackingStatus.EXCEPTION,
    "6": TrackingStatus.RETURNED,
    "4": TrackingStatus.RETURNED,
}
_STATUS_TO_STATE = {
    TrackingStatus.ACCEPTED: ("1", "揽收"),
    TrackingStatus.IN_TRANSIT: ("0", "在途"),
    TrackingStatus.OUT_FOR_DELIVERY: ("5", "派件"),
    TrackingStatus.DELIVERED: ("3", "签收"),
    TrackingStatus.EXCEPTION: ("2", "疑难"),
    TrackingStatus.RETURNED: ("6", "退回"),
}


class TrackingError(DomainError):
    """A tracking subscription or push failed; ``code`` is stable (module docstring)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True)
class TrackingUpdate:
    """One step of a waybill's journey as the carrier reports it."""

    waybill: str
    status: TrackingStatus
    location: str
    at: datetime
    division_code: str | None = None
    message: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("TrackingUpdate.at must be timezone-aware")
        object.__setattr__(self, "at", self.at.astimezone(UTC))
        object.__setattr__(self, "status", TrackingStatus(self.status))


@runtime_checkable
class CarrierTracking(Protocol):
    """What a carrier tracking adapter provides (see the module docstring)."""

    carrier_codes: frozenset[str]

    def subscribe(self, carrier_code: str, waybill: str, *, phone: str | None = None) -> None:
        """Ask the service to push updates about ``waybill``."""

    def verify_push(
        self, body: bytes, headers: Mapping[str, str], *, now: datetime | None = None
    ) -> bool:
        """Whether a pushed request is authentic and fresh."""

    def parse_push(
        self, body: bytes, headers: Mapping[str, str], *, now: datetime | None = None
    ) -> list[TrackingUpdate]:
        """Verify a pushed request and return its updates, oldest first."""

    def push_response(self, ok: bool) -> tuple[bytes, str]:
        """The body and content type to answer a push with."""


# -- signatures ---------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def sign_push(secret: bytes, body: bytes, timestamp: int) -> str:
    """``hex(HMAC-SHA256(secret, f"{timestamp}." + body))``."""
    if len(secret) < _MIN_SECRET:
        raise ValueError(f"The push secret must have at least {_MIN_SECRET} bytes")
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _check_signature(
    secret: bytes,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime | None,
    tolerance: timedelta,
) -> None:
    stamp, signature = _header(headers, TIMESTAMP_HEADER), _header(headers, SIGNATURE_HEADER)
    if not stamp or not signature:
        raise TrackingError("bad_signature", "The push is not signed")
    stamp = stamp.strip()
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise TrackingError("bad_signature", "The push timestamp is malformed")
    expected = sign_push(secret, body, int(stamp))
    given = signature.strip().lower()
    if not given.isascii() or not hmac.compare_digest(expected, given):
        raise TrackingError("bad_signature", "The push signature does not match")
    moment = now or datetime.now(UTC)
    if abs(moment.timestamp() - int(stamp)) > tolerance.total_seconds():
        raise TrackingError("stale", "The push is too old or from the future")


def verify_push_signature(
    secret: bytes,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: datetime | None = None,
    tolerance: timedelta = PUSH_TOLERANCE,
) -> bool:
    """Whether ``headers`` sign ``body`` with ``secret`` and the timestamp is fresh."""
    try:
        _check_signature(secret, body, headers, now, tolerance)
    except TrackingError:
        return False
    return True


# -- the sandbox --------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    name: str
    division: str


_ORIGINS = (
    _Place("江门市新会区", "440705"),
    _Place("江门市台山市", "440781"),
    _Place("江门市开平市", "440783"),
    _Place("江门市恩平市", "440785"),
)
_ORIGIN_HUB = _Place("江门中转场", "440703")
_GUANGZHOU_HUB = _Place("广州转运中心", "440111")
#: Destination -> the hub that delivers it (None: the 广州转运中心 itself).
_DESTINATIONS: tuple[tuple[_Place, _Place | None], ...] = (
    (_Place("深圳市南山区", "440305"), _Place("深圳宝安中转场", "440306")),
    (_Place("广州市天河区", "440106"), None),
    (_Place("佛山市禅城区", "440604"), _Place("佛山顺德中转场", "440606")),
    (_Place("东莞市", "441900"), _Place("东莞中转场", "441900")),
    (_Place("珠海市香洲区", "440402"), _Place("珠海中转场", "440402")),
)
_COURIERS = ("陈", "李", "黄", "张", "梁", "林", "何", "吴")
_AREA_NAMES = {p.division: "广东省" + p.name for p in _ORIGINS} | {
    d.division: "广东省" + d.name for d, _ in _DESTINATIONS
}

Outcome = Literal["delivered", "exception", "returned"]

# Couriers deliver from 08:00 to 20:00 Beijing time; sorting centres work around the clock.
_DAYTIME_STATUSES = frozenset({TrackingStatus.OUT_FOR_DELIVERY, TrackingStatus.DELIVERED})
_WORK_START_HOUR, _WORK_END_HOUR = 8, 20


def _in_working_hours(moment: datetime, rng: random.Random) -> datetime:
    """``moment``, or the next working morning (08:00-08:59 local) when outside hours."""
    local = moment.astimezone(SHANGHAI)
    if _WORK_START_HOUR <= local.hour < _WORK_END_HOUR:
        return moment
    day = local.date() + timedelta(days=1) if local.hour >= _WORK_END_HOUR else local.date()
    morning = datetime(
        day.year, day.month, day.day, _WORK_START_HOUR, rng.randrange(60), tzinfo=SHANGHAI
    )
    return morning.astimezone(UTC)


class SandboxCarrier:
    """An offline tracking service: generates journeys and signs pushes like a real one."""

    def __init__(
        self,
        secret: bytes,
        *,
        seed: int | str = 0,
        tolerance: timedelta = PUSH_TOLERANCE,
    ) -> None:
        if len(secret) < _MIN_SECRET:
            raise ValueError(f"The push secret must have at least {_MIN_SECRET} bytes")
        self._secret = secret
        self.seed = seed
        self.tolerance = tolerance
        self.carrier_codes = frozenset(c for c in CARRIERS if c != OWN_DELIVERY)
        #: Subscribed waybills -> carrier code.
        self.subscriptions: dict[str, str] = {}

    # CarrierTracking ------------------------------------------------------------

    def subscribe(self, carrier_code: str, waybill: str, *, phone: str | None = None) -> None:
        """Record a subscription (validates the carrier and the waybill)."""
        code = str(carrier_code).strip().upper()
        number = validate_waybill(code, waybill)
        if code not in self.carrier_codes:
            raise TrackingError("untracked_carrier", f"{code} waybills cannot be tracked")
        self.subscriptions[number] = code

    def verify_push(
        self, body: bytes, headers: Mapping[str, str], *, now: datetime | None = None
    ) -> bool:
        return verify_push_signature(self._secret, body, headers, now=now, tolerance=self.tolerance)

    def parse_push(
        self, body: bytes, headers: Mapping[str, str], *, now: datetime | None = None
    ) -> list[TrackingUpdate]:
        _check_signature(self._secret, body, headers, now, self.tolerance)
        try:
            payload = json.loads(body)
            result = payload["lastResult"]
            waybill = str(result["nu"])
            items = result["data"]
            if not isinstance(items, list):
                raise TypeError("data is not a list")
            updates = [_update_from_item(waybill, item) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise TrackingError("bad_payload", f"The push cannot be read: {exc}") from None
        return sorted(updates, key=lambda u: u.at)

    def push_response(self, ok: bool) -> tuple[bytes, str]:
        body = {
            "result": ok,
            "returnCode": "200" if ok else "500",
            "message": "成功" if ok else "失败",
        }
        return json.dumps(body, ensure_ascii=False).encode(), "application/json"

    # sandbox ---------------------------------------------------------------------

    def generate(
        self,
        carrier_code: str,
        waybill: str,
        shipped_at: datetime,
        *,
        outcome: Outcome | None = None,
    ) -> list[TrackingUpdate]:
        """A realistic journey for ``waybill`` from ``shipped_at``, oldest update first.

        Deterministic for the same seed, carrier and waybill. ``outcome`` forces the
        ending; by default about one parcel in eight meets a delay and one in twenty-five
        is refused and returned.
        """
        code = str(carrier_code).strip().upper()
        number = validate_waybill(code, waybill)
        if shipped_at.tzinfo is None:
            raise ValueError("shipped_at must be timezone-aware")
        carrier_name = CARRIERS[code].name_zh
        # Not security: a reproducible simulation.
        rng = random.Random(f"{self.seed}|{code}|{number}")  # noqa: S311
        if outcome is None:
            draw = rng.random()
            outcome = "returned" if draw < 0.04 else "exception" if draw < 0.16 else "delivered"
        origin = rng.choice(_ORIGINS)
        destination, dest_hub = rng.choice(_DESTINATIONS)
        courier = f"{rng.choice(_COURIERS)}师傅"
        phone = f"1{rng.choice('3589')}{rng.randrange(10)}****{rng.randrange(10_000):04d}"
        moment = shipped_at.astimezone(UTC).replace(microsecond=0)
        steps: list[TrackingUpdate] = []

        def step(status: TrackingStatus, place: _Place, message: str, lo: int, hi: int) -> None:
            nonlocal moment
            if steps:
                moment += timedelta(minutes=rng.randint(lo, hi), seconds=rng.randrange(60))
            if status in _DAYTIME_STATUSES:
                moment = _in_working_hours(moment, rng)
            steps.append(
                TrackingUpdate(number, status, place.name, moment, place.division, message)
            )

        transit = TrackingStatus.IN_TRANSIT
        step(TrackingStatus.ACCEPTED, origin, f"【{origin.name}】{carrier_name}已揽收", 0, 0)
        step(transit, origin, f"快件已从【{origin.name}】发出，准备发往【江门中转场】", 40, 150)
        step(transit, _ORIGIN_HUB, "快件到达【江门中转场】", 40, 90)
        step(transit, _ORIGIN_HUB, "快件已从【江门中转场】发出，准备发往【广州转运中心】", 60, 240)
        step(transit, _GUANGZHOU_HUB, "快件到达【广州转运中心】", 90, 150)
        last_hub = _GUANGZHOU_HUB
        if dest_hub is not None:
            step(
                transit,
                _GUANGZHOU_HUB,
                f"快件已从【广州转运中心】发出，准备发往【{dest_hub.name}】",
                60,
                300,
            )
            step(transit, dest_hub, f"快件到达【{dest_hub.name}】", 60, 150)
            last_hub = dest_hub
        if outcome == "exception":
            step(
                TrackingStatus.EXCEPTION,
                last_hub,
                "受台风天气影响，快件派送延误，我们将尽快为您派送",
                30,
                120,
            )
            step(transit, last_hub, f"天气好转，快件已从【{last_hub.name}】恢复发运", 600, 1200)
        step(
            TrackingStatus.OUT_FOR_DELIVERY,
            destination,
            f"快件交给{courier}，正在派送途中（联系电话：{phone}）",
            60,
            240,
        )
        if outcome == "returned":
            step(TrackingStatus.EXCEPTION, destination, "收件人拒收，快件将退回寄件人", 30, 180)
            step(transit, _GUANGZHOU_HUB, "退回件到达【广州转运中心】", 300, 600)
            step(TrackingStatus.RETURNED, origin, "快件已退回，寄件人已签收", 600, 1440)
        else:
            receiver = rng.choice(("本人", "家人", "快递柜", "前台"))
            step(
                TrackingStatus.DELIVERED,
                destination,
                f"快件已签收，签收人：{receiver}。感谢使用{carrier_name}",
                20,
                180,
            )
        return steps

    def push_request(
        self,
        carrier_code: str,
        updates: list[TrackingUpdate],
        *,
        timestamp: datetime | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The signed request the callback receives for ``updates`` of one waybill."""
        if not updates:
            raise ValueError("A push carries at least one update")
        waybills = {u.waybill for u in updates}
        if len(waybills) != 1:
            raise ValueError("A push carries the updates of one waybill")
        ordered = sorted(updates, key=lambda u: u.at, reverse=True)
        latest = ordered[0]
        carrier = CARRIERS[str(carrier_code).strip().upper()]
        payload = {
            "status": "polling",
            "message": "",
            "lastResult": {
                "com": carrier.kuaidi100_code,
                "nu": latest.waybill,
                "state": _STATUS_TO_STATE[latest.status][0],
                "ischeck": "1" if latest.status in FINAL_STATUSES else "0",
                "data": [_item_from_update(u) for u in ordered],
            },
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        stamp = int((timestamp or datetime.now(UTC)).timestamp())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign_push(self._secret, body, stamp),
        }
        return body, headers


def _item_from_update(update: TrackingUpdate) -> dict[str, str]:
    state, word = _STATUS_TO_STATE[update.status]
    local = update.at.astimezone(SHANGHAI).strftime(_TIME_FORMAT)
    item = {
        "time": local,
        "ftime": local,
        "context": update.message,
        "statusCode": state,
        "status": word,
        "location": update.location,
    }
    if update.division_code:
        item["areaCode"] = update.division_code + "000000"
        item["areaName"] = _AREA_NAMES.get(update.division_code, update.location)
    return item


def _update_from_item(waybill: str, item: object) -> TrackingUpdate:
    if not isinstance(item, Mapping):
        raise TypeError("an update is not an object")
    status = _STATE_TO_STATUS.get(str(item.get("statusCode", "")))
    if status is None:
        raise ValueError(f"unknown state code {item.get('statusCode')!r}")
    at = datetime.strptime(str(item["time"]), _TIME_FORMAT).replace(tzinfo=SHANGHAI)
    area = str(item.get("areaCode") or "")
    division = area[:6] if len(area) >= 6 and area[:6].isdigit() else None
    location = str(item.get("location") or item.get("areaName") or "")
    return TrackingUpdate(
        waybill=waybill,
        status=status,
        location=location,
        at=at,
        division_code=division,
        message=str(item.get("context") or ""),
        raw=dict(item),
    )


# -- text messages ------------------------------------------------------------------


@runtime_checkable
class SmsSender(Protocol):
    """What a text-message provider offers: one templated message to one mainland number."""

    def send(self, phone: str, template: str, params: Mapping[str, str]) -> None:
        """Send template ``template`` with ``params`` to ``phone`` (11 digits)."""


class LoggingSms:
    """The default provider: writes each message to the log instead of sending it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def send(self, phone: str, template: str, params: Mapping[str, str]) -> None:
        masked = phone[:3] + "****" + phone[-4:] if len(phone) == 11 else "***"
        self.sent.append((phone, template, dict(params)))
        _log.info("SMS to %s: %s %s", masked, template, dict(params))
