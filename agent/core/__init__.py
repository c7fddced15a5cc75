"""Pure replication logic: no I/O, no wall clock, no sqlite3, no asyncio.

Callers pass the time (`now_ms`) and any randomness in; functions return decisions and messages.
"""
