import os, signal, threading, time
import otp_py as otp

def worker():                      # a real OS process; crash it any way you like
    while True:
        time.sleep(1)

if __name__ == "__main__":
    restarted = threading.Event()
    def show(report):
        print(report.describe())
        if isinstance(report, otp.reports.ChildStarted) and report.restarts:
            restarted.set()
    tree = otp.SupervisorSpec(id="root", children=[otp.ChildSpec.process("worker", worker)])
    with otp.start(tree, on_report=show) as sup:
        os.kill(sup.which_children()[0].pid, signal.SIGKILL)     # kill -9 the child
        restarted.wait(10)                                       # ...and it is back
