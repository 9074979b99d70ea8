"""How-to: an asyncio application under a supervision tree."""

import asyncio

import otp_py as otp


async def produce(queue: asyncio.Queue[int], failures: list[int]) -> None:
    for n in range(1, 1000):
        if n == 3 and not failures:  # the first incarnation fails at item 3
            failures.append(n)
            raise ValueError(f"cannot produce item {n}")
        await queue.put(n)
        await asyncio.sleep(0.05)


async def consume(queue: asyncio.Queue[int], name: str) -> None:
    otp.notify_ready()  # the spec says ready=True: the supervisor waits for this
    try:
        while True:
            item = await queue.get()
            print(f"{name}: item {item}", flush=True)
    finally:  # a stop cancels the task: clean up here
        print(f"{name}: closing", flush=True)


async def main() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    tree = otp.SupervisorSpec(
        id="root",
        strategy=otp.RestForOne(),  # the consumer depends on the producer
        children=[
            otp.ChildSpec.asyncio("producer", produce, args=(queue, [])),
            otp.ChildSpec.asyncio("consumer", consume, args=(queue, "consumer"), ready=True),
        ],
    )
    recovered = asyncio.Event()

    def show(report: otp.reports.Report) -> None:  # called on the tree's loop
        print(report.describe())
        if isinstance(report, otp.reports.ChildStarted) and report.restarts:
            recovered.set()  # the producer's crash has been dealt with

    async with otp.supervise(tree, on_report=show) as sup:
        await asyncio.wait_for(recovered.wait(), timeout=10)
        await asyncio.sleep(0.2)
        await sup.start_child(otp.ChildSpec.asyncio("auditor", consume, args=(queue, "auditor")))
        await asyncio.sleep(0.1)
        for child in await sup.which_children():
            print(f"{child.id}: {child.state}, restarted {child.restarts} time(s)")
    print("the block has ended, and so has the tree")


if __name__ == "__main__":
    asyncio.run(main())
