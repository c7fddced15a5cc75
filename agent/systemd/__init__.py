"""The agent as a systemd service: the unit template, sd_notify, and reload on SIGHUP."""
