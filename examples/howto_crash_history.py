"""How-to: read a crash history. Why did the supervisor give up?"""

import sys

import otp_py as otp


def parse(batch: int) -> None:  # a process child
    print(f"parsing batch {batch}", file=sys.stderr, flush=True)
    raise ValueError(f"bad record in batch {batch}")


workers = otp.SupervisorSpec(
    id="workers",
    intensity=otp.SlidingWindow(3, 10.0) & otp.ExponentialBackoff(initial=0.2, jitter=0),
    children=[
        otp.ChildSpec.process("parser", parse, args=(7,)),
        otp.ChildSpec.command("encoder", "sh -c 'sleep 0.1; echo codec not found >&2; exit 2'"),
        otp.ChildSpec.command("renderer", "sh -c 'sleep 0.35; kill -SEGV $$'"),
    ],
)
tree = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(0, 10.0), children=[workers])


def show_record(child: str, record: otp.reports.ExitRecord) -> None:
    reason = record.reason
    print(f"  {child}: {reason}  [{type(reason).__name__}]")
    print(f"    up {record.uptime:.2f} s, restart delayed {record.delay} s")
    if isinstance(reason, otp.reasons.Crashed):
        print(f"    traceback ends: {reason.traceback.splitlines()[-1]}")
    if isinstance(reason, otp.reasons.Exited):
        print(f"    exit status {reason.code}")
    if isinstance(reason, otp.reasons.Signaled):
        print(f"    signal {reason.signal} ({reason.name})")
    if record.stderr:
        print(f"    stderr ends: {record.stderr.splitlines()[-1]}")


def on_report(report: otp.reports.Report) -> None:
    if isinstance(report, otp.reports.IntensityExceeded):
        print(f"{report.where} gives up: {report.why}")
        for child, record in report.history:
            show_record(child, record)


if __name__ == "__main__":
    try:
        otp.run(tree, on_report=on_report)
    except otp.IntensityExceededError as exc:
        print("run() raised:", type(exc).__name__)
        print(exc)
