"""Drive the offline carrier: push a shipment's (generated) tracking history to our webhook.

The sandbox carrier (logistics.interfaces.SandboxCarrier) makes up a realistic journey
for a waybill; here it is played back faster than real time (LOGISTICS_SANDBOX["speed"])
and each push is delivered the way the real service delivers it: a signed POST to
``/logistics/carriers/<code>/push``, either through the app itself ("inprocess", no
network) or over HTTP to PUBLIC_BASE_URL ("http").
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, replace
from datetime import datetime

from flask import Flask

from logistics import providers
from logistics.interfaces import SandboxCarrier, TrackingUpdate
from logistics.models import Shipment
from market.types import utcnow


@dataclass(frozen=True)
class PushOutcome:
    #: Updates in the push (the history so far) and the status code the webhook gave.
    sent: int
    status: int
    #: When the next update falls due (None: the journey is over).
    next_at: datetime | None


def journey_for(
    app: Flask, shipment: Shipment, *, speed: float | None = None
) -> list[TrackingUpdate]:
    """The shipment's whole sandbox journey on the compressed clock: deterministic for a
    shipment (its carrier, waybill and shipping time), so pushes repeat exactly."""
    carrier = providers.tracking_provider(app)
    if not isinstance(carrier, SandboxCarrier):
        raise RuntimeError("the tracking provider is not the sandbox")
    settings = app.config["LOGISTICS_SANDBOX"]
    speed = max(float(speed or settings.get("speed") or 1), 1.0)
    updates = carrier.generate(
        shipment.carrier_code,
        shipment.waybill,
        shipment.shipped_at,
        outcome=settings.get("outcome"),
    )
    start = shipment.shipped_at
    return [replace(u, at=start + (u.at - start) / speed) for u in updates]


def _deliver(app: Flask, code: str, body: bytes, headers: dict[str, str]) -> int:
    path = f"/logistics/carriers/{code}/push"
    if app.config["LOGISTICS_SANDBOX"].get("deliver") == "http":
        url = app.config["PUBLIC_BASE_URL"].rstrip("/") + path
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own URL
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
    with app.test_client() as client:
        return client.post(path, data=body, headers=headers).status_code


def push_due(
    app: Flask, shipment: Shipment, *, now: datetime | None = None, speed: float | None = None
) -> PushOutcome:
    """Push the journey's history up to ``now``, as the service does after each step.

    Pushing again changes nothing the webhook has not seen (the same steps at the same
    times); a larger ``speed`` makes more of the journey due at once.
    """
    now = now or utcnow()
    updates = journey_for(app, shipment, speed=speed)
    due = [u for u in updates if u.at <= now]
    later = [u for u in updates if u.at > now]
    if not due:
        return PushOutcome(0, 0, later[0].at if later else None)
    carrier = providers.tracking_provider(app)
    body, headers = carrier.push_request(shipment.carrier_code, due, timestamp=now)
    status = _deliver(app, shipment.carrier_code, body, headers)
    return PushOutcome(len(due), status, later[0].at if later else None)
