"""Periodic work on APScheduler 3: the SLA sweep, queue wake-ups, health checks.

The scheduler owns *when*; what a job does lives in the job's own module
(the sweep here, its mails and alerts in ``inboxd.flows`` through a protocol
the daemon wires). Jobs never pile up: each runs at most once at a time, and
runs missed while one was slow are folded into one.
"""
