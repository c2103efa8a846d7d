"""Object store on any S3-compatible server, through boto3."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from backend.core.errors import ServiceUnavailable
from backend.core.settings import Settings
from backend.storage.base import ObjectNotFound, check_key

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3ObjectStore:
    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.bucket = settings.s3_bucket
        self.create_bucket = settings.s3_create_bucket
        self.description = (
            f"s3 {settings.s3_endpoint_url or 'default endpoint'} bucket {self.bucket}"
        )
        self.client = client or boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=(
                settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
            ),
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if settings.s3_path_style else "virtual"},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def ping(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _MISSING and self.create_bucket:
                self._create_bucket()
                return
            raise ServiceUnavailable(f"{self.description}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"{self.description}: {exc}") from exc

    def _create_bucket(self) -> None:
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise ServiceUnavailable(f"cannot create bucket {self.bucket}: {exc}") from exc

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in _MISSING:
                raise ObjectNotFound(f"object {key} does not exist") from exc
            raise
        body: bytes = response["Body"].read()
        return body

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in _MISSING:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))
