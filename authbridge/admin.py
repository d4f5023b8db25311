from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from authbridge.models import User


@admin.register(User)
class BetterAuthUserAdmin(UserAdmin):
    # The Better Auth id first: email and name are whatever the user's tokens say.
    list_display = (
        "sub",
        "email",
        "email_verified",
        "name",
        "username",
        "is_staff",
        "is_active",
        "date_joined",
    )
    list_filter = ("email_verified", *UserAdmin.list_filter)
    search_fields = ("=sub", "username", "email", "name")
    readonly_fields = ("sub", "email_verified", "last_login", "date_joined")
    fieldsets = ((None, {"fields": ("sub", "name", "email_verified")}), *(UserAdmin.fieldsets or ()))
