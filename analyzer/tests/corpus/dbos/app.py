"""A DBOS app: steps and workflows defined inside a function, called directly."""

import os
import random
import time

from dbos import DBOS


def create_app() -> None:
    @DBOS.step()
    def charge(customer: str, cents: int) -> str:
        return f"{customer}-{cents}-{random.random()}"

    @DBOS.transaction()
    def record(receipt: str) -> None:
        print(receipt)

    def backoff(attempt: int) -> float:
        return attempt * random.uniform(0.5, 1.5)  # OST102

    @DBOS.workflow()
    def checkout(customer: str, items: dict[str, int]) -> str:
        receipt = charge(customer, sum(items.values()))
        record(receipt)
        DBOS.sleep(backoff(1))
        for sku in set(items):  # OST107
            DBOS.send(customer, sku)
        region = os.getenv("REGION", "eu")  # OST106
        return f"{receipt}@{region}"

    @DBOS.workflow()
    def nightly() -> None:
        started = time.time()  # OST101
        DBOS.start_workflow(checkout, "batch", {"a": 1})
        DBOS.set_event("started", started)

    print(checkout, nightly)
