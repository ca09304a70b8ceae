"""uvloop when it is installed, asyncio's own loop when it is not.

uvloop (libuv in C) runs the proxy's socket callbacks with less overhead
than asyncio's selector loop; it is optional, so everything works without it.
"""

from __future__ import annotations

import asyncio


def install_uvloop() -> bool:
    """Make new event loops uvloop ones; False (and nothing changed) when uvloop is absent."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def loop_name() -> str:
    """Which loop runs now ("uvloop" or "asyncio"), for reports."""
    loop = asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
