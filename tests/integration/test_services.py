"""The session's services are real servers, not mocks.

Everything in the production profile builds on these two: if they pass, a failure elsewhere is
about our code, not about provisioning. The PostGIS test goes through a fresh database (as the
per-test fixtures will) and checks a boundary case that only a real GEOS-backed PostGIS gets
right; the S3 test goes over HTTP, path-style, the way the app talks to MinIO.
"""

from __future__ import annotations

import os
import urllib.request
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from tests.support.services import PostgisService, S3Service

# One 0.01° grid cell in Shanghai (EPSG:4326), and points inside, on the edge and outside it.
GRID_CELL = "POLYGON((121.47 31.23, 121.48 31.23, 121.48 31.24, 121.47 31.24, 121.47 31.23))"
INSIDE = "POINT(121.475 31.235)"
ON_EDGE = "POINT(121.47 31.235)"
OUTSIDE = "POINT(121.49 31.235)"


@pytest.mark.postgis
def test_postgis_database_has_spatial_predicates(postgis_service: PostgisService) -> None:
    admin = create_engine(
        postgis_service.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    name = f"xuncha_svc_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        db = create_engine(
            make_url(postgis_service.admin_url).set(database=name), poolclass=NullPool
        )
        with db.begin() as conn:
            has_postgis = conn.execute(
                text("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'")
            ).scalar_one()
            if postgis_service.origin == "provisioned":
                # The throwaway cluster puts PostGIS into template1, so new databases have it.
                assert has_postgis == 1
            else:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            assert conn.execute(text("SELECT postgis_version()")).scalar_one().startswith("3")
            row = conn.execute(
                text(
                    "SELECT ST_Covers(c, ST_GeomFromText(:inside, 4326)),"
                    "       ST_Covers(c, ST_GeomFromText(:edge, 4326)),"
                    "       ST_Contains(c, ST_GeomFromText(:edge, 4326)),"
                    "       ST_Covers(c, ST_GeomFromText(:outside, 4326))"
                    "  FROM (SELECT ST_GeomFromText(:cell, 4326) AS c) AS cell"
                ),
                {"cell": GRID_CELL, "inside": INSIDE, "edge": ON_EDGE, "outside": OUTSIDE},
            ).one()
            version = conn.execute(text("SHOW server_version")).scalar_one()
        db.dispose()
        # Covers includes the boundary, Contains does not: the reason the app uses ST_Covers.
        assert tuple(row) == (True, True, False, False)
        assert version.split()[0] == postgis_service.server_version
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.s3
def test_s3_object_roundtrip_over_http(s3_service: S3Service) -> None:
    client = s3_service.client()
    bucket = f"xuncha-svc-{uuid.uuid4().hex[:12]}"
    key = "evidence/310101001001001/photo.jpg"
    body = os.urandom(64 * 1024)
    if s3_service.region == "us-east-1":
        client.create_bucket(Bucket=bucket)
    else:
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": s3_service.region}
        )
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/jpeg")
        got = client.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body
        assert got["ContentType"] == "image/jpeg"

        # A presigned URL fetched with plain urllib: the server is a real HTTP endpoint, and
        # addressing is path-style (bucket in the path, not in the host name).
        url = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60
        )
        assert url.startswith(f"{s3_service.endpoint_url}/{bucket}/{key}?")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=10) as response:
            assert response.read() == body
    finally:
        client.delete_object(Bucket=bucket, Key=key)
        client.delete_bucket(Bucket=bucket)
