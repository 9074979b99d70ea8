"""The pure decision core: strategies, intensity policies, the restart table and the
per-supervisor state machine. Nothing here performs I/O, reads a clock, sleeps or
starts a thread; an import-linter contract keeps it that way."""
