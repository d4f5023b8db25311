from django.apps import AppConfig


class AuthbridgeConfig(AppConfig):
    name = "authbridge"
    verbose_name = "Better Auth bridge"

    def ready(self):
        from authbridge import schema, verifier  # noqa: F401  (registers the schema extension and signal)
