from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from authbridge.models import User


@admin.register(User)
class BetterAuthUserAdmin(UserAdmin):
    list_display = ("username", "email", "name", "sub", "is_staff", "is_active", "date_joined")
    search_fields = ("username", "email", "name", "sub")
    readonly_fields = ("sub", "last_login", "date_joined")
    fieldsets = ((None, {"fields": ("sub", "name")}), *(UserAdmin.fieldsets or ()))
