"""The systemd unit that `harper-agent install-service` installs."""
