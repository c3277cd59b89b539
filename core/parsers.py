"""DRF's body parsers, with every way a body can be malformed answered as a 400 parse error.

DRF turns a ValueError into a ParseError; these also catch what the standard library raises on
hostile input: RecursionError for JSON nested too deeply, UnicodeError for a charset such as
`idna` or `punycode` that cannot decode what it is given.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class _Guarded:
    failures: tuple[type[Exception], ...] = ()

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except self.failures as exc:
            raise ParseError(f"Malformed request body: {type(exc).__name__}") from exc


class JSONParser(_Guarded, parsers.JSONParser):
    failures = (RecursionError, UnicodeError)


class FormParser(_Guarded, parsers.FormParser):
    failures = (UnicodeError, LookupError)


class MultiPartParser(_Guarded, parsers.MultiPartParser):
    failures = (UnicodeError, LookupError)
