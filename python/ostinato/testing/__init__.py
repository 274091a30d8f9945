"""Testing workflows: replay recorded histories, and (see docs/testing.md) more."""

from ._replay import load_history, replay, replay_directory

__all__ = ["load_history", "replay", "replay_directory"]
