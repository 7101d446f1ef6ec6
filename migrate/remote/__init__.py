"""Remote steps over SSH (paramiko): run commands, move files, check a host, with host keys
checked and every command quoted and listed in dry-run."""
