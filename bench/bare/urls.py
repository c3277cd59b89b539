"""startproject's URLconf, plus the ceiling at the path the in-stack ceiling has (one request
file serves both)."""

from django.contrib import admin
from django.urls import path

from bench.bare.views import ceiling

urlpatterns = [
    path("api/bench/ceiling/<int:pk>", ceiling),
    path("admin/", admin.site.urls),
]
