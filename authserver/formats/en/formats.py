"""English: Django's formats, times with seconds and the zone ("Dec. 7, 2026, 14:49:03 UTC")."""

TIME_FORMAT = "H:i:s T"
DATETIME_FORMAT = "N j, Y, H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
