from rest_framework import serializers


class MeSerializer(serializers.Serializer):
    id = serializers.CharField(source="sub", help_text="The Better Auth user id (the token's `sub`).")
    # As the token says: Better Auth vouches for it, and a token may carry none ("").
    email = serializers.CharField()
    name = serializers.CharField()
