"""The runtime: one asyncio loop drives a whole tree and executes the core's decisions."""
