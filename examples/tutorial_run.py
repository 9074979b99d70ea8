"""Tutorial, step 6: otp.run, a tree that ends when its main job is done."""

import time

import otp_py as otp


def job(items: int) -> None:
    for n in range(items):
        print(f"job: item {n}", flush=True)
        time.sleep(0.1)


def metrics() -> None:
    while not otp.wait_for_stop(1.0):  # a thread child: sleep, but wake up to stop
        pass


tree = otp.SupervisorSpec(
    id="root",
    auto_shutdown=otp.AutoShutdown.ANY_SIGNIFICANT,
    children=[
        otp.ChildSpec.thread("metrics", metrics),
        otp.ChildSpec.process("job", job, args=(3,), restart="transient", significant=True),
    ],
)

if __name__ == "__main__":
    reason = otp.run(tree, on_report=lambda report: print(report.describe()))
    print("run() returned", reason)
