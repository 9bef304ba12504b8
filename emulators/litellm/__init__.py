"""A faithful in-process stand-in for LiteLLM's admin API (proxy 1.108.7), for tests, demo and benchmark."""

from emulators.litellm.server import LiteLLMEmulator
from emulators.litellm.state import LiteLLMState

__all__ = ["LiteLLMEmulator", "LiteLLMState"]
