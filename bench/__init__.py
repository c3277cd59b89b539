"""Load benchmark of the auth server against a minimal Django view (see bench/run.py)."""
