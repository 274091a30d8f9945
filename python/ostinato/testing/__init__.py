"""Testing workflows: an in-process environment on a skipping virtual clock, mocks for
activities and child workflows, replay of recorded histories, Hypothesis strategies
(``ostinato.testing.strategies``) and a pytest plugin. See docs/testing.md."""

from ._clock import VirtualClock
from ._env import ScheduledCall, WorkflowEnvironment
from ._mocks import (
    ActivityMock,
    Fail,
    MockCall,
    MockExhaustedError,
    Return,
    Timeout,
    WorkflowMock,
    mock_activity,
    mock_workflow,
)
from ._replay import load_history, replay, replay_directory, save_history

__all__ = [
    "ActivityMock",
    "Fail",
    "MockCall",
    "MockExhaustedError",
    "Return",
    "ScheduledCall",
    "Timeout",
    "VirtualClock",
    "WorkflowEnvironment",
    "WorkflowMock",
    "load_history",
    "mock_activity",
    "mock_workflow",
    "replay",
    "replay_directory",
    "save_history",
]
