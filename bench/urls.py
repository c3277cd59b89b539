"""The app's URLconf plus the ceiling: a minimal Django view doing one primary-key lookup.

The ceiling lives under /api/, so that the middleware treats it as it treats the API (CORS
included). The app's own patterns are listed here as they are, not include()d, so that resolving
an API path costs what it costs in production, plus one failed match of the ceiling's pattern.
"""

from django.http import JsonResponse
from django.urls import path

from accounts.users.models import User
from authserver import urls as app_urls


def ceiling(request, pk: int):
    """Return a user's profile as GET /api/user does, with one query and no DRF, token or checks."""
    try:
        user = User.objects.get(pk=pk)
    except User.DoesNotExist:
        return JsonResponse({"status": 404, "message": "Not found"}, status=404)
    return JsonResponse({"email": user.email, "profile": {"name": user.name}})


urlpatterns = [path("api/bench/ceiling/<int:pk>", ceiling), *app_urls.urlpatterns]

handler400, handler403 = app_urls.handler400, app_urls.handler403
handler404, handler500 = app_urls.handler404, app_urls.handler500
