"""The scheduler daemon, ``lifeboat serve`` (docs/daemon.md): the loop, the runner, the jobs."""
