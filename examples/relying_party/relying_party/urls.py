"""URLs: the home page, sign-in and its callback, the call to the resource server, sign-out."""

from django.urls import path

from relying_party import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signin", views.sign_in, name="signin"),
    path("callback", views.callback, name="callback"),
    path("resource", views.call_resource_server, name="resource"),
    path("signout", views.sign_out, name="signout"),
    path("signed-out", views.signed_out, name="signed-out"),
]
