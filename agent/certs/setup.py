"""Build a node's certificate Material from its settings, and write its rows at start."""

from __future__ import annotations

from urllib.parse import urlsplit

from agent.certs.material import Configured, Material

# (setting prefix, where its files are named); replication's keys are accepted as the seed shows
SOURCES = ("tls", "operationsApi.tls", "replication")


def material_for(config, hostname: str, own_url: str) -> Material:
    """Return the Material for this node: SANs for its name, its URL's host and listener."""
    hosts = [urlsplit(own_url).hostname or ""]
    listener = config.listener("operationsApi.network.port") or config.listener(
        "operationsApi.network.securePort"
    )
    if listener and listener[0] not in ("0.0.0.0", "::", ""):
        hosts.append(listener[0])
    material = Material(config.root, hostname, hosts, bool(config.get("replication.enableRootCAs")))
    seen = set()
    for prefix in SOURCES:
        certificate = config.get(f"{prefix}.certificate")
        key = config.get(f"{prefix}.privateKey")
        ca = config.get(f"{prefix}.certificateAuthority")
        if not certificate and ca and ca not in seen:
            seen.add(ca)
            material.configured.append(Configured(f"{prefix}.certificateAuthority", ca))
            continue
        if not certificate or certificate in seen:
            continue
        seen.add(certificate)
        material.configured.append(
            Configured(f"{prefix}.certificate", str(certificate), key and str(key), ca and str(ca))
        )
    return material
