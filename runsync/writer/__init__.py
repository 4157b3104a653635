"""Carrying out a plan: batched writes of only the changed fields, retries, the journal, and the read-back check."""
