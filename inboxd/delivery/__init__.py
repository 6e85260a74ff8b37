"""Getting queued side effects out of the house: SMTP mail and Slack notices.

A drain claims due rows under a lease, hands each to its deliverer and settles
the result (sent, retried with backoff, or failed); nothing here decides what
to send, only how it leaves.
"""
