"""Tutorial, step 3: a child that keeps crashing uses up its supervisor's budget."""

import time

import otp_py as otp


def connect() -> None:
    time.sleep(0.2)
    raise ConnectionError("database refused the connection")


tree = otp.SupervisorSpec(
    id="root",
    intensity=otp.SlidingWindow(max_restarts=3, period=5.0),
    children=[otp.ChildSpec.process("db", connect)],
)

if __name__ == "__main__":
    try:
        otp.run(tree, on_report=lambda report: print(report.describe()))
    except otp.IntensityExceededError as exc:
        print("---")
        print(exc)
