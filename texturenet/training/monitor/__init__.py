"""Watching a run: what the trainer reports, and the monitors that show it.

The trainer calls a list of :class:`Monitor` objects (base.py); it never knows how they show things.
:class:`FileMonitor` (files.py, always on) writes pictures and the losses next to the checkpoints,
:class:`JsonLinesMonitor` (events.py) reports to the GUI, :class:`VisdomMonitor` (viz.py) streams to Visdom.
"""
from .base import Monitor
from .events import EVENTS_FD, JsonLinesMonitor
from .files import FileMonitor
from .viz import VisdomMonitor

__all__ = ["EVENTS_FD", "FileMonitor", "JsonLinesMonitor", "Monitor", "VisdomMonitor"]
