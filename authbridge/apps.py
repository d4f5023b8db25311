from django.apps import AppConfig


class AuthbridgeConfig(AppConfig):
    name = "authbridge"
    verbose_name = "Better Auth bridge"

    def ready(self) -> None:
        # Imported for their side effects: `schema` registers the OpenAPI extension, `authentication`
        # and `verifier` each connect a setting_changed receiver (the token cache's and the verifier's),
        # so an override_settings(BETTER_AUTH=...) in a test resets both.
        from authbridge import authentication, schema, verifier  # noqa: F401 (side effects, see above)
