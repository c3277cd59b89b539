from django.http import JsonResponse

from bench.bare.models import SeededUser


def ceiling(request, pk: int):
    """Return a user's profile as GET /api/user does: one query, Django alone."""
    try:
        user = SeededUser.objects.get(pk=pk)
    except SeededUser.DoesNotExist:
        return JsonResponse({"status": 404, "message": "Not found"}, status=404)
    return JsonResponse({"email": user.email, "profile": {"name": user.name}})
