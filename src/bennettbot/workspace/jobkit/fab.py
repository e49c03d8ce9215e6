"""Fabric (3.x) for job scripts and fetched fabfiles: host keys are checked.

Fabric's own ``Connection`` accepts a host key it has never seen (it adds
it). ``connect`` returns one that trusts only the keys in the file named by
``SSH_KNOWN_HOSTS`` and logs in with the key in ``SSH_KEY_PATH``: the bot's
own SSH settings, which a namespace hands to its jobs with
``env = ["SSH_KEY_PATH", "SSH_KNOWN_HOSTS"]``. An unknown host key fails the
task; it is never added.

In a fabfile::

    from fabric import task
    from jobkit.fab import connect

    @task
    def deploy(c, branch="main"):
        connect("prod.example.org", "deploy").run(f"cd /srv/app && ./deploy {branch}")
"""

from __future__ import annotations

import os

from fabric import Connection
from paramiko import RejectPolicy


def connect(host: str, user: str | None = None, port: int = 22) -> Connection:
    """A Fabric connection to ``host`` that refuses unknown host keys."""
    known_hosts = os.environ.get("SSH_KNOWN_HOSTS")
    if not known_hosts:
        raise RuntimeError("SSH_KNOWN_HOSTS is not set: list it in the namespace's env")
    key = os.environ.get("SSH_KEY_PATH")
    options: dict[str, object] = {"allow_agent": False, "look_for_keys": False}
    if key:
        options["key_filename"] = key
    connection = Connection(host, user=user, port=port, connect_kwargs=options)
    connection.client.set_missing_host_key_policy(RejectPolicy())
    connection.client.load_host_keys(known_hosts)
    return connection
