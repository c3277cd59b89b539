"""A bare Django project, the second ceiling of the benchmark (bench/run.py): what Django alone
costs for one primary-key lookup of a user row, owing nothing to the auth server's code."""
