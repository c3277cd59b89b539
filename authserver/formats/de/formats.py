"""German: Django's formats, times with seconds and the zone ("7. Dezember 2026 14:49:03 UTC")."""

TIME_FORMAT = "H:i:s T"
DATETIME_FORMAT = "j. F Y H:i:s T"
SHORT_DATETIME_FORMAT = "d.m.Y H:i:s T"
