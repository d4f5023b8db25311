"""Staff sign-in lockout (django-axes): the client address it counts failures of.

Axes refuses a locked-out attempt in its authentication backend, before Django's ModelBackend hashes
the password; the settings (AXES_*) say how many failures lock an account or an address, and for how
long. Behind a proxy REMOTE_ADDR is the proxy's, and counting it would lock every staff member out at
once, so with DJANGO_TRUSTED_PROXY_COUNT set the address is the one the outermost trusted proxy
appended to X-Forwarded-For (earlier entries are the client's to forge).
"""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    proxies: int = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        addresses = [address.strip() for address in forwarded.split(",") if address.strip()]
        if len(addresses) >= proxies:
            return addresses[-proxies]
    return request.META.get("REMOTE_ADDR")
