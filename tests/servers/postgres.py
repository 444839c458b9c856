"""A real PostgreSQL server for the tests, started from the distribution's binaries.

``initdb`` refuses to run as root, so under root (CI containers) the server runs as
the ``postgres`` OS user (via ``runuser``) with its data directory in a temporary
folder owned by that user. It listens on a free loopback port with password (SCRAM)
authentication, so the product's password path is exercised, and on a private unix
socket directory. ``fsync`` is off: the data is thrown away after the session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin", "/usr/bin")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are not installed here."""


@dataclass(frozen=True)
class PostgresInfo:
    host: str
    port: int
    user: str
    password: str
    dbname: str

    def conninfo(self) -> str:
        return (
            f"host={self.host} port={self.port} user={self.user} "
            f"password={self.password} dbname={self.dbname}"
        )


def find_bindir() -> str:
    """The folder holding ``initdb`` and ``pg_ctl``, newest version first."""
    for pattern in SEARCH:
        for folder in sorted(glob.glob(pattern), reverse=True):
            if os.path.isfile(os.path.join(folder, "initdb")) and os.path.isfile(
                os.path.join(folder, "pg_ctl")
            ):
                return folder
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; "
        "install them with `apt-get install postgresql`"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server(password: str = "fmf-test-pw") -> Iterator[PostgresInfo]:
    """Run a throwaway PostgreSQL server; yield how to connect to it."""
    bindir = find_bindir()
    base = tempfile.mkdtemp(prefix="fmf-pg-")
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    if as_root:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base, ignore_errors=True)
            raise PostgresUnavailable("running as root and there is no 'postgres' user") from None
        os.chown(base, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(base, "data")
    sock = os.path.join(base, "sock")
    pwfile = os.path.join(base, "pwfile")
    log = os.path.join(base, "server.log")
    os.mkdir(sock)
    with open(pwfile, "w") as f:
        f.write(password + "\n")
    if as_root:
        for path in (sock, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()

    def run(*cmd: str) -> None:
        proc = subprocess.run([*prefix, *cmd], capture_output=True, text=True, cwd=base)
        if proc.returncode != 0:
            tail = ""
            if os.path.exists(log):
                with open(log) as f:
                    tail = f.read()[-2000:]
            raise RuntimeError(f"{cmd[0]} failed: {proc.stdout}{proc.stderr}{tail}")

    run(
        os.path.join(bindir, "initdb"),
        "-D",
        data,
        "-U",
        "fmf",
        f"--pwfile={pwfile}",
        "--auth-host=scram-sha-256",
        "--auth-local=scram-sha-256",
        "-E",
        "UTF8",
        "--locale=C",
    )
    options = (
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
    )
    run(os.path.join(bindir, "pg_ctl"), "-D", data, "-o", options, "-l", log, "-w", "start")
    try:
        yield PostgresInfo("127.0.0.1", port, "fmf", password, "postgres")
    finally:
        subprocess.run(
            [*prefix, os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
