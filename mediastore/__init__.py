"""The media store: an object-store interface (``store.ObjectStore``) with a local-filesystem implementation
(``local``, for ``aerostic dev`` and the tests) and an S3-compatible one (``s3``, SigV4 signed with ``httpx``);
``open_store(settings)`` picks one from the settings. Keys are ``{tenant_id}/{media_id}``."""

from __future__ import annotations

from config.settings import CoreSettings
from mediastore.local import LocalStore
from mediastore.s3 import S3Store
from mediastore.store import NotFound, ObjectStore, Stored, TooLarge

__all__ = ["NotFound", "ObjectStore", "Stored", "TooLarge", "open_store"]


def open_store(settings: CoreSettings) -> ObjectStore:
    """The store the settings name: ``local`` (``media_dir``) or ``s3`` (``media_s3_*``)."""
    if settings.media_store == "s3":
        return S3Store(settings.media_s3_endpoint, settings.media_s3_bucket, region=settings.media_s3_region,
                       access_key=settings.media_s3_access_key.get_secret_value(),
                       secret_key=settings.media_s3_secret_key.get_secret_value())
    return LocalStore(settings.media_dir)
