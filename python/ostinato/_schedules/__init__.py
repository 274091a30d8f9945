"""Schedules: workflows started on a cron or an interval, fired by workers.

``_spec`` checks a schedule and computes its fire times; ``_plan`` decides what due fires do
(pure); ``_driver`` fires them through a backend; ``_handle`` is the client API.
"""

from ._driver import ScheduleDriver
from ._handle import (
    ScheduleAlreadyExistsError,
    ScheduleDescription,
    ScheduledRun,
    ScheduleHandle,
    ScheduleNotFoundError,
    create_schedule,
    get_schedule,
    list_schedules,
)
from ._spec import OVERLAP_POLICIES, ScheduleSpec, fire_instance_id

__all__ = [
    "OVERLAP_POLICIES",
    "ScheduleAlreadyExistsError",
    "ScheduleDescription",
    "ScheduleDriver",
    "ScheduleHandle",
    "ScheduleNotFoundError",
    "ScheduleSpec",
    "ScheduledRun",
    "create_schedule",
    "fire_instance_id",
    "get_schedule",
    "list_schedules",
]
