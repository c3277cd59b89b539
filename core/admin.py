"""What the admin pages of several rooms share (model-free)."""

from django.contrib import admin
from django.http import HttpResponseNotAllowed
from django.utils.text import capfirst


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """A page that shows rows and changes none: no add, change or delete, for anyone."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ActionsOnlyModelAdmin(admin.ModelAdmin):
    """Rows that staff change only through actions and buttons (revoke a session, retire a key):
    the change permission runs those, and the pages read as what they are. The list is titled with
    the rows' name, not "Select … to change"; a row's page is "View …", has no Save buttons, and a
    POST of its form changes nothing (405)."""

    def changelist_view(self, request, extra_context=None):
        title = capfirst(self.model._meta.verbose_name_plural)
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST":
            return HttpResponseNotAllowed(["GET"])
        context = {
            "title": f"View {self.model._meta.verbose_name}",
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)
