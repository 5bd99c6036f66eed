"""Real storage servers the tests start once per session: moto and rclone (S3), Azurite
(Azure), a GCS emulator and OpenSSH's sshd (SFTP), plus a fault-injecting HTTP proxy."""
