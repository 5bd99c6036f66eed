"""S3 beyond the contract: Object Lock, failure mapping, aborted multipart uploads, timeouts,
storage options — on moto (semantics), rclone (auth, ranges) and a fault-injecting proxy."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.errors import (
    ExitCode,
    StorageError,
    StorageNotFound,
    StoragePermissionDenied,
    TransientStorageError,
)
from lifeboat.storage.base import read_stream
from lifeboat.storage.registry import open_backend
from lifeboat.storage.s3 import S3Backend
from lifeboat.storage.translate import detail
from tests.servers.fault_proxy import DROP, FAIL, PASS, STALL, FaultProxy
from tests.servers.fixtures import S3_SECRET, Server, free_port, new_bucket, s3_client
from tests.storage.remote import provider, s3_url, use_env


@pytest.fixture
def moto(moto_server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    use_env(monkeypatch, moto_server)
    return moto_server


def s3(url: str) -> S3Backend:
    backend = provider(url)
    assert isinstance(backend, S3Backend)
    return backend


# --- Object Lock --------------------------------------------------------------------------------
def test_object_lock_writes_objects_under_compliance_retention(moto: Server) -> None:
    bucket = new_bucket(moto, object_lock=True)
    backend = s3(s3_url(moto, bucket, object_lock="compliance", object_lock_period="2d"))
    before = datetime.now(UTC)
    backend.put("data/ab/pack", b"ciphertext")
    backend.put("snapshots/s1", b"snapshot")
    head = s3_client(moto).head_object(Bucket=bucket, Key="repo/data/ab/pack")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"]
    assert before + timedelta(days=2) - timedelta(minutes=1) <= until <= before + timedelta(days=2, minutes=1)
    assert backend.retention("snapshots/s1")[0] == "COMPLIANCE"


def test_a_locked_object_cannot_be_deleted_and_stays_readable(moto: Server) -> None:
    bucket = new_bucket(moto, object_lock=True)
    backend = s3(s3_url(moto, bucket, object_lock="compliance", object_lock_period="1d"))
    backend.put("index/i1", b"index bytes")
    with pytest.raises(StoragePermissionDenied) as refused:
        backend.delete("index/i1")
    assert "object lock (compliance) until" in str(refused.value)
    assert refused.value.exit_code == ExitCode.STORAGE
    assert backend.get("index/i1") == b"index bytes"
    assert [i.name for i in backend.list("index/")] == ["index/i1"]


def test_governance_mode_is_enforced_too(moto: Server) -> None:
    bucket = new_bucket(moto, object_lock=True)
    backend = s3(s3_url(moto, bucket, object_lock="governance", object_lock_period="1d"))
    backend.put("data/cd/pack", b"x")
    assert backend.retention("data/cd/pack")[0] == "GOVERNANCE"
    with pytest.raises(StoragePermissionDenied):
        backend.delete("data/cd/pack")


def test_lock_files_stay_deletable_and_leave_no_versions_behind(moto: Server) -> None:
    bucket = new_bucket(moto, object_lock=True)
    backend = s3(s3_url(moto, bucket, object_lock="compliance", object_lock_period="1d"))
    backend.put("locks/l1", b"lock")
    assert backend.retention("locks/l1") == (None, None)
    backend.delete("locks/l1")
    with pytest.raises(StorageNotFound):
        backend.get("locks/l1")
    versions = s3_client(moto).list_object_versions(Bucket=bucket, Prefix="repo/locks/")
    assert versions.get("Versions", []) == []
    assert versions.get("DeleteMarkers", []) == []


def test_extending_retention_moves_the_date_forward_only(moto: Server) -> None:
    bucket = new_bucket(moto, object_lock=True)
    backend = s3(s3_url(moto, bucket, object_lock="compliance", object_lock_period="1d"))
    backend.put("data/ef/pack", b"x")
    later = datetime.now(UTC) + timedelta(days=5)
    assert backend.extend_retention("data/ef/pack", later) is True
    assert backend.extend_retention("data/ef/pack", later - timedelta(days=1)) is False
    until = backend.retention("data/ef/pack")[1]
    assert until is not None and abs((until - later).total_seconds()) < 2


def test_object_lock_on_a_bucket_without_it_fails_with_a_clear_message(moto: Server) -> None:
    bucket = new_bucket(moto)
    backend = s3(s3_url(moto, bucket, object_lock="compliance"))
    with pytest.raises(StorageError) as failed:
        backend.put("data/00/pack", b"x")
    assert not isinstance(failed.value, TransientStorageError)
    assert "does not have Object Lock enabled" in str(failed.value)


# --- failures ------------------------------------------------------------------------------------
@pytest.fixture
def proxy(moto: Server) -> Iterator[FaultProxy]:
    running = FaultProxy(moto.port).start()
    yield running
    running.stop()


def test_a_failed_multipart_upload_is_aborted(moto: Server, proxy: FaultProxy) -> None:
    bucket = new_bucket(moto)
    proxy.rule = lambda method, path: FAIL if method == "PUT" and "partNumber=2" in path else PASS
    url = f"s3://{bucket}/repo?endpoint={proxy.endpoint}&multipart_threshold=5MiB&part_size=5MiB"
    backend = s3(url)
    payload = b"p" * (16 * 1024 * 1024)
    with pytest.raises(TransientStorageError):
        backend.put("data/aa/big", payload)
    assert any("uploads" in path for method, path, _ in proxy.requests if method == "POST")
    assert any("uploadId=" in path for method, path, _ in proxy.requests if method == "DELETE")  # the abort
    assert backend.incomplete_uploads() == []
    with pytest.raises(StorageNotFound):
        backend.stat("data/aa/big")


def test_a_lost_response_to_put_if_absent_is_retried_to_success(moto: Server, proxy: FaultProxy) -> None:
    bucket = new_bucket(moto)
    dropped: list[str] = []

    def drop_first_put(method: str, path: str) -> str:
        if method == "PUT" and not dropped:
            dropped.append(path)
            return DROP
        return PASS

    proxy.rule = drop_first_put
    backend = open_backend(f"s3://{bucket}/repo?endpoint={proxy.endpoint}&retry_max_delay=0.1", env=os.environ)
    backend.put("wal/000000010000000000000001", b"segment", if_absent=True)
    assert dropped
    assert backend.get("wal/000000010000000000000001") == b"segment"


def test_server_errors_are_transient_and_retried(moto: Server, proxy: FaultProxy) -> None:
    bucket = new_bucket(moto)
    failures: list[str] = []

    def fail_twice(method: str, path: str) -> str:
        if method == "GET" and len(failures) < 2:
            failures.append(path)
            return FAIL
        return PASS

    provider(f"s3://{bucket}/repo?endpoint={moto.endpoint}").put("config", b"header")
    proxy.rule = fail_twice
    with pytest.raises(TransientStorageError):
        provider(f"s3://{bucket}/repo?endpoint={proxy.endpoint}").get("config")
    backend = open_backend(f"s3://{bucket}/repo?endpoint={proxy.endpoint}&retry_max_delay=0.1", env=os.environ)
    assert backend.get("config") == b"header"
    assert len(failures) == 2


def test_a_stalled_response_times_out(moto: Server, proxy: FaultProxy) -> None:
    bucket = new_bucket(moto)
    provider(f"s3://{bucket}/repo?endpoint={moto.endpoint}").put("config", b"header")
    proxy.rule = lambda method, _path: STALL if method == "GET" else PASS
    proxy.stall_seconds = 8
    backend = provider(f"s3://{bucket}/repo?endpoint={proxy.endpoint}&timeout=1s&read_timeout=1s")
    started = time.monotonic()
    with pytest.raises(TransientStorageError) as failed:
        backend.get("config")
    assert time.monotonic() - started < 5
    assert "did not answer" in str(failed.value)


def test_an_unreachable_server_is_a_transient_error(moto: Server) -> None:
    backend = provider(f"s3://nowhere/repo?endpoint=http://127.0.0.1:{free_port()}&connect_timeout=2s")
    with pytest.raises(TransientStorageError) as failed:
        backend.get("config")
    assert failed.value.exit_code == ExitCode.STORAGE


def test_a_missing_bucket_is_a_permanent_error_that_names_it(moto: Server) -> None:
    backend = provider(f"s3://no-such-bucket/repo?endpoint={moto.endpoint}")
    with pytest.raises(StorageError) as failed:
        backend.get("config")
    assert not isinstance(failed.value, TransientStorageError | StorageNotFound)
    assert "'no-such-bucket' does not exist" in str(failed.value)
    assert "create the bucket" in failed.value.hint


def test_wrong_credentials_are_refused_without_echoing_them(
    rclone_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_env(monkeypatch, rclone_server)
    bucket = new_bucket(rclone_server)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "definitely-wrong-secret")
    backend = provider(s3_url(rclone_server, bucket))
    with pytest.raises(StoragePermissionDenied) as refused:
        backend.get("config")
    assert "definitely-wrong-secret" not in str(refused.value)
    assert S3_SECRET not in str(refused.value)


def test_ranges_from_a_server_that_answers_them_with_200_are_exact(
    rclone_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_env(monkeypatch, rclone_server)
    backend = s3(s3_url(rclone_server, new_bucket(rclone_server)))
    data = os.urandom(3 * 1024 * 1024 + 17)
    backend.put("data/aa/pack", data)
    assert backend.get_range("data/aa/pack", 1000, 5000) == data[1000:6000]  # rclone answers 200 here
    assert backend.get_range("data/aa/pack", 0, 7) == data[:7]
    assert backend.get_range("data/aa/pack", len(data) - 10, 100) == data[-10:]
    assert backend.get_range("data/aa/pack", len(data), 10) == b""
    with pytest.raises(StorageNotFound):
        backend.get_range("data/aa/missing", 0, 10)
    assert b"".join(read_stream(backend, "data/aa/pack", 3, len(data))) == data[3:]
    with pytest.raises(StorageNotFound):
        b"".join(read_stream(backend, "data/aa/missing", 0, 10))


def test_a_refused_presigned_range_read_quotes_no_credential(
    rclone_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_env(monkeypatch, rclone_server)
    bucket = new_bucket(rclone_server)
    s3(s3_url(rclone_server, bucket)).put("data/aa/pack", b"x" * 4096)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "definitely-wrong-secret")
    backend = s3(s3_url(rclone_server, bucket))
    backend._ranges_via_url = True  # as after the server's first 200 answer to a range
    with pytest.raises(StoragePermissionDenied) as refused:
        backend.get_range("data/aa/pack", 10, 10)
    text = str(refused.value) + repr(refused.value.__cause__)
    for secret in ("definitely-wrong-secret", S3_SECRET, "Signature=", "X-Amz-Credential="):
        assert secret not in text


def test_a_presigned_url_quoted_in_an_sdk_message_is_never_kept() -> None:
    url = (
        "http://127.0.0.1:9000/b/repo/data/aa/pack?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE%2F20261122%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLETOKEN&X-Amz-Signature=deadbeef0123"
    )
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except OSError as reset:
            raise RuntimeError(f"GET {url} failed: status 503 <Code>SlowDown</Code>") from reset
    except RuntimeError as exc:
        shown = str(detail(exc))
    for secret in ("AKIDEXAMPLE", "FwoGZXIvYXdzEXAMPLETOKEN", "deadbeef0123", "data/aa/pack"):
        assert secret not in shown
    assert shown == "RuntimeError <- ConnectionResetError [Errno 104] Connection reset by peer (HTTP 503 SlowDown)"


def test_no_credentials_at_all_is_reported_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(StoragePermissionDenied) as refused:
        provider("s3://bucket/repo?endpoint=http://127.0.0.1:9")
    assert "AWS_ACCESS_KEY_ID" in refused.value.hint


# --- options --------------------------------------------------------------------------------------
def test_storage_class_and_server_side_encryption_are_applied(moto: Server) -> None:
    bucket = new_bucket(moto)
    backend = s3(s3_url(moto, bucket, storage_class="STANDARD_IA", sse="AES256"))
    backend.put("data/11/pack", b"x" * 100)
    backend.put("data/11/big", b"y" * (20 * 1024 * 1024))
    for key in ("repo/data/11/pack", "repo/data/11/big"):
        head = s3_client(moto).head_object(Bucket=bucket, Key=key)
        assert head.get("StorageClass") == "STANDARD_IA"
        assert head.get("ServerSideEncryption") == "AES256"


def test_location_names_bucket_and_endpoint_but_no_credentials(moto: Server) -> None:
    backend = s3(s3_url(moto, new_bucket(moto)))
    assert backend.location.startswith("s3://lb-")
    assert f"at {moto.endpoint}" in backend.location
    assert moto.env["AWS_ACCESS_KEY_ID"] not in backend.location
    assert backend.connections == 2
    assert s3(s3_url(moto, new_bucket(moto), connections="12")).connections == 12
