"""GET /status: the health check."""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.schema import ErrorSerializer


class StatusView(APIView):
    """GET /status: 200 when the database (and the shared cache, if configured) answer, else 503."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Health: the database and, when CACHE_URL is set, the cache",
        operation_id="status",
        tags=["status"],
        auth=[],
        responses={200: ErrorSerializer, 503: ErrorSerializer},
    )
    def get(self, request):
        checks = {"database": _database_ok()}
        if settings.CACHE_URL:
            checks["cache"] = _cache_ok()
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            return Response(ErrorSerializer({"status": 503, "message": f"Unavailable: {', '.join(failed)}"}).data, status=503)
        return Response(ErrorSerializer({"status": 200, "message": f"OK: {', '.join(checks)}"}).data)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _cache_ok() -> bool:
    try:
        cache.set("status:probe", "1", 10)
        return cache.get("status:probe") == "1"
    except Exception:
        return False
