"""Real servers (Dovecot) run privately by the test fixtures."""
