"""Messages name the program a producer or consumer runs — through runuser too — never its arguments."""

from __future__ import annotations

import pytest

from lifeboat.sources.tools.program import program_name


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["/usr/sbin/slapcat", "-F", "/etc/ldap/slapd.d"], "/usr/sbin/slapcat"),
        (["/usr/sbin/runuser", "-u", "openldap", "--", "/usr/sbin/slapadd", "-n", "1"], "/usr/sbin/slapadd"),
        (["setpriv", "--reuid=x", "--", "pg_dump", "-Fc"], "pg_dump"),
        (["runuser", "-u", "x", "--"], "runuser"),  # nothing after '--': the wrapper itself
        (["su", "x", "--", "-c", "id"], "su"),
        ([], ""),
    ],
)
def test_the_program_run_as_another_user_is_the_one_named(argv: list[str], name: str) -> None:
    assert program_name(argv) == name
