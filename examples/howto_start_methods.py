"""How-to: start methods, and what must be picklable."""

import time

import otp_py as otp


def work() -> None:
    otp.notify_ready()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    # forkserver (the default): forked from otp_py's fork server, a clean process
    # that has already imported what the child needs; start and args are pickled.
    # fork: a fork of the supervising process itself; nothing is pickled.
    # spawn: a fresh interpreter that imports everything again; everything pickled.
    for label, method in [("forkserver (it starts the fork server)", "forkserver"),
                          ("forkserver (the server is up)", "forkserver"),
                          ("fork", "fork"), ("spawn", "spawn")]:
        tree = otp.SupervisorSpec(
            id="root",
            children=[otp.ChildSpec.process("worker", work, ready=True, start_method=method)],
        )
        began = time.monotonic()
        with otp.start(tree):
            print(f"{label}: up in {time.monotonic() - began:.3f} s")

    # Functions that cannot be pickled are refused where the spec is written:
    try:
        otp.ChildSpec.process("worker", lambda: None)
    except otp.SpecError as exc:
        print("refused:", str(exc).split(";")[0])
    # ... unless the child is forked from this very process:
    spec = otp.ChildSpec.process("worker", lambda: None, start_method="fork")
    print("accepted with", spec.start_method)
