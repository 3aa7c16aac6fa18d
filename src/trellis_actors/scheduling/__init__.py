"""Recurring work: interval, cron and one-shot schedules that fire once per slot."""
