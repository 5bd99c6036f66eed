"""Can this OS user use the repository? ``lifeboat pg access`` asks it; ``pg check`` runs it as
the database server's user, the one that runs ``archive_command``.

Three probes: every file and directory of a local repository (the kernel's answer for this
user, so ACLs and read-only mounts count), opening the repository (its ``config``, every
key file and the passphrase the server would use), and writing and removing a lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lifeboat.errors import LifeboatError, RepositoryLocked
from lifeboat.repository.repo import Repository
from lifeboat.storage.base import Backend, access_audit
from lifeboat.storage.ownership import AccessProblem, current_user

LISTED_PROBLEMS = 50


@dataclass(frozen=True)
class AccessError:
    """Why opening or locking the repository failed (an error reported across processes)."""

    code: int
    kind: str
    message: str
    hint: str

    @classmethod
    def of(cls, exc: LifeboatError) -> AccessError:
        return cls(int(exc.exit_code), type(exc).__name__, exc.message, exc.hint)


@dataclass
class AccessReport:
    user: str
    location: str
    checked: int = 0  # files and directories looked at (local repositories)
    total_problems: int = 0
    problems: list[AccessProblem] = field(default_factory=list)
    error: AccessError | None = None

    @property
    def ok(self) -> bool:
        return not self.total_problems and self.error is None

    @property
    def permission_only(self) -> bool:
        """True when everything wrong is a permission (exit code 14, not another failure)."""
        return self.error is None or self.error.kind == "StoragePermissionDenied"

    def summary(self, limit: int = 5) -> str:
        """One line naming what cannot be used (the first ``limit`` problems) and the open error."""
        parts = [p.describe() for p in self.problems[:limit]]
        if self.total_problems > len(parts):
            parts.append(f"and {self.total_problems - len(parts)} more")
        if self.error is not None and not (parts and self.error.kind == "StoragePermissionDenied"):
            parts.append(self.error.message)
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "user": self.user,
            "location": self.location,
            "checked": self.checked,
            "problem_count": self.total_problems,
            "problems": [p.to_json() for p in self.problems],
            "error": None if self.error is None else self.error.__dict__,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> AccessReport:
        error = doc.get("error")
        return cls(
            user=str(doc["user"]),
            location=str(doc["location"]),
            checked=int(doc.get("checked", 0)),
            total_problems=int(doc.get("problem_count", 0)),
            problems=[
                AccessProblem("" if p["path"] == "." else str(p["path"]), str(p["need"]), str(p["owner"]))
                for p in doc.get("problems", [])
            ],
            error=None
            if not error
            else AccessError(int(error["code"]), str(error["kind"]), str(error["message"]), str(error["hint"])),
        )


def check_access(backend: Backend, open_repository: Callable[[Backend], Repository]) -> AccessReport:
    """Probe ``backend`` as the user this process runs as."""
    report = AccessReport(current_user(), backend.location)
    audit = access_audit(backend)
    try:
        if audit is not None:
            findings = audit.access_problems(limit=LISTED_PROBLEMS)
            report.problems, report.total_problems, report.checked = (
                findings.problems,
                findings.total,
                findings.checked,
            )
        repo = open_repository(backend)
        try:
            with repo.lock(exclusive=False, operation="access check"):
                pass
        except RepositoryLocked:
            pass  # held exclusively by another command: writing a lock was not tried
    except LifeboatError as exc:
        report.error = AccessError.of(exc)
    return report
