"""inboxd: an email-first shared-inbox helpdesk daemon."""

__version__ = "0.1.0"
