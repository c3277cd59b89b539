"""GET / (what this server is and where to read on) and GET /metrics (Prometheus)."""

import hmac

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from core import errors, metrics
from core.api import PublicView
from core.errors import MetricsTokenInvalid, NotFound
from core.schema import error_response


@extend_schema_serializer(component_name="Index")
class IndexOutput(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    links = serializers.DictField(child=serializers.CharField())


class IndexView(PublicView):
    """GET /: the server's name and version, and the paths of its docs, schema, health and keys."""

    @extend_schema(
        summary="What this server is, its version, and the paths of its docs, schema, health check and keys",
        operation_id="index",
        tags=["status"],
        auth=[],
        responses={200: IndexOutput},
    )
    def get(self, request):
        return Response(
            IndexOutput(
                {
                    "name": "authserver",
                    "version": settings.VERSION,
                    "links": {
                        "docs": reverse("docs"),
                        "schema": reverse("schema"),
                        "status": reverse("status"),
                        "jwks": reverse("jwks"),
                        "metadata": reverse("metadata"),
                    },
                }
            ).data
        )


class MetricsView(PublicView):
    """GET /metrics: the counters of every worker, with `Authorization: Bearer <METRICS_TOKEN>`.

    NotFound while METRICS_TOKEN is unset, as if there were no such path.
    """

    def initial(self, request, *args, **kwargs):
        # Before the verb's handler is chosen: every verb (OPTIONS, that DRF answers with the
        # view's metadata, a refused POST) is NotFound while off, and needs the token while on.
        expected = settings.METRICS_TOKEN
        if not expected:
            raise NotFound
        scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        # Compared in constant time, as bytes (hmac refuses str that are not ASCII).
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise MetricsTokenInvalid
        super().initial(request, *args, **kwargs)

    @extend_schema(
        summary="Prometheus metrics of every worker (text format), with Authorization: Bearer <METRICS_TOKEN>",
        operation_id="metrics",
        tags=["status"],
        auth=[{"metrics": []}],
        responses={
            (200, "text/plain"): OpenApiResponse(str, description="Prometheus' text exposition format"),
            **{
                error.status: error_response(
                    error.status, [(error.__name__, errors.envelope(error.status, error.message))], description=description
                )
                for error, description in (
                    (MetricsTokenInvalid, "Not the right token: " + MetricsTokenInvalid.message),
                    (NotFound, "METRICS_TOKEN is not set: " + NotFound.message),
                )
            },
        },
    )
    def get(self, request):
        body, content_type = metrics.exposition()
        return HttpResponse(body, content_type=content_type, headers={"Cache-Control": "no-store"})
