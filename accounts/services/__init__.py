"""Every write the API, the admin or a command can cause, as plain functions, one module per flow.

They take values, not requests, and raise the errors of accounts.errors; the callers turn the
results into responses. Checks run in the order the contract lists them.
"""
