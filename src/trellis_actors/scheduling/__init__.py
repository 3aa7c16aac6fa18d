"""Recurring work: interval, cron and one-shot schedules that fire once per slot.

What a schedule is and when it fires (pure); the scheduler actor that fires them is
``runtime/scheduler.py``.
"""
