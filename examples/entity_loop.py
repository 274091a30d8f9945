"""A long-lived entity: a bank account workflow that lives as long as the account, handling
deposits and withdrawals sent as signals. Its history would grow without end, so every few
operations it calls ``workflow.continue_as_new(state)``: the run ends and a new run starts
under the same id with the state as its arguments and an empty history. Signals sent while it
switches runs are not lost: the run hands the ones it has not handled yet to the next run.

``handle.result()`` follows the chain of runs to the final one; ``describe()`` / ``history()``
show the current run; earlier runs stay readable by run id.

    python examples/entity_loop.py --db entity.db
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

import ostinato
from ostinato import workflow

OPERATIONS_PER_RUN = 5  # small for the demo; a real entity would use hundreds or thousands


@dataclass
class Operation:
    kind: str  # "deposit" | "withdraw" | "close"
    amount_cents: int = 0


@dataclass
class Account:
    owner: str
    balance_cents: int = 0
    operations: int = 0
    refused: list[str] = field(default_factory=list)
    # Signals this run received but did not handle yet, handed to the next run.
    backlog: list[Operation] = field(default_factory=list)


@workflow.defn(name="accounts.entity")
async def account(state: Account) -> Account:
    ops = workflow.signal_channel("op", Operation)
    # Variables belong to a run: each run of the chain publishes its own.
    workflow.set_var("balance_cents", state.balance_cents)
    for _ in range(OPERATIONS_PER_RUN):
        op: Operation = state.backlog.pop(0) if state.backlog else await ops.receive()
        if op.kind == "close":
            return state
        if op.kind == "deposit":
            state.balance_cents += op.amount_cents
        elif op.amount_cents <= state.balance_cents:
            state.balance_cents -= op.amount_cents
        else:
            state.refused.append(f"withdraw {op.amount_cents}")
        state.operations += 1
        workflow.set_var("balance_cents", state.balance_cents)
    # Enough for one run: carry the state into a fresh one, with the signals that arrived
    # but were not handled yet (they belong to this run's history and end with it).
    while ops.pending():
        state.backlog.append(ops.receive_nowait())
    workflow.continue_as_new(state)


async def main(db: str) -> None:
    backend = ostinato.connect(f"sqlite:///{db}")
    async with ostinato.Worker(backend, workflows=[account]):
        client = ostinato.Client(backend)
        handle = await client.start_workflow(account, Account("ada"), id="account-ada")
        for i in range(1, 13):
            await handle.signal("op", Operation("deposit", 1_000 * i))
            if i % 4 == 0:
                await handle.signal("op", Operation("withdraw", 50_000))
        await handle.signal("op", Operation("close"))
        final = await handle.result(timeout=30)  # follows continue-as-new to the last run
        print(f"final state: balance {final.balance_cents / 100:.2f}, {final.operations} ops")
        print(f"refused: {final.refused}")
        current = await handle.describe()
        print(
            f"current run {current.run_id[:8]}: {current.status}, {current.history_length} events"
        )
        # Walk back the chain of runs through each run's first event.
        run_id: str | None = current.run_id
        chain = []
        while run_id:
            history = await client.get_handle(handle.id, run_id=run_id).history()
            desc = await client.get_handle(handle.id, run_id=run_id).describe()
            chain.append(f"{run_id[:8]} {desc.status} ({len(history)} events)")
            run_id = history[1]["info"].get("continued_from_run_id")
        print("runs, newest first:")
        for line in chain:
            print("  ", line)
        print("variables:", await client.get_vars(handle.id))
    await backend.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="entity.db")
    asyncio.run(main(parser.parse_args().db))
