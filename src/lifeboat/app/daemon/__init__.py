"""The daemon, ``lifeboat serve`` (docs/daemon.md): the scheduler loop, the job runner and the
job-history catalog.

Terms: a *job* is one scheduled piece of work (``backup:db``); a *run* is one execution of
a job (one attempt), recorded in the *catalog* with its *events* (the lines it logged); a
*fire* is the scheduled time a job was last started for (the missed-run policy reads it).
"""
