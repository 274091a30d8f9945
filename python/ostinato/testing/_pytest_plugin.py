"""pytest plugin (entry point ``pytest11``): fixtures for testing ostinato workflows."""

from __future__ import annotations
