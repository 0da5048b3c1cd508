"""Ed25519 signatures of the manifest: made by `hmr build --sign-key`, checked by the replica client.

The signature is detached, beside the manifest (`manifest.json.sig`), as JSON:
`{"algorithm": "ed25519", "key_id": "<16 hex>", "signature": "<base64>"}` over the manifest's exact
bytes. `key_id` is the first 16 hex digits of the sha256 of the raw 32-byte public key, so a client
trusting several keys (rotation) knows which one to try. Keys are exchanged as base64 of the raw
32 bytes (public) or as a PEM/PKCS#8 file or raw base64 seed (private).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from builder.errors import ConfigError, SignatureError


def public_bytes(key: Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of a public key (what `key_id` digests and what trusted keys encode in base64)."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: bytes) -> str:
    """The id a signature names its key by: the first 16 hex digits of the sha256 of the raw public key."""
    return hashlib.sha256(public).hexdigest()[:16]


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """A PEM (PKCS#8) Ed25519 private key, or a file holding the base64 of the raw 32-byte seed.

    Raises:
        ConfigError: the file cannot be read or holds no such key.
    """
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the signing key ({e.strerror})") from None
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(raw, password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw.strip(), validate=True))
    except (ValueError, TypeError):
        raise ConfigError(f"{path}: not an Ed25519 private key (PEM or base64 of 32 bytes)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an Ed25519 private key")
    return key


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from the base64 of its raw 32 bytes.

    Raises:
        ValueError: `text` is not that.
    """
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip(), validate=True))
    except (ValueError, TypeError):
        raise ValueError("not an Ed25519 public key (base64 of 32 bytes)") from None


def sign(manifest: bytes, key: Ed25519PrivateKey) -> bytes:
    """The detached signature document (JSON bytes) of the exact bytes `manifest`, by `key`."""
    doc = {
        "algorithm": "ed25519",
        "key_id": key_id(public_bytes(key.public_key())),
        "signature": base64.b64encode(key.sign(manifest)).decode("ascii"),
    }
    return orjson.dumps(doc)


def verify(manifest: bytes, signature_doc: bytes, trusted: Iterable[Ed25519PublicKey]) -> str:
    """The id of the trusted key whose signature `signature_doc` is over the exact bytes `manifest`.

    Raises:
        SignatureError: the document is malformed, names an untrusted key, or does not match.
    """
    try:
        doc = orjson.loads(signature_doc)
        sig = base64.b64decode(doc["signature"], validate=True)
        claimed = doc["key_id"]
        if doc.get("algorithm") != "ed25519":
            raise SignatureError(f"unsupported signature algorithm {doc.get('algorithm')!r}")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise SignatureError(f"malformed signature document ({e})") from None
    keys = {key_id(public_bytes(k)): k for k in trusted}
    key = keys.get(claimed)
    if key is None:
        raise SignatureError(f"signed by untrusted key {claimed!r}")
    try:
        key.verify(sig, manifest)
    except InvalidSignature:
        raise SignatureError(f"signature by key {claimed} does not match the manifest") from None
    return claimed
