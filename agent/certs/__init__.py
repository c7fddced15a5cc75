"""Key pairs, certificates and TLS material; the only package importing `cryptography`."""
