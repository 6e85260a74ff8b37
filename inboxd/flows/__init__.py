"""What happens to a ticket when mail arrives, inside the ingest transaction.

Acknowledgements, agent notifications, agent replies and their commands,
bounces, the shared mailbox's Sent folder and rule-driven Slack notices. Flows
only write rows (ticket changes through the ticket writer, outbox and notice
rows); the queues are sent later by ``inboxd.delivery``.
"""
