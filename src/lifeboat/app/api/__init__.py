"""The daemon's HTTP interface (FastAPI, served by ``lifeboat serve``): ``/healthz`` and
``/metrics`` now; the API of docs/daemon.md grows here."""
