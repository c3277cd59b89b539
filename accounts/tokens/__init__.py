"""Tokens: auth tokens (`auth`) and the emailed validation tokens (`validation`)."""
