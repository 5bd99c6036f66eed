"""What ``lifeboat schedule install`` writes: systemd units, a cron file, Kubernetes manifests.

Pure text generation from the scheduled jobs (``lifeboat.config.jobs``) and a few settings;
reading the configuration and writing files is the command's part
(``lifeboat.app.cli.schedule_install``). docs/install.md explains the files.
"""
