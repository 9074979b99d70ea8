"""How-to: dynamic supervisors with a limit, children found by name, and partitions.

A chat server keeps one asyncio task per connected user. Users are spread over four
partitions (each a simple_one_for_one supervisor of at most two sessions), a key (the
user's name) always lands in the same partition, and a session is found by the user's
name wherever it runs, also after it crashed and was restarted.
"""

import asyncio

import otp_py as otp

crashed: set[str] = set()


async def session(user: str) -> None:
    """One user's session; ``mallory``'s first session crashes at once."""
    if user == "mallory" and user not in crashed:
        crashed.add(user)
        raise ConnectionResetError("peer went away")
    await asyncio.Event().wait()  # serve until stopped


sessions = otp.SupervisorSpec(
    id="sessions",
    strategy="simple_one_for_one",
    intensity=otp.SlidingWindow(3, 5.0),
    children=[otp.ChildSpec.asyncio("session", session)],
    max_children=2,  # Elixir's DynamicSupervisor max_children
)
tree = otp.SupervisorSpec(
    id="root",
    children=[
        otp.ChildSpec.asyncio("lobby", session, args=("lobby",), name="lobby"),
        otp.partitioned("users", sessions, partitions=4),  # Elixir's PartitionSupervisor
    ],
)


async def main() -> None:
    async with otp.supervise(tree) as sup:
        restarted = asyncio.Event()  # set when a session has been restarted
        sup.add_listener(lambda report: restarted.set()
                         if isinstance(report, otp.reports.ChildStarted) and report.restarts
                         else None)
        users = sup.at("users")
        for user in ["alice", "bob", "mallory"]:
            path = await users.start_child_in(user, args=(user,), name=user)
            print(f"{user} -> partition {users.partition(user)}: users/{path}")
        await asyncio.wait_for(restarted.wait(), 10)  # mallory's crash, and restart

        for name in ["alice", "mallory", "lobby", "nobody"]:
            info = await sup.whereis(name)
            print(f"whereis({name!r}):",
                  "none" if info is None else f"{info.id} {info.state}, {info.restarts} restarts")

        try:
            await users.start_child_in("alice", args=("alice",), name="alice")
        except otp.NameTakenError as exc:
            print("refused:", exc)
        # Fill alice's partition (two sessions at most), then one more is refused.
        part = users.partition("alice")
        for guest in ["guest1", "guest2"]:
            try:
                child = await users.start_child(args=(guest,), supervisor=part)
                print(f"{guest}: users/{part}/{child}")
            except otp.MaxChildrenError as exc:
                print(f"{guest} refused:", exc)


asyncio.run(main())
