"""SLA clocks, pure: targets and stages (``model``), business-time math on a
calendar (``clock``) and the state of each target from a ticket's events
(``targets``). ``now`` is always a parameter, so any ticket can be recomputed
at any instant."""
