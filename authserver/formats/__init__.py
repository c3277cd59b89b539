"""Date and time formats (FORMAT_MODULE_PATH), over Django's own for each language: times with
seconds and the time zone, so that the admin's pages (the audit trail, sessions, keys) tell apart
events of one minute and say which zone they are in."""
