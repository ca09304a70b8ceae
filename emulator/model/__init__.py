"""The ECS domain model: pure dataclasses in ECS API shapes (no I/O, no asyncio)."""
