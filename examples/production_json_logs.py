"""Running in production: the tree's log as JSON lines, one object a line.

otp_py logs every report on the ``otp_py`` logger; ``otp.JsonFormatter`` turns each
record into one JSON object with stable keys, for a log shipper to read.
"""

import asyncio
import logging
import sys

import otp_py as otp

handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(otp.JsonFormatter())
logging.getLogger("otp_py").addHandler(handler)
logging.getLogger("otp_py").setLevel(logging.INFO)


async def fetch(runs: list[int]) -> None:
    runs.append(1)
    if len(runs) == 1:
        raise ConnectionError("upstream refused the connection")
    await asyncio.sleep(60)


async def main() -> None:
    tree = otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec.asyncio("fetch", fetch, args=([],)),
    ])
    restarted = asyncio.Event()

    def watch(report: otp.reports.Report) -> None:
        if isinstance(report, otp.reports.ChildStarted) and report.restarts:
            restarted.set()

    async with otp.supervise(tree, on_report=watch):
        await restarted.wait()


asyncio.run(main())
