"""The emulator's AWS-compatible endpoint: AWS's JSON 1.1 protocol (ECS now) over aiohttp."""

from .backend import Backend
from .protocol import ECS_TARGET_PREFIX, JsonServices, make_app

__all__ = ["Backend", "ECS_TARGET_PREFIX", "JsonServices", "make_app"]
