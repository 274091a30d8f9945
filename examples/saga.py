"""A trip-booking saga: book a flight, a hotel and a car; when a step fails, or the trip is
cancelled part-way, undo the steps already done, newest first.

The compensations run under ``workflow.disconnected(...)`` so that a cancellation, which
arrives as ``asyncio.CancelledError`` at the workflow's current await, does not also cancel the
clean-up. The car rental is slow and heartbeats; it learns that it was cancelled through
``activity.is_cancelled()``.

    python examples/saga.py --db saga.db
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import ostinato
from ostinato import ApplicationError, RetryPolicy, activity, workflow


@dataclass
class Trip:
    trip_id: str
    destination: str
    fail_at: str | None = None  # "hotel" makes the hotel refuse, to show compensation


class Agency:
    """Activities holding the shared state of a (pretend) travel agency."""

    def __init__(self) -> None:
        self.bookings: dict[str, set[str]] = {}

    def _book(self, trip_id: str, what: str) -> str:
        self.bookings.setdefault(trip_id, set()).add(what)
        print(f"    booked {what} for {trip_id}", flush=True)
        return f"{what}-{trip_id}"

    def _cancel(self, trip_id: str, what: str) -> None:
        self.bookings.get(trip_id, set()).discard(what)
        print(f"    cancelled {what} for {trip_id}", flush=True)

    @activity.defn
    async def book_flight(self, trip: Trip) -> str:
        return self._book(trip.trip_id, "flight")

    @activity.defn
    async def cancel_flight(self, trip_id: str) -> None:
        self._cancel(trip_id, "flight")

    @activity.defn
    async def book_hotel(self, trip: Trip) -> str:
        if trip.fail_at == "hotel":
            raise ApplicationError(f"no rooms in {trip.destination}", non_retryable=True)
        return self._book(trip.trip_id, "hotel")

    @activity.defn
    async def cancel_hotel(self, trip_id: str) -> None:
        self._cancel(trip_id, "hotel")

    @activity.defn
    async def book_car(self, trip: Trip) -> str:
        # A slow partner API: heartbeat while waiting. When the workflow cancels the
        # activity, the next heartbeat round learns it: an async activity gets
        # CancelledError at its await (a sync one would poll activity.is_cancelled()).
        try:
            for _ in range(10):
                activity.heartbeat()
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            print(
                f"    car rental for {trip.trip_id} stopped: "
                f"is_cancelled()={activity.is_cancelled()}",
                flush=True,
            )
            raise
        return self._book(trip.trip_id, "car")


@workflow.defn(name="trips.book")
async def book_trip(trip: Trip) -> list[str]:
    compensations: list[Callable[[], Awaitable[None]]] = []
    done: list[str] = []
    retry = RetryPolicy(initial_interval=0.05, max_attempts=3)
    try:
        done.append(await workflow.execute_activity(Agency.book_flight, trip, retry=retry))
        compensations.append(lambda: workflow.execute_activity(Agency.cancel_flight, trip.trip_id))
        done.append(await workflow.execute_activity(Agency.book_hotel, trip, retry=retry))
        compensations.append(lambda: workflow.execute_activity(Agency.cancel_hotel, trip.trip_id))
        workflow.set_var("step", "renting a car")
        done.append(await workflow.execute_activity(Agency.book_car, trip, heartbeat_timeout=0.3))
        return done
    except (ostinato.ActivityError, asyncio.CancelledError) as err:
        workflow.set_var("step", "compensating")
        workflow.logger.info("undoing %d step(s) after %s", len(compensations), type(err).__name__)
        for undo in reversed(compensations):
            # Shielded: runs to the end although the workflow is being cancelled.
            await workflow.disconnected(undo())
        raise


async def main(db: str) -> None:
    backend = ostinato.connect(f"sqlite:///{db}")
    agency = Agency()
    activities: list[Callable[..., Any]] = [
        agency.book_flight,
        agency.cancel_flight,
        agency.book_hotel,
        agency.cancel_hotel,
        agency.book_car,
    ]
    async with ostinato.Worker(backend, workflows=[book_trip], activities=activities):
        client = ostinato.Client(backend)

        print("1. a hotel with no rooms: the flight is cancelled again")
        handle = await client.start_workflow(book_trip, Trip("t-1", "Oslo", fail_at="hotel"))
        try:
            await handle.result(timeout=30)
        except ostinato.WorkflowFailedError as err:
            print(f"   trip t-1 failed: {err.cause}")

        print("2. the traveller cancels while the car is being rented")
        handle = await client.start_workflow(book_trip, Trip("t-2", "Lima"))
        while (await client.get_vars(handle.id)).get("step") != "renting a car":
            await asyncio.sleep(0.05)
        await handle.cancel("traveller changed plans")
        try:
            await handle.result(timeout=30)
        except ostinato.WorkflowCancelledError:
            print(f"   trip t-2: {(await handle.describe()).status}")
        await asyncio.sleep(0.3)  # let the car rental notice, for the demo's output

        print("3. everything available")
        handle = await client.start_workflow(book_trip, Trip("t-3", "Kyoto"))
        print(f"   trip t-3 booked: {await handle.result(timeout=30)}")
        print("bookings held:", {k: sorted(v) for k, v in agency.bookings.items() if v})
    await backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="saga.db")
    asyncio.run(main(parser.parse_args().db))
