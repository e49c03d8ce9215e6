"""Google service-account keys made for tests: real RSA keys, fake accounts."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def pkcs8_pem(private_key: object) -> str:
    """A private key as the PEM text found in a key file."""
    return private_key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def service_account_key(email: str, **fields: str) -> tuple[dict, bytes]:
    """A service account's JSON key file contents, and its public key PEM."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = {
        "type": "service_account",
        "project_id": "bennett-bot-123456",
        "private_key_id": "3b5c2f0d9e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c",
        "private_key": pkcs8_pem(private),
        "client_email": email,
        "client_id": "109876543210987654321",
        "token_uri": "https://oauth2.googleapis.com/token",
        **fields,
    }
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return info, public
