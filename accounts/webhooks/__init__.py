"""Webhooks: endpoints other services register, the outbox written in the transaction of each
change it reports, and the worker that delivers it (Standard Webhooks signatures)."""
