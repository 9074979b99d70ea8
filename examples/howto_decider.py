"""How-to: the failure decider. Say what each way of failing means."""

import asyncio
import signal

import otp_py as otp


class ConfigError(Exception):
    """Nothing a restart can fix."""


def load_settings() -> None:  # a thread child
    raise ConfigError("missing setting 'api_key'")


def backup() -> None:  # a process child
    raise PermissionError("cannot write to /backups")


def cleanup() -> None:  # a thread child with nothing left to do
    raise otp.DoNotRestart("no stale files left")


async def main_job() -> None:  # an asyncio child that decides when the program is done
    await asyncio.sleep(1.0)
    raise otp.ShutdownTree("all work done")


decider = otp.Decider({
    ConfigError: otp.Decision.STOP,  # an exception class (and its subclasses)
    PermissionError: otp.Decision.STOP,
    otp.OnExitCode(75): otp.Decision.restart(delay=0.4),  # EX_TEMPFAIL: try later
    otp.OnExitCode(78): otp.Decision.ESCALATE,  # EX_CONFIG: give up at once
    otp.OnSignal(signal.SIGSEGV): otp.Decision.IGNORE,  # restart, but do not count it
})

loader = otp.SupervisorSpec(
    id="loader",
    restart=otp.Restart.TRANSIENT,  # an escalation ends it with shutdown: not restarted
    decider=decider,
    children=[otp.ChildSpec.command("import", "sh -c 'sleep 0.3; exit 78'")],
)

tree = otp.SupervisorSpec(
    id="root",
    decider=decider,  # the default of every child; a ChildSpec may have its own
    intensity=otp.SlidingWindow(max_restarts=5, period=10.0),
    children=[
        otp.ChildSpec.thread("settings", load_settings),
        otp.ChildSpec.process("backup", backup),
        otp.ChildSpec.thread("cleanup", cleanup),
        otp.ChildSpec.command("fetch", "sh -c 'sleep 0.1; exit 75'"),
        otp.ChildSpec.command("segv", "sh -c 'sleep 0.2; kill -SEGV $$'"),
        loader,
        otp.ChildSpec.asyncio("main", main_job),
    ],
)

if __name__ == "__main__":
    reason = otp.run(tree, on_report=lambda r: print(r.describe(), flush=True))
    print("run() returned", reason)
