"""How-to: notice hung children. The loop-lag watchdog, and a thread's progress ticker."""

import asyncio
import time

import otp_py as otp


async def ticker() -> None:
    while True:
        await asyncio.sleep(0.05)


async def report_builder(runs: list[int]) -> None:
    runs.append(1)
    await asyncio.sleep(0.2)
    if len(runs) == 1:
        time.sleep(1.0)  # a blocking call in a coroutine: the whole loop stops
    await asyncio.sleep(60)


def importer(batches: list[int]) -> None:
    """A thread that ticks after each batch; one batch hangs."""
    while not otp.stop_requested():
        batches.append(1)
        if len(batches) == 30:
            otp.wait_for_stop(1.5)  # stuck on a lock, say: no tick for 1.5 s
        else:
            time.sleep(0.05)  # one batch of work
        otp.heartbeat()  # progress: one batch done


async def main() -> None:
    tree = otp.SupervisorSpec(
        id="root",
        watchdog=otp.LoopWatchdog(interval=0.1, timeout=0.5),
        intensity=otp.SlidingWindow(max_restarts=3, period=10.0),
        children=[
            otp.ChildSpec.asyncio("ticker", ticker),
            otp.ChildSpec.asyncio("reports", report_builder, args=([],)),
            otp.ChildSpec.thread("importer", importer, args=([],),
                                 heartbeat=otp.Heartbeat(interval=0.1, timeout=0.5)),
        ],
    )
    restarted: set[str] = set()
    both_restarted = asyncio.Event()

    def show(report: otp.reports.Report) -> None:  # called on the tree's loop
        print(report.describe(), flush=True)
        if isinstance(report, otp.reports.ChildStarted) and report.restarts:
            restarted.add(report.child_id)
            if restarted == {"reports", "importer"}:
                both_restarted.set()

    async with otp.supervise(tree, on_report=show) as sup:
        await asyncio.wait_for(both_restarted.wait(), timeout=20)
        for child in await sup.which_children():
            print(f"{child.id}: restarted {child.restarts} time(s)")


if __name__ == "__main__":
    asyncio.run(main())
