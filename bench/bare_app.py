"""The bare FastAPI baseline for ``bench/checkout_load.py``: one pydantic-validated POST
shaped like an ACP create (line items, address, capabilities), answered 201 with JSON,
no database. Served by the same uvicorn settings as ``reelcart serve``; the benchmark
drives it with the same client, so "create / bare" is a ratio from one run on one
machine.

    uvicorn --factory bench.bare_app:create_bare_app
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Header
from pydantic import BaseModel, Field


class Item(BaseModel):
    id: str = Field(min_length=1, max_length=200)
    quantity: int = Field(default=1, ge=1, le=10_000)


class Address(BaseModel):
    name: str
    line_one: str
    city: str
    state: str | None = None
    country: str = Field(min_length=2, max_length=2)
    postal_code: str


class Fulfillment(BaseModel):
    address: Address | None = None


class CreateCheckout(BaseModel):
    currency: str = Field(min_length=3, max_length=3)
    line_items: list[Item] = Field(min_length=1)
    capabilities: dict[str, Any] = Field(default_factory=dict)
    fulfillment_details: Fulfillment | None = None


class Total(BaseModel):
    type: str
    amount: int


class Checkout(BaseModel):
    id: str
    status: str
    currency: str
    line_items: list[Item]
    totals: list[Total]


def create_bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/checkout_sessions", status_code=201)
    async def create(body: CreateCheckout,
                     authorization: str | None = Header(default=None)) -> Checkout:
        amount = sum(1000 * item.quantity for item in body.line_items)
        return Checkout(id=f"cs_{uuid.uuid4().hex}", status="not_ready_for_payment",
                        currency=body.currency, line_items=body.line_items,
                        totals=[Total(type="subtotal", amount=amount),
                                Total(type="total", amount=amount)])

    return app


if __name__ == "__main__":
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(description="bare FastAPI baseline server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The settings `reelcart serve` uses (api/cli/server.py).
    uvicorn.run(create_bare_app(), host="127.0.0.1", port=args.port, log_config=None,
                timeout_graceful_shutdown=15, access_log=False, proxy_headers=True)
